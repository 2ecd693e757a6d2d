"""The offline extractive summarizer on English and non-English text."""

from summaries.providers.base import SummarizeOptions
from summaries.providers.local import LocalProvider, split_sentences, summarize_text

ENGLISH = """
Solar power capacity grew faster than any other energy source last year. Analysts attribute the growth to falling
panel prices and supportive policy. The weather was pleasant in the capital on Tuesday. Solar installations on homes
doubled, while utility-scale solar farms added record capacity. Battery storage paired with solar power is now
common in new projects. A local bakery changed its opening hours. Grid operators are adapting to the growth of
solar energy by investing in storage and transmission.
"""

GERMAN = """
Die Bundesregierung hat neue Regeln für den Ausbau der Windenergie beschlossen. Künftig sollen Genehmigungen für
Windparks schneller erteilt werden. Der Sommer war in diesem Jahr besonders heiß. Die Windenergie soll bis 2030
einen großen Teil des Strombedarfs decken. Kritiker bemängeln, dass der Netzausbau für die Windenergie zu langsam ist.
"""

JAPANESE = (
    "東京で新しい図書館が開館した。図書館には十万冊の本がある。今日は雨が降っている。"
    "新しい図書館は市民に人気がある。図書館の開館時間は夜九時までだ。"
)


def test_english_picks_central_sentences_in_order():
    summary = summarize_text(ENGLISH, max_words=40)
    assert "Solar power capacity grew" in summary
    assert "bakery" not in summary and "weather" not in summary
    picked = [s for s in split_sentences(ENGLISH) if s in summary]
    assert summary == " ".join(picked)  # original order


def test_german():
    summary = summarize_text(GERMAN, max_words=30)
    assert "Windenergie" in summary
    assert "Sommer" not in summary


def test_japanese_without_spaces():
    sentences = split_sentences(JAPANESE)
    assert len(sentences) == 5
    summary = summarize_text(JAPANESE, max_words=20)
    assert "図書館" in summary and "雨" not in summary


def test_deterministic_and_respects_length():
    assert summarize_text(ENGLISH, 40) == summarize_text(ENGLISH, 40)
    short, long = summarize_text(ENGLISH, 15), summarize_text(ENGLISH, 80)
    assert len(short.split()) < len(long.split())
    assert len(summarize_text(ENGLISH, 40).split()) <= 45


def test_edge_cases():
    assert summarize_text("One sentence only", 50) == "One sentence only"
    assert summarize_text("", 50) == ""
    assert summarize_text("!!! ??? ...", 50) == "!!! ??? ..."


def test_provider_completion():
    completion = LocalProvider().summarize("ignored prompt", SummarizeOptions(max_words=30, source_text=ENGLISH))
    assert "Solar" in completion.text and completion.model == "precis-extractive-1"
    assert completion.prompt_tokens > completion.completion_tokens > 0
