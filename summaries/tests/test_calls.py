"""One job's calls (summaries/calls.py): one retry budget, waits that give the slot back,
cancellation and the deadline; the real provider against the loopback LLM server."""

import threading
import time

import pytest

from jobs.services import JobTimedOut
from summaries.calls import JobCalls, RetriesSpent, RetryLater
from summaries.providers.base import LLMBadRequest, SummarizeOptions
from summaries.summarizer import Cancelled
from summaries.tests.fake_llm import Reply

OPTIONS = SummarizeOptions(max_words=50)


def no_sleep(_seconds):
    pass


def test_transient_failures_are_retried_in_place(provider, fake_llm):
    fake_llm.then(Reply(status=500, body=b"x"), Reply(status=503, body=b"x", headers={"Retry-After": "0"}))
    calls = JobCalls(provider, sleep=no_sleep)
    assert calls.call("hello", OPTIONS).text.startswith("Summary:")
    assert len(fake_llm.requests) == 3 and calls.retries_used == 2


def test_one_budget_for_every_call_of_the_job(provider, fake_llm):
    """Calls share the budget (map steps, and attempts through `retries_used`)."""
    fake_llm.then(*[Reply(status=502, body=b"x")] * 10)
    calls = JobCalls(provider, retries_used=1, sleep=no_sleep)  # one retry spent by an earlier attempt
    with pytest.raises(RetriesSpent) as spent:
        calls.call("hello", OPTIONS)
    assert spent.value.error.code == "llm_unavailable" and "Gave up after 3 retries" in spent.value.detail
    assert len(fake_llm.requests) == 3  # 1 + the 2 retries left
    with pytest.raises(RetriesSpent):
        calls.call("another chunk", OPTIONS)
    assert len(fake_llm.requests) == 4  # no retry left for it


def test_backoff_grows_and_a_long_wait_gives_the_slot_back(provider, fake_llm, settings):
    settings.LLM_RATE_LIMIT_MAX_WAIT_S = 30
    fake_llm.then(
        Reply(status=500, body=b"x"), Reply(status=500, body=b"x"), Reply(status=503, headers={"Retry-After": "120"})
    )
    slept = []
    calls = JobCalls(provider, sleep=slept.append)
    with pytest.raises(RetryLater) as later:
        calls.call("hello", OPTIONS)
    assert later.value.delay_s == pytest.approx(120) and later.value.error.code == "llm_unavailable"
    assert sum(slept) == pytest.approx(0.5 + 1.0)  # 0.5 s, then 1 s; 120 s is not waited in a slot
    assert calls.retries_used == 3


def test_a_429_waits_for_the_shared_pause_not_a_backoff_of_its_own(provider, fake_llm):
    fake_llm.then(Reply(status=429, body=b"{}", headers={"Retry-After": "1"}))
    calls = JobCalls(provider, sleep=pytest.fail)  # the limiter does the waiting
    started = time.monotonic()
    assert calls.call("hello", OPTIONS).text
    assert time.monotonic() - started >= 0.95 and len(fake_llm.requests) == 2


def test_booked_out_limiter_gives_the_slot_back_without_spending_the_budget(provider, fake_llm, settings):
    settings.LLM_RATE_LIMIT_RPM = 60
    settings.LLM_RATE_LIMIT_MAX_WAIT_S = 0.2
    calls = JobCalls(provider, sleep=no_sleep)
    calls.call("first", OPTIONS)
    with pytest.raises(RetryLater) as later:
        calls.call("second", OPTIONS)
    assert later.value.error.booked_out and calls.retries_used == 0 and len(fake_llm.requests) == 1


def test_permanent_errors_are_not_retried(provider, fake_llm):
    fake_llm.then(Reply(status=400, body=b'{"error": {"message": "bad model"}}'))
    with pytest.raises(LLMBadRequest):
        JobCalls(provider, sleep=no_sleep).call("hello", OPTIONS)
    assert len(fake_llm.requests) == 1


def test_cancellation_is_noticed_while_waiting_to_retry(provider, fake_llm):
    fake_llm.then(Reply(status=503, body=b"x", headers={"Retry-After": "20"}))
    alive = threading.Event()
    alive.set()
    calls = JobCalls(provider, alive=alive.is_set, sleep=lambda s: alive.clear())
    with pytest.raises(Cancelled):
        calls.call("hello", OPTIONS)
    assert len(fake_llm.requests) == 1


def test_the_deadline_stops_the_job(provider, fake_llm):
    with pytest.raises(JobTimedOut):
        JobCalls(provider, deadline=time.monotonic() - 1).call("hello", OPTIONS)
    assert not fake_llm.requests
