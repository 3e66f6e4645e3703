"""``python -m kensa quiz score``: generations made elsewhere, rescored exactly as the suite scores them."""

from __future__ import annotations

import json

import pytest

from kensa.cli.main import main
from kensa.data import DataSource
from kensa.run import evaluate_variant
from kensa.tasks.quiz import formats
from kensa.tasks.quiz.sets import QuizSet
from kensa.tasks.quiz.tasks import make_task

RECORD = {"instruction": "以下の問題について、0, 1, 2, 3, 4から選んで答えてください。\n問題: 日本一高い山は？\n",
          "input": "0: 北岳\n1: 富士山\n2: 立山\n3: 槍ヶ岳\n4: 白山\n\n\n", "output": "1: 富士山", "category": "雑学"}
GENERATIONS = {  # generation: verdict
    "1: 富士山です。標高3776m": "correct",
    "富士山": "correct",
    "ええと、高さは3776mで1番高い": "unparseable",  # a stray "1" mid-text names nothing
    "わかりません\n答えは1です": "late",
    "0: 北岳": "wrong",
    "1と2": "unparseable",
}


def _file(tmp_path, generations, category="雑学"):
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps({**RECORD, "category": category, "qid": f"q{i}", "generation": g},
                                       ensure_ascii=False) + "\n" for i, g in enumerate(generations)), encoding="utf-8")
    return path


def test_score_prints_the_suites_rates_and_writes_each_reading(tmp_path, capsys):
    path = _file(tmp_path, GENERATIONS)
    out = tmp_path / "read.jsonl"
    assert main(["quiz", "score", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if line.split()[:1] == ["雑学"])
    assert row.split() == ["雑学", "6", str(2 / 6), "(2/6)", str(3 / 6), "(3/6)", str(1 / 6), "(1/6)"]
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["verdict"] for r in rows] == list(GENERATIONS.values())
    assert [r["answer"] for r in rows] == [1, 1, None, None, 0, None] and rows[3]["late"] == 1


def test_score_is_the_suites_scoring(tmp_path):
    """The same generations through the suite's task (a model that answers them) give the same accuracy."""
    path = _file(tmp_path, GENERATIONS)
    task = make_task(QuizSet("answers", "answers", (str(path),), "eval"), "雑学", "gen")
    variant = next(v for v in task.variants() if v.template.version == "0.2")
    answers = list(GENERATIONS)

    class Replay:
        name, max_length, max_gen_toks, info = "replay", 4096, 32, {}
        kind, bad_words = "causal", ()  # the rest of what a run loop reads of a backend

        def tok_encode(self, text):
            return list(text.encode())

        def generation_ids(self, request):
            return self.tok_encode(request.context)

        def generate_until(self, requests, progress=None):
            from kensa.backends.contract import GenerationResult

            return [GenerationResult(a, "stop", 1, 1) for a in answers[: len(requests)]]

    split, _ = task.load(DataSource.fixtures())  # an absolute path: the source root is not used
    run = evaluate_variant(variant, Replay(), split, None, 0)
    assert run.metrics["acc"] == pytest.approx(2 / 6) and run.metrics["late_answer_rate"] == pytest.approx(1 / 6)


def test_score_names_a_record_without_a_generation(tmp_path, capsys):
    path = _file(tmp_path, ["1"])
    path.write_text(path.read_text(encoding="utf-8") + json.dumps(RECORD, ensure_ascii=False) + "\n", encoding="utf-8")
    assert main(["quiz", "score", str(path)]) == 2
    err = capsys.readouterr().err
    assert "answers.jsonl, row 2, field 'generation': missing" in err
    with pytest.raises(formats.DataError):
        from kensa.cli.quiz_score import score_file

        score_file(path)
