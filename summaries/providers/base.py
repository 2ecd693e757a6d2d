"""The LLM provider interface and its error vocabulary.

    provider.summarize(prompt, options) -> Completion(text, model, prompt_tokens, completion_tokens)

Providers raise `LLMError` subclasses with a stable `code` (the job's error
code) and whether the failure is `transient` (worth retrying later) or not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    # Extractive providers: the source's sentences the text is made of, in order (citations).
    sentences: tuple[str, ...] = ()


@dataclass(frozen=True)
class SummarizeOptions:
    model: str | None = None
    max_words: int = 150
    temperature: float = 0.2
    # The plain text being summarized; extractive providers work on it, LLMs use the prompt.
    source_text: str = ""
    org_id: str | None = None  # for per-organization rate limiting
    extra: dict = field(default_factory=dict)
    # The template's intent (summaries.formats): "prose", "bullets" or "short", and for the
    # extractive provider what to favour ("decisions", "actions", "dates", "owners", "numbers").
    format: str = "prose"
    favour: tuple[str, ...] = ()
    # LLM providers: ask the model to cite the numbered paragraphs of the prompt ([3]).
    cite: bool = False
    citation_markers: bool = False  # keep the [n] markers in the stored text
    # Streaming (LLM providers that support it): called with the text so far as it arrives.
    stream: bool = False
    on_delta: Callable[[str], None] | None = None
    # "single", "map" (one chunk of a long document) or "reduce" (combining the chunks' partial
    # summaries, given in document order under their section titles).
    stage: str = "single"
    # How many times longer the whole document is than this call's text (map and reduce
    # steps): the extractive summarizer weighs position as for the whole document.
    source_scale: float = 1.0


class Provider(Protocol):
    name: str
    #: True when the answer is made of the source's own sentences (exact citations, no
    #: numbered paragraphs in the prompt).
    extractive: bool
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


class LLMStreamBroken(LLMBadResponse):
    """A streamed answer broke off: the connection closed before its end, or a chunk was not
    the expected JSON. The same code as any bad answer, but worth another try (unlike a whole
    answer that is wrong, the next stream may well arrive complete); the half answer is dropped."""

    transient = True
