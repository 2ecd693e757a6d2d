"""The built-in offline summarizer: extractive, deterministic, any language.

The text is cut into units by summaries.sentences (which also tells prose from bylines,
headings, captions and LaTeX residue); only prose is picked, unless the text has none.
Each candidate is scored by
- its *centrality*: the cosine similarity of its TF-IDF vector (terms: words cut to PREFIX
  characters, a stemmer for any language) to the centroid of the other candidates,
  relative to the best; a unit under MIN_CENTRALITY is never picked;
- plus its *position*: `weight / (1 + rank / POSITION_SCALE)` among the candidates, where
  the weight shrinks with the text's length (POSITION_WEIGHT × (POSITION_HORIZON /
  (POSITION_HORIZON + n))²): news leads with its point, a paper spreads it over its
  introduction, results and conclusion;
- plus FAVOUR_WEIGHT per kind of what the template favours (summaries.formats.FAVOURS),
  whose position weight is then damped (FAVOUR_POSITION_DAMPING): it said what matters;
- halved for run-on units past LONG_UNIT_WORDS words.
Units are then taken greedily by score plus *coverage*: the recurring terms (in two units
or more) a unit would add to those already taken, per word^COVERAGE_BETA (Lin & Bilmes'
budgeted coverage), so repeating what is said gains nothing; a unit that nearly repeats
one already taken (word-bigram containment ≥ NEAR_DUPLICATE) or does not fit `max_words`
is skipped (never more than `max_words`). The summary keeps the text's order, laid out as
the format asks (`short`: at most two sentences). In a map or reduce step, `scale` (how
much longer the whole document is) sets the position weight as for the whole document.
Linear in the text's length; no network, no model files, the same input always gives
the same output. "Words" are Unicode \\w runs; CJK text (no spaces) counts half a word
per character.
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
import time
from collections import Counter
from dataclasses import dataclass

from .. import formats
from ..sentences import Unit, is_prose, split, split_sentences, word_count
from .base import Completion, SummarizeOptions
from .tokens import estimate_tokens

__all__ = ["LocalProvider", "select", "split_sentences", "summarize_text"]

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
POSITION_WEIGHT = 30.0
POSITION_SCALE = 2.0
POSITION_HORIZON = 20
MIN_CENTRALITY = 0.25
PREFIX = 7  # terms are words cut to 7 characters: a stemmer for any language
COVERAGE_WEIGHT = 2.0
COVERAGE_BETA = 0.7  # a unit's coverage gain is divided by its length ** this
FAVOUR_WEIGHT = 1.0
FAVOUR_POSITION_DAMPING = 0.05
LONG_UNIT_WORDS = 55
NEAR_DUPLICATE = 0.5

# What a template may ask the summarizer to favour: cue words in a few languages.
_CUES = {
    "decisions": re.compile(
        r"\b(?:decided|decision|agreed|approved|resolved|concluded|chose|adopted|rejected|"
        r"beschlossen|entschieden|vereinbart|décidé|décision|approuvé|decidió|acordó|aprobó)\b",
        re.IGNORECASE,
    ),
    "actions": re.compile(
        r"\b(?:action|todo|to-do|follow[- ]up|next steps?|assigned|owner|responsible|deadline|due|"
        r"will (?:send|prepare|draft|review|call|contact|update|schedule|deliver|check)|"
        r"aufgabe|zuständig|bis zum|action|responsable|tarea)\b",
        re.IGNORECASE,
    ),
    "dates": re.compile(
        r"\b(?:\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}(?:[./]\d{2,4})?|(?:19|20)\d{2}|"
        r"jan(?:uary)?|feb(?:ruary)?|march|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|"
        r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|monday|tuesday|wednesday|thursday|friday|"
        r"tomorrow|next week|next month|end of (?:the )?(?:week|month|quarter|year)|q[1-4])\b",
        re.IGNORECASE,
    ),
    "owners": re.compile(r"(?:@\w+|\b[A-Z][a-z]+ (?:will|to|is responsible|owns|takes)\b|\bowner:|\bassigned to\b)"),
    "numbers": re.compile(r"\d"),
}


@dataclass(slots=True)
class _Candidate:
    unit: Unit
    words: int
    _bigrams: frozenset | None = None

    @property
    def bigrams(self) -> frozenset:
        """Its word bigrams (worked out for the few units the selection looks at)."""
        if self._bigrams is None:
            self._bigrams = _bigrams(self.unit.text)
        return self._bigrams


def summarize_text(text: str, max_words: int = 150, *, format: str = "prose", favour=(), scale: float = 1.0) -> str:
    """The extractive summary of `text`, at most `max_words` words, laid out as `format`."""
    chosen = select(text, max_words, format=format, favour=favour, scale=scale)
    if not chosen:
        return _clip(" ".join(text.split()), formats.word_limit(format, max_words))
    return formats.render([unit.text for unit in chosen], format)


def select(text: str, max_words: int, *, format: str = "prose", favour=(), scale: float = 1.0) -> list[Unit]:
    """The units of the summary, in text order (see the module docstring); none when the
    text has no unit short enough (the caller clips). `scale`: how many times longer the
    whole document is (a map or reduce step's text), for the position weight."""
    limit = formats.word_limit(format, max_words)
    units = split(text)[:MAX_SENTENCES]
    prose = [unit for unit in units if is_prose(unit.text)]
    pool = prose or units
    if not pool:
        return []
    candidates = [_Candidate(unit, word_count(unit.text)) for unit in pool]
    scores, bags, doc_freq = _scores(pool, favour, scale, [candidate.words for candidate in candidates])
    most = formats.SHORT_MAX_SENTENCES if format == "short" else len(pool)
    # Coverage: a unit gains for the text's recurring terms it would add (Lin & Bilmes' budgeted
    # coverage, greedy): repeating what is already said gains nothing.
    weights = {term: df for term, df in doc_freq.items() if df >= 2}

    def coverage(index: int, covered: set) -> float:
        gain = sum(weights.get(term, 0) for term in bags[index] if term not in covered)
        return gain / max(1, candidates[index].words) ** COVERAGE_BETA

    covered: set[str] = set()
    first = [coverage(i, covered) for i in range(len(pool))]
    norm = max(first) or 1.0
    heap = [(-(scores[i] + COVERAGE_WEIGHT * first[i] / norm), i) for i in range(len(pool)) if scores[i] > 0]
    heapq.heapify(heap)
    chosen: list[int] = []
    words = 0
    while heap and words < limit and len(chosen) < most:
        _stale, index = heapq.heappop(heap)
        candidate = candidates[index]
        if words + candidate.words > limit or _repeats(candidate, (candidates[i] for i in chosen)):
            continue
        total = scores[index] + COVERAGE_WEIGHT * coverage(index, covered) / norm
        if heap and total < -heap[0][0] - 1e-12:  # gains only shrink: look again later
            heapq.heappush(heap, (-total, index))
            continue
        chosen.append(index)
        covered.update(bags[index])
        words += candidate.words
    if not chosen:
        return []
    return [pool[i] for i in sorted(chosen)]


def _scores(pool: list[Unit], favour, scale: float, lengths: list[int]) -> tuple[list[float], list[set], Counter]:
    bags = [Counter(_terms(unit.text)) for unit in pool]
    doc_freq: Counter[str] = Counter()
    for bag in bags:
        doc_freq.update(bag.keys())
    n = len(pool)
    idf = {term: math.log((1 + n) / (1 + df)) + 1 for term, df in doc_freq.items()}
    centroid: Counter[str] = Counter()
    for bag in bags:
        for term, count in bag.items():
            centroid[term] += count * idf[term]
    centroid_sq = sum(v * v for v in centroid.values())
    similarities = []
    for bag in bags:
        # Similarity to the *rest* of the text (the centroid minus this unit), so a unit
        # is not rewarded for agreeing with itself.
        weights = {term: count * idf[term] for term, count in bag.items()}
        own_sq = sum(v * v for v in weights.values())
        dot_all = sum(w * centroid[t] for t, w in weights.items())
        rest_norm = math.sqrt(max(centroid_sq - 2 * dot_all + own_sq, 0.0))
        dot_rest = dot_all - own_sq
        similarities.append(dot_rest / (math.sqrt(own_sq) * rest_norm) if own_sq and rest_norm else 0.0)
    best = max(similarities) or 1.0
    cues = [_CUES[kind] for kind in favour if kind in _CUES]
    # The longer the text, the more centrality counts: news leads with its point; a paper's
    # is spread over its introduction, results and conclusion.
    weight = POSITION_WEIGHT * (POSITION_HORIZON / (POSITION_HORIZON + n * max(1.0, scale))) ** 2
    if cues:  # the template says what matters: where it stands matters less
        weight *= FAVOUR_POSITION_DAMPING
    scores = []
    for rank, (unit, similarity) in enumerate(zip(pool, similarities, strict=True)):
        centrality = similarity / best
        score = centrality + weight / (1 + rank / POSITION_SCALE) if centrality >= MIN_CENTRALITY else 0.0
        score += FAVOUR_WEIGHT * sum(1 for cue in cues if cue.search(unit.text))
        if lengths[rank] > LONG_UNIT_WORDS:
            score *= 0.5
        scores.append(score)
    return scores, [set(bag) for bag in bags], doc_freq


def _terms(sentence: str) -> list[str]:
    wide = not sentence.isascii() and _WIDE.search(sentence)
    words = _WORD.findall((_WIDE.sub(" ", sentence) if wide else sentence).lower())
    terms = [w[:PREFIX] for w in words if w not in _STOPWORDS and not w.isdigit()]
    if wide:  # no spaces between words: use character bigrams
        chars = [c for c in sentence if _WIDE.match(c)]
        terms += [a + b for a, b in itertools.pairwise(chars)]
    return terms


def _bigrams(sentence: str) -> frozenset:
    words = [w.lower() for w in _WORD.findall(sentence)] or list(sentence)
    if _WIDE.search(sentence):
        words = [c for c in sentence if not c.isspace()]
    return frozenset(itertools.pairwise(words))


def _repeats(candidate: _Candidate, chosen) -> bool:
    """Whether `candidate` nearly repeats a unit already taken (a caption and the sentence it
    repeats): word-bigram containment in the shorter of the two."""
    for other in chosen:
        smaller = min(len(candidate.bigrams), len(other.bigrams))
        if smaller and len(candidate.bigrams & other.bigrams) / smaller >= NEAR_DUPLICATE:
            return True
    return False


def _clip(text: str, max_words: int) -> str:
    """At most `max_words` words of `text`, cut after a word ("…" marks the cut)."""
    if word_count(text) <= max_words:
        return text
    out = []
    for match in re.finditer(r"\S+", text):
        out.append(match.group())
        if word_count(" ".join(out) + " …") > max_words:
            out.pop()
            break
    return " ".join(out) + " …" if out else ""


class LocalProvider:
    """Offline extractive summaries of the source text, laid out as the options ask (it cannot
    read the prompt's instructions: templates say what to favour instead)."""

    name = "local"
    extractive = True
    model_name = "precis-extractive-1"
    io_bound = False  # CPU-bound: runs in worker processes (`summaries` queue)

    def context_tokens(self) -> int:
        return 1_000_000

    def summarize(self, prompt: str, options: SummarizeOptions) -> Completion:
        from config.metrics import record_llm_call

        started = time.perf_counter()
        source = options.source_text or prompt
        chosen = select(
            source, options.max_words, format=options.format, favour=options.favour, scale=options.source_scale
        )
        if chosen:
            sentences = tuple(unit.text for unit in chosen)
            text = formats.render(list(sentences), options.format)
        else:  # nothing short enough to quote whole: the text's start, clipped
            sentences, text = (), summarize_text(source, options.max_words, format=options.format)
        completion = Completion(
            text=text,
            model=self.model_name,
            prompt_tokens=estimate_tokens(source),
            completion_tokens=estimate_tokens(text),
            sentences=sentences,
        )
        record_llm_call(
            provider=self.name,
            seconds=time.perf_counter() - started,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
        )
        return completion
