"""Deterministic, English-like document text for the REST benchmarks (rest_list, growth).

Words follow a Zipf distribution over a vocabulary of real English words (the head)
and pronounceable made-up words (the long tail), cut into sentences and paragraphs,
so a ~2 kB document has the length, word count and number of distinct lexemes of a
real one (which is what tsvector size and ranking cost depend on). Documents are
assembled from a pool of pre-generated paragraphs plus one unique sentence each,
so that generating a million of them stays cheap.
"""

from __future__ import annotations

import hashlib
import itertools
import random

HEAD = (
    "report market customer product service quarter revenue growth team project plan "
    "data system process meeting budget review analysis strategy risk cost sales policy "
    "contract client account change issue decision result update research design support "
    "quality performance management development operation security network software release "
    "version feature request document summary section figure table value price order "
    "delivery supply partner vendor invoice payment income expense forecast target goal "
    "board director manager engineer employee staff office region country city state "
    "government law rule agreement meeting schedule deadline launch campaign brand "
    "marketing channel content website platform mobile application server database cloud "
    "storage backup incident outage recovery audit compliance standard regulation privacy "
    "training hiring culture benefit salary bonus travel equipment facility building "
    "energy water health safety environment climate emission carbon transport logistics "
    "shipment inventory warehouse factory production capacity demand trend survey feedback "
    "interview question answer problem solution option proposal approval signature "
    "history background context summary conclusion recommendation evidence source author "
    "reader editor article chapter paper study experiment sample measure metric score "
    "model method approach framework structure component module interface integration "
    "test deployment migration upgrade patch bug error failure warning alert monitor "
    "dashboard chart graph trend average median total share percent increase decrease "
    "early late quick slow large small major minor strong weak clear complex simple "
    "important critical urgent final initial annual monthly weekly daily global local "
    "public private internal external financial technical legal commercial strategic"
).split()

_SYLLABLES = "ka lo mi ne ru ta si po de va ri mo lu ne sa to bi ga fe zu ha ki no re".split()


def _tail_words(n: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class TextFactory:
    """`document(i)` -> (title, content); the same i always gives the same text."""

    COMMON_TERM = "report"  # the Zipf head: in nearly every document
    RARE_TERM = "kryptonyx"  # planted by the benchmark in a handful of documents

    def __init__(self, seed: int = 7, paragraphs: int = 4000, target_chars: int = 2000):
        rng = random.Random(seed)
        vocabulary = HEAD + _tail_words(6000, rng)
        weights = [1.0 / (rank + 1) ** 1.05 for rank in range(len(vocabulary))]
        cumulative = list(itertools.accumulate(weights))
        self.target_chars = target_chars
        self.paragraphs = [self._paragraph(rng, vocabulary, cumulative) for _ in range(paragraphs)]
        self.titles = [" ".join(rng.choices(vocabulary[:400], k=rng.randint(3, 7))).capitalize() for _ in range(2000)]

    @staticmethod
    def _paragraph(rng: random.Random, vocabulary: list[str], cumulative: list[float]) -> str:
        sentences = []
        for _ in range(rng.randint(3, 6)):
            words = rng.choices(vocabulary, cum_weights=cumulative, k=rng.randint(8, 22))
            glue = [w + ("," if rng.random() < 0.08 else "") for w in words]
            sentences.append(" ".join(glue).rstrip(",").capitalize() + ".")
        return " ".join(sentences)

    def document(self, i: int, extra: str = "") -> tuple[str, str]:
        rng = random.Random(i * 2654435761 % 2**32)
        title = f"{self.titles[i % len(self.titles)]} #{i}"
        parts = [f"Document {i} of the benchmark corpus{(' ' + extra) if extra else ''}."]
        size = len(parts[0])
        while size < self.target_chars:
            paragraph = self.paragraphs[rng.randrange(len(self.paragraphs))]
            parts.append(paragraph)
            size += len(paragraph) + 2
        return title, "\n\n".join(parts)[: self.target_chars + 400]


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
