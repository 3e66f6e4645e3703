"""MARC-ja prompts, character for character, against the spec's table (section 3.3)."""

from __future__ import annotations

import json

import pytest

from kensa.data import DataSource, Split, read_jsonl
from kensa.errors import DataError
from kensa.tasks.jglue.marc_ja import DATASET, TASK
from kensa.tasks.render import prepare

VARIANTS = {v.template.version: v for v in TASK.variants()}


def marc(i, s, label):
    return {"sentence": s, "label": label, "review_id": f"R{i}"}


QUERY = marc(9, "S9", "negative")
SHOT1 = marc(1, "S1", "positive")
SHOT2 = marc(2, "S2", "negative")

ALPACA = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"
LLAMA = "<s>[INST] <<SYS>>\nあなたは役立つアシスタントです。\n<</SYS>>\n\n"
INSTR = "以下の製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。"

EXPECTED_0SHOT = {
    "0.2": "製品レビューをnegativeかpositiveのいずれかのセンチメントに分類してください。出力は小文字化してください。 \n\n"
           "製品レビュー:S9\nセンチメント:",
    "0.3": ALPACA + f"### 指示:\n{INSTR}\n\n### 入力:\nS9\n\n### 応答:\n",
    "0.4": "ユーザー: 与えられた製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。"
           "<NL>システム: 分かりました。<NL>ユーザー: S9<NL>システム: ",
    "0.5": "ユーザー: 与えられた製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。"
           "\nシステム: 分かりました。\nユーザー: S9\nシステム: ",
    "0.6": LLAMA + f"{INSTR}\n\nS9 [/INST] ",
}

EXPECTED_2SHOT = {
    "0.2": "製品レビューをnegativeかpositiveのいずれかのセンチメントに分類してください。出力は小文字化してください。 \n\n"
           "製品レビュー:S1\nセンチメント:positive\n\n製品レビュー:S2\nセンチメント:negative\n\n製品レビュー:S9\nセンチメント:",
    "0.3": ALPACA + f"### 指示:\n{INSTR}\n\n### 入力:\nS1\n\n### 応答:\nポジティブ\n\n"
           f"### 指示:\n{INSTR}\n\n### 入力:\nS2\n\n### 応答:\nネガティブ\n\n"
           f"### 指示:\n{INSTR}\n\n### 入力:\nS9\n\n### 応答:\n",
    "0.4": "ユーザー: 与えられた製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。"
           "<NL>システム: 分かりました。<NL>ユーザー: S1<NL>システム: ポジティブ<NL>ユーザー: S2<NL>システム: ネガティブ"
           "<NL>ユーザー: S9<NL>システム: ",
    "0.5": "ユーザー: 与えられた製品レビューを、ポジティブまたはネガティブの感情クラスのいずれかに分類してください。"
           "\nシステム: 分かりました。\nユーザー: S1\nシステム: ポジティブ\nユーザー: S2\nシステム: ネガティブ"
           "\nユーザー: S9\nシステム: ",
    "0.6": LLAMA + f"{INSTR}\n\nS1 [/INST] ポジティブ </s><s>[INST] {INSTR}\n\nS2 [/INST] ネガティブ </s><s>[INST] "
           f"{INSTR}\n\nS9 [/INST] ",
}


def render(version, shots, query=QUERY):
    v = VARIANTS[version]
    return v.template.context([v.view(s) for s in shots], v.view(query))


@pytest.mark.parametrize("version", sorted(EXPECTED_0SHOT))
def test_prompts(version):
    assert render(version, []) == EXPECTED_0SHOT[version]
    assert render(version, [SHOT1, SHOT2]) == EXPECTED_2SHOT[version]


@pytest.mark.parametrize("version", sorted(EXPECTED_0SHOT))
def test_continuations_are_the_versions_label_words(version):
    (doc,) = prepare(VARIANTS[version], Split([QUERY], "mem"), None, 0, None)
    assert doc.continuations == (["positive", "negative"] if version == "0.2" else ["ポジティブ", "ネガティブ"])
    assert doc.gold == 1


def test_task_ids_and_metrics():
    assert [v.task_id for v in TASK.variants()] == [f"marc_ja-1.1-{v}" for v in ("0.2", "0.3", "0.4", "0.5", "0.6")]
    assert TASK.metrics == ("acc", "acc_norm", "balanced_acc", "mcc", "macro_f1")
    assert TASK.num_fewshot == 3 and not TASK.stratified


@pytest.mark.parametrize("label", ["neutral", "Positive", 2])
def test_bad_label_is_a_data_error(tmp_path, label):
    d = tmp_path / "jglue" / "marc_ja"
    d.mkdir(parents=True)
    (d / "valid-v1.0.json").write_text(json.dumps(SHOT1) + "\n" + json.dumps({**QUERY, "label": label}) + "\n",
                                       encoding="utf-8")
    (d / "train-v1.0.json").write_text(json.dumps(SHOT1) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        TASK.load(DataSource.local(tmp_path))
    msg = str(err.value)
    assert "valid-v1.0.json, row 2, field 'label'" in msg


def test_without_marc_data_the_error_names_the_missing_file(tmp_path):
    with pytest.raises(DataError, match="marc_ja"):
        TASK.load(DataSource.local(tmp_path))


def test_fixture_labels_are_balanced():
    split = read_jsonl(DATASET, DataSource.fixtures().root / "jglue/marc_ja/valid-v1.0.json")
    labels = [r["label"] for r in split.rows]
    assert labels.count("positive") == labels.count("negative") == 16
