"""Splitting long text into chunks that fit a token budget, on natural boundaries."""

from __future__ import annotations

import re

from .providers.local import split_sentences
from .providers.tokens import estimate_tokens

_PARAGRAPHS = re.compile(r"\n\s*\n")


def split_text(text: str, max_tokens: int) -> list[str]:
    """Paragraphs packed greedily; an oversized paragraph by sentences; an oversized
    sentence by characters. Every chunk's estimate is at most `max_tokens`."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be positive")
    pieces: list[tuple[str, int]] = []  # (text, its estimate): each piece is estimated once
    for paragraph in _PARAGRAPHS.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        tokens = estimate_tokens(paragraph)
        if tokens <= max_tokens:
            pieces.append((paragraph, tokens))
            continue
        for sentence in split_sentences(paragraph):
            tokens = estimate_tokens(sentence)
            if tokens <= max_tokens:
                pieces.append((sentence, tokens))
            else:
                pieces.extend((piece, estimate_tokens(piece)) for piece in _hard_split(sentence, max_tokens))
    return _pack(pieces, max_tokens)


def _hard_split(text: str, max_tokens: int) -> list[str]:
    """Cut a run with no usable boundary into pieces whose estimate fits."""
    out: list[str] = []
    size = max(1, max_tokens * 2)  # characters: ~0.5 budget for Latin text; halved below for CJK
    start = 0
    while start < len(text):
        piece = text[start : start + size]
        while len(piece) > 1 and estimate_tokens(piece) > max_tokens:
            piece = piece[: len(piece) // 2]
        out.append(piece)
        start += len(piece)
    return [p for p in out if p.strip()]


def _pack(pieces: list[tuple[str, int]], max_tokens: int) -> list[str]:
    chunks: list[str] = []
    current: list[str] = []
    current_tokens = 0
    for piece, tokens in pieces:
        if current and current_tokens + tokens + 1 > max_tokens:  # +1: the blank line joining pieces
            chunks.append("\n\n".join(current))
            current, current_tokens = [], 0
        current.append(piece)
        current_tokens += tokens
    if current:
        chunks.append("\n\n".join(current))
    return chunks
