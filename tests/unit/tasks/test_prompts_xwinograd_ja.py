"""XWinograd-ja (spec 3.7): 0-shot, empty context, the two full sentences as continuations, and
acc = 1 only when the answer sentence is strictly more likely (a tie scores 0)."""

from __future__ import annotations

import json

import pytest

from kensa.data import DataSource, Split
from kensa.errors import DataError
from kensa.run.multiple_choice import evaluate_multiple_choice
from kensa.tasks.render import prepare
from kensa.tasks.jglue.xwinograd_ja import TASK, read_xwinograd_tsv
from tests.helpers import ScoringLM

(VARIANT,) = TASK.variants()


ROW = {"sentence1": "太郎は次郎に負けた。太郎は弱かったからだ。", "sentence2": "太郎は次郎に負けた。次郎は弱かったからだ。",
       "answer": "1"}


def tsv_line(lang="jp"):
    toks = ["太郎", "は", "次郎", "に負けた。", "彼", "は弱かったからだ。"]
    cands = [["太郎", [0, 1], ["太郎"], True], ["次郎", [2, 3], ["次郎"], False]]
    return "\t".join([lang, "test", "Taro lost to Jiro because he was weak.", "".join(toks), json.dumps(toks),
                      json.dumps(["彼", [4, 5], ["彼"]]), json.dumps(cands)])


def test_task_id_version_and_shape():
    assert VARIANT.task_id == "xwinograd_ja"
    assert TASK.version == "1.0" and TASK.num_fewshot == 0 and TASK.fewshot_split is None
    assert TASK.versions() == [] and TASK.metrics == ("acc",)


def test_empty_context_and_full_sentences():
    (doc,) = prepare(VARIANT, Split([ROW], "mem"), None, 0, None)
    assert doc.prompt == ""
    assert doc.continuations == [ROW["sentence1"], ROW["sentence2"]]
    assert doc.gold == 0


@pytest.mark.parametrize(("lls", "answer", "acc"), [
    ((-3.0, -3.0), "1", 0.0),  # tie -> 0 (argmax-first would give 1)
    ((-3.0, -3.0), "2", 0.0),
    ((-2.0, -3.0), "1", 1.0),
    ((-2.0, -3.0), "2", 0.0),
    ((-4.0, -3.0), "2", 1.0),
])
def test_strict_acc(lls, answer, acc):
    row = {**ROW, "answer": answer}
    lm = ScoringLM(lambda ctx, cont: lls[0] if cont == row["sentence1"] else lls[1])
    run = evaluate_multiple_choice(VARIANT, lm, Split([row], "mem"), None, 0)
    assert lm.requests == [("", row["sentence1"]), ("", row["sentence2"])]
    assert run.metrics["acc"] == acc
    assert run.task_id == "xwinograd_ja"


def test_tsv_reader_builds_the_sentence_pair(tmp_path):
    path = tmp_path / "dataset.jp.tsv"
    path.write_text(tsv_line() + "\n" + tsv_line("en") + "\n", encoding="utf-8")
    split = read_xwinograd_tsv(TASK.dataset, path)
    assert split.rows == [ROW]  # the en row is skipped


@pytest.mark.parametrize("line", [tsv_line() + "\textra", "\t".join(tsv_line().split("\t")[:6])])
def test_wrong_column_count_is_a_data_error(tmp_path, line):
    d = tmp_path / "xwinograd"
    d.mkdir()
    (d / "dataset.jp.tsv").write_text(tsv_line() + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        TASK.load(DataSource.local(tmp_path))
    msg = str(err.value)
    assert "dataset.jp.tsv, row 2:" in msg and "columns" in msg


def test_two_correct_candidates_is_a_data_error(tmp_path):
    cols = tsv_line().split("\t")
    cols[6] = json.dumps([["太郎", [0, 1], ["太郎"], True], ["次郎", [2, 3], ["次郎"], True]])
    path = tmp_path / "dataset.jp.tsv"
    path.write_text("\t".join(cols) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="candidates"):
        read_xwinograd_tsv(TASK.dataset, path)


def test_fixture_answers_are_balanced():
    eval_split, pool = TASK.load(DataSource.fixtures())
    answers = [r["answer"] for r in eval_split.rows]
    assert pool is None and answers.count("1") == answers.count("2") == 16
