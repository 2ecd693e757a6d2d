"""Where each sentence of a summary comes from, as character spans of the source.

A summary's `citations` is a list, one entry per summary sentence that has support:

    {"start": 0, "end": 57,                      # the sentence in the summary's content
     "sources": [{"start": 120, "end": 177, "page": 2}]}   # passages of the document's text

- **Extractive summaries** (the local provider) are made of the document's own sentences:
  each is found in the text, so its span is exact (`extractive()`).
- **LLM summaries** cite paragraphs: the prompt numbers the document's paragraphs (`[3] …`,
  `numbered()`), the model is asked to put the numbers after each sentence, and
  `from_markers()` reads them back, maps them to the paragraphs' spans and drops numbers
  that point nowhere. The markers leave the text unless the request keeps them.

`page` is the page the passage starts on when the ingestion kept page offsets (PDF, OCR),
else null. Offsets are into the text as summarized: once the document changes, the summary
is `stale` and so are its citations.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from .sentences import split

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_MARKERS = re.compile(r"\s*((?:\[\s*\d{1,5}(?:\s*[,;–-]\s*\d{1,5})*\s*\])+)")
_NUMBERS = re.compile(r"\d{1,5}(?:\s*[–-]\s*\d{1,5})?")
_SPACE = re.compile(r"\s+")
_AFTER_STOP = re.compile(r"([.!?。！？])\s*((?:\[\s*\d[\d\s,;–-]*\])+)")
_OPEN_MARKER = re.compile(r"\s*\[[\d\s,;–-]*$")
_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?])")
MAX_RANGE = 20  # "[3-7]" cites each paragraph; a wider range is taken as its two ends


def paragraphs(text: str) -> list[tuple[int, int]]:
    """The spans of the text's paragraphs (blank-line separated), whitespace trimmed."""
    spans = []
    start = 0
    for match in [*_PARAGRAPH_BREAK.finditer(text), None]:
        end = match.start() if match else len(text)
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + lead + len(stripped)))
        if match:
            start = match.end()
    return spans


def numbered(text: str, spans: Sequence[tuple[int, int]], first: int = 1) -> str:
    """The paragraphs as the prompt shows them: `[n] paragraph`, blank-line separated."""
    return "\n\n".join(f"[{first + i}] {text[start:end]}" for i, (start, end) in enumerate(spans))


def page_of(offset: int, page_offsets: Sequence[int] | None) -> int | None:
    """The 1-based page `offset` lies on (`page_offsets[i]` is where page i+1 starts)."""
    if not page_offsets:
        return None
    return max(1, bisect.bisect_right(page_offsets, offset))


class _Collapsed:
    """The text with every whitespace run as one space, and the way back to the text's
    offsets: extractive sentences are stored with their whitespace collapsed."""

    def __init__(self, text: str):
        self.original_starts: list[int] = []  # per piece: where it starts in the text
        self.collapsed_starts: list[int] = []  # ... and in the collapsed text
        parts = []
        length = 0
        for match in re.finditer(r"\S+", text):
            if parts:
                parts.append(" ")
                length += 1
            self.original_starts.append(match.start())
            self.collapsed_starts.append(length)
            parts.append(match.group())
            length += len(match.group())
        self.text = "".join(parts)

    def original(self, offset: int, *, end: bool = False) -> int:
        index = bisect.bisect_right(self.collapsed_starts, offset - (1 if end else 0)) - 1
        return self.original_starts[index] + offset - self.collapsed_starts[index]


def extractive(content: str, sentences: Sequence[str], document: str, page_offsets=None) -> list[dict]:
    """Exact citations for a summary made of the document's sentences (collapsed
    whitespace), found in order; a sentence not in the text (a clipped one) is left out."""
    collapsed = _Collapsed(document)
    citations = []
    in_content = 0
    for sentence in sentences:
        at = content.find(sentence, in_content)
        found = collapsed.text.find(sentence)
        if at < 0 or found < 0:
            continue
        in_content = at + len(sentence)
        start, end = collapsed.original(found), collapsed.original(found + len(sentence), end=True)
        source = {"start": start, "end": end, "page": page_of(start, page_offsets)}
        citations.append({"start": at, "end": in_content, "sources": [source]})
    return citations


def from_markers(
    answer: str, spans: Sequence[tuple[int, int]], page_offsets=None, *, keep_markers: bool = False
) -> tuple[str, list[dict]]:
    """The answer's text (without the [n] markers unless kept) and its citations: each
    sentence cites the paragraphs its markers name; numbers that name no paragraph are
    dropped (and leave the text in any case)."""
    text_parts: list[str] = []
    cited: list[tuple[int, int, list[int]]] = []  # sentence span in the output, paragraph indexes
    length = 0
    for unit in _units_with_markers(answer):
        body, numbers = unit
        known = [n for n in numbers if 1 <= n <= len(spans)]
        if keep_markers and known:
            markers = " " + "".join(f"[{n}]" for n in dict.fromkeys(known))
            stop = len(body.rstrip(".!?。！？"))
            body = body[:stop] + markers + body[stop:]
        if text_parts and not body.startswith("\n"):
            text_parts.append(" ")
            length += 1
        start = length + (len(body) - len(body.lstrip()))
        text_parts.append(body)
        length += len(body)
        if known:
            cited.append((start, length, list(dict.fromkeys(known))))
    text = "".join(text_parts)
    citations = []
    for start, end, numbers in cited:
        sources = []
        for n in numbers:
            p_start, p_end = spans[n - 1]
            sources.append({"start": p_start, "end": p_end, "page": page_of(p_start, page_offsets)})
        citations.append({"start": start, "end": end, "sources": sources})
    return text, citations


def without_markers(text: str) -> str:
    """The text with its [n] markers removed, and a marker still being written at its end
    ("… in 2024 [1"): what a streamed answer's reader is shown."""
    text = _BEFORE_PUNCTUATION.sub(r"\1", _MARKERS.sub("", text))
    return _OPEN_MARKER.sub("", text)


def _units_with_markers(answer: str) -> list[tuple[str, list[int]]]:
    """The answer's sentences (line breaks kept, for lists), each with the paragraph numbers
    cited in it, markers removed. A marker after the full stop belongs to the sentence
    before it ("… in 2024. [3]")."""
    answer = _AFTER_STOP.sub(r" \2\1", answer.strip())
    out: list[tuple[str, list[int]]] = []
    for line_index, line in enumerate(answer.split("\n")):
        for unit_index, unit in enumerate(split(line)):
            sentence = line[unit.start : unit.end]
            numbers = [n for match in _MARKERS.finditer(sentence) for n in _numbers(match.group(1))]
            clean = _BEFORE_PUNCTUATION.sub(r"\1", _SPACE.sub(" ", _MARKERS.sub("", sentence))).strip()
            if not clean:
                continue
            if unit_index == 0 and line_index > 0:
                clean = "\n" + clean
            out.append((clean, numbers))
    return out


def _numbers(group: str) -> list[int]:
    numbers = []
    for match in _NUMBERS.finditer(group):
        ends = [int(n) for n in re.split(r"\s*[–-]\s*", match.group())]
        if len(ends) == 2 and 0 <= ends[1] - ends[0] <= MAX_RANGE:
            numbers += range(ends[0], ends[1] + 1)
        else:
            numbers += ends
    return numbers
