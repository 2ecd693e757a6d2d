"""Chunking and the single / map-reduce strategies (LLM: the loopback server)."""

import re

import pytest

from summaries.chunking import split_text
from summaries.providers import get_provider
from summaries.providers.base import LLMBadRequest, SummarizeOptions
from summaries.providers.tokens import estimate_tokens
from summaries.summarizer import Cancelled, summarize_document
from templates_app.placeholders import RenderContext

TEMPLATE = "Summarize for {{ organization.name }}:\n\n{{ document.content }}"


def paragraphs(n: int, words: int = 60) -> str:
    return "\n\n".join(" ".join(f"p{i}w{j}" for j in range(words)) + "." for i in range(n))


class TestChunking:
    def test_chunks_fit_and_keep_everything(self):
        text = paragraphs(30)
        chunks = split_text(text, 200)
        assert len(chunks) > 1
        assert all(estimate_tokens(c) <= 200 for c in chunks)
        assert " ".join(chunks).split() == text.split()

    def test_paragraph_boundaries_preferred(self):
        chunks = split_text(paragraphs(4, 20), 60)
        assert all(c.rstrip().endswith(".") for c in chunks)

    def test_giant_sentence_and_cjk_are_cut(self):
        for text in ("x" * 10_000, "漢" * 3000):
            chunks = split_text(text, 100)
            assert all(estimate_tokens(c) <= 100 for c in chunks)
            assert "".join(chunks) == text


@pytest.fixture
def provider(fake_llm, settings):
    settings.LLM_CONTEXT_TOKENS = 400
    settings.LLM_MAX_RETRIES = 0
    return get_provider("openai")


def context(text: str) -> RenderContext:
    return RenderContext(document_title="T", document_content=text, organization_name="Acme")


def test_single_call_when_it_fits(provider, fake_llm):
    result = summarize_document(
        provider=provider, template_body=TEMPLATE, context=context("short text"), options=SummarizeOptions(max_words=50)
    )
    assert (result.strategy, result.chunk_count, result.calls, result.truncated) == ("single", 1, 1, False)
    # the paragraphs are numbered for citations
    assert fake_llm.requests[0]["messages"][-1]["content"] == "Summarize for Acme:\n\n[1] short text"
    assert len(result.prompt_sha256) == 64


def test_map_reduce_with_progress(provider, fake_llm):
    text = paragraphs(20)
    progress = []
    result = summarize_document(
        provider=provider,
        template_body=TEMPLATE,
        context=context(text),
        options=SummarizeOptions(max_words=50),
        on_progress=lambda p: progress.append(p) or True,
    )
    assert result.strategy == "map_reduce" and result.chunk_count > 1
    assert result.calls == result.chunk_count + 1  # map calls plus one reduce
    assert progress == sorted(progress) and progress[-1] == 99
    prompts = [r["messages"][-1]["content"] for r in fake_llm.requests]
    assert all(p.startswith("Summarize for Acme:") for p in prompts)
    assert all(estimate_tokens(p) <= 400 for p in prompts)
    # every word of the document went to exactly one map call
    mapped = " ".join(p.split("\n\n", 1)[1] for p in prompts[:-1])
    assert [w for w in mapped.split() if not re.fullmatch(r"\[\d+\]", w)] == text.split()
    assert re.findall(r"\[(\d+)\]", mapped) == [str(n) for n in range(1, 21)]  # every paragraph, numbered once
    # total LLM input stays close to the document's own size
    assert sum(estimate_tokens(p) for p in prompts) <= 1.5 * estimate_tokens(text) + 400


def test_cancellation_between_chunks(provider, fake_llm):
    calls = []

    def on_progress(percent):
        calls.append(percent)
        return len(calls) < 2

    with pytest.raises(Cancelled):
        summarize_document(
            provider=provider,
            template_body=TEMPLATE,
            context=context(paragraphs(20)),
            options=SummarizeOptions(max_words=50),
            on_progress=on_progress,
        )
    assert len(fake_llm.requests) == 2  # stopped right after the second chunk


def test_template_too_big_for_context(provider):
    with pytest.raises(LLMBadRequest):
        summarize_document(
            provider=provider,
            template_body="x " * 2000 + "{{ document.content }}",
            context=context(paragraphs(20)),
            options=SummarizeOptions(max_words=50),
        )


SECTIONED = "\n\n".join(
    [
        "Introduction",
        *[f"Intro paragraph {i} explains why harbours matter to the region and its trade." for i in range(6)],
        "Methods",
        *[f"Method paragraph {i} says how the traffic at the quay was counted each day." for i in range(10)],
        "Results",
        "The one result: traffic doubled in a year.",
    ]
)


class TestSections:
    def test_chunks_end_at_section_boundaries_and_know_their_titles(self):
        from summaries.chunking import plan

        chunks = plan(SECTIONED, 200)
        # a section starts a chunk once the chunk is half full; a short one joins the chunk before
        assert [c.title for c in chunks] == ["Introduction", "Methods", "Methods / Results"]
        # a section that fits whole joins the chunk being filled: no half-empty chunks
        assert [c.title for c in plan(SECTIONED, 280)] == ["Introduction", "Methods / Results"]
        for chunk in chunks:
            text = chunk.plain(SECTIONED)
            assert not ("Intro paragraph" in text and "Method paragraph" in text)  # the section boundary is a cut
            assert all(SECTIONED[p.start : p.end].endswith(".") for p in chunk.pieces)  # whole paragraphs

    def test_map_budgets_follow_each_chunks_share_and_reduce_sees_titled_partials_in_order(self, provider, fake_llm):
        result = summarize_document(
            provider=provider,
            template_body="{{ document.content }}",
            context=context(SECTIONED),
            options=SummarizeOptions(max_words=40),
        )
        assert result.strategy == "map_reduce"
        *maps, reduce = fake_llm.requests
        sizes = [estimate_tokens(r["messages"][-1]["content"]) for r in maps]
        budgets = [r["max_tokens"] for r in maps]
        big, small = sizes.index(max(sizes)), sizes.index(min(sizes))
        assert budgets[big] > budgets[small]  # a bigger share of the document, a longer partial
        prompt = reduce["messages"][-1]["content"]
        titles = [line for line in prompt.split("\n") if line.startswith("## ")]
        assert titles[0] == "## Introduction" and len(titles) == len(maps)
        order = [next(i for i, name in enumerate(["Introduction", "Methods", "Results"]) if name in t) for t in titles]
        assert order == sorted(order)  # the partials in document order
