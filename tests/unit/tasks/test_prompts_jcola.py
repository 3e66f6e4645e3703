"""JCoLA prompts, character for character, against the spec's table (section 3.9): targets and
continuations carry a leading space, so a shot reads ``システム:  いいえ`` (two spaces) in 0.4/0.5."""

from __future__ import annotations

import json

import pytest

from kensa.data import DataSource, Split, read_jsonl
from kensa.errors import DataError
from kensa.run.multiple_choice import evaluate_multiple_choice
from kensa.tasks.jglue.jcola import DATASET, TASK
from kensa.tasks.render import prepare
from tests.helpers import ScoringLM

VARIANTS = {v.template.version: v for v in TASK.variants()}


def row(uid, s, label):
    return {"uid": uid, "source": "x", "label": label, "diacritic": "g" if label else "*", "sentence": s, "original": s}


QUERY = row(9, "S9", 1)
SHOT1 = row(1, "S1", 0)
SHOT2 = row(2, "S2", 1)

ALPACA = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"
LLAMA = "<s>[INST] <<SYS>>\nあなたは役立つアシスタントです。\n<</SYS>>\n\n"
INSTR = "与えられた文が文法的であるかを回答してください。"

EXPECTED_0SHOT = {
    "0.0": "S9\n質問: この文は文法的ですか？\n答え:",
    "0.3": ALPACA + f"### 指示:\n{INSTR}\n\n出力は以下から選択してください：\nはい\nいいえ\n\n### 入力:\nS9\n\n### 応答:\n",
    "0.4": f"ユーザー: {INSTR}出力は以下から選択してください：<NL>はい<NL>いいえ<NL>システム: 分かりました。<NL>"
           "ユーザー: S9<NL>システム: ",
    "0.5": f"ユーザー: {INSTR}出力は以下から選択してください：\nはい\nいいえ\nシステム: 分かりました。\n"
           "ユーザー: S9\nシステム: ",
    "0.6": LLAMA + f"{INSTR}\n\n出力は以下から選択してください：\nはい\nいいえ\n\nS9 [/INST] ",
}

EXPECTED_2SHOT = {
    "0.0": "S1\n質問: この文は文法的ですか？\n答え: いいえ\n\nS2\n質問: この文は文法的ですか？\n答え: はい\n\n"
           "S9\n質問: この文は文法的ですか？\n答え:",
    "0.3": ALPACA + f"### 指示:\n{INSTR}\n\n出力は以下から選択してください：\nはい\nいいえ\n\n### 入力:\nS1\n\n### 応答:\n いいえ\n\n"
           f"### 指示:\n{INSTR}\n\n出力は以下から選択してください：\nはい\nいいえ\n\n### 入力:\nS2\n\n### 応答:\n はい\n\n"
           f"### 指示:\n{INSTR}\n\n出力は以下から選択してください：\nはい\nいいえ\n\n### 入力:\nS9\n\n### 応答:\n",
    "0.4": f"ユーザー: {INSTR}出力は以下から選択してください：<NL>はい<NL>いいえ<NL>システム: 分かりました。<NL>"
           "ユーザー: S1<NL>システム:  いいえ<NL>ユーザー: S2<NL>システム:  はい<NL>ユーザー: S9<NL>システム: ",
    "0.5": f"ユーザー: {INSTR}出力は以下から選択してください：\nはい\nいいえ\nシステム: 分かりました。\n"
           "ユーザー: S1\nシステム:  いいえ\nユーザー: S2\nシステム:  はい\nユーザー: S9\nシステム: ",
    "0.6": LLAMA + f"{INSTR}\n\n出力は以下から選択してください：\nはい\nいいえ\n\nS1 [/INST]  いいえ </s><s>[INST] "
           f"{INSTR}\n\n出力は以下から選択してください：\nはい\nいいえ\n\nS2 [/INST]  はい </s><s>[INST] "
           f"{INSTR}\n\n出力は以下から選択してください：\nはい\nいいえ\n\nS9 [/INST] ",
}


def render(version, shots, query=QUERY):
    v = VARIANTS[version]
    return v.template.context([v.view(s) for s in shots], v.view(query))


@pytest.mark.parametrize("version", sorted(EXPECTED_0SHOT))
def test_prompts(version):
    assert render(version, []) == EXPECTED_0SHOT[version]
    assert render(version, [SHOT1, SHOT2]) == EXPECTED_2SHOT[version]


def test_two_spaces_before_the_shot_answer():
    assert "システム:  いいえ" in render("0.4", [SHOT1]) and "システム:  いいえ" in render("0.5", [SHOT1])
    assert "[/INST]  いいえ" in render("0.6", [SHOT1])


@pytest.mark.parametrize("version", sorted(EXPECTED_0SHOT))
def test_continuations_have_the_leading_space(version):
    (doc,) = prepare(VARIANTS[version], Split([QUERY], "mem"), None, 0, None)
    assert doc.continuations == [" いいえ", " はい"]  # index = label: 0 unacceptable, 1 acceptable
    assert doc.gold == 1


def test_tie_is_unacceptable_and_metrics_are_colas():
    """pred = ll(" はい") > ll(" いいえ"): a tie predicts unacceptable (0)."""
    docs = [QUERY, SHOT1, SHOT2, row(3, "S3", 0)]
    lm = ScoringLM(lambda ctx, cont: -1.0)  # every continuation ties
    run = evaluate_multiple_choice(VARIANTS["0.0"], lm, Split(docs, "mem"), None, 0)
    assert all(s["pred"] == 0 for s in run.samples)
    assert list(run.metrics) == ["balanced_acc", "mcc", "mcc_stderr", "macro_f1"]
    assert run.metrics["balanced_acc"] == 0.5 and run.metrics["mcc"] == 0.0
    assert run.metrics["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)


def test_task_ids_and_sampling():
    assert [v.task_id for v in TASK.variants()] == [f"jcola-0.2-{v}" for v in ("0.0", "0.3", "0.4", "0.5", "0.6")]
    assert TASK.stratified and TASK.num_fewshot == 3
    assert TASK.metrics == ("balanced_acc", "mcc", "macro_f1")


def test_shots_are_stratified_by_target():
    """A pool of 8 acceptable and 2 unacceptable: k=3 -> floors 2, 0 -> +1 unacceptable: 2 + 1."""
    pool = [row(i, f"P{i}", 1) for i in range(8)] + [row(10, "B0", 0), row(11, "B1", 0)]
    for doc in prepare(VARIANTS["0.4"], Split([QUERY, SHOT1, SHOT2], "mem"), Split(pool, "mem"), 3, None):
        labels = sorted(1 if i < 10 else 0 for i in doc.shot_ids)
        assert labels == [0, 1, 1]


@pytest.mark.parametrize("label", [2, -1, "1"])
def test_bad_label_is_a_data_error(tmp_path, label):
    d = tmp_path / "jcola"
    d.mkdir()
    (d / "in_domain_valid-v1.0.json").write_text(
        json.dumps(QUERY) + "\n" + json.dumps({**SHOT1, "label": label}) + "\n", encoding="utf-8")
    (d / "in_domain_train-v1.0.json").write_text(json.dumps(SHOT1) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        TASK.load(DataSource.local(tmp_path))
    msg = str(err.value)
    assert "in_domain_valid-v1.0.json, row 2, field 'label'" in msg


def test_fixture_labels_are_balanced():
    split = read_jsonl(DATASET, DataSource.fixtures().root / "jcola/in_domain_valid-v1.0.json")
    labels = [r["label"] for r in split.rows]
    assert labels.count(0) == labels.count(1) == 15
