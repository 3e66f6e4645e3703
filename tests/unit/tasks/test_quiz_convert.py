"""The five-choice converters: seeded per qid, stable, gold kept, file order never used, positions even;
and ``python -m kensa quiz convert`` round-trips through the readers."""

from __future__ import annotations

import random
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from kensa.tasks.quiz import convert, formats
from tests.helpers import REPO

QUIZ = REPO / "fixtures" / "quiz"

CANDIDATES = st.lists(st.text(alphabet="アイウエオカキクケコ山川海", min_size=1, max_size=5), min_size=5, max_size=25,
                      unique_by=formats.same_text)


@settings(max_examples=200)
@given(CANDIDATES, st.integers(0, 1000), st.text(alphabet="ABC-0123", min_size=1, max_size=8), st.randoms())
def test_candidates_draw_keeps_gold_and_ignores_file_order(cands, gold_seed, qid, rnd):
    gold = gold_seed % len(cands)
    row = {"qid": qid, "choices": cands, "gold": gold, "source": "x", "question": "q", "answers": [cands[gold]]}
    out = convert.draw_from_candidates(row, seed=7)
    assert len(out["choices"]) == 5 and len(set(out["choices"])) == 5
    assert out["choices"][out["gold"]] == cands[gold] and set(out["choices"]) <= set(cands)
    assert convert.draw_from_candidates(row, seed=7) == out  # stable
    shuffled = list(cands)
    rnd.shuffle(shuffled)
    again = convert.draw_from_candidates({**row, "choices": shuffled, "gold": shuffled.index(cands[gold])}, seed=7)
    assert again["choices"] == out["choices"]  # the file's candidate order plays no part


def test_jaqket_fixture_draw_is_seeded_per_qid():
    rows, _ = formats.read_jaqket_v1(QUIZ / "jaqket_v1_dev.json")
    drawn = [convert.draw_from_candidates(r, 0) for r in rows]
    assert [d["choices"] for d in drawn] == [convert.draw_from_candidates(r, 0)["choices"] for r in rows[::-1]][::-1]
    assert [d["choices"] for d in drawn] != [convert.draw_from_candidates(r, 1)["choices"] for r in rows]
    assert all(d["choices"][d["gold"]] == r["choices"][r["gold"]] for d, r in zip(drawn, rows))
    # gold at file positions 0, 3, 7, 13, 19, 5, 16, 1; drawn positions spread over all five
    assert sorted({r["gold"] for r in rows}) == [0, 1, 3, 5, 7, 13, 16, 19]
    assert len({d["gold"] for d in drawn}) >= 4


def test_aio_distractors_are_other_answers_of_the_same_file():
    rows, _ = formats.read_aio_tsv(QUIZ / "data" / "aio" / "aio_01_dev1.txt")
    drawn = convert.draw_from_answers(rows, 0)
    answers = {r["answers"][0] for r in rows}
    for r, d in zip(rows, drawn):
        assert d["choices"][d["gold"]] == r["answers"][0] and set(d["choices"]) <= answers
        assert len(set(d["choices"])) == 5 and d["drawn"].startswith(convert.DRAW_VERSION)
    assert convert.draw_from_answers(rows, 0) == drawn
    assert convert.draw_from_answers(list(reversed(rows)), 0) == list(reversed(drawn))


def test_gold_positions_come_out_even():
    rows, _ = formats.read_jaqket_v1(QUIZ / "jaqket_v1_dev.json")
    small = convert.position_balance([convert.draw_from_candidates(r, 0) for r in rows])
    assert sum(small.counts) == 8 and small.p_value > 0.05
    cands = [f"候補{i}" for i in range(20)]
    many = [convert.draw_from_candidates({"qid": f"Q{i}", "choices": cands, "gold": i % 20, "source": "x"}, 0)
            for i in range(2000)]
    big = convert.position_balance(many)
    assert big.p_value > 0.001 and min(big.counts) > 340, big.line()
    skewed = convert.position_balance([{"gold": 0}] * 30 + [{"gold": random.Random(0).randrange(5)} for _ in range(20)])
    assert skewed.p_value < 0.001  # the check can fail


def test_convert_command_round_trips(tmp_path):
    out_eval, out_train = tmp_path / "e.jsonl", tmp_path / "t.jsonl"
    done = subprocess.run([sys.executable, "-m", "kensa", "quiz", "convert", str(QUIZ / "data" / "aio" / "aio_01_dev2.txt"),
                           "--eval", str(out_eval), "--train", str(out_train), "--category", "雑学"],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "gold positions 0:" in done.stdout and "drawn, not curated" in done.stdout
    evals, _ = formats.read_seed(out_eval)
    trains, _ = formats.read_seed(out_train)
    assert [(r["question"], r["choices"], r["gold"]) for r in evals] == [(r["question"], r["choices"], r["gold"])
                                                                       for r in trains]
    assert {r["category"] for r in evals} == {"雑学"}
    bad = subprocess.run([sys.executable, "-m", "kensa", "quiz", "convert", str(QUIZ / "quiz_eval.json"), "--eval",
                          str(tmp_path / "x")], cwd=REPO, capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "convert reads JAQKET v1" in bad.stderr
