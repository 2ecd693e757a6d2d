"""Summary quality: ROUGE of the built-in summarizer against extractive baselines on public data.

.venv/bin/python -m bench.quality [--scale small|full] [--data DIR]   (or PRECIS_QUALITY_DATA=DIR)

Needs `pip install -r requirements/bench.txt` (Google's rouge-score, sumy) and a data
directory, which is never part of the repository. Without one, nothing is measured: the
benchmark says so, writes no result and exits 0 (a fresh clone's `make bench` still passes).
The directory holds (its README.md names the public sources, commits and checksums):

    cnndm_test.jsonl    {"id", "article", "highlights": [sentences] | "one\\nper line"}
    arxiv_test.jsonl    {"id", "sentences": [...], "summary": [...], "sections": [...]?}
    pubmed_test.jsonl   likewise

Systems. CNN/DailyMail: Lead-3; Precis (`summaries.providers.local.summarize_text`) with
max_words = the Lead-3's word count (str.split); sumy's LexRank and TextRank filling the same
budget. arXiv and PubMed ("long set"): the budget is the reference abstract's word count, and
Lead-k takes the leading sentences that fit it. Every extractive baseline counts its budget the
way Precis does (its `_length` or `word_count`) and uses one offline regex sentence splitter (no
NLTK data). For the long set also Precis through `summarize_document` map-reduce (a local provider whose context
is SMALL_CONTEXT tokens, and TINY_CONTEXT beside it) against the single call.

Scores: rouge-score's ROUGE-1/2/Lsum F-measure × 100 with its Porter stemmer, sentences joined by
"\\n" for Lsum; 95 % bootstrap intervals over documents (BOOTSTRAP resamples, fixed seed, the same
resamples for every system of a set, so differences are paired).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sys
import time
from pathlib import Path

from bench.common import figure, print_result, save_result

ENV_VAR = "PRECIS_QUALITY_DATA"
# Where the data comes from (public repositories; the files are never part of Precis).
DATA_SOURCES = (
    "Data: CNN/DailyMail, 1,000 test stories (every ~11.49th of the 11,490, file floor(k*11490/1000)) of the "
    "tokenized, lower-cased test set released with See et al. 2017, from github.com/priyankmodiPM/"
    "Abstractive-Summarization @ d4047120b333a1b63543cbe132679bac326a2de3, "
    "GetToThePoint_Pretrained/test_output/test_output/{articles,reference}/; arXiv and PubMed, 100 test papers "
    "each (Cohan et al. 2018; sentences only, no sections: laid out as paragraphs of 5 sentences), from "
    "github.com/nianlonggu/MemSum @ 5ffaab7e27aa49bbd4716cd5d92981414d086a99, data/arxiv/test_ARXIV.jsonl and "
    "data/pubmed_full/test_PUBMED.jsonl."
)
FILES = {"cnndm": "cnndm_test.jsonl", "arxiv": "arxiv_test.jsonl", "pubmed": "pubmed_test.jsonl"}
SET_NAMES = {"cnndm": "CNN/DM", "arxiv": "arXiv", "pubmed": "PubMed"}
LIMITS = {"small": {"cnndm": 200, "long": 20}, "full": {"cnndm": None, "long": None}}
BOOTSTRAP = 1000
SEED = 1234
SMALL_CONTEXT = 4096  # tokens: a small LLM context (a 4k model); long papers go through map-reduce
TINY_CONTEXT = 1536  # ... and an extreme one, reported beside it
PARAGRAPH_SENTENCES = 5  # papers come as bare sentence lists: every 5 sentences make a paragraph
NEAR_DUPLICATE = 0.5  # word-bigram containment of two sentences of one summary
PUBLISHED_LEAD3 = {"rouge1": 40.34, "rouge2": 17.70, "rougeL": 36.57}  # See et al. 2017, Table 1
METRICS = ("rouge1", "rouge2", "rougeLsum")

# -- one offline sentence splitter for every baseline (and sumy's tokenizer) ---------------------
# A boundary is whitespace after ., ! or ? (and after a closing quote or bracket that follows one,
# also the PTB-tokenized `''`), unless the next token is itself a closing quote; a piece that ends
# in a common abbreviation, an initial or a dotted acronym (mr., u.s., j.) is joined to the next.
_BOUNDARY = re.compile(
    r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)\]])|(?<=[.!?] '')|(?<=[.!?] \"))\s+(?!(?:''|[\"”’)\]])(?:\s|$))|\n\s*\n"
)
_ABBREVIATION = re.compile(
    r"(?:^|\s)(?:(?:[a-z]\.){2,}|[a-z]\.|(?:mr|mrs|ms|dr|prof|st|jr|sr|gen|gov|sen|rep|lt|col|sgt|capt|rev|no|vs|"
    r"etc|inc|corp|co|ltd|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|fig|eq|ref|al|approx)\.)$",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+", re.UNICODE)


def split_sentences(text: str) -> list[str]:
    out: list[str] = []
    for piece in _BOUNDARY.split(text):
        piece = " ".join(piece.split())
        if not piece:
            continue
        if out and _ABBREVIATION.search(out[-1]):
            out[-1] += " " + piece
        else:
            out.append(piece)
    return [s for s in out if _WORD.search(s)]


class RegexTokenizer:
    """sumy's tokenizer interface without NLTK: the splitter above and \\w+ words."""

    language = "english"

    def to_sentences(self, paragraph: str) -> tuple[str, ...]:
        return tuple(split_sentences(paragraph))

    def to_words(self, sentence: str) -> tuple[str, ...]:
        return tuple(_WORD.findall(sentence))


# -- data ------------------------------------------------------------------------------------------
def _spread(rows: list, limit: int | None) -> list:
    """`limit` rows evenly spaced over the file (all of them when limit is None)."""
    if limit is None or limit >= len(rows):
        return rows
    return [rows[i * len(rows) // limit] for i in range(limit)]


def _read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _lines(value) -> list[str]:
    items = value if isinstance(value, list) else str(value).split("\n")
    return [" ".join(s.split()) for s in items if s and s.strip()]


def paper_text(row: dict) -> tuple[str, str]:
    """The paper as a document (paragraphs separated by blank lines) and how it was laid out."""
    sentences = [" ".join(s.split()) for s in row["sentences"] if s and s.strip()]
    sections = row.get("sections")
    if sections and isinstance(sections[0], list):  # sentences grouped by section
        paragraphs = [" ".join(" ".join(s.split()) for s in section if s.strip()) for section in sections]
        return "\n\n".join(p for p in paragraphs if p), "sections"
    paragraphs = [
        " ".join(sentences[i : i + PARAGRAPH_SENTENCES]) for i in range(0, len(sentences), PARAGRAPH_SENTENCES)
    ]
    return "\n\n".join(paragraphs), f"every {PARAGRAPH_SENTENCES} sentences"


# -- systems ---------------------------------------------------------------------------------------
def _word_counter():
    """How the summarizer counts words against max_words (its `_length` or `word_count`), else str.split."""
    from summaries.providers import local

    counter = getattr(local, "_length", None) or getattr(local, "word_count", None)
    return counter or (lambda text: len(text.split()))


def _output_sentences(text: str) -> list[str]:
    """A summary's sentences, cut by the same splitter as the baselines' (for ROUGE-Lsum and the
    duplicate check: an abbreviation such as "u.s." is no sentence end there)."""
    return split_sentences(text) or ([text] if text.strip() else [])


def _fragments(text: str) -> tuple[int, int]:
    """(sentences of at most 3 words, sentences) of a summary by Precis' own splitter."""
    from summaries.providers import local

    splitter = getattr(local, "split_sentences", None) or split_sentences
    parts = splitter(text)
    return sum(1 for p in parts if len(_WORD.findall(p)) <= 3), len(parts)


def _fit(candidates: list[tuple[int, str]], budget: int, count, prefix: bool = False) -> list[str]:
    """Sentences (index, text) in the given order while they fit `budget` words; document order out.
    prefix: stop at the first one that does not fit (Lead-k) instead of trying the next."""
    chosen: list[tuple[int, str]] = []
    seen: set[str] = set()
    words = 0
    for index, sentence in candidates:
        length = count(sentence)
        if sentence in seen:
            continue
        if words + length > budget:
            if prefix and chosen:
                break
            if prefix:  # a first sentence longer than the budget: Lead-k still has one sentence
                chosen.append((index, sentence))
                break
            continue
        chosen.append((index, sentence))
        seen.add(sentence)
        words += length
        if words >= budget:
            break
    return [s for _i, s in sorted(chosen)]


class SumyRanker:
    def __init__(self, kind: str):
        from sumy.nlp.stemmers import Stemmer
        from sumy.summarizers.lex_rank import LexRankSummarizer
        from sumy.summarizers.text_rank import TextRankSummarizer
        from sumy.utils import get_stop_words

        cls = LexRankSummarizer if kind == "lexrank" else TextRankSummarizer
        self.summarizer = cls(Stemmer("english"))
        self.summarizer.stop_words = get_stop_words("english")
        self.tokenizer = RegexTokenizer()

    def summarize(self, text: str, budget: int, count) -> list[str]:
        from sumy.parsers.plaintext import PlaintextParser

        document = PlaintextParser(text, self.tokenizer).document
        ranked: list = []

        def keep_ranking(infos):  # sumy hands the sentences sorted by rating, best first
            ranked.extend(infos)
            return infos

        self.summarizer(document, keep_ranking)
        return _fit([(info.order, str(info.sentence)) for info in ranked], budget, count)


def _small_context_provider(tokens: int = SMALL_CONTEXT):
    from summaries.providers.local import LocalProvider

    class SmallContextLocal(LocalProvider):
        def context_tokens(self) -> int:
            return tokens

    return SmallContextLocal()


def _through_summarizer(provider, text: str, max_words: int):
    from summaries.providers.base import SummarizeOptions
    from summaries.summarizer import summarize_document
    from templates_app.placeholders import RenderContext

    return summarize_document(
        provider=provider,
        template_body="{{ document.content }}",
        context=RenderContext(document_title="", document_content=text),
        options=SummarizeOptions(max_words=max_words),
    )


# -- measures --------------------------------------------------------------------------------------
def _bigrams(sentence: str) -> set[tuple[str, str]]:
    words = [w.lower() for w in _WORD.findall(sentence)]
    return set(itertools.pairwise(words))


def near_duplicate_pairs(sentences: list[str]) -> int:
    grams = [_bigrams(s) for s in sentences]
    pairs = 0
    for i in range(len(grams)):
        for j in range(i + 1, len(grams)):
            a, b = grams[i], grams[j]
            if a and b and len(a & b) / min(len(a), len(b)) >= NEAR_DUPLICATE:
                pairs += 1
    return pairs


def _bootstrap(scores: dict[str, list[float]], n: int):
    """{system: (mean, lo, hi)} for the per-document scores, paired resamples."""
    import numpy

    rng = numpy.random.default_rng(SEED)
    index = rng.integers(0, n, size=(BOOTSTRAP, n))
    out = {}
    for name, values in scores.items():
        array = numpy.asarray(values, dtype=float)
        means = array[index].mean(axis=1)
        out[name] = (float(array.mean()), float(numpy.percentile(means, 2.5)), float(numpy.percentile(means, 97.5)))
    return out


class Evaluation:
    """Per set: per-system per-document scores, times and lengths."""

    def __init__(self):
        from rouge_score import rouge_scorer

        self.scorer = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)
        self.count = _word_counter()
        self.sets: dict[str, dict] = {}
        self.precis_outputs: list[tuple[str, str, str, int]] = []  # (set, kind, text, max_words)

    def add(self, set_name: str, system: str, reference: list[str], sentences: list[str], seconds: float):
        target = "\n".join(reference)
        prediction = "\n".join(sentences)
        scores = self.scorer.score(target, prediction)
        entry = self.sets.setdefault(set_name, {}).setdefault(
            system, {"scores": {m: [] for m in METRICS}, "seconds": [], "words": []}
        )
        for metric in METRICS:
            entry["scores"][metric].append(scores[metric].fmeasure * 100)
        entry["seconds"].append(seconds)
        entry["words"].append(len(prediction.split()))

    def summary(self, set_name: str) -> dict:
        systems = self.sets[set_name]
        n = len(next(iter(systems.values()))["seconds"])
        table = {}
        for metric in METRICS:
            for system, (mean, lo, hi) in _bootstrap(
                {name: entry["scores"][metric] for name, entry in systems.items()}, n
            ).items():
                table.setdefault(system, {})[metric] = {"mean": mean, "lo": lo, "hi": hi}
        for system, entry in systems.items():
            table[system]["ms_per_doc"] = 1000 * sum(entry["seconds"]) / n
            table[system]["words"] = sum(entry["words"]) / n
        return {"documents": n, "systems": table}

    def paired_delta(self, set_name: str, a: str, b: str, metric: str = "rouge1") -> tuple[float, float, float]:
        systems = self.sets[set_name]
        diffs = [x - y for x, y in zip(systems[a]["scores"][metric], systems[b]["scores"][metric], strict=True)]
        return _bootstrap({"d": diffs}, len(diffs))["d"]


def _timed(fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started


def evaluate_cnndm(rows: list[dict], ev: Evaluation, rankers: dict) -> None:
    from summaries.providers.local import summarize_text

    for row in rows:
        article = row["article"]
        reference = _lines(row["highlights"])
        sentences, split_s = _timed(split_sentences, article)
        lead = sentences[:3]
        budget = len(" ".join(lead).split())
        ev.add("cnndm", "Lead-3", reference, lead, split_s)
        text, seconds = _timed(summarize_text, article, max_words=budget)
        ev.add("cnndm", "Precis", reference, _output_sentences(text), seconds)
        ev.precis_outputs.append(("cnndm", "single", text, budget))
        for name, ranker in rankers.items():
            chosen, seconds = _timed(ranker.summarize, article, budget, ev.count)
            ev.add("cnndm", name, reference, chosen, seconds)


def evaluate_long(set_name: str, rows: list[dict], ev: Evaluation, rankers: dict, mapreduce: dict) -> str:
    from summaries.providers.local import LocalProvider, summarize_text
    from summaries.providers.tokens import estimate_tokens

    small, tiny, plain = _small_context_provider(), _small_context_provider(TINY_CONTEXT), LocalProvider()
    layout = ""
    for row in rows:
        text, layout = paper_text(row)
        reference = _lines(row["summary"])
        budget = len(" ".join(reference).split())
        started = time.perf_counter()
        sentences = [s for paragraph in text.split("\n\n") for s in split_sentences(paragraph)]
        lead = _fit(list(enumerate(sentences)), budget, ev.count, prefix=True)
        ev.add(set_name, "Lead-k", reference, lead, time.perf_counter() - started)
        summary, seconds = _timed(summarize_text, text, max_words=budget)
        ev.add(set_name, "Precis", reference, _output_sentences(summary), seconds)
        for name, ranker in rankers.items():
            chosen, seconds = _timed(ranker.summarize, text, budget, ev.count)
            ev.add(set_name, name, reference, chosen, seconds)

        single, seconds = _timed(_through_summarizer, plain, text, budget)
        assert single.strategy == "single", single.strategy
        ev.add(set_name, "Precis single call", reference, _output_sentences(single.text), seconds)
        ev.precis_outputs.append((set_name, "single", single.text, budget))
        split, seconds = _timed(_through_summarizer, small, text, budget)
        ev.add(set_name, "Precis map-reduce", reference, _output_sentences(split.text), seconds)
        ev.precis_outputs.append((set_name, "map-reduce", split.text, budget))
        tiny_split, seconds = _timed(_through_summarizer, tiny, text, budget)
        ev.add(set_name, f"Precis map-reduce ({TINY_CONTEXT})", reference, _output_sentences(tiny_split.text), seconds)
        stats = mapreduce.setdefault(set_name, {"docs": 0, "map_reduce": 0, "prompt": 0, "doc": 0, "chunks": 0})
        stats["docs"] += 1
        if split.strategy == "map_reduce":
            stats["map_reduce"] += 1
            stats["prompt"] += split.prompt_tokens
            stats["doc"] += estimate_tokens(text)
            stats["chunks"] += split.chunk_count
    return layout


# -- the run ---------------------------------------------------------------------------------------
def _prepare_environment() -> None:
    """The local provider records metrics through Django settings: in memory, this process only."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    os.environ.setdefault("DEBUG", "true")
    os.environ["REDIS_URL"] = ""  # embedded metrics store: no Redis, no database


def _fmt(cell: dict) -> str:
    return f"{cell['mean']:.2f} [{cell['lo']:.2f}, {cell['hi']:.2f}]"


def run(scale: str, data_dir: str | Path | None = None) -> dict | None:
    data_dir = data_dir or os.environ.get(ENV_VAR)
    if not data_dir:
        print(f"bench.quality: no evaluation data (pass --data DIR or set {ENV_VAR}); skipped, no result written.")
        return None
    data = Path(data_dir)
    missing = [name for name in FILES.values() if not (data / name).is_file()]
    if missing:
        raise SystemExit(f"bench.quality: {data} lacks {', '.join(missing)}")
    try:
        import rouge_score  # noqa: F401
        import sumy  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"bench.quality needs `pip install -r requirements/bench.txt` ({exc.name} is missing)")
    _prepare_environment()
    started = time.perf_counter()

    limits = LIMITS[scale]
    cnndm = _spread(_read(data / FILES["cnndm"]), limits["cnndm"])
    papers = {name: _spread(_read(data / FILES[name]), limits["long"]) for name in ("arxiv", "pubmed")}
    ev = Evaluation()
    rankers = {"LexRank": SumyRanker("lexrank"), "TextRank": SumyRanker("textrank")}
    evaluate_cnndm(cnndm, ev, rankers)
    mapreduce: dict[str, dict] = {}
    layouts = {name: evaluate_long(name, rows, ev, rankers, mapreduce) for name, rows in papers.items()}
    summaries = {name: ev.summary(name) for name in ("cnndm", "arxiv", "pubmed")}

    # figures
    figures, details = [], {}
    d, lo, hi = ev.paired_delta("cnndm", "Precis", "Lead-3")
    figures.append(figure("CNN/DM: Precis R1 − Lead-3 R1", d, "≥ 0", d >= 0, "points"))
    details["CNN/DM Precis − Lead-3 R1, 95 % CI"] = f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
    for name in ("arxiv", "pubmed"):
        d, lo, hi = ev.paired_delta(name, "Precis", "LexRank")
        figures.append(figure(f"{SET_NAMES[name]}: Precis R1 − LexRank R1", d, "≥ 3", d >= 3, "points"))
        details[f"{SET_NAMES[name]} Precis − LexRank R1, 95 % CI"] = f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
    for name in ("arxiv", "pubmed"):
        d, lo, hi = ev.paired_delta(name, "Precis map-reduce", "Precis single call")
        figures.append(figure(f"{SET_NAMES[name]}: map-reduce R1 − single call R1", d, "≥ −1", d >= -1, "points"))
        details[f"{SET_NAMES[name]} map-reduce − single R1, 95 % CI"] = f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
        d, lo, hi = ev.paired_delta(name, f"Precis map-reduce ({TINY_CONTEXT})", "Precis single call")
        details[f"{SET_NAMES[name]} map-reduce at {TINY_CONTEXT} tokens − single R1, 95 % CI"] = (
            f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
        )
    prompt = sum(s["prompt"] for s in mapreduce.values())
    doc = sum(s["doc"] for s in mapreduce.values())
    ratio = prompt / doc if doc else float("nan")
    figures.append(figure("map-reduce prompt tokens / document tokens", ratio, "≤ 1.3", ratio <= 1.3, "×"))
    for name, s in mapreduce.items():
        details[f"{SET_NAMES[name]} map-reduce"] = (
            f"{s['map_reduce']} of {s['docs']} papers split (context {SMALL_CONTEXT} tokens), "
            f"{s['chunks']} chunks, {s['prompt']:,} prompt tokens for {s['doc']:,} document tokens"
        )
    precis_s = sum(sum(ev.sets[n]["Precis"]["seconds"]) for n in ev.sets)
    lexrank_s = sum(sum(ev.sets[n]["LexRank"]["seconds"]) for n in ev.sets)
    speed = lexrank_s / precis_s if precis_s else float("inf")
    figures.append(figure("speed: LexRank time / Precis time", speed, "≥ 10", speed >= 10, "×"))
    over = [(s, k, ev.count(t), m) for s, k, t, m in ev.precis_outputs if ev.count(t) > m]
    figures.append(figure("Precis summaries over max_words", len(over), "0", not over, "summaries"))
    duplicates = {}
    for set_name, kind, text, _m in ev.precis_outputs:
        pairs = near_duplicate_pairs(_output_sentences(text))
        key = f"{SET_NAMES[set_name]} {kind}"
        duplicates[key] = duplicates.get(key, 0) + pairs
    total_dupes = sum(duplicates.values())
    figures.append(
        figure("near-duplicate sentence pairs in Precis summaries", total_dupes, "0", not total_dupes, "pairs")
    )
    details["summaries checked for length and duplicates"] = (
        f"{len(ev.precis_outputs)} (CNN/DM single call; papers single call and map-reduce)"
    )
    if over:
        worst = sorted(over, key=lambda o: o[2] - o[3], reverse=True)[:5]
        details["over max_words (set, kind, words, max)"] = "; ".join(
            f"{SET_NAMES[s]} {k} {w}>{m}" for s, k, w, m in worst
        )
    details["near-duplicate pairs by set"] = ", ".join(f"{k}: {v}" for k, v in duplicates.items())
    short = [_fragments(t) for _s, _k, t, _m in ev.precis_outputs]
    details["Precis output sentences of ≤ 3 words (by its own splitter)"] = (
        f"{sum(a for a, _b in short)} of {sum(b for _a, b in short)}"
    )
    for name in ("cnndm", "arxiv", "pubmed"):
        details[f"{SET_NAMES[name]} ms/doc Precis vs LexRank"] = (
            f"{summaries[name]['systems']['Precis']['ms_per_doc']:.1f} vs "
            f"{summaries[name]['systems']['LexRank']['ms_per_doc']:.1f}"
        )
    wall = time.perf_counter() - started
    details["run time"] = f"{wall:.0f} s"

    rows = []
    for name in ("cnndm", "arxiv", "pubmed"):
        block = summaries[name]
        for system, cells in block["systems"].items():
            rows.append(
                [
                    f"{SET_NAMES[name]} ({block['documents']})",
                    system,
                    _fmt(cells["rouge1"]),
                    _fmt(cells["rouge2"]),
                    _fmt(cells["rougeLsum"]),
                    f"{cells['words']:.0f}",
                    f"{cells['ms_per_doc']:.1f}",
                ]
            )
    columns = ["set (documents)", "system", "ROUGE-1", "ROUGE-2", "ROUGE-Lsum", "words", "ms/doc"]
    published = [
        [
            "CNN/DM (11,490)",
            "Lead-3, See et al. 2017 (ROUGE-1.5.5; RL column)",
            f"{PUBLISHED_LEAD3['rouge1']:.2f}",
            f"{PUBLISHED_LEAD3['rouge2']:.2f}",
            f"{PUBLISHED_LEAD3['rougeL']:.2f}",
            "",
            "",
        ]
    ]
    cnndm_note = (
        "CNN/DM text is the tokenized, lowercased See et al. (2017) test release"
        if cnndm and cnndm[0]["article"] == cnndm[0]["article"].lower()
        else "CNN/DM text is cased"
    )
    result = {
        "title": "Summary quality",
        "method": (
            "ROUGE F-measure × 100 (Google's rouge-score, Porter stemmer; ROUGE-Lsum over sentences joined by "
            "newlines) of each system against the reference, mean over documents with a 95 % bootstrap interval "
            f"({BOOTSTRAP} resamples of documents, seed {SEED}, the same resamples for every system of a set). "
            "CNN/DM: Lead-3; Precis (`summarize_text`, max_words = the Lead-3's word count by str.split); sumy "
            "LexRank and TextRank (their sentence ranking, sentences taken in rank order while they fit the same "
            "budget, output in document order). arXiv/PubMed: the budget is the abstract's word count; Lead-k is "
            "the leading sentences that fit it. Baselines count words with Precis' own counter and share one "
            "offline regex sentence splitter (also sumy's tokenizer; sumy's Snowball stemmer and English stop "
            "words; no NLTK data). Map-reduce: `summarize_document` with a local provider whose context is "
            f"{SMALL_CONTEXT} tokens against the single call (the provider's own context). Speed: summarizer "
            "time only (sumy's includes its parsing), same process, one core."
        ),
        "data": (
            f"{len(cnndm)} CNN/DailyMail test stories, {len(papers['arxiv'])} arXiv and {len(papers['pubmed'])} "
            f"PubMed test papers (evenly spaced over the data directory's files). {cnndm_note}; papers are "
            "sentence lists (lowercased, tokenized) laid out as paragraphs "
            f"{', '.join(sorted(set(layouts.values())))}. Sources, commits and checksums: the data directory's "
            "README.md."
        ),
        "figures": figures,
        "details": details,
        "tables": [
            {
                "title": "ROUGE by system (mean [95 % CI]), mean output words, ms per document",
                "columns": columns,
                "rows": rows,
            },
            {"title": "Published reference (not measured here)", "columns": columns, "rows": published},
        ],
        "quality": summaries,
        "notes": (
            "The published Lead-3 figure is on the full test set with the Perl ROUGE-1.5.5 and See et al.'s "
            "sentence splitting; it is for orientation, not a target. Word budgets: Precis and the baselines "
            "fill max_words counted as Precis counts words (\\w runs), which is at most the str.split count the "
            "budget was taken from, so their outputs can run a little longer in tokens than Lead-3 (see the words "
            "column). " + DATA_SOURCES
        ),
    }
    save_result("quality", scale, result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", choices=["small", "full"], default="small")
    parser.add_argument("--data", default=None, help=f"data directory (default: ${ENV_VAR})")
    args = parser.parse_args(argv)
    result = run(args.scale, args.data)
    if result is not None:
        print_result(result)
        for table in result["tables"]:
            print(f"\n{table['title']}")
            print(" | ".join(table["columns"]))
            for row in table["rows"]:
                print(" | ".join(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
