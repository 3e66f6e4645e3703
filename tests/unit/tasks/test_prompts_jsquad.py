"""JSQuAD: prompts character for character against the spec's table (section 3.4), the SQuAD-layout
reader and its errors, the generation budget, and scoring through the generation loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kensa.data import DataSource
from kensa.errors import DataError
from kensa.run.generation import evaluate_generation
from kensa.tasks.jglue.jsquad import DATASET, TASK_1_1, TASK_1_2, read_squad_json
from kensa.tasks.render import prepare_generation
from tests.helpers import REPO, CharLM

SHARED = REPO.parent / "shared" / "data" / "jglue" / "jsquad"

ALPACA = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"
LLAMA = "<s>[INST] <<SYS>>\nあなたは役立つアシスタントです。\n<</SYS>>\n\n"
INSTR = "与えられた文脈から、質問に対する答えを抜き出してください。"

ROW = {"id": "x0p0q0", "title": "T", "context": "T [SEP]  P。 ", "question": "Q?",
       "answers": {"text": ["A", "AB"], "answer_start": [0, 0]}, "is_impossible": False}

EXPECTED_1_1 = {
    "0.1": "[題名]と[問題]から[質問]に対する[答え]を抜き出しなさい\n\n[題名]:T\n[問題]:P。\n[質問]:Q?\n[答え]:",
    "0.2": "質問に対する回答を文章から一言で抽出してください。回答は名詞で答えてください。\n\n文章:P。\n質問:Q?\n回答:",
    "0.3": ALPACA + f"### 指示:\n{INSTR}\n\n### 入力:\n文脈：P。\n質問：Q?\n\n### 応答:\n",
    "0.4": f"ユーザー: {INSTR}<NL>システム: 分かりました。<NL>ユーザー: 文脈：P。<NL>質問：Q?<NL>システム: ",
    "0.5": f"ユーザー: {INSTR}\nシステム: 分かりました。\nユーザー: 文脈：P。\n質問：Q?\nシステム: ",
    "0.6": LLAMA + f"{INSTR}\n\n文脈：P。\n質問：Q? [/INST] ",
}
EXPECTED_1_2 = {
    "0.2": "質問に対する回答を題名と文章から一言で抽出してください。回答は名詞で答えてください。\n\n題名:T\n文章:P。\n質問:Q?\n回答:",
    "0.3": ALPACA + f"### 指示:\n{INSTR}\n\n### 入力:\n文脈：T\nP。\n質問：Q?\n\n### 応答:\n",
    "0.4": f"ユーザー: {INSTR}<NL>システム: 分かりました。<NL>ユーザー: 文脈：T<NL>P。<NL>質問：Q?<NL>システム: ",
    "0.5": f"ユーザー: {INSTR}\nシステム: 分かりました。\nユーザー: 文脈：T\nP。\n質問：Q?\nシステム: ",
    "0.6": LLAMA + f"{INSTR}\n\n文脈：T\nP。\n質問：Q? [/INST] ",
}
SEPS = {"0.1": "\n\n", "0.2": "\n\n", "0.3": "\n\n", "0.4": "<NL>", "0.5": "\n", "0.6": " </s><s>[INST] "}


def _split(rows):
    from kensa.data import Split

    return Split(rows, "mem", None, None)


@pytest.mark.parametrize(("task", "expected"), [(TASK_1_1, EXPECTED_1_1), (TASK_1_2, EXPECTED_1_2)],
                         ids=["1.1", "1.2"])
def test_zero_shot_prompts_match_the_spec(task, expected):
    assert [t.version for t in task.templates] == list(expected)  # 1.2 has no 0.1
    for variant in task.variants():
        doc = prepare_generation(variant, _split([ROW]), None, 0, None, CharLM())[0]
        assert doc.prompt == expected[variant.template.version], variant.task_id
        assert doc.until == (("<NL>",) if variant.template.version == "0.4" else ("\n",))


@pytest.mark.parametrize("task", [TASK_1_1, TASK_1_2], ids=["1.1", "1.2"])
def test_shots_show_the_first_gold_answer_and_the_versions_separator(task):
    shot = {**ROW, "id": "s", "question": "SQ", "answers": {"text": ["SA", "other"], "answer_start": [0, 0]}}
    for variant in task.variants():
        doc = prepare_generation(variant, _split([ROW]), _split([shot]), 1, None, CharLM())[0]
        v = variant.template.version
        zero = (EXPECTED_1_1 if task is TASK_1_1 else EXPECTED_1_2)[v]
        desc = variant.template.description
        shot_text = zero[len(desc):].replace("Q?", "SQ") + "SA"
        assert doc.prompt == desc + shot_text + SEPS[v] + zero[len(desc):], variant.task_id


def test_budget_is_the_longest_gold_answer_in_model_tokens():
    doc = prepare_generation(TASK_1_1.variants()[0], _split([ROW]), None, 0, None, CharLM())[0]
    assert doc.max_new_tokens == 2  # "AB" is two characters = two tokens of CharLM
    assert doc.golds == ["A", "AB"]


def test_scores_are_the_best_over_golds_on_the_0_100_scale():
    variant = TASK_1_1.variants()[1]
    rows = [ROW, {**ROW, "id": "x0p0q1", "question": "R?"}, {**ROW, "id": "x1p0q0", "context": "U [SEP] V"}]
    prompts = {d.prompt: d for d in prepare_generation(variant, _split(rows), None, 0, None, CharLM())}
    by_id = {d.row["id"]: p for p, d in prompts.items()}
    answers = {by_id["x0p0q0"]: "AB", by_id["x0p0q1"]: "ＡＢ", by_id["x1p0q0"]: "C"}
    lm = CharLM(lambda r: answers.get(r.context, ""))
    run = evaluate_generation(variant, lm, _split(rows), None, 0)
    assert run.metrics["exact_match"] == pytest.approx(200 / 3)  # "ＡＢ" normalises to "AB" (neologdn)
    got = {s["doc"]["id"]: (s["exact_match"], s["generation"], s["gold"]) for s in run.samples}
    assert got["x1p0q0"] == (0.0, "C", ["A", "AB"])
    sample = run.samples[0]
    assert set(sample) >= {"task", "doc_id", "doc", "prompt", "until", "max_new_tokens", "generation", "gold",
                           "exact_match", "f1"}
    # Questions on one paragraph are one cluster for the gate's paired test.
    assert run.items(["exact_match"])["clusters"].count(ROW["context"]) == 2


def _write(tmp_path, doc) -> Path:
    path = tmp_path / "valid-v1.3.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def _squad(context="T [SEP] P", answers=({"text": "A", "answer_start": 0},)):
    return {"data": [{"title": "T", "paragraphs": [{"context": "T [SEP] P", "qas": [
        {"id": "q0", "question": "Q", "answers": [{"text": "A", "answer_start": 0}], "is_impossible": False}]},
        {"context": context, "qas": [{"id": "q1", "question": "Q", "answers": list(answers), "is_impossible": False}]},
    ]}]}


def test_reader_flattens_in_file_order(tmp_path):
    split = read_squad_json(DATASET, _write(tmp_path, _squad()), "validation")
    assert [r["id"] for r in split.rows] == ["q0", "q1"]
    assert split.rows[0]["answers"] == {"text": ["A"], "answer_start": [0]}
    assert split.version == "1.3" and len(split.sha256) == 64


def test_context_without_sep_names_file_row_and_field(tmp_path):
    path = _write(tmp_path, _squad(context="T P"))
    split = read_squad_json(DATASET, path, "validation")
    with pytest.raises(DataError, match=r"valid-v1.3.json, row 2, field 'context': no '\[SEP\]'"):
        TASK_1_1.check_rows(split)


def test_answers_of_the_wrong_shape_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"row 2, field 'data\[0\].paragraphs\[1\].qas\[0\].answers'"):
        read_squad_json(DATASET, _write(tmp_path, _squad(answers=("A",))), "validation")
    split = read_squad_json(DATASET, _write(tmp_path, _squad(answers=())), "validation")
    with pytest.raises(DataError, match=r"row 2, field 'answers'"):
        TASK_1_1.check_rows(split)


@pytest.mark.parametrize(("content", "message"), [
    (b'{"data": [', r"row 1: malformed JSON"),
    (b'\xff\xfe{}', r"not UTF-8"),
    (b'[]', r"'data' list"),
])
def test_damaged_files_are_named(tmp_path, content, message):
    path = tmp_path / "valid-v1.3.json"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_squad_json(DATASET, path, "validation")


def test_fixtures_load_with_a_train_pool():
    eval_split, pool = TASK_1_1.load(DataSource.fixtures())
    assert len(eval_split.rows) >= 30 and pool is not None and pool.split == "train"
    assert len({r["answers"]["text"][0] for r in eval_split.rows}) == len(eval_split.rows)  # varied answers


@pytest.mark.skipif(not (SHARED / "valid-v1.3.json").exists(), reason=f"JSQuAD v1.3 is not under {SHARED}")
def test_real_data_loads_and_shots_fall_back_to_test():
    with pytest.warns(UserWarning, match="from the 'test' split"):
        eval_split, pool = TASK_1_1.load(DataSource.local(SHARED.parents[1]))
    assert len(eval_split.rows) == 4442  # spec 3.4: validation has 4,442 questions
    assert pool is not None and pool.split == "test" and len(pool.rows) == 4420
    assert all("[SEP]" in r["context"] for r in eval_split.rows)
