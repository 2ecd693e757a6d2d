"""What a template asks for, in a form every provider honours: the format and the length.

- `prose`: one paragraph (the default).
- `bullets`: a list, one point per line starting with "- ".
- `short`: a TL;DR of one or two sentences (at most SHORT_MAX_WORDS words).

LLM providers get `instructions()` in their system prompt and `max_tokens()` as the
answer's limit; the extractive provider renders its sentences with `render()`. A
template may also name what the extractive provider should favour (`FAVOURS`): it
cannot read the template's prose, so "Decisions and action items" says so in words
it can use (sentences with decisions, actions, owners, dates).
"""

from __future__ import annotations

import math

FORMAT_CHOICES = [("prose", "Prose"), ("bullets", "Bullet points"), ("short", "Short (one or two sentences)")]
FORMATS = tuple(value for value, _label in FORMAT_CHOICES)
FAVOURS = ("decisions", "actions", "dates", "owners", "numbers")
DEFAULT_FORMAT = "prose"
DEFAULT_MAX_WORDS = 150
SHORT_MAX_WORDS = 45  # a TL;DR: one or two sentences
SHORT_MAX_SENTENCES = 2
# Tokens an answer of N words may take: ~1.35 tokens per English word, more for other
# scripts and for the list markers and citations; a little room so a model never stops mid-sentence.
TOKENS_PER_WORD = 1.6
ANSWER_OVERHEAD_TOKENS = 24
CITATION_TOKENS_PER_SENTENCE = 4

_WORDING = {
    "prose": "Write flowing prose: one paragraph, no headings, no lists.",
    "bullets": 'Write a bulleted list: one point per line, each line starting with "- ", most important first.',
    "short": "Write one or two sentences only (a TL;DR).",
}


def word_limit(format: str, max_words: int) -> int:
    """The length the answer may have: `short` is capped, whatever was asked."""
    return min(max_words, SHORT_MAX_WORDS) if format == "short" else max_words


def instructions(format: str, max_words: int, *, cite: bool = False, stage: str = "single") -> str:
    """The format and length, in words an LLM follows; with `cite`, how to cite; for the
    steps of a long document's map-reduce, what the part is."""
    parts = []
    if stage == "map":
        parts.append("The text below is one part of a longer document: summarize this part only.")
    elif stage == "reduce":
        parts.append(
            "The text below is the summaries of a document's consecutive parts, in order, under their "
            "section titles: combine them into one summary of the whole document."
        )
    parts += [_WORDING.get(format, _WORDING["prose"]), f"Use at most {word_limit(format, max_words)} words."]
    if cite and stage == "reduce":
        parts.append("Keep the paragraph citations in square brackets, e.g. [3], of the facts you use.")
    elif cite:
        parts.append(
            "The document's paragraphs are numbered like [1]. After each sentence, cite the paragraphs "
            "that support it with their numbers in square brackets, e.g. [2] or [4][7]. Cite only numbers "
            "that appear in the document."
        )
    return " ".join(parts)


def max_tokens(format: str, max_words: int, *, cite: bool = False) -> int:
    """The answer's token limit for this length (the provider caps it at its own maximum)."""
    words = word_limit(format, max_words)
    tokens = words * TOKENS_PER_WORD + ANSWER_OVERHEAD_TOKENS
    if cite:
        tokens += CITATION_TOKENS_PER_SENTENCE * math.ceil(words / 12)  # ~one sentence per 12 words
    return math.ceil(tokens)


def render(sentences: list[str], format: str) -> str:
    """The extractive summary's sentences, laid out as the format asks."""
    if format == "bullets":
        return "\n".join(f"- {sentence}" for sentence in sentences)
    return join_sentences(sentences)


def join_sentences(sentences: list[str]) -> str:
    """Spaces between sentences, except after CJK full stops (those scripts use none)."""
    out = ""
    for sentence in sentences:
        if out and not out.endswith(("。", "！", "？")):
            out += " "
        out += sentence
    return out
