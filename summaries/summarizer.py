"""Summarizing one document with a template: a single call, or map-reduce over chunks.

When the rendered prompt fits the provider's context (minus room for the
answer), one call. Otherwise the content is split on paragraph/sentence
boundaries into chunks that fit next to the template, each chunk is
summarized with the same template (map), and the partial summaries are
combined with the template again (reduce; repeated while they still do not
fit). With `parallel` > 1 the map steps run that many at a time (an LLM
waits on the network; the local summarizer keeps 1), and the partials stay in
document order. `on_progress(percent)` is called after every call and returns
False to stop (cancellation), which raises `Cancelled`. `call(prompt, options)`
makes one provider call (default: `provider.summarize`; jobs pass
summaries.calls for retries). No Django here: pure logic.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
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
        self._lock = threading.Lock()  # map steps may finish in several threads

    def add(self, completion: Completion) -> Completion:
        with self._lock:
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
    call: Callable[[str, SummarizeOptions], Completion] | None = None,
    parallel: int = 1,
) -> SummaryResult:
    started = time.monotonic()
    tally = _Tally()
    send = call or provider.summarize
    budget = provider.context_tokens() - int(options.max_words * OUTPUT_RESERVE_FACTOR) - 16
    full_prompt = render(template_body, context)

    def summarize_part(content: str) -> str:
        prompt = render(template_body, replace(context, document_content=content))
        return tally.add(send(prompt, replace(options, source_text=content))).text

    if estimate_tokens(full_prompt) <= budget:
        text = tally.add(send(full_prompt, replace(options, source_text=context.document_content))).text
        strategy, chunk_count, truncated = "single", 1, False
    else:
        overhead = estimate_tokens(render(template_body, replace(context, document_content="")))
        chunk_budget = budget - overhead
        if chunk_budget < 64:
            raise LLMBadRequest("The template leaves no room for the document in the model's context window.")
        chunks = split_text(context.document_content, chunk_budget)
        truncated = len(chunks) > MAX_CHUNKS
        chunks = chunks[:MAX_CHUNKS]
        partials = _map(chunks, summarize_part, on_progress, parallel)
        text = _reduce(partials, summarize_part, chunk_budget, on_progress)
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


def _map(chunks: list[str], summarize_part: Callable[[str], str], on_progress, parallel: int) -> list[str]:
    """Summarize every chunk, `parallel` at a time; the partials in document order."""
    partials: list[str | None] = [None] * len(chunks)
    if parallel <= 1:
        for index, chunk in enumerate(chunks):
            partials[index] = summarize_part(chunk)
            if not on_progress(int(90 * (index + 1) / len(chunks))):
                raise Cancelled()
        return partials  # type: ignore[return-value]
    done = 0
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="map") as pool:
        pending = {}
        queued = iter(enumerate(chunks))
        try:
            for index, chunk in queued:  # keep `parallel` steps in flight, in order
                pending[pool.submit(summarize_part, chunk)] = index
                if len(pending) < parallel:
                    continue
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    partials[pending.pop(future)] = future.result()
                    done += 1
                    if not on_progress(int(90 * done / len(chunks))):
                        raise Cancelled()
            for future in list(pending):
                partials[pending.pop(future)] = future.result()
                done += 1
                if not on_progress(int(90 * done / len(chunks))):
                    raise Cancelled()
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return partials  # type: ignore[return-value]


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
