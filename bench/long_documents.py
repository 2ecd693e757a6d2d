"""Long documents: a 200-page document through the map-reduce path with a stub LLM.

Targets: total LLM input tokens ≤ 1.3× the document's own tokens; orchestration
overhead (everything but the LLM calls: rendering, chunking, token estimates,
progress callbacks) ≤ 5 % of the run. The stub answers after a fixed latency
(LATENCY_S, a fast hosted model) with a short summary, so the overhead is what
Precis adds around real calls.
"""

from __future__ import annotations

import random
import time

from bench.common import figure, median, parse_scale, save_result

LATENCY_S = 0.02
WORDS_PER_PAGE = 450


class StubLLM:
    name = "stub"

    def __init__(self, context_tokens: int):
        self._context = context_tokens
        self.calls = 0
        self.input_tokens = 0
        self.llm_seconds = 0.0

    def context_tokens(self) -> int:
        return self._context

    def summarize(self, prompt, options):
        from summaries.providers.base import Completion
        from summaries.providers.tokens import estimate_tokens

        started = time.perf_counter()
        tokens = estimate_tokens(prompt)
        self.calls += 1
        self.input_tokens += tokens
        time.sleep(LATENCY_S)
        text = " ".join(prompt.split()[-60:])  # a short "summary" of the part
        self.llm_seconds += time.perf_counter() - started
        return Completion(text=text, model="stub", prompt_tokens=tokens, completion_tokens=60)


def make_document(pages: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    vocabulary = [f"term{i}" for i in range(3000)] + "the a of to and in revenue growth plan team market".split()
    paragraphs = []
    for page in range(pages):
        for _paragraph in range(5):
            sentences = []
            for _s in range(6):
                words = rng.choices(vocabulary, k=15)
                sentences.append(" ".join(words).capitalize() + ".")
            paragraphs.append(" ".join(sentences))
        paragraphs.append(f"Page {page + 1}")
    return "\n\n".join(paragraphs)


def run(scale: str) -> dict:
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    os.environ.setdefault("DEBUG", "true")
    import django

    django.setup()
    from summaries.providers.base import SummarizeOptions
    from summaries.providers.tokens import estimate_tokens
    from summaries.summarizer import summarize_document
    from templates_app.placeholders import RenderContext

    pages = 200 if scale == "full" else 60
    rounds = 5 if scale == "full" else 3
    text = make_document(pages)
    doc_tokens = estimate_tokens(text)
    template = (
        "Summarize the document below for {{ organization.name }}. Lead with the conclusion.\n\n"
        "Title: {{ document.title }}\n\n{{ document.content }}"
    )
    ratios, overheads, totals, calls, chunks = [], [], [], [], []
    for _round in range(rounds):
        stub = StubLLM(context_tokens=8192)
        context = RenderContext(document_title="Annual report", document_content=text, organization_name="Acme")
        started = time.perf_counter()
        result = summarize_document(
            provider=stub,
            template_body=template,
            context=context,
            options=SummarizeOptions(max_words=150),
            on_progress=lambda _p: True,
        )
        total = time.perf_counter() - started
        assert result.strategy == "map_reduce"
        ratios.append(stub.input_tokens / doc_tokens)
        overheads.append((total - stub.llm_seconds) / total)
        totals.append(total)
        calls.append(stub.calls)
        chunks.append(result.chunk_count)
    ratio, overhead = median(ratios), median(overheads)
    result = {
        "title": "Long documents (map-reduce)",
        "method": (
            f"A {pages}-page synthetic document summarized through `summaries.summarizer.summarize_document` "
            f"(the code the worker runs) with the Executive-summary-like template and a stub LLM "
            f"(context 8,192 tokens) that answers after {LATENCY_S * 1000:.0f} ms with a 60-word text. LLM input "
            "tokens are the offline estimate of every prompt sent; overhead is the run time minus the time inside "
            f"LLM calls, over the run time. Median of {rounds} rounds."
        ),
        "data": f"{pages} pages × {WORDS_PER_PAGE} words ≈ {len(text):,} characters, {doc_tokens:,} estimated tokens.",
        "figures": [
            figure("LLM input tokens / document tokens", ratio, "≤ 1.3", ratio <= 1.3, "×"),
            figure("orchestration overhead", overhead * 100, "≤ 5 %", overhead <= 0.05, "%"),
        ],
        "details": {
            "document tokens": f"{doc_tokens:,}",
            "chunks (map calls)": str(median(chunks)),
            "LLM calls in all": str(median(calls)),
            "run time (median)": f"{median(totals):.2f} s",
        },
        "notes": "",
    }
    save_result("long_documents", scale, result)
    return result


if __name__ == "__main__":
    outcome = run(parse_scale())
    for fig in outcome["figures"]:
        print(f"{fig['name']}: {fig['value']} {fig['unit']} (target {fig['target']}, met={fig['met']})")
