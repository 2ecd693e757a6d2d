"""Summarizing one document with a template: a single call, or map-reduce over chunks.

When the rendered prompt fits the provider's context (minus room for the
answer), one call. Otherwise the content is split on paragraph/sentence
boundaries into chunks that fit next to the template, each chunk is
summarized with the same template (map), and the partial summaries are
combined with the template again (reduce; repeated while they still do not
fit). `on_progress(percent)` is called after every call and returns False to
stop (cancellation), which raises `Cancelled`. No Django here: pure logic.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from templates_app.placeholders import RenderContext, render

from .chunking import split_text
from .providers.base import Completion, LLMBadRequest, Provider, SummarizeOptions
from .providers.tokens import estimate_tokens

MAX_CHUNKS = 400  # beyond this the rest of the document is left out (truncated=True)
MAX_REDUCE_ROUNDS = 4
OUTPUT_RESERVE_FACTOR = 2.0  # tokens kept free for the answer, per requested word


class Cancelled(Exception):
    """The job was cancelled (or taken away) while summarizing."""


@dataclass(frozen=True)
class SummaryResult:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    strategy: str  # "single" | "map_reduce"
    chunk_count: int
    truncated: bool
    prompt_sha256: str
    latency_ms: int
    calls: int


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Tally:
    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.calls = 0
        self.model = ""

    def add(self, completion: Completion) -> Completion:
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens
        self.calls += 1
        self.model = completion.model
        return completion


def summarize_document(
    *,
    provider: Provider,
    template_body: str,
    context: RenderContext,
    options: SummarizeOptions,
    on_progress: Callable[[int], bool] = lambda _p: True,
) -> SummaryResult:
    started = time.monotonic()
    tally = _Tally()
    budget = provider.context_tokens() - int(options.max_words * OUTPUT_RESERVE_FACTOR) - 16
    full_prompt = render(template_body, context)

    def call(content: str) -> str:
        prompt = render(template_body, replace(context, document_content=content))
        return tally.add(provider.summarize(prompt, replace(options, source_text=content))).text

    if estimate_tokens(full_prompt) <= budget:
        text = tally.add(provider.summarize(full_prompt, replace(options, source_text=context.document_content))).text
        strategy, chunk_count, truncated = "single", 1, False
    else:
        overhead = estimate_tokens(render(template_body, replace(context, document_content="")))
        chunk_budget = budget - overhead
        if chunk_budget < 64:
            raise LLMBadRequest("The template leaves no room for the document in the model's context window.")
        chunks = split_text(context.document_content, chunk_budget)
        truncated = len(chunks) > MAX_CHUNKS
        chunks = chunks[:MAX_CHUNKS]
        partials: list[str] = []
        for index, chunk in enumerate(chunks):
            partials.append(call(chunk))
            if not on_progress(int(90 * (index + 1) / len(chunks))):
                raise Cancelled()
        text = _reduce(partials, call, chunk_budget, on_progress)
        strategy, chunk_count = "map_reduce", len(chunks)
        on_progress(99)  # (a single call needs no progress event: success follows at once)
    return SummaryResult(
        text=text,
        model=tally.model,
        prompt_tokens=tally.prompt_tokens,
        completion_tokens=tally.completion_tokens,
        strategy=strategy,
        chunk_count=chunk_count,
        truncated=truncated,
        prompt_sha256=_sha256(full_prompt),
        latency_ms=int((time.monotonic() - started) * 1000),
        calls=tally.calls,
    )


def _reduce(partials: list[str], call: Callable[[str], str], chunk_budget: int, on_progress) -> str:
    for _round in range(MAX_REDUCE_ROUNDS):
        combined = "\n\n".join(partials)
        if estimate_tokens(combined) <= chunk_budget:
            text = call(combined)
            if not on_progress(95):
                raise Cancelled()
            return text
        groups = split_text(combined, chunk_budget)
        partials = []
        for group in groups:
            partials.append(call(group))
            if not on_progress(92):
                raise Cancelled()
    return call(split_text("\n\n".join(partials), chunk_budget)[0])
