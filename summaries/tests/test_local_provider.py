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


MEETING = """
Weekly product meeting, 3 March.

The team reviewed the launch plan for the new billing page. Marketing shared early feedback from the beta users.
The group decided to move the launch to 14 April so that support can be trained first. Several people said the
beta went well overall. Priya will update the pricing FAQ by Friday. The office plants need watering more often.
It was agreed that refunds above 500 EUR need a second approval. Tom will draft the approval workflow by 20 March.
Lunch next week will be at the new place downstairs.
"""


def test_bullets_are_a_list():
    text = summarize_text(ENGLISH, 60, format="bullets")
    lines = text.split("\n")
    assert len(lines) >= 2 and all(line.startswith("- ") for line in lines)
    assert summarize_text(ENGLISH, 60, format="prose") == " ".join(line[2:] for line in lines)


def test_short_is_one_or_two_sentences():
    text = summarize_text(ENGLISH + ENGLISH.replace("Solar", "Wind"), 500, format="short")
    assert 1 <= len(split_sentences(text)) <= 2
    assert len(text.split()) <= 45


def test_favoured_kinds_win():
    plain = summarize_text(MEETING, 40)
    favoured = summarize_text(MEETING, 40, favour=("decisions", "actions", "owners", "dates"))
    assert "decided" in favoured and ("will update" in favoured or "will draft" in favoured)
    assert favoured != plain
    assert "plants" not in favoured and "Lunch" not in favoured


def test_never_over_max_words():
    from summaries.sentences import word_count

    for max_words in (10, 11, 17, 23, 40, 64, 100):
        for text in (ENGLISH, GERMAN, JAPANESE, MEETING, "word " * 300):
            for format in ("prose", "bullets", "short"):
                assert word_count(summarize_text(text, max_words, format=format)) <= max_words


def test_a_caption_and_the_sentence_it_repeats_are_not_both_picked():
    text = (
        "Firefighters rescued a family of four from the flooded farmhouse near Leeds on Sunday morning.\n\n"
        "Firefighters rescued a family of four from the flooded farmhouse near Leeds.\n\n"
        "The river had burst its banks after three days of heavy rain across the county. "
        "Residents were told to move valuables upstairs as the water kept rising through the afternoon."
    )
    summary = summarize_text(text, 60)
    assert summary.count("rescued a family") == 1


def test_bylines_and_latex_residue_are_never_picked():
    text = (
        "By . Daily Mail Reporter . PUBLISHED: . 10:32 EST, 1 June 2013 . "
        "The torque balance ( [ eq : torquebalance ] ) holds for every disc we simulated. "
        "The council approved the new cycle lanes on Tuesday after a long debate. "
        "The lanes will connect the station with the university campus by next spring."
    )
    summary = summarize_text(text, 60)
    assert "PUBLISHED" not in summary and "Daily Mail" not in summary and "eq :" not in summary
    assert "cycle lanes" in summary


def test_provider_reports_its_sentences_for_citations():
    completion = LocalProvider().summarize("", SummarizeOptions(max_words=30, source_text=ENGLISH, format="bullets"))
    assert completion.sentences and all(f"- {s}" in completion.text for s in completion.sentences)
