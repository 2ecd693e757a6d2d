"""Paged text (PDF, OCR) back to prose: what a reader sees, not how the page was set.

- Running headers and footers go: a line near the top or bottom of a page whose
  shape (digits ignored, so "Page 3 of 9" matches "Page 4 of 9") recurs at that place
  on at least half of the pages (three pages or more), and lines that are only a page
  number there ("12", "- 12 -", "Page 12", "xii").
- Wrapped lines become one paragraph again: a line ends its paragraph when it is
  followed by a blank line, when it is clearly short of the page's usual line width
  and ends a sentence, or when it looks like a heading (short, no final punctuation,
  the next line starting anew). A paragraph that runs over a page break continues.
- A word hyphenated at a line end is joined ("inter-" + "national") when the next line
  goes on in lower case; real compounds broken after their hyphen keep it.

`rebuild(pages)` returns the text (paragraphs separated by a blank line) and where each
page starts in it (`page_offsets`, for citations).
"""

from __future__ import annotations

import math
import re
from collections import Counter

EDGE_LINES = 3  # how far from a page's top or bottom a running header/footer may stand
_PAGE_NUMBER = re.compile(
    r"^[\s\-–—]*(?:(?:page|seite|pagina|página|p\.)\s*)?(?:\d{1,4}|[ivxlcdm]{1,7})"
    r"(?:\s*(?:of|/|von|de|sur)\s*\d{1,4})?[\s\-–—]*$",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?:;…。！？\"”’)\]]$")
_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")
_HYPHENATED = re.compile(r"(\w)[-\u00ad]$")


def _shape(line: str) -> str:
    return _SPACES.sub(" ", _DIGITS.sub("#", line.strip().lower()))


def _lines(page: str) -> list[str]:
    return [line.rstrip() for line in page.replace("\r\n", "\n").replace("\r", "\n").split("\n")]


def _edges(lines: list[str]) -> set[int]:
    """Indices of the first and last few non-blank lines of a page."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return set(filled[:EDGE_LINES] + filled[-EDGE_LINES:])


def strip_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Drop running headers/footers and page numbers (see the module's doc)."""
    counts: Counter[str] = Counter()
    for lines in pages:
        counts.update({_shape(lines[i]) for i in _edges(lines)})
    threshold = max(3, math.ceil(len(pages) / 2))
    running = {shape for shape, n in counts.items() if n >= threshold and shape} if len(pages) >= 3 else set()
    cleaned = []
    for lines in pages:
        edges = _edges(lines)
        cleaned.append(
            [
                line
                for i, line in enumerate(lines)
                if not (i in edges and (_shape(line) in running or _PAGE_NUMBER.match(line)))
            ]
        )
    return cleaned


def _width(pages: list[list[str]]) -> int:
    """The usual length of a full line (the 80th percentile of the lines' lengths)."""
    lengths = sorted(len(line.strip()) for lines in pages for line in lines if line.strip())
    if not lengths:
        return 0
    return lengths[min(len(lengths) - 1, int(len(lengths) * 0.8))]


class _Paragraph:
    """The paragraph being rebuilt, as its pieces: linear in its length however many lines."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.length = 0

    def __bool__(self) -> bool:
        return bool(self.pieces)

    def tail(self) -> str:
        return self.pieces[-1] if self.pieces else ""

    def add(self, line: str) -> None:
        last = self.tail()
        if last and _HYPHENATED.search(last[-2:]) and line[:1].islower():
            if "-" in last.rsplit(" ", 1)[-1][:-1]:
                piece = line  # a compound broken at one of its hyphens: "year-on-" + "year"
            else:
                self.pieces[-1] = last[:-1]  # "inter-" + "national"
                self.length -= 1
                piece = line
        else:
            piece = f" {line}" if last else line
        self.pieces.append(piece)
        self.length += len(piece)

    def take(self) -> str:
        text = "".join(self.pieces)
        self.pieces, self.length = [], 0
        return text


def _next_nonblank(lines: list[str]) -> list[str]:
    """For each line, the next non-blank line after it ("" for none)."""
    following, upcoming = [""] * len(lines), ""
    for index in range(len(lines) - 1, -1, -1):
        following[index] = upcoming
        if lines[index].strip():
            upcoming = lines[index].strip()
    return following


def rebuild(pages: list[str]) -> tuple[str, list[int]]:
    """Paged text to paragraphs; also where each page begins in the result."""
    split = strip_running_lines([_lines(page) for page in pages])
    width = _width(split)
    paragraphs: list[str] = []
    done = 0  # characters of "\n\n".join(paragraphs), kept as paragraphs are added
    offsets: list[int] = []
    current = _Paragraph()

    def close() -> None:
        nonlocal done
        done += current.length + (2 if paragraphs else 0)
        paragraphs.append(current.take())

    for lines in split:
        # the page begins where its first line will land: inside a paragraph that runs
        # over from the page before, or at the start of the next one
        offsets.append(done + (2 if paragraphs else 0) + (current.length + 1 if current else 0))
        for raw, following in zip(lines, _next_nonblank(lines), strict=True):
            line = _SPACES.sub(" ", raw.strip())
            if not line:
                if current:
                    close()
                continue
            current.add(line)
            if _ends_paragraph(line, following, width):
                close()
        tail = current.tail()[-2:]
        if current and _SENTENCE_END.search(tail) and not _HYPHENATED.search(tail):
            close()  # a paragraph that does not end a sentence goes on on the next page
    if current:
        close()
    text = "\n\n".join(paragraphs)
    return text, [min(offset, len(text)) for offset in offsets]


def _ends_paragraph(line: str, following: str, width: int) -> bool:
    if not following:
        return False  # the page ends: decided by the next page
    short = width and len(line) < width * 0.75
    if short and _SENTENCE_END.search(line):
        return True
    heading = short and len(line) < max(60, width * 0.6) and not line.endswith((",", "-")) and following[:1].isupper()
    return bool(heading and not _SENTENCE_END.search(line) and not line[:1].islower())
