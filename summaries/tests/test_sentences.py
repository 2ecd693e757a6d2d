"""The sentence splitter: quotes, abbreviations, numbers, captions, LaTeX residue, CJK."""

import pytest

from summaries.sentences import is_prose, split, split_sentences, word_count


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a question inside a quote does not end the sentence that goes on in lower case
        (
            '"Are you coming?" she asked. He nodded and left the room.',
            ['"Are you coming?" she asked.', "He nodded and left the room."],
        ),
        # abbreviations, initials, numbers
        (
            "Dr. Smith met J. K. Rowling in the U.S. on Jan. 5 to sign it. It cost $3.5 million in all.",
            ["Dr. Smith met J. K. Rowling in the U.S. on Jan. 5 to sign it.", "It cost $3.5 million in all."],
        ),
        (
            "See Fig. 3 and No. 12 for the results. Then we stop.",
            ["See Fig. 3 and No. 12 for the results.", "Then we stop."],
        ),
        # "No." before a capital is a word, not an abbreviation
        ("He said no. Then he left the house.", ["He said no.", "Then he left the house."]),
        # tokenized text: a stop standing apart always ends the sentence
        ("the cat sat on the mat . it was happy .", ["the cat sat on the mat .", "it was happy ."]),
        # a caption or heading without a stop on its own line is its own unit; wrapped prose is one
        (
            "Flooded streets in the old town\n"
            "The river rose two metres overnight, and the\nmayor ordered the quay closed.",
            [
                "Flooded streets in the old town",
                "The river rose two metres overnight, and the mayor ordered the quay closed.",
            ],
        ),
        ("Shopping list:\n- eggs\n- two pints of milk", ["Shopping list:", "- eggs", "- two pints of milk"]),
        (
            "東京で新しい図書館が開館した。図書館には十万冊の本がある。",
            ["東京で新しい図書館が開館した。", "図書館には十万冊の本がある。"],
        ),
        ("Was it? Yes! Really... I think so.", ["Was it?", "Yes!", "Really...", "I think so."]),
    ],
)
def test_split(text, expected):
    assert split_sentences(text) == expected


def test_spans_point_at_the_text():
    text = "First  sentence\n   wraps around here on two lines of prose text.\n\nSecond one is here."
    for unit in split(text):
        assert " ".join(text[unit.start : unit.end].split()) == unit.text


@pytest.mark.parametrize(
    "unit",
    [
        "By Daily Mail Reporter",
        "PUBLISHED: 10:32 EST, 1 June 2013 | UPDATED: 11:02 EST, 1 June 2013",
        "We find ( [ eq : torquebalance ] ) holds for all the cases .",
        "the torque @xmath3 is balanced by @xmath4 and @xmath5 .",
        "Flooded streets in the old town",  # a caption: no stop
        "## Results",
        "| 12 | 14 | 19 |",
        "2019 2020 2021 2022 totals.",
        "Click here to read more.",
    ],
)
def test_not_prose(unit):
    assert not is_prose(unit)


@pytest.mark.parametrize(
    "unit",
    [
        "The river rose two metres overnight.",
        '"We will rebuild the quay," the mayor said.',
        "Die Bundesregierung hat neue Regeln beschlossen.",
        "東京で新しい図書館が開館した。",
    ],
)
def test_prose(unit):
    assert is_prose(unit)


def test_word_count():
    assert word_count("- one two, three.") == 3
    assert word_count("東京で新しい") == 3  # CJK: half a word per character
