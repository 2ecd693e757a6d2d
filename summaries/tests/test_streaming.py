"""Streamed answers: the OpenAI-compatible provider reading server-sent events from the loopback
server (which streams in chunks, paced like a real model), and the `summary.delta` publisher
(summaries/streaming.py) that throttles what it hears into events."""

from __future__ import annotations

import threading
import time
import uuid
from itertools import pairwise
from types import SimpleNamespace

import pytest

from summaries import streaming
from summaries.calls import JobCalls, RetriesSpent
from summaries.providers import openai, ratelimit
from summaries.providers.base import (
    LLMBadRequest,
    LLMBadResponse,
    LLMRateLimited,
    LLMStreamBroken,
    LLMTimeout,
    LLMUnavailable,
    SummarizeOptions,
)
from summaries.providers.tokens import estimate_tokens
from summaries.tests.fake_llm import FakeLLM, Reply

PROMPT = "Please summarize: " + " ".join(f"point{i}" for i in range(20))


class Heard:
    """An `on_delta` that keeps what it heard and when."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.times: list[float] = []

    def __call__(self, text: str) -> None:
        self.texts.append(text)
        self.times.append(time.monotonic())


def streamed(heard: Heard | None = None) -> SummarizeOptions:
    return SummarizeOptions(max_words=50, stream=True, on_delta=heard or Heard())


def no_sleep(_seconds):
    pass


# -- the provider ------------------------------------------------------------------------------
def test_on_delta_hears_the_text_grow_as_it_arrives(provider, fake_llm):
    fake_llm.stream_pace = 0.05
    heard = Heard()
    completion = provider.summarize(PROMPT, streamed(heard))

    (request,) = fake_llm.requests
    assert request["stream"] is True and request["stream_options"] == {"include_usage": True}
    answer = FakeLLM.answer(request)
    assert completion.text == answer == heard.texts[-1]
    assert len(heard.texts) == len(answer.split())  # one per streamed piece
    assert all(len(later) > len(earlier) and later.startswith(earlier) for earlier, later in pairwise(heard.texts))
    # heard while the answer arrived, not all at its end
    assert heard.times[-1] - heard.times[0] >= 0.04 * (len(heard.texts) - 1)


def test_a_streamed_completion_is_the_unstreamed_one(provider, fake_llm):
    plain = provider.summarize(PROMPT, SummarizeOptions(max_words=50))
    assert provider.summarize(PROMPT, streamed()) == plain
    assert "stream" not in fake_llm.requests[0]


def test_without_anyone_to_tell_the_answer_comes_in_one_piece(provider, fake_llm):
    """A long document's map steps keep `stream` but get no `on_delta`: nothing to stream for."""
    completion = provider.summarize(PROMPT, SummarizeOptions(max_words=50, stream=True))
    assert "stream" not in fake_llm.requests[0] and completion.text == FakeLLM.answer(fake_llm.requests[0])


def test_usage_comes_from_the_last_chunk(provider, fake_llm, monkeypatch):
    settled = []
    real_settle = ratelimit.settle
    monkeypatch.setattr(
        ratelimit, "settle", lambda turn, **kw: (settled.append(kw["used_tokens"]), real_settle(turn, **kw))
    )
    fake_llm.then(Reply(usage={"prompt_tokens": 321, "completion_tokens": 45}))
    completion = provider.summarize(PROMPT, streamed())
    assert (completion.prompt_tokens, completion.completion_tokens) == (321, 45)
    assert settled == [366]  # the limiter is told what the call really used


def test_without_usage_the_tokens_are_estimated(provider, fake_llm):
    fake_llm.then(Reply(send_usage=False))
    completion = provider.summarize(PROMPT, streamed())
    assert completion.prompt_tokens == estimate_tokens(PROMPT)
    assert completion.completion_tokens == estimate_tokens(completion.text)


def test_a_finish_reason_without_done_is_a_whole_answer(provider, fake_llm):
    fake_llm.then(Reply(send_usage=False, send_done=False))
    completion = provider.summarize(PROMPT, streamed())
    assert completion.text == FakeLLM.answer(fake_llm.requests[0])


def test_a_stream_broken_off_mid_answer_is_a_transient_bad_response(provider, fake_llm):
    fake_llm.then(Reply(break_after=3))
    heard = Heard()
    with pytest.raises(LLMStreamBroken) as exc:
        provider.summarize(PROMPT, streamed(heard))
    assert isinstance(exc.value, LLMBadResponse)
    assert exc.value.code == "llm_bad_response" and exc.value.transient and not exc.value.booked_out
    assert len(heard.texts) == 3 and heard.texts[-1] != FakeLLM.answer(fake_llm.requests[0])


def test_a_garbage_chunk_is_a_broken_stream(provider, fake_llm):
    fake_llm.then(Reply(garbage_after=2))
    with pytest.raises(LLMStreamBroken) as exc:
        provider.summarize(PROMPT, streamed())
    assert exc.value.code == "llm_bad_response" and exc.value.transient
    assert "not JSON" in exc.value.detail


def test_a_read_timeout_between_chunks_is_llm_timeout(provider, fake_llm):
    fake_llm.then(Reply(stall_after=2))
    heard = Heard()
    started = time.monotonic()
    with pytest.raises(LLMTimeout) as exc:
        provider.summarize(PROMPT, streamed(heard))
    assert exc.value.code == "llm_timeout" and exc.value.transient
    assert len(heard.texts) == 2 and time.monotonic() - started < 3  # LLM_TIMEOUT_S=1 between chunks


def test_a_server_that_does_not_stream_still_answers(provider, fake_llm):
    fake_llm.then(Reply(stream=False))
    heard = Heard()
    completion = provider.summarize(PROMPT, streamed(heard))
    assert completion.text == FakeLLM.answer(fake_llm.requests[0]) and heard.texts == []


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(status=429, body=b'{"error": {"message": "slow down"}}', headers={"Retry-After": "0"}), LLMRateLimited),
        (Reply(status=503, body=b"busy"), LLMUnavailable),
        (Reply(status=400, body=b'{"error": {"message": "context length exceeded"}}'), LLMBadRequest),
    ],
)
def test_error_statuses_are_the_same_when_streaming(provider, fake_llm, reply, error):
    fake_llm.then(reply)
    with pytest.raises(error):
        provider.summarize(PROMPT, streamed())


def test_a_stream_keeps_its_in_flight_slot_until_its_last_chunk(provider, fake_llm, monkeypatch):
    monkeypatch.setattr(openai, "_in_flight", threading.BoundedSemaphore(1))
    fake_llm.stream_pace = 0.05
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(provider.summarize(PROMPT, streamed()))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(results) == 2
    pieces = len(FakeLLM.answer(fake_llm.requests[0]).split())
    assert fake_llm.arrivals[1] - fake_llm.arrivals[0] >= 0.05 * (pieces - 1)  # the second waited for the whole first


def test_broken_streams_are_retried_from_the_jobs_budget(provider, fake_llm):
    fake_llm.then(Reply(break_after=2))
    calls = JobCalls(provider, sleep=no_sleep)
    heard = Heard()
    assert calls.call(PROMPT, streamed(heard)).text == FakeLLM.answer(fake_llm.requests[0])
    assert len(fake_llm.requests) == 2 and calls.retries_used == 1
    assert heard.texts[-1] == FakeLLM.answer(fake_llm.requests[0])  # the retry started the text over


def test_a_stream_that_always_breaks_spends_the_budget_then_fails(provider, fake_llm, settings):
    settings.LLM_MAX_RETRIES = 1
    fake_llm.break_streams_after = 2
    with pytest.raises(RetriesSpent) as spent:
        JobCalls(provider, sleep=no_sleep).call(PROMPT, streamed())
    assert spent.value.error.code == "llm_bad_response" and len(fake_llm.requests) == 2


# -- the publisher -------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sent(monkeypatch):
    """What the publisher handed to realtime.events.send_live."""
    got = []

    def send_live(org_id, type, data, user_id=None):
        got.append(SimpleNamespace(org_id=org_id, type=type, data=data, user_id=user_id))
        return True

    monkeypatch.setattr(streaming, "send_live", send_live)
    return got


def a_job(**options):
    return SimpleNamespace(
        org_id=uuid.uuid4(),
        created_by_id=uuid.uuid4(),
        pk=uuid.uuid4(),
        document_id=uuid.uuid4(),
        payload={"options": options},
    )


@pytest.mark.parametrize(
    ("options", "shown"), [({}, "Approved. Costs"), ({"citation_markers": True}, "Approved [2]. Costs [3")]
)
def test_the_reader_sees_the_markers_only_when_the_summary_keeps_them(sent, options, shown):
    streaming._DeltaPublisher(a_job(**options), clock=Clock())("Approved [2]. Costs [3")
    assert sent[0].data["text"] == shown


def test_the_publisher_sends_at_most_ten_a_second_and_the_latest_text_wins(sent):
    job, clock = a_job(), Clock()
    publish = streaming._DeltaPublisher(job, clock=clock)
    for step, text in enumerate(["A", "A b", "A b c", "A b c d", "A b c d e", "A b c d e f"]):
        clock.now = 1000.0 + step * 0.04  # a piece every 40 ms
        publish(text)
    assert [event.data["text"] for event in sent] == ["A", "A b c d"]  # at 0 and 120 ms
    assert [event.data["index"] for event in sent] == [0, 1]
    first = sent[0]
    assert first.type == "summary.delta" and first.org_id == job.org_id and first.user_id == job.created_by_id
    assert first.data == {"job": str(job.pk), "document": str(job.document_id), "text": "A", "index": 0}


def test_the_publisher_pauses_after_an_outage_and_never_raises(monkeypatch, caplog):
    outcomes = iter([RuntimeError("redis is down"), False, True])

    def send_live(*args, **kwargs):
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(streaming, "send_live", send_live)
    clock = Clock()
    publish = streaming._DeltaPublisher(a_job(), clock=clock)
    publish("one")  # raises inside: logged, swallowed
    assert "could not send summary.delta" in caplog.text
    clock.now += streaming.OUTAGE_PAUSE_S - 1
    publish("two")  # paused: not even tried
    clock.now += 1
    publish("three")  # tried, the layer says no: paused again
    clock.now += 1
    publish("four")  # still paused
    clock.now += streaming.OUTAGE_PAUSE_S
    publish("five")
    assert next(outcomes, "spent") == "spent"  # three tries in all


def test_the_publisher_is_safe_from_many_threads(sent):
    publish = streaming.delta_publisher(a_job())
    started = time.monotonic()

    def speak():
        n = 0
        while time.monotonic() - started < 0.35:  # as fast as they can, for a while
            publish(f"text {n}")
            n += 1

    threads = [threading.Thread(target=speak) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    elapsed = time.monotonic() - started
    assert [event.data["index"] for event in sent] == list(range(len(sent)))
    assert 2 <= len(sent) <= elapsed / streaming.MIN_INTERVAL_S + 1
