"""Any OpenAI-compatible chat-completions server: OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp.

POST {LLM_BASE_URL}/chat/completions with `Authorization: Bearer LLM_API_KEY`.
Each call waits at most LLM_TIMEOUT_S. 429, 5xx, timeouts and connection
errors are retried (tenacity) up to LLM_MAX_RETRIES times with exponential
backoff, honouring `Retry-After` (seconds or an HTTP date) up to a cap; other
4xx are not retried. A body that is not the expected JSON is an error
(`llm_bad_response`), never a crash.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from config.metrics import record_llm_call

from .base import (
    Completion,
    LLMBadRequest,
    LLMBadResponse,
    LLMError,
    LLMRateLimited,
    LLMTimeout,
    LLMUnavailable,
    SummarizeOptions,
)
from .ratelimit import acquire_llm_slot
from .tokens import estimate_tokens

SYSTEM_PROMPT = (
    "You summarize documents faithfully. Use only facts from the document; keep names, dates and figures exact."
)
MAX_RETRY_AFTER_S = 60.0  # a longer Retry-After ends the call; the job is retried later


@dataclass(frozen=True)
class OpenAIConfig:
    base_url: str
    api_key: str
    model: str
    timeout_s: float
    max_retries: int
    context_tokens: int
    max_output_tokens: int


def _retry_after_seconds(response: requests.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _wait(state: RetryCallState) -> float:
    """Exponential backoff (0.5 s, 1 s, 2 s, ... up to 10 s) unless the server said how long."""
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, LLMError) and error.retry_after is not None:
        return min(error.retry_after, MAX_RETRY_AFTER_S)
    return min(10.0, 0.5 * 2 ** (state.attempt_number - 1))


def _retryable(error: BaseException) -> bool:
    if not isinstance(error, LLMError) or not error.transient:
        return False
    return error.retry_after is None or error.retry_after <= MAX_RETRY_AFTER_S


class OpenAICompatibleProvider:
    name = "openai"

    def __init__(self, config: OpenAIConfig, session: requests.Session | None = None):
        self.config = config
        self.session = session or requests.Session()

    def context_tokens(self) -> int:
        return self.config.context_tokens

    def summarize(self, prompt: str, options: SummarizeOptions) -> Completion:
        retrying = Retrying(
            stop=stop_after_attempt(self.config.max_retries + 1),
            wait=_wait,
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        return retrying(self._call_once, prompt, options)

    def _call_once(self, prompt: str, options: SummarizeOptions) -> Completion:
        acquire_llm_slot(provider=self.name, org_id=options.org_id)
        model = options.model or self.config.model
        body = {
            "model": model,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
            "temperature": options.temperature,
            "max_tokens": min(self.config.max_output_tokens, max(64, int(options.max_words * 2))),
        }
        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        url = self.config.base_url.rstrip("/") + "/chat/completions"
        started = time.perf_counter()
        try:
            try:
                response = self.session.post(url, json=body, headers=headers, timeout=(5, self.config.timeout_s))
            except requests.Timeout:
                raise LLMTimeout(f"The LLM did not answer within {self.config.timeout_s:g} s.") from None
            except requests.RequestException as exc:
                raise LLMUnavailable(f"Could not reach the LLM server ({exc.__class__.__name__}).") from None
            completion = self._parse(response, model, prompt)
        except LLMError as error:
            record_llm_call(provider=self.name, seconds=time.perf_counter() - started, error=error.code)
            raise
        record_llm_call(
            provider=self.name,
            seconds=time.perf_counter() - started,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
        )
        return completion

    def _parse(self, response: requests.Response, model: str, prompt: str) -> Completion:
        status = response.status_code
        if status == 429:
            raise LLMRateLimited(
                "The LLM server is rate limiting requests (429).", retry_after=_retry_after_seconds(response)
            )
        if status >= 500:
            raise LLMUnavailable(f"The LLM server failed ({status}).", retry_after=_retry_after_seconds(response))
        if status >= 400:
            raise LLMBadRequest(f"The LLM server refused the request ({status}): {_error_message(response)}")
        try:
            data = response.json()
            text = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMBadResponse("The LLM server's answer was not a chat completion.") from None
        if not isinstance(text, str) or not text.strip():
            raise LLMBadResponse("The LLM server answered with an empty completion.")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return Completion(
            text=text.strip(),
            model=str(data.get("model") or model),
            prompt_tokens=_int(usage.get("prompt_tokens"), estimate_tokens(prompt)),
            completion_tokens=_int(usage.get("completion_tokens"), estimate_tokens(text)),
        )


def _int(value, default: int) -> int:
    return value if isinstance(value, int) and value >= 0 else default


def _error_message(response: requests.Response) -> str:
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
        return str(message)[:300] if message else response.reason
    except (ValueError, AttributeError):
        return (response.text or response.reason or "")[:300]
