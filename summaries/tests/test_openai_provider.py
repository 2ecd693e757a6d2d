"""The OpenAI-compatible provider against a loopback server speaking the real protocol: one call
per summarize(), every failure a stable error, the server's rate-limit words passed to the limiter."""

import socket
import time

import pytest

from summaries.providers import get_provider, ratelimit
from summaries.providers.base import (
    LLMBadRequest,
    LLMBadResponse,
    LLMRateLimited,
    LLMTimeout,
    LLMUnavailable,
    SummarizeOptions,
)
from summaries.tests.fake_llm import Reply

OPTIONS = SummarizeOptions(max_words=50)


@pytest.fixture
def provider(fake_llm, settings):
    settings.LLM_TIMEOUT_S = 1
    settings.LLM_MODEL = "fake-model"
    return get_provider("openai")


def test_200(provider, fake_llm):
    completion = provider.summarize("Please summarize: alpha beta gamma", OPTIONS)
    assert completion.text == "Summary: Please summarize: alpha beta gamma"
    assert completion.model == "fake-model" and completion.prompt_tokens == 5
    (request,) = fake_llm.requests
    assert request["_path"] == "/v1/chat/completions" and request["_auth"] == "Bearer test-key"
    assert request["messages"][-1] == {"role": "user", "content": "Please summarize: alpha beta gamma"}
    assert request["messages"][0]["role"] == "system"


def test_429_is_rate_limited_with_the_servers_wait_and_pauses_the_limiter(provider, fake_llm):
    fake_llm.then(Reply(status=429, body=b'{"error": {"message": "slow down"}}', headers={"Retry-After": "2"}))
    with pytest.raises(LLMRateLimited) as exc:
        provider.summarize("hello", OPTIONS)
    assert exc.value.transient and not exc.value.booked_out and exc.value.retry_after == pytest.approx(2)
    assert len(fake_llm.requests) == 1  # one call: retrying is the job's business (summaries.calls)
    # every caller now waits for the server's Retry-After before its turn
    turn = ratelimit.reserve(provider="openai", model="fake-model", org_id=None, tokens=10, max_wait_s=10)
    assert 1.5 < turn.wait_s <= 2.05


def test_429_retry_after_http_date_and_ms(provider, fake_llm):
    from email.utils import formatdate

    fake_llm.then(
        Reply(status=429, body=b"{}", headers={"Retry-After": formatdate(time.time() + 30, usegmt=True)}),
        Reply(status=429, body=b"{}", headers={"retry-after-ms": "1500"}),
    )
    for expected in (30, 1.5):
        with pytest.raises(LLMRateLimited) as exc:
            provider.summarize("hello", OPTIONS)
        assert exc.value.retry_after == pytest.approx(expected, abs=1.1)
        ratelimit._redis_store._redis().delete(ratelimit.model_key("openai", "fake-model"))  # no waiting here


def test_booked_out_limiter_raises_before_any_call(provider, fake_llm, settings):
    settings.LLM_RATE_LIMIT_RPM = 60  # about one call a second, a burst of one
    settings.LLM_RATE_LIMIT_MAX_WAIT_S = 0.5
    provider.summarize("one", OPTIONS)
    with pytest.raises(LLMRateLimited) as exc:
        provider.summarize("two", OPTIONS)
    assert exc.value.booked_out and 0.9 < exc.value.retry_after <= 1.1
    assert len(fake_llm.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_unavailable(provider, fake_llm, status):
    fake_llm.then(Reply(status=status, body=b"<html>down</html>"))
    with pytest.raises(LLMUnavailable) as exc:
        provider.summarize("hello", OPTIONS)
    assert exc.value.code == "llm_unavailable" and exc.value.transient
    assert len(fake_llm.requests) == 1


def test_rate_limit_headers_are_learned(provider, fake_llm):
    fake_llm.then(
        Reply(
            headers={
                "x-ratelimit-limit-requests": "120",
                "x-ratelimit-remaining-requests": "119",
                "x-ratelimit-limit-tokens": "90000",
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-tokens": "3s",
            }
        )
    )
    provider.summarize("hello", OPTIONS)
    (state,), _ = ratelimit._store().read([ratelimit.model_key("openai", "fake-model")])
    assert state["lr"] == 120 and state["lt"] == 90000
    # no tokens left until the reset: the next turn is about 3 s away
    turn = ratelimit.reserve(provider="openai", model="fake-model", org_id=None, tokens=10, max_wait_s=10)
    assert 2.5 < turn.wait_s <= 3.05


def test_timeout(provider, fake_llm):
    fake_llm.then(Reply(hang=True))
    with pytest.raises(LLMTimeout) as exc:
        provider.summarize("hello", OPTIONS)
    assert exc.value.code == "llm_timeout" and exc.value.transient
    assert len(fake_llm.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b'{"choices": []}',
        b'{"choices": [{"message": {}}]}',
        b"[1, 2]",
        b'{"choices": [{"message": {"content": "  "}}]}',
    ],
)
def test_garbage_bodies_are_bad_response_not_crash(provider, fake_llm, body):
    fake_llm.then(Reply(status=200, body=body))
    with pytest.raises(LLMBadResponse) as exc:
        provider.summarize("hello", OPTIONS)
    assert exc.value.code == "llm_bad_response" and not exc.value.transient
    assert len(fake_llm.requests) == 1  # not retried


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_not_retried(provider, fake_llm, status):
    fake_llm.then(Reply(status=status, body=b'{"error": {"message": "context length exceeded"}}'))
    with pytest.raises(LLMBadRequest) as exc:
        provider.summarize("hello", OPTIONS)
    assert "context length exceeded" in exc.value.detail and not exc.value.transient
    assert len(fake_llm.requests) == 1


def test_connection_refused_is_unavailable(settings):
    with socket.socket() as probe:  # a loopback port that nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.LLM_BASE_URL = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(LLMUnavailable):
        get_provider("openai").summarize("hello", OPTIONS)


def test_missing_usage_is_estimated(provider, fake_llm):
    fake_llm.then(Reply(body=b'{"choices": [{"message": {"content": "short answer"}}]}'))
    completion = provider.summarize("a prompt of some length", OPTIONS)
    assert completion.prompt_tokens > 0 and completion.completion_tokens > 0 and completion.model == "fake-model"


@pytest.mark.parametrize(
    ("format", "max_words", "wording", "limit"),
    [
        ("bullets", 100, 'one point per line, each line starting with "- "', 100),
        ("short", 300, "one or two sentences", 45),
    ],
)
def test_the_format_and_length_reach_the_model(provider, fake_llm, format, max_words, wording, limit):
    from summaries import formats

    provider.summarize("Please summarize: alpha beta gamma", SummarizeOptions(max_words=max_words, format=format))
    request = fake_llm.requests[-1]
    system = request["messages"][0]["content"]
    assert wording in system and f"at most {limit} words" in system
    assert request["max_tokens"] == formats.max_tokens(format, max_words) < 2 * limit + 40
