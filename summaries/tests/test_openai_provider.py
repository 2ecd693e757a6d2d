"""The OpenAI-compatible provider against a loopback server speaking the real protocol."""

import socket
import time

import pytest

from summaries.providers import get_provider
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
    settings.LLM_MAX_RETRIES = 2
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


def test_429_honours_retry_after_then_succeeds(provider, fake_llm):
    fake_llm.then(Reply(status=429, body=b'{"error": {"message": "slow down"}}', headers={"Retry-After": "1"}))
    started = time.monotonic()
    assert provider.summarize("hello", OPTIONS).text.startswith("Summary:")
    assert time.monotonic() - started >= 0.9  # waited as told
    assert len(fake_llm.requests) == 2


def test_429_retry_after_http_date(provider, fake_llm):
    from email.utils import formatdate

    fake_llm.then(Reply(status=429, body=b"{}", headers={"Retry-After": formatdate(time.time() + 1, usegmt=True)}))
    assert provider.summarize("hello", OPTIONS).text
    assert len(fake_llm.requests) == 2


def test_429_with_too_long_retry_after_gives_up_as_transient(provider, fake_llm):
    fake_llm.then(Reply(status=429, body=b"{}", headers={"Retry-After": "3600"}))
    with pytest.raises(LLMRateLimited) as exc:
        provider.summarize("hello", OPTIONS)
    assert exc.value.transient and exc.value.retry_after == pytest.approx(3600)
    assert len(fake_llm.requests) == 1


def test_500_then_200(provider, fake_llm):
    fake_llm.then(Reply(status=500, body=b'{"error": "boom"}'), Reply(status=503, body=b"<html>down</html>"))
    assert provider.summarize("hello", OPTIONS).text
    assert len(fake_llm.requests) == 3


def test_500_until_retries_run_out(provider, fake_llm):
    fake_llm.then(*[Reply(status=502, body=b"bad gateway")] * 3)
    with pytest.raises(LLMUnavailable) as exc:
        provider.summarize("hello", OPTIONS)
    assert exc.value.code == "llm_unavailable" and exc.value.transient
    assert len(fake_llm.requests) == 3


def test_timeout(provider, fake_llm):
    fake_llm.then(*[Reply(hang=True)] * 3)
    with pytest.raises(LLMTimeout) as exc:
        provider.summarize("hello", OPTIONS)
    assert exc.value.code == "llm_timeout"
    assert len(fake_llm.requests) == 3


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
    settings.LLM_MAX_RETRIES = 1
    with pytest.raises(LLMUnavailable):
        get_provider("openai").summarize("hello", OPTIONS)


def test_missing_usage_is_estimated(provider, fake_llm):
    fake_llm.then(Reply(body=b'{"choices": [{"message": {"content": "short answer"}}]}'))
    completion = provider.summarize("a prompt of some length", OPTIONS)
    assert completion.prompt_tokens > 0 and completion.completion_tokens > 0 and completion.model == "fake-model"
