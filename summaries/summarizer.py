"""Summarizing one document with a template: a single call, or map-reduce over chunks.

When the rendered prompt fits the provider's context (minus room for the answer), one
call. Otherwise map-reduce (summaries.chunking.plan): the content is cut at section and
paragraph boundaries into chunks that fit next to the template; each chunk is summarized
with the same template (map) with a length in proportion to its share of the document
(PARTIAL_WORDS_FACTOR × `max_words` in all, at most what one reduce call holds, so
the reduce step has a choice), and the
partial summaries are combined with the template again (reduce), in document order under
their section titles; repeated while they still do not fit. With `parallel` > 1 the map
steps run that many at a time (an LLM waits on the network; the local summarizer keeps
1). `on_progress(percent)` is called after every call and returns False to stop
(cancellation), which raises `Cancelled`. `call(prompt, options)` makes one provider call
(default: `provider.summarize`; jobs pass summaries.calls for retries). Only the final
call (the single call, or the last reduce) streams (`options.on_delta`).

Citations (summaries.citations): an extractive provider's sentences are found in the
text; an LLM sees the paragraphs numbered (`[3] …`, the same numbers in every chunk) and
its markers are read back. No Django here: pure logic.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

from templates_app.placeholders import RenderContext, render

from . import citations, formats
from .chunking import Chunk, plan, split_text
from .providers.base import Completion, LLMBadRequest, Provider, SummarizeOptions
from .providers.tokens import estimate_tokens

MAX_CHUNKS = 400  # beyond this the rest of the document is left out (truncated=True)
MAX_REDUCE_ROUNDS = 4
PARTIAL_WORDS_FACTOR = 5  # the partials' length in all, per word of the summary asked for
MIN_PARTIAL_WORDS = 25


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
    citations: list[dict] = field(default_factory=list)


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
    page_offsets: list[int] | None = None,
) -> SummaryResult:
    started = time.monotonic()
    tally = _Tally()
    send = call or provider.summarize
    document = context.document_content
    layout = _layout(provider, template_body, context, options)
    cite, spans, full_prompt = layout.cite, layout.spans, layout.prompt
    options = replace(options, cite=cite)

    if layout.single:
        completion = tally.add(send(full_prompt, replace(options, source_text=document, stage="single")))
        strategy, chunk_count, truncated = "single", 1, False
    else:
        chunk_budget = layout.chunk_budget()
        chunks = plan(document, chunk_budget, numbered=cite)
        truncated = len(chunks) > MAX_CHUNKS
        chunks = chunks[:MAX_CHUNKS]
        steps = _MapReduce(template_body, context, options, document, send, tally, cite)
        partials = _map(chunks, steps.map_step(chunks, chunk_budget), on_progress, parallel)
        completion = _reduce(partials, steps, chunk_budget, on_progress)
        strategy, chunk_count = "map_reduce", len(chunks)
        on_progress(99)  # (a single call needs no progress event: success follows at once)
    if cite:
        text, cited = citations.from_markers(
            completion.text, spans, page_offsets, keep_markers=options.citation_markers
        )
    else:
        text = completion.text
        cited = citations.extractive(text, completion.sentences, document, page_offsets)
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
        citations=cited,
    )


@dataclass(frozen=True)
class _Layout:
    """How a document meets a template and a provider: the single call's prompt, and whether
    it fits the context window with room for the answer."""

    cite: bool
    spans: list[tuple[int, int]]
    prompt: str
    prompt_tokens: int
    answer_tokens: int
    budget: int
    overhead_tokens: int

    @property
    def single(self) -> bool:
        return self.prompt_tokens <= self.budget

    def chunk_budget(self) -> int:
        room = self.budget - self.overhead_tokens
        if room < 64:
            raise LLMBadRequest("The template leaves no room for the document in the model's context window.")
        return room


def _layout(provider: Provider, template_body: str, context: RenderContext, options: SummarizeOptions) -> _Layout:
    document = context.document_content
    cite = not getattr(provider, "extractive", False)
    spans = citations.paragraphs(document) if cite else []
    shown = citations.numbered(document, spans) if cite else document
    answer_tokens = formats.max_tokens(options.format, options.max_words, cite=cite)
    prompt = render(template_body, replace(context, document_content=shown))
    return _Layout(
        cite=cite,
        spans=spans,
        prompt=prompt,
        prompt_tokens=estimate_tokens(prompt),
        answer_tokens=answer_tokens,
        budget=provider.context_tokens() - answer_tokens - 16,
        overhead_tokens=estimate_tokens(render(template_body, replace(context, document_content=""))),
    )


@dataclass(frozen=True)
class Preview:
    """What summarizing would send, without calling anyone (the admin's template preview)."""

    prompt: str  # the single call's prompt (citation numbers included for an LLM)
    prompt_tokens: int
    answer_tokens: int  # the answer's limit (max_tokens) for this format and length
    context_tokens: int
    strategy: str  # "single" | "map_reduce"
    chunk_count: int
    calls: int  # at least: the map steps and one reduce for map-reduce
    total_tokens: int  # an estimate of prompt and answer tokens over all calls


def preview(*, provider: Provider, template_body: str, context: RenderContext, options: SummarizeOptions) -> Preview:
    layout = _layout(provider, template_body, context, options)
    strategy, chunk_count, total = "single", 1, layout.prompt_tokens + layout.answer_tokens
    if not layout.single:
        chunks = plan(context.document_content, layout.chunk_budget(), numbered=layout.cite)[:MAX_CHUNKS]
        # The map steps read every chunk beside the template and write the partials (about
        # PARTIAL_WORDS_FACTOR × the length asked for); one reduce reads the partials.
        partials = min(math.ceil(PARTIAL_WORDS_FACTOR * options.max_words * formats.TOKENS_PER_WORD), layout.budget)
        mapped = sum(chunk.tokens for chunk in chunks) + len(chunks) * layout.overhead_tokens + partials
        strategy, chunk_count = "map_reduce", len(chunks)
        total = mapped + layout.overhead_tokens + partials + layout.answer_tokens
    return Preview(
        prompt=layout.prompt,
        prompt_tokens=layout.prompt_tokens,
        answer_tokens=layout.answer_tokens,
        context_tokens=provider.context_tokens(),
        strategy=strategy,
        chunk_count=chunk_count,
        calls=chunk_count + 1 if strategy == "map_reduce" else 1,
        total_tokens=total,
    )


@dataclass
class _Partial:
    title: str
    text: str


class _MapReduce:
    """The calls of a map-reduce: each chunk's (map), then the partials' (reduce)."""

    def __init__(self, template_body, context, options, document, send, tally, cite):
        self.template_body = template_body
        self.context = context
        self.options = options
        self.document = document
        self.send = send
        self.tally = tally
        self.cite = cite

    def _call(self, content: str, source: str, **changes) -> Completion:
        prompt = render(self.template_body, replace(self.context, document_content=content))
        return self.tally.add(self.send(prompt, replace(self.options, source_text=source, **changes)))

    def map_step(self, chunks: list[Chunk], chunk_budget: int) -> Callable[[Chunk], _Partial]:
        """Each chunk's summary, as long as its share of the document: the partials take
        PARTIAL_WORDS_FACTOR × the summary's length in all (at most what one reduce holds)."""
        total_tokens = sum(chunk.tokens for chunk in chunks) or 1
        room_words = int(chunk_budget * 0.8 / formats.TOKENS_PER_WORD)
        words = min(PARTIAL_WORDS_FACTOR * self.options.max_words, max(room_words, self.options.max_words))

        def step(chunk: Chunk) -> _Partial:
            share = max(MIN_PARTIAL_WORDS, math.ceil(words * chunk.tokens / total_tokens))
            plain = chunk.plain(self.document)
            completion = self._call(
                chunk.text(self.document, numbered=self.cite),
                plain,
                source_scale=len(self.document) / max(1, len(plain)),
                max_words=share,
                format="prose",  # partials are material for the reduce step, whatever the format
                stage="map",
                on_delta=None,
            )
            return _Partial(chunk.title, completion.text)

        return step

    def reduce_step(self, partials: list[_Partial], *, final: bool) -> Completion:
        content = _combined(partials)
        source = "\n\n".join(partial.text for partial in partials)
        scale = len(self.document) / max(1, len(source))
        if final:
            return self._call(content, source, stage="reduce", source_scale=scale)
        return self._call(content, source, stage="reduce", source_scale=scale, format="prose", on_delta=None)


def _combined(partials: list[_Partial]) -> str:
    """The partials as the reduce prompt shows them: in document order, under their titles."""
    return "\n\n".join(f"## {p.title}\n\n{p.text}" if p.title else p.text for p in partials)


def _map(chunks: list[Chunk], summarize_part: Callable[[Chunk], _Partial], on_progress, parallel: int):
    """Summarize every chunk, `parallel` at a time; the partials in document order."""
    partials: list[_Partial | None] = [None] * len(chunks)
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


def _reduce(partials: list[_Partial], steps: _MapReduce, chunk_budget: int, on_progress) -> Completion:
    """Combine the partials in one call; while they do not fit, combine groups of them
    first (each group keeps its first title), at most MAX_REDUCE_ROUNDS rounds."""
    for _round in range(MAX_REDUCE_ROUNDS):
        if estimate_tokens(_combined(partials)) <= chunk_budget:
            completion = steps.reduce_step(partials, final=True)
            if not on_progress(95):
                raise Cancelled()
            return completion
        grouped: list[_Partial] = []
        for group in _groups(partials, chunk_budget):
            grouped.append(_Partial(group[0].title, steps.reduce_step(group, final=False).text))
            if not on_progress(92):
                raise Cancelled()
        partials = grouped
    text = split_text(_combined(partials), chunk_budget)[0]
    return steps.reduce_step([_Partial("", text)], final=True)


def _groups(partials: list[_Partial], chunk_budget: int) -> list[list[_Partial]]:
    """Consecutive partials packed greedily into groups that fit one reduce call."""
    groups: list[list[_Partial]] = []
    tokens = 0
    for partial in partials:
        size = estimate_tokens(_combined([partial])) + 1
        if groups and tokens + size <= chunk_budget:
            groups[-1].append(partial)
            tokens += size
        else:
            groups.append([partial])
            tokens = size
    return groups
