"""Sentences of real text: where they start and end, and whether they are prose.

`split(text)` cuts the text into units with their character spans in the text, in one
left-to-right pass (linear in the text's length, any language):

- A unit ends at ., !, ?, … and their CJK/Arabic/Devanagari forms (。！？؟।), with any
  closing quotes or brackets, when what follows starts a new sentence. It does not end
  - before a lower-case word (`"Why?" she asked.`, `e.g. this`), unless the stop stands
    apart (` . `, as in tokenized text);
  - after a known abbreviation (`Dr.`, `U.S.`, `Jan.`, `Fig.`, `No.`) or an initial (`J. K.`);
  - inside a number (`3.5`, `1.000`), which has no space after its dot anyway.
- A unit always ends at a blank line, and at a line break after a short line (a heading, a
  caption, a list item) or before a list marker: hard-wrapped prose keeps its lines together.

`is_prose(unit)` tells a sentence a reader would quote from what is not one: bylines and
time stamps, headings, lone captions, list debris, LaTeX and equation residue
(`( [ eq : torquebalance ] )`, `@xmath3`), tables of numbers. The summarizer only
picks prose; chunking uses every unit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# A stop, any closing quotes/brackets after it, then the gap to the next unit.
_STOP = re.compile(r"(?:[.!?…]+|[。！？؟।]+)[\"'”’»)\]]*(?=\s|$|[\"“‘«(\[])|[。！？]+[」』”’）]*")
_GAP = re.compile(r"\s*")
_NEWLINES = re.compile(r"\n[ \t\r\f\v]*")
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")
_LIST_MARKER = re.compile(r"(?:[-*•▪◦‣–—]|\d{1,3}[.)]|[a-zA-Z][.)]|\(\w{1,3}\))\s")
_WORD = re.compile(r"\w+", re.UNICODE)
_WIDE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
SHORT_LINE_CHARS = 40  # a line break after a shorter line ends the unit (heading, caption, list)

# Abbreviations that end in a dot without ending the sentence (lower-cased, without the dot).
_ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof st jr sr sen rep gov gen lt col capt sgt cpl maj adm rev hon pres supt det insp
    vs etc e.g i.e cf al approx ca est inc ltd co corp bros plc llc dept univ assn
    jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thurs fri sat sun
    ed eds trans mt ft ave blvd rd hwy sq km cm mm kg lb lbs oz min max
    u.s u.k u.n e.u a.m p.m u.s.a d.c ph.d b.a m.a m.d
    z.b bzw ggf usw vgl nr hr fr frau dipl ing mme mlle sr sra srta
    """.split()
)
# ... and those that only do so before a number ("No. 5", "Fig. 3", "pp. 12").
_NUMBERED = frozenset("no nos nr fig figs eq eqs sec secs ch chap vol vols pp p para ref refs tab art".split())
_BYLINE = re.compile(
    r"^(?:by|von|par|por|di)\s+[\w.'’ -]{0,60}$|(?:published|updated|last updated|posted)\s*:?|"
    r"^\s*(?:read more|click here|scroll down|follow @|share this|advertisement|image:|photo:|video:|source:)",
    re.IGNORECASE,
)
_LATEX = re.compile(r"@x(?:math|cite)\d*|\$|\^\{|_\{")
_RESIDUE = re.compile(r"\\[a-zA-Z]+\{?|\[\s*(?:eq|fig|sec|tab|app)\s*:|\(\s*\)|\[\s*\]")
_TERMINAL = ".!?…。！？؟।\"'”’»)]"
_NUMERIC_WORD = re.compile(r"(?<!\w)\d")
_SYMBOLS = re.compile(r"[^\w\s.,;:!?'\"’“”\-–—()%]|_")
_TIMESTAMP = re.compile(r"\b\d{1,2}:\d{2}\b")


@dataclass(frozen=True, slots=True)
class Unit:
    start: int  # span in the text
    end: int
    text: str  # the unit with its whitespace collapsed


def split(text: str) -> list[Unit]:
    """The text's units, in order, with their spans (see the module docstring)."""
    units: list[Unit] = []
    for block_start, block_end in _blocks(text):
        _split_block(text, block_start, block_end, units)
    return units


def split_sentences(text: str) -> list[str]:
    return [unit.text for unit in split(text)]


def _blocks(text: str):
    """Spans of the text between hard breaks: blank lines, and line breaks after a short
    line or before a list item."""
    start = 0
    for match in _NEWLINES.finditer(text):
        line_start = text.rfind("\n", 0, match.start()) + 1
        previous = text[max(line_start, start) : match.start()].strip()
        following = text[match.end() : match.end() + 8]
        blank = _BLANK_LINE.match(text, match.start()) is not None or not following.strip()
        if blank or len(previous) < SHORT_LINE_CHARS or _LIST_MARKER.match(following):
            if start < match.start():
                yield start, match.start()
            start = match.end()
    if start < len(text):
        yield start, len(text)


def _split_block(text: str, start: int, end: int, units: list[Unit]) -> None:
    unit_start = start
    for match in _STOP.finditer(text, start, end):
        stop_end = match.end()
        if not _ends_sentence(text, match.start(), stop_end, end):
            continue
        _add(text, unit_start, stop_end, units)
        unit_start = _GAP.match(text, stop_end, end).end()
    _add(text, unit_start, end, units)


def _ends_sentence(text: str, stop_start: int, stop_end: int, block_end: int) -> bool:
    mark = text[stop_start]
    if mark in "。！？":
        return True
    gap = _GAP.match(text, stop_end, block_end).end()
    if gap >= block_end:
        return True
    following = text[gap]
    if stop_start > 0 and text[stop_start - 1].isspace():  # " . ": tokenized text, always a stop
        return True
    if following.islower() or following in ",;:)":
        return False
    if mark == ".":
        word_start = stop_start
        while word_start > 0 and (text[word_start - 1].isalnum() or text[word_start - 1] == "."):
            word_start -= 1
        word = text[word_start:stop_start].lower()
        if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            return False
        if word in _NUMBERED and (following.isdigit() or following in "([#"):
            return False
        if word.isdigit() and following.isdigit():  # "1. 000"? keep numbers whole
            return False
    return True


def _add(text: str, start: int, end: int, units: list[Unit]) -> None:
    while end > start and text[end - 1].isspace():
        end -= 1
    if end <= start:
        return
    collapsed = " ".join(text[start:end].split())
    if _WORD.search(collapsed):
        units.append(Unit(start, end, collapsed))


def word_count(text: str) -> int:
    """Length in 'words': \\w runs, a CJK character counting as half a word."""
    wide = 0 if text.isascii() else len(_WIDE.findall(text))
    if not wide:
        return len(_WORD.findall(text))
    return len(_WORD.findall(_WIDE.sub(" ", text))) + math.ceil(wide / 2)


def is_prose(sentence: str) -> bool:
    """Whether a unit reads as a sentence of prose (see the module docstring)."""
    if sentence.startswith(("#", "|")) or not sentence.endswith(tuple(_TERMINAL)):
        return False  # a heading, a table row, a caption or a list item without a stop
    wide = 0 if sentence.isascii() else len(_WIDE.findall(sentence))
    words = _WORD.findall(sentence)
    if wide:
        return wide >= 6
    if len(words) < 4:
        return False
    if _BYLINE.search(sentence) and (len(words) < 12 or _TIMESTAMP.search(sentence)):
        return False
    if _RESIDUE.search(sentence) or len(_LATEX.findall(sentence)) * 4 > len(words):
        return False
    letters = len(words) - len(_NUMERIC_WORD.findall(sentence)) - sum(map(str.isupper, words))
    if letters < 0.6 * len(words):  # numbers, codes, shouting: a table row or a header
        return False
    return len(_SYMBOLS.findall(sentence)) <= 0.1 * len(sentence)
