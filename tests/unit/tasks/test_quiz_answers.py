"""The quiz's answer parser and open-answer normaliser: a table of the issue's formats, then hypothesis
properties over choice lists, answer formats, full-width digits and unparseable answers."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kensa.tasks.quiz.answers import Reading, normalize_answer, open_answer_correct, parse_choice, read_choice

CHOICES = ["ミズダコ", "オオイカリナマコ", "クリオネ", "ダイオウイカ", "ホタルイカ"]


@pytest.mark.parametrize("text", ["2: クリオネ", "2", "２", "2番", "クリオネ", "答えは2です", "答え：２", "(2)", "2. クリオネ",
                                  "②", "2番目です。", "2: クリオネ\n", "クリオネです", "回答: 2: クリオネ"])
def test_understood_formats(text):
    assert parse_choice(text, CHOICES) == 2


@pytest.mark.parametrize("text", ["", "  ", "わかりません", "2と3", "0か1", "ミズダコかクリオネ", "2: ミズダコ", "7", "5",
                                  "2: クリオネ\n3: ダイオウイカ", "答えは7です"])
def test_unparseable_answers_are_never_guessed(text):
    assert parse_choice(text, CHOICES) is None


# The strict rule: the answer stands at the start of the first non-empty line. (generation, choice, late)
STRICT = [
    # rambling: a stray label-like digit or a choice's text inside gibberish names nothing
    ("件区見1医者の夏休みは2つある", None, None),
    ("わかりません。3月ごろに見られます", None, None),
    ("第4問の答えは", None, None),
    ("北海道の海にはミズダコがいます", None, 0),
    # verbose, correct: the answer first, then an explanation (even one that names another choice later)
    ("2: クリオネです。流氷の天使と呼ばれます", 2, None),
    ("クリオネ。ミズダコではありません", 2, None),
    ("答えは2番です。3月ごろに見られます", 2, None),
    ("\n\n  2\n説明: 巻貝の仲間", 2, None),
    # verbose, wrong: the answer is what stands first, even when the right one follows later
    ("0: ミズダコ。いや、2: クリオネかもしれません", 0, None),
    # late: a choice named only after the first line, or after other text: unparseable, flagged
    ("うーん、難しい問題です。\n答えは2です", None, 2),
    ("この問題の答えはクリオネです", None, 2),
    ("わかりません。答えは3", None, 3),
    ("わかりません\n2: クリオネ\n3: ダイオウイカ", None, None),  # names two later: not one late answer
    # two labels or texts straight after each other, an echoed list: unparseable
    ("2と3", None, None), ("2, 3", None, None), ("2番か3番", None, None), ("ミズダコかクリオネ", None, None),
    ("0: ミズダコ\n1: オオイカリナマコ\n2: クリオネ", None, None),
    # empty
    ("", None, None), ("\n\n", None, None), ("。", None, None),
]


@pytest.mark.parametrize("text,choice,late", STRICT)
def test_strict_reading(text, choice, late):
    assert read_choice(text, CHOICES) == Reading(choice, late)


def test_choices_with_digits_are_read_by_text_not_as_labels():
    years = ["1954年", "1948年", "1960年", "1965年", "1971年"]
    assert parse_choice("1954年", years) == 0
    assert parse_choice("0: 1954年", years) == 0
    assert parse_choice("2: 1954年", years) is None  # label 2 with choice 0's text
    pi = ["3.12", "3.14", "3.16", "3.41", "3.04"]
    assert parse_choice("3.14", pi) == 1
    assert parse_choice("1: 3.14", pi) == 1
    # "2" is label 2 and also choice 1's text: ambiguous, so unparseable
    assert parse_choice("2", ["1", "2", "3"]) is None


def test_a_choice_inside_a_longer_choice_is_not_a_second_mention():
    cs = ["東京", "東京都", "京都", "大阪", "奈良"]
    assert parse_choice("東京都", cs) == 1
    assert parse_choice("1: 東京都", cs) == 1
    assert parse_choice("京都", cs) == 2


WORDS = st.text(alphabet="アイウエオカキクケコサシスセソタチツテトナニヌネノ漢字山川", min_size=2, max_size=6)


@st.composite
def question(draw):
    n = draw(st.integers(2, 6))
    choices = draw(st.lists(WORDS, min_size=n, max_size=n, unique=True))
    # A choice inside another is covered by its own test above; the property draws lists without one.
    assume(not any(a != b and a in b for a in choices for b in choices))
    return choices, draw(st.integers(0, n - 1))


FULL_WIDTH = str.maketrans("0123456789:", "０１２３４５６７８９：")
FORMATS = ["{i}: {t}", "{i}", "{i}番", "{t}", "答えは{i}です", "回答：{i}", "{i}. {t}", "({i})", "答えは{t}です。"]


@settings(max_examples=300)
@given(question(), st.sampled_from(FORMATS), st.booleans(), st.sampled_from(["", " ", "\n", "。"]))
def test_every_format_names_its_choice(q, fmt, wide, tail):
    choices, gold = q
    text = fmt.format(i=gold, t=choices[gold]) + tail
    if wide:
        text = text.translate(FULL_WIDTH)
    assert parse_choice(text, choices) == gold


@settings(max_examples=300)
@given(question(), st.data())
def test_two_choices_or_none_are_unparseable(q, data):
    choices, gold = q
    other = data.draw(st.sampled_from([i for i in range(len(choices)) if i != gold]))
    kind = data.draw(st.sampled_from(["two labels", "label and other text", "two texts", "out of range", "nothing"]))
    text = {"two labels": f"{gold}と{other}", "label and other text": f"{gold}: {choices[other]}",
            "two texts": f"{choices[gold]}か{choices[other]}", "out of range": f"{len(choices) + other}",
            "nothing": "わかりません"}[kind]
    assert parse_choice(text, choices) is None


def test_open_answers_are_normalised_as_aio_compares_them():
    assert normalize_answer("「コックリさん」") == "コックリさん"
    assert normalize_answer("ニュートン(物理学者)") == "ニュートン"
    assert normalize_answer("ＡＢＣ") == "ABC"
    assert normalize_answer("N型、N") == "N型"
    assert open_answer_correct("アイザック・ニュートン\n説明", ["ニュートン", "アイザック・ニュートン"])
    assert open_answer_correct("答え: 琵琶湖です。", ["琵琶湖"])
    assert not open_answer_correct("", ["琵琶湖"])
    assert not open_answer_correct("霞ヶ浦", ["琵琶湖"])


PIECES = st.sampled_from(["2", "２", "3", "1医者", "答えは", "クリオネ", "ミズダコ", "と", "、", "。", "\n", " ", "です", "第4問",
                          "(0)", "わかりません", "2: クリオネ", "3月", "番"])


@settings(max_examples=500, deadline=None)
@given(st.lists(PIECES, max_size=8))
def test_a_choice_read_always_stands_at_the_start_of_the_first_line(parts):
    """Whatever a generation holds, a choice is read only when it (its label or its text) opens the first line."""
    import re
    import unicodedata

    text = "".join(parts)
    got = parse_choice(text, CHOICES)
    if got is not None:
        first = next(line for line in unicodedata.normalize("NFKC", text).split("\n") if line.strip()).strip()
        first = re.sub(r"^(?:(?:答え|回答)\s*(?:は|:)?\s*)+", "", first)  # the reader takes repeated prefixes too
        assert re.match(rf"^[(\[]?{got}(?!\d)", first) or first.startswith(CHOICES[got]), (text, got)
