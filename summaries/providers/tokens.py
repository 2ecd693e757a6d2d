"""Offline token estimates (no tokenizer download): good enough to plan chunks.

Roughly one token per 4 characters of Latin-script text, one per CJK/kana/
hangul character, and at least one per word-ish run, which over-estimates a
little on purpose: a chunk that is estimated to fit does fit.
"""

import math
import re

_WIDE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_WORDS = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    wide = len(_WIDE.findall(text))
    narrow = len(text) - wide
    by_chars = wide + math.ceil(narrow / 4)
    by_words = len(_WORDS.findall(text))
    return max(by_chars, math.ceil(by_words * 0.75)) + 1
