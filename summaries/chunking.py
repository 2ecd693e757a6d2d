"""Splitting long text into chunks that fit a token budget, on natural boundaries.

`plan()` is what map-reduce uses: the document's paragraphs (numbered, for citations) are
grouped into sections under their headings, and packed into chunks: a section that does not
fit whole in the chunk being filled starts a new one if that chunk is at least half full,
else the chunk ends at a paragraph boundary inside the section; only a paragraph too big
for a chunk is cut, between its sentences (a sentence too big, between characters). Every
chunk knows its section titles, which the reduce step shows.
`split_text()` packs any text (the partial summaries of a second reduce round).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .citations import paragraphs
from .providers.tokens import estimate_tokens
from .sentences import split, split_sentences

_PARAGRAPHS = re.compile(r"\n\s*\n")
_TERMINAL = tuple(".!?;:,。！？")
HEADING_MAX_WORDS = 12


@dataclass(frozen=True)
class Piece:
    number: int  # the paragraph's number (1-based), as the prompt shows it
    start: int  # span in the document
    end: int
    tokens: int


@dataclass
class Chunk:
    titles: list[str]
    pieces: list[Piece]
    tokens: int = 0

    def text(self, document: str, *, numbered: bool) -> str:
        """The chunk as a prompt shows it: its section title, then its paragraphs (each with
        its number when citing; pieces of one paragraph share it)."""
        parts = [f"## {self.titles[0]}"] if self.titles and self.titles[0] else []
        previous = None
        for piece in self.pieces:
            body = document[piece.start : piece.end]
            if numbered and piece.number != previous:
                body = f"[{piece.number}] {body}"
            previous = piece.number
            parts.append(body)
        return "\n\n".join(parts)

    def plain(self, document: str) -> str:
        return "\n\n".join(document[piece.start : piece.end] for piece in self.pieces)

    @property
    def title(self) -> str:
        return " / ".join(dict.fromkeys(t for t in self.titles if t))


def is_heading(paragraph: str) -> bool:
    """A one-line paragraph that reads as a title: markdown `#`, or a few words without a stop."""
    if "\n" in paragraph.strip():
        return False
    line = paragraph.strip()
    if line.startswith("#"):
        return True
    words = line.split()
    titled = line[0].isupper() or line[0].isdigit()
    return 0 < len(words) <= HEADING_MAX_WORDS and not line.endswith(_TERMINAL) and titled


def plan(document: str, max_tokens: int, *, numbered: bool = False) -> list[Chunk]:
    """The document's chunks for map-reduce (see the module docstring)."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be positive")
    chunks: list[Chunk] = []
    current = Chunk(titles=[""], pieces=[])
    for title, pieces in _sections(document, max_tokens):
        size = sum(piece.tokens + 1 for piece in pieces) + (estimate_tokens(title) + 2 if title else 0)
        if current.pieces and current.tokens + size > max_tokens and current.tokens >= max_tokens // 2:
            chunks.append(current)  # the section would not fit whole: cut at its boundary, not inside it
            current = Chunk(titles=[title], pieces=[])
        elif not current.pieces:
            current.titles = [title]
        elif title:
            current.titles.append(title)
        for piece in pieces:
            if current.pieces and current.tokens + piece.tokens + 1 > max_tokens:
                chunks.append(current)
                current = Chunk(titles=[title], pieces=[])
            if not current.pieces:
                current.tokens = estimate_tokens(title) + 2 if title else 0
            current.pieces.append(piece)
            current.tokens += piece.tokens + 1
    if current.pieces:
        chunks.append(current)
    return chunks


def _sections(document: str, max_tokens: int) -> list[tuple[str, list[Piece]]]:
    """The document's sections in order: each heading's title and the pieces of the
    paragraphs under it (numbered 1, 2, … across the document; headings get no number)."""
    sections: list[tuple[str, list[Piece]]] = [("", [])]
    number = 0
    for start, end in paragraphs(document):
        body = document[start:end]
        if is_heading(body):
            sections.append((body.lstrip("#").strip(), []))
            continue
        number += 1
        title, pieces = sections[-1]
        pieces.extend(_pieces(document, number, start, end, max_tokens - estimate_tokens(title) - 8))
    return [(title, pieces) for title, pieces in sections if pieces]


def _pieces(document: str, number: int, start: int, end: int, max_tokens: int) -> list[Piece]:
    """The paragraph as one piece, or cut between sentences (or characters) to fit; every
    piece is a span of the document."""
    max_tokens = max(max_tokens, 16)
    marker = len(str(number)) // 2 + 2  # "[12] "
    tokens = estimate_tokens(document[start:end]) + marker
    if tokens <= max_tokens:
        return [Piece(number, start, end, tokens)]
    spans: list[tuple[int, int]] = []
    for unit in split(document[start:end]):
        unit_start, unit_end = start + unit.start, start + unit.end
        if estimate_tokens(document[unit_start:unit_end]) + marker <= max_tokens:
            spans.append((unit_start, unit_end))
            continue
        cursor = unit_start
        for piece in _hard_split(document[unit_start:unit_end], max_tokens - marker, keep_blank=True):
            spans.append((cursor, cursor + len(piece)))
            cursor += len(piece)
    out: list[Piece] = []
    for span_start, span_end in spans:
        if out and estimate_tokens(document[out[-1].start : span_end]) + marker <= max_tokens:
            span_start = out.pop().start
        out.append(Piece(number, span_start, span_end, estimate_tokens(document[span_start:span_end]) + marker))
    return out


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


def _hard_split(text: str, max_tokens: int, *, keep_blank: bool = False) -> list[str]:
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
    return out if keep_blank else [p for p in out if p.strip()]


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
