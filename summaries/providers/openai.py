"""Any OpenAI-compatible chat-completions server: OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp.

POST {LLM_BASE_URL}/chat/completions with `Authorization: Bearer LLM_API_KEY`.
`summarize()` makes exactly one call: it books its turn with the shared limiter
(ratelimit.py) and waits for it, sends within LLM_TIMEOUT_S, tells the limiter
what the server's headers said, and maps every failure to an LLMError with a
stable code. Retrying is the caller's business (summaries.calls: one budget per
job). A body that is not the expected JSON is an error (`llm_bad_response`),
never a crash. At most LLM_CONCURRENCY calls of a process are on the wire at once.

With `options.stream` and an `options.on_delta` to tell (a long document's map steps
have none) the answer is asked for as server-sent events (sse.py) and `on_delta`
hears the text so far as it arrives, while the call keeps its wire slot; the
Completion is the same as without streaming. A stream that breaks off is
`LLMStreamBroken` (transient: retried from the job's budget).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from config.metrics import record_llm_call

from .. import formats
from . import ratelimit, sse
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
from .tokens import estimate_tokens

SYSTEM_PROMPT = (
    "You summarize documents faithfully. Use only facts from the document; keep names, dates and figures exact."
)

_in_flight: threading.BoundedSemaphore | None = None
_in_flight_lock = threading.Lock()
_sessions = threading.local()


def _wire_slots() -> threading.BoundedSemaphore:
    global _in_flight
    with _in_flight_lock:
        if _in_flight is None:
            _in_flight = threading.BoundedSemaphore(max(1, settings.LLM_CONCURRENCY))
        return _in_flight


def _session() -> requests.Session:
    """One keep-alive session per thread (a Session is not safe to share between threads)."""
    session = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_maxsize=4))
        session.mount("https://", HTTPAdapter(pool_maxsize=4))
    return session


@dataclass(frozen=True)
class OpenAIConfig:
    base_url: str
    api_key: str
    model: str
    timeout_s: float
    context_tokens: int
    max_output_tokens: int


class OpenAICompatibleProvider:
    name = "openai"
    extractive = False
    io_bound = True  # its jobs wait on the network: the `llm` queue, many at once

    def __init__(self, config: OpenAIConfig, session: requests.Session | None = None):
        self.config = config
        self.session = session

    def context_tokens(self) -> int:
        return self.config.context_tokens

    def model_for(self, options: SummarizeOptions) -> str:
        return options.model or self.config.model

    def summarize(self, prompt: str, options: SummarizeOptions) -> Completion:
        model = self.model_for(options)
        max_tokens = min(
            self.config.max_output_tokens, formats.max_tokens(options.format, options.max_words, cite=options.cite)
        )
        wanted = formats.instructions(options.format, options.max_words, cite=options.cite, stage=options.stage)
        system = f"{SYSTEM_PROMPT} {wanted}"
        body = {
            "model": model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
            "temperature": options.temperature,
            "max_tokens": max_tokens,
        }
        stream = options.stream and options.on_delta is not None  # nobody to tell (map steps): one piece
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        booked = estimate_tokens(system) + estimate_tokens(prompt) + max_tokens
        try:
            turn = ratelimit.reserve(
                provider=self.name,
                model=model,
                org_id=options.org_id,
                tokens=booked,
                max_wait_s=settings.LLM_RATE_LIMIT_MAX_WAIT_S,
            )
        except ratelimit.RateLimitWait as wait:
            raise LLMRateLimited(
                f"Precis' LLM rate limit is booked for the next {wait.wait_s:.0f} s; the job will be retried.",
                retry_after=wait.wait_s,
                booked_out=True,
            ) from None
        if turn.wait_s:
            time.sleep(turn.wait_s)
        response = None
        started = time.perf_counter()
        try:
            with _wire_slots():  # a streamed answer is on the wire until its last chunk
                response = self._post(body, stream=stream)
                completion = self._receive(response, model, prompt, options, stream=stream)
        except LLMError as error:
            self._settle(turn, response, None)
            record_llm_call(provider=self.name, seconds=time.perf_counter() - started, error=error.code)
            raise
        self._settle(turn, response, completion.prompt_tokens + completion.completion_tokens)
        record_llm_call(
            provider=self.name,
            seconds=time.perf_counter() - started,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
        )
        return completion

    def _post(self, body: dict, *, stream: bool) -> requests.Response:
        """Send the request; with `stream`, return once the headers arrived (the body follows)."""
        headers = {"Content-Type": "application/json"}
        if stream:
            headers["Accept"] = "text/event-stream"
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        url = self.config.base_url.rstrip("/") + "/chat/completions"
        try:
            return (self.session or _session()).post(
                url, json=body, headers=headers, timeout=(5, self.config.timeout_s), stream=stream
            )
        except requests.Timeout:
            raise LLMTimeout(f"The LLM did not answer within {self.config.timeout_s:g} s.") from None
        except requests.RequestException as exc:
            raise LLMUnavailable(f"Could not reach the LLM server ({exc.__class__.__name__}).") from None

    def _receive(
        self, response: requests.Response, model: str, prompt: str, options: SummarizeOptions, *, stream: bool
    ) -> Completion:
        try:
            if stream and response.ok and _is_event_stream(response):
                return self._parse_stream(response, model, prompt, options)
            return self._parse(response, model, prompt)  # an error status, or a server that does not stream
        finally:
            if stream:
                response.close()  # read to its end, or given up: the connection goes

    @staticmethod
    def _settle(turn: ratelimit.Reservation, response: requests.Response | None, used: int | None) -> None:
        if response is None:
            return
        ratelimit.settle(turn, status=response.status_code, headers=response.headers, used_tokens=used)

    def _parse(self, response: requests.Response, model: str, prompt: str) -> Completion:
        _check_status(response)
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

    def _parse_stream(
        self, response: requests.Response, model: str, prompt: str, options: SummarizeOptions
    ) -> Completion:
        answer = sse.read_answer(response, options.on_delta, timeout_s=self.config.timeout_s)
        text = answer.text
        if not text.strip():
            raise LLMBadResponse("The LLM server answered with an empty completion.")
        return Completion(
            text=text.strip(),
            model=answer.model or model,
            prompt_tokens=_int(answer.usage.get("prompt_tokens"), estimate_tokens(prompt)),
            completion_tokens=_int(answer.usage.get("completion_tokens"), estimate_tokens(text)),
        )


def _is_event_stream(response: requests.Response) -> bool:
    return response.headers.get("Content-Type", "").split(";")[0].strip().lower() == "text/event-stream"


def _check_status(response: requests.Response) -> None:
    """An error status as its LLMError (the same whether the answer was to be streamed or not)."""
    status = response.status_code
    if status == 429:
        raise LLMRateLimited(
            "The LLM server is rate limiting requests (429).",
            retry_after=ratelimit.retry_after_seconds(response.headers),
        )
    if status >= 500:
        raise LLMUnavailable(
            f"The LLM server failed ({status}).", retry_after=ratelimit.retry_after_seconds(response.headers)
        )
    if status >= 400:
        raise LLMBadRequest(f"The LLM server refused the request ({status}): {_error_message(response)}")


def _int(value, default: int) -> int:
    return value if isinstance(value, int) and value >= 0 else default


def _error_message(response: requests.Response) -> str:
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
        return str(message)[:300] if message else response.reason
    except (ValueError, AttributeError):
        return (response.text or response.reason or "")[:300]
