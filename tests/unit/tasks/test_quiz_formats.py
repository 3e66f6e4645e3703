"""The quiz readers: every format reads its fixture, and every kind of bad input in the issue is a DataError
naming the file, the record and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kensa.data import DataSource
from kensa.errors import DataError
from kensa.tasks.quiz import formats
from kensa.tasks.quiz.sets import FIXTURE_SET, JMMLU_SET, categories, category_split, jmmlu_category, session_sets
from tests.helpers import REPO

QUIZ = REPO / "fixtures" / "quiz"
GOOD = {"instruction": "以下の問題について、0, 1, 2, 3, 4から選んで答えてください。\n問題: 日本一高い山は？\n",
        "input": "0: 北岳\n1: 富士山\n2: 立山\n3: 槍ヶ岳\n4: 白山\n\n\n", "output": "1: 富士山", "category": "雑学"}


def test_every_fixture_format_reads():
    rows, _ = formats.read_seed(QUIZ / "quiz_eval.json")
    assert len(rows) == 80 and {r["category"] for r in rows} == {"芸能", "学問", "雑学", "アニメ", "スポーツ"}
    assert all(len(r["choices"]) == 5 and r["answers"] == [r["choices"][r["gold"]]] for r in rows)
    assert {r["gold"] for r in rows} == set(range(5))
    train, _ = formats.read_seed(QUIZ / "quiz_train.jsonl")
    evals = {r["question"]: r for r in rows}
    assert train and all(evals[r["question"]]["choices"] == r["choices"] and evals[r["question"]]["gold"] == r["gold"]
                         for r in train)
    jaqket, _ = formats.read_jaqket_v1(QUIZ / "jaqket_v1_dev.json")
    assert [len(r["choices"]) for r in jaqket] == [20] * 8 and len({r["gold"] for r in jaqket}) == 8
    aio, _ = formats.read_aio_tsv(QUIZ / "data" / "aio" / "aio_01_dev1.txt")
    assert aio[0]["answers"] == ["東海道新幹線"] and aio[0]["gold"] == -1
    jm, _, _ = formats.read_jmmlu(QUIZ / "data" / "jmmlu" / "miscellaneous.csv")  # with a BOM, a quoted newline
    assert jm[0]["question"] == "日本の国会は衆議院と何からなるか。" and "\n" in jm[3]["question"] and jm[3]["gold"] == 3
    nobom, _, _ = formats.read_jmmlu(QUIZ / "data" / "jmmlu" / "high_school_physics.csv")
    assert nobom[0]["choices"][0] == "慣性の法則"


def test_formats_are_detected():
    found = {p.name: formats.detect_format(p) for p in [QUIZ / "quiz_eval.json", QUIZ / "quiz_train.jsonl",
                                                         QUIZ / "jaqket_v1_dev.json", QUIZ / "data/aio/aio_01_dev2.txt",
                                                         QUIZ / "data/jmmlu/marketing.csv"]}
    assert list(found.values()) == ["eval", "train", "jaqket_v1", "aio_tsv", "jmmlu"]


def _write(tmp_path: Path, records, name="q.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


BAD = [
    ("choice count", {"input": "0: 北岳\n1: 富士山\n2: 立山\n3: 槍ヶ岳\n\n\n", "output": "1: 富士山"}, "instruction",
     "declares the labels 0, 1, 2, 3, 4, but the input has 4 choices"),
    ("labels other than the choices'", {"instruction": GOOD["instruction"].replace("0, 1, 2, 3, 4", "0, 1, 2, 3")},
     "instruction", "declares the labels 0, 1, 2, 3, but the input has 5 choices"),
    ("empty input, no choices in the instruction", {"input": ""}, "input", "empty, and the instruction holds no"),
    ("names no choice", {"output": "エベレスト"}, "output", "names no choice"),
    ("choice does not exist", {"output": "7: 富士山"}, "output", "does not exist"),
    ("number and text disagree", {"output": "2: 富士山"}, "output", "but choice 2 is '立山'"),
    ("identical choices", {"input": "0: 北岳\n1: 富士山\n2: 立山\n3: 富士山\n4: 白山\n\n\n"}, "input", "identical"),
    ("empty category", {"category": " "}, "category", "empty category"),
    ("no question", {"instruction": "以下の問題について、0, 1, 2, 3, 4から選んで答えてください。\n問題: \n"}, "instruction",
     "empty question"),
    ("no labels", {"instruction": "問題: 日本一高い山は？\n"}, "instruction", "から選んで答えてください"),
    ("gap in numbering", {"input": "0: 北岳\n2: 富士山\n\n"}, "input", "choice 2 where 1 was expected"),
]


@pytest.mark.parametrize("what,change,field,message", BAD, ids=[b[0] for b in BAD])
def test_bad_evaluation_records_name_file_record_and_field(tmp_path, what, change, field, message):
    path = _write(tmp_path, [GOOD, {**GOOD, **change}])
    with pytest.raises(DataError, match=message) as info:
        formats.read_seed(path)
    assert info.value.source == str(path) and info.value.row == 2 and info.value.field == field


def test_bad_training_record(tmp_path):
    rows, _ = formats.read_seed(QUIZ / "quiz_train.jsonl")
    good = json.loads((QUIZ / "quiz_train.jsonl").read_text(encoding="utf-8").splitlines()[0])
    bad = {**good, "instruction": good["instruction"].replace("### 回答:\n", "")}
    with pytest.raises(DataError, match="training format") as info:
        formats.read_seed(_write(tmp_path, [good, bad]))
    assert (info.value.row, info.value.field) == (2, "instruction")
    assert len(rows) == 10


def test_bad_jmmlu_rows(tmp_path):
    def jm(text: str) -> Path:
        path = tmp_path / "x.csv"
        path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
        return path

    with pytest.raises(DataError, match="missing") as info:
        formats.read_jmmlu(jm("q1,a,b,c,d,A\nq2,a,b,c,d,\n"))
    assert (info.value.row, info.value.field) == (2, "answer")
    with pytest.raises(DataError, match="'E' is not an answer letter"):
        formats.read_jmmlu(jm("q1,a,b,c,d,E\n"))
    with pytest.raises(DataError, match="expected 6 fields"):
        formats.read_jmmlu(jm("q1,a,b,c,A\n"))
    with pytest.raises(DataError, match="identical"):
        formats.read_jmmlu(jm("q1,a,b,a,d,A\n"))


def test_jaqket_answer_outside_its_candidates_names_the_qid(tmp_path):
    rec = json.loads((QUIZ / "jaqket_v1_dev.json").read_text(encoding="utf-8").splitlines()[0])
    path = _write(tmp_path, [{**rec, "answer_entity": "エベレスト"}])
    with pytest.raises(DataError, match=f"qid {rec['qid']}: answer_entity 'エベレスト' is not among"):
        formats.read_jaqket_v1(path)
    with pytest.raises(DataError, match="19 choices, but 20 are declared"):
        formats.read_jaqket_v1(_write(tmp_path, [{**rec, "answer_candidates": rec["answer_candidates"][:19]}]))


def test_categories_and_jmmlu_grouping():
    assert categories(FIXTURE_SET, DataSource.fixtures().root) == ["芸能", "学問", "雑学", "アニメ", "スポーツ"]
    root = QUIZ / "data"
    assert categories(JMMLU_SET, root) == ["学問", "雑学", "marketing"]
    assert jmmlu_category("college_physics") == "学問" and jmmlu_category("global_facts") == "雑学"
    assert jmmlu_category("management") == "management"
    split = category_split(JMMLU_SET, "学問", root, "loglik")
    assert len(split.rows) == 5 and split.sha256 and split.rows[0]["subject"] == "high_school_physics"


def test_session_sets_follow_the_data():
    sets, why = session_sets(DataSource.local(QUIZ / "data"), [])
    assert [s.slug for s in sets] == ["jmmlu", "aio_dev1", "aio_dev2"] and not why
    sets, why = session_sets(DataSource.local(REPO / "fixtures" / "jglue"), [])
    assert sets == [] and "no quiz data under" in why
    assert [s.slug for s in session_sets(DataSource.fixtures(), [])[0]] == ["fixtures"]


# -- what the readers accept (BOM, one pretty-printed object, full-width gold, an Alpaca training record) ----------

def test_a_bom_is_accepted_in_json_json_lines_and_tsv(tmp_path):
    array = tmp_path / "a.json"
    array.write_bytes(b"\xef\xbb\xbf" + json.dumps([GOOD], ensure_ascii=False).encode("utf-8"))
    lines = tmp_path / "b.jsonl"
    lines.write_bytes(b"\xef\xbb\xbf" + (json.dumps(GOOD, ensure_ascii=False) + "\n").encode("utf-8"))
    tsv = tmp_path / "c.txt"
    tsv.write_bytes(b"\xef\xbb\xbf" + (QUIZ / "data" / "aio" / "aio_01_dev1.txt").read_bytes())
    for path in (array, lines):
        assert formats.detect_format(path) == "eval" and formats.read_seed(path)[0][0]["gold"] == 1
    assert formats.detect_format(tsv) == "aio_tsv" and formats.read_aio_tsv(tsv)[0][0]["answers"] == ["東海道新幹線"]


def test_one_pretty_printed_object_is_one_record(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(GOOD, ensure_ascii=False, indent=2), encoding="utf-8")
    rows, _ = formats.read_seed(path)
    assert len(rows) == 1 and rows[0]["choices"][1] == "富士山" and rows[0]["source"] == "one.json, record 1"


@pytest.mark.parametrize("output", ["１: 富士山", "１", "1", "１：富士山", "①", "富士山"])
def test_full_width_and_bare_gold_labels(tmp_path, output):
    assert formats.read_seed(_write(tmp_path, [{**GOOD, "output": output}]))[0][0]["gold"] == 1


def test_an_alpaca_training_record_with_an_empty_input(tmp_path):
    good = json.loads((QUIZ / "quiz_train.jsonl").read_text(encoding="utf-8").splitlines()[0])
    rows, _ = formats.read_seed(_write(tmp_path, [{**good, "input": ""}]))
    assert len(rows[0]["choices"]) == 5 and rows[0]["input"] is None and rows[0]["instruction"] == good["instruction"]
