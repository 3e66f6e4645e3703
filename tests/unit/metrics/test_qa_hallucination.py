"""The users' hallucination check (``check_hallucination``) and its command, case by case.

Each case names the rule it pins; every rule was broken once to watch its test fail (see the commit)."""

from __future__ import annotations

import json

import pytest

from kensa.metrics.hallucination import hallucination


# The definition's four worked examples, with the users' exact answers.
@pytest.mark.parametrize("candidate, references, expected", [
    ("今日はわるい天気だ", ["今日は天気だ"], ["わるい"]),
    ("今日は天気だ", ["今日はわるい天気だ"], []),
    ("今日はわるい天気だ", ["今日はよい天気だ"], ["わるい"]),
    ("今日はわるい天気だ", ["今日は天気だ", "わるい予報"], []),
])
def test_the_definitions_four_worked_examples(candidate, references, expected):
    assert hallucination(candidate, references).hallucinated == expected


def test_a_spelling_variant_is_hallucinated():
    # 表記ゆれ: わるい and 悪い share a lemma, which the lenient variant accepts; the users' check does not.
    assert hallucination("今日はわるい天気だ", ["今日は悪い天気だ"]).hallucinated == ["わるい"]


def test_part_of_a_source_word_is_hallucinated():
    # 東京都 is 東京 + 都: 京都 is a substring of the source but none of its tokens.
    assert hallucination("京都の人口は？", ["東京都の人口は多い"]).hallucinated == ["京都"]
    assert hallucination("きら市", ["きらら市"]).hallucinated == ["きら"]


def test_undecodable_output_counts():
    h = hallucination("\ufffd\ufffd在\ufffd\ufffd\ufffd\ufffdですか？", ["東京に在住ですか"])
    assert h.hallucinated == ["\ufffd\ufffd", "\ufffd\ufffd\ufffd\ufffd"] and h.rate == pytest.approx(100.0)
    assert hallucination("東京\x07", ["東京"]).hallucinated == ["\x07"]


def test_an_empty_output_has_no_rate():
    h = hallucination("", ["今日は天気だ"])
    assert h.empty and h.rate is None
    assert hallucination(" \n", ["今日は天気だ"]).rate is None
    assert hallucination("？", ["今日は天気だ"]).rate == 0.0  # not empty, no content word


def test_the_rate_is_on_0_to_100_and_stop_words_are_never_counted():
    h = hallucination("今日はわるい天気だ", ["今日は天気だ"])
    assert h.words == 3 and h.rate == pytest.approx(100 / 3)
    h = hallucination("天気はどうか", ["今日は天気だ"])  # どう is an adverb, a content word, and a question word
    assert h.words == 1 and h.hallucinated == []
    h = hallucination("天気はどうか", ["今日は天気だ"], stop_words=())
    assert h.words == 2 and h.hallucinated == ["どう"]
    assert hallucination("今日はわるい天気だ", ["今日は天気だ"], stop_words=("わるい",)).hallucinated == []


def test_both_sides_are_normalised_before_comparing():
    # Full-width digits and half-width kana in the source are the output's text after NFKC + neologdn.
    assert hallucination("1964年のカレー", ["１９６４年のｶﾚｰ"]).hallucinated == []


def test_suite_scores_keep_empty_outputs_out_of_the_rate():
    from kensa.metrics.core import aggregate
    from kensa.tasks.qa.common import hallucination_scores

    full = hallucination_scores("今日はわるい天気だ", ["今日は天気だ"])
    empty = hallucination_scores("", ["今日は天気だ"])
    assert full["hallucination"] == pytest.approx(100 / 3) and full["hallucinated"] == 100.0 and full["empty"] == 0.0
    assert empty["hallucination"] is None and empty["hallucinated"] is None and empty["empty"] == 100.0
    docs = [{k: v for k, v in d.items() if k != "hallucinated_words"} for d in (full, empty)]
    scores = aggregate(docs, ("hallucination", "hallucinated", "empty"))
    assert scores["hallucination"] == pytest.approx(100 / 3)  # the empty output is left out, not a 0
    assert scores["hallucinated"] == 100.0 and scores["empty"] == 50.0


# -- python -m kensa hallucination --------------------------------------------------------------------

def run_cli(*argv: str, capsys) -> tuple[int, str, str]:
    from kensa.cli.main import main

    code = main(["hallucination", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("candidate, references, expected", [
    ("今日はわるい天気だ", ["今日は天気だ"], ["わるい"]),
    ("今日は天気だ", ["今日はわるい天気だ"], []),
    ("今日はわるい天気だ", ["今日はよい天気だ"], ["わるい"]),
    ("今日はわるい天気だ", ["今日は天気だ", "わるい予報"], []),
])
def test_the_command_answers_the_worked_examples(candidate, references, expected, capsys):
    refs = [a for r in references for a in ("--reference", r)]
    code, out, _ = run_cli("--candidate", candidate, *refs, "--json", capsys=capsys)
    assert code == 0
    got = json.loads(out)
    assert got["hallucinated"] == expected
    assert got["rate"] == pytest.approx(100.0 * len(expected) / 3)
    code, out, _ = run_cli("--candidate", candidate, *refs, capsys=capsys)
    assert code == 0 and out.split() == expected


def test_the_command_takes_stop_words_and_refuses_no_reference(capsys):
    code, out, _ = run_cli("--candidate", "今日はわるい天気だ", "--reference", "今日は天気だ", "--stop-words", "わるい",
                           "天気", "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["hallucinated"] == []
    with pytest.raises(SystemExit) as exc:
        run_cli("--candidate", "今日は天気だ", capsys=capsys)
    assert exc.value.code == 2
    code, out, _ = run_cli("--candidate", "", "--reference", "今日は天気だ", "--json", capsys=capsys)
    assert code == 0 and json.loads(out) == {"hallucinated": [], "rate": None, "empty": True}
