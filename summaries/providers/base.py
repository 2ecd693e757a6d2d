"""The LLM provider interface and its error vocabulary.

    provider.summarize(prompt, options) -> Completion(text, model, prompt_tokens, completion_tokens)

Providers raise `LLMError` subclasses with a stable `code` (the job's error
code) and whether the failure is `transient` (worth retrying later) or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class SummarizeOptions:
    model: str | None = None
    max_words: int = 150
    temperature: float = 0.2
    # The plain text being summarized; extractive providers work on it, LLMs use the prompt.
    source_text: str = ""
    org_id: str | None = None  # for per-organization rate limiting
    extra: dict = field(default_factory=dict)


class Provider(Protocol):
    name: str
    #: True when calls wait on the network (an LLM server): such jobs run many at once on
    #: the `llm` queue and a long document's map steps run in parallel. False: CPU-bound.
    io_bound: bool

    def context_tokens(self) -> int:
        """How many tokens one call may hold, prompt and answer together."""

    def summarize(self, prompt: str, options: SummarizeOptions) -> Completion: ...


class LLMError(Exception):
    code = "llm_error"
    transient = False

    def __init__(self, detail: str, *, retry_after: float | None = None, booked_out: bool = False):
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
        # Raised before any call was made: Precis' own limiter has no turn soon enough.
        self.booked_out = booked_out


class LLMRateLimited(LLMError):
    code = "llm_rate_limited"
    transient = True


class LLMUnavailable(LLMError):
    code = "llm_unavailable"
    transient = True


class LLMTimeout(LLMError):
    code = "llm_timeout"
    transient = True


class LLMBadRequest(LLMError):
    code = "llm_bad_request"
    transient = False


class LLMBadResponse(LLMError):
    code = "llm_bad_response"
    transient = False
