"""Offline token estimates (no tokenizer download): good enough to plan chunks.

Roughly one token per 4 characters of Latin-script text, one per CJK/kana/
hangul character, and at least one per word or punctuation mark, which
over-estimates a little on purpose: a chunk that is estimated to fit does fit.
Runs on every paragraph of long documents, so it sticks to C-speed string
methods (no regex scan) for the common all-ASCII case.
"""

import math
import re

_WIDE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_PUNCTUATION = ".,;:!?()\"'"


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    wide = 0 if text.isascii() else len(_WIDE.findall(text))
    by_chars = wide + math.ceil((len(text) - wide) / 4)
    words = len(text.split()) + sum(text.count(mark) for mark in _PUNCTUATION)
    return max(by_chars, math.ceil(words * 0.75)) + 1
