"""The built-in offline summarizer: extractive, deterministic, any language.

It picks the most *central* sentences of the text: each sentence is scored by
the cosine similarity of its TF-IDF vector to the centroid of all the other
sentences (sentences as documents), with a small bonus for the opening
sentences; sentences scoring under a quarter of the best are never used as
filler. The best sentences are taken until the target length
(`max_words`) is reached and returned in their original order. Linear in the
text's length; no network, no model files, the same input always gives the
same output.

Sentences are split on ., !, ? and their CJK/Arabic/Devanagari forms (。！？؟।)
and on blank lines; "words" are Unicode \\w runs, and CJK text (no spaces) is
measured per character.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections import Counter

from .base import Completion, SummarizeOptions
from .tokens import estimate_tokens

_SENTENCE_END = re.compile(r"(?<=[.!?。！？؟।…])[\"'”’)\]]*\s+|(?<=[。！？])|\n\s*\n+")
_WORD = re.compile(r"\w+", re.UNICODE)
_WIDE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
# Very common words carry no topic; small multilingual list, the IDF does the rest.
_STOPWORDS = frozenset(
    (
        "a an and are as at be by for from has have in is it its of on or that the to was were will with "
        "der die das und ist ein eine zu den von mit le la les et est un une des du en el los las y es que"
    ).split()
)
MAX_SENTENCES = 20_000  # beyond this, later sentences are not candidates (the text is still summarized)


def split_sentences(text: str) -> list[str]:
    parts = (" ".join(part.split()) for part in _SENTENCE_END.split(text))
    return [part for part in parts if part and _WORD.search(part)]


def _terms(sentence: str) -> list[str]:
    words = [w.lower() for w in _WORD.findall(_WIDE.sub(" ", sentence))]
    terms = [w for w in words if w not in _STOPWORDS and not w.isdigit()]
    if _WIDE.search(sentence):  # no spaces between words: use character bigrams
        chars = [c for c in sentence if _WIDE.match(c)]
        terms += [a + b for a, b in itertools.pairwise(chars)]
    return terms


def _length(sentence: str) -> int:
    """Length in 'words'; a CJK character counts as a half word."""
    wide = len(_WIDE.findall(sentence))
    return len(_WORD.findall(_WIDE.sub(" ", sentence))) + math.ceil(wide / 2)


def summarize_text(text: str, max_words: int = 150) -> str:
    sentences = split_sentences(text)[:MAX_SENTENCES]
    if not sentences:
        return text.strip()[: max_words * 8]
    bags = [Counter(_terms(s)) for s in sentences]
    doc_freq: Counter[str] = Counter()
    for bag in bags:
        doc_freq.update(bag.keys())
    n = len(sentences)
    idf = {term: math.log((1 + n) / (1 + df)) + 1 for term, df in doc_freq.items()}
    centroid: Counter[str] = Counter()
    for bag in bags:
        for term, count in bag.items():
            centroid[term] += count * idf[term]
    centroid_sq = sum(v * v for v in centroid.values())

    scores = []
    for index, bag in enumerate(bags):
        # Similarity to the *rest* of the text (the centroid minus this sentence), so a
        # sentence is not rewarded for agreeing with itself.
        weights = {term: count * idf[term] for term, count in bag.items()}
        own_sq = sum(v * v for v in weights.values())
        dot_all = sum(w * centroid[t] for t, w in weights.items())
        rest_norm = math.sqrt(max(centroid_sq - 2 * dot_all + own_sq, 0.0))
        dot_rest = dot_all - own_sq
        similarity = dot_rest / (math.sqrt(own_sq) * rest_norm) if own_sq and rest_norm else 0.0
        position_bonus = 0.1 * (1 - index / n) if n > 1 else 0.0
        scores.append((similarity + position_bonus, -index))

    chosen: list[int] = []
    words = 0
    ranked = sorted(scores, reverse=True)
    floor = ranked[0][0] * 0.25  # sentences sharing almost nothing with the text are never filler
    for score, neg_index in ranked:
        index = -neg_index
        if chosen and score < floor:
            break
        length = _length(sentences[index])
        if chosen and words + length > max_words:
            continue
        chosen.append(index)
        words += length
        if words >= max_words:
            break
    return _join([sentences[i] for i in sorted(chosen)])


def _join(sentences: list[str]) -> str:
    """Spaces between sentences, except after CJK full stops (those scripts use none)."""
    out = ""
    for sentence in sentences:
        if out and not out.endswith(("。", "！", "？")):
            out += " "
        out += sentence
    return out


class LocalProvider:
    """Offline extractive summaries; ignores the prompt's instructions, uses the text."""

    name = "local"
    model_name = "precis-extractive-1"
    io_bound = False  # CPU-bound: runs in worker processes (`summaries` queue)

    def context_tokens(self) -> int:
        return 1_000_000

    def summarize(self, prompt: str, options: SummarizeOptions) -> Completion:
        from config.metrics import record_llm_call

        started = time.perf_counter()
        source = options.source_text or prompt
        text = summarize_text(source, max_words=options.max_words)
        completion = Completion(
            text=text,
            model=self.model_name,
            prompt_tokens=estimate_tokens(source),
            completion_tokens=estimate_tokens(text),
        )
        record_llm_call(
            provider=self.name,
            seconds=time.perf_counter() - started,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
        )
        return completion
