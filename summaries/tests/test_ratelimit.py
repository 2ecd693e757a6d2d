"""The shared LLM rate limiter on real Redis: per provider and per org."""

import pytest

from summaries.providers.base import LLMRateLimited
from summaries.providers.ratelimit import acquire_llm_slot


@pytest.fixture
def limits(settings):
    settings.LLM_RATE_LIMIT_RPM = 5
    settings.LLM_ORG_RATE_LIMIT_RPM = 3
    settings.LLM_RATE_LIMIT_MAX_WAIT_S = 0


def test_one_org_cannot_take_the_whole_provider_budget(limits):
    for _ in range(3):
        acquire_llm_slot(provider="openai", org_id="org-a")
    with pytest.raises(LLMRateLimited) as exc:
        acquire_llm_slot(provider="openai", org_id="org-a")
    assert exc.value.transient and 0 < exc.value.retry_after <= 60
    # another org still gets the remaining provider budget
    acquire_llm_slot(provider="openai", org_id="org-b")
    acquire_llm_slot(provider="openai", org_id="org-b")
    with pytest.raises(LLMRateLimited):  # provider-wide limit (5) reached
        acquire_llm_slot(provider="openai", org_id="org-c")


def test_refused_attempts_do_not_consume(limits):
    for _ in range(3):
        acquire_llm_slot(provider="p2", org_id="a")
    for _ in range(5):
        with pytest.raises(LLMRateLimited):
            acquire_llm_slot(provider="p2", org_id="a")
    acquire_llm_slot(provider="p2", org_id="b")
    acquire_llm_slot(provider="p2", org_id="b")


def test_zero_means_unlimited(settings):
    settings.LLM_RATE_LIMIT_RPM = 0
    settings.LLM_ORG_RATE_LIMIT_RPM = 0
    for _ in range(100):
        acquire_llm_slot(provider="openai", org_id="a")
