"""JNLI prompts, character for character, against the spec's table (section 3.2), for task versions
1.1 (English label words, published) and 1.3 (Japanese label words, stratified shots, HEAD).

The expected strings are typed from the spec, not built from kensa's template constants.
"""

from __future__ import annotations

import json
import random

import pytest

from kensa.data import DataSource, Split, read_jsonl
from kensa.errors import DataError
from kensa.tasks.jglue.jnli import DATASET, TASK_1_1, TASK_1_3
from kensa.tasks.render import prepare

V11 = {v.template.version: v for v in TASK_1_1.variants()}
V13 = {v.template.version: v for v in TASK_1_3.variants()}


def jnli(i, p, h, label):
    return {"sentence_pair_id": str(i), "yjcaptions_id": "1-2-3", "sentence1": p, "sentence2": h, "label": label}


QUERY = jnli(9, "P9", "H9", "neutral")
SHOT1 = jnli(1, "P1", "H1", "entailment")
SHOT2 = jnli(2, "P2", "H2", "contradiction")

ALPACA = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"
LLAMA = "<s>[INST] <<SYS>>\nあなたは役立つアシスタントです。\n<</SYS>>\n\n"

EXPECTED_0SHOT_13 = {
    "0.2": "前提と仮説の関係を含意、矛盾、中立の中から回答してください。\n\n制約:\n"
           "- 前提から仮説が、論理的知識や常識的知識を用いて導出可能である場合は含意と出力\n"
           "- 前提と仮説が両立しえない場合は矛盾と出力\n- そのいずれでもない場合は中立と出力\n\n"
           "前提:P9\n仮説:H9\n関係:",
    "0.3": ALPACA + "### 指示:\n与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n"
           "含意\n矛盾\n中立\n\n### 入力:\n前提：P9\n仮説：H9\n\n### 応答:\n",
    "0.4": "ユーザー: 与えられた前提と仮説の関係を回答してください。出力は以下から選択してください：<NL>含意<NL>矛盾<NL>中立"
           "<NL>システム: 分かりました。<NL>ユーザー: 前提：P9<NL>仮説：H9<NL>システム: ",
    "0.5": "ユーザー: 与えられた前提と仮説の関係を回答してください。出力は以下から選択してください：\n含意\n矛盾\n中立"
           "\nシステム: 分かりました。\nユーザー: 前提：P9\n仮説：H9\nシステム: ",
    "0.6": LLAMA + "与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n含意\n矛盾\n中立\n\n"
           "前提：P9\n仮説：H9 [/INST] ",
}

EXPECTED_0SHOT_11 = {
    "0.2": "前提と仮説の関係をentailment、contradiction、neutralの中から回答してください。\n\n制約:\n"
           "- 前提から仮説が、論理的知識や常識的知識を用いて導出可能である場合はentailmentと出力\n"
           "- 前提と仮説が両立しえない場合はcontradictionと出力\n- そのいずれでもない場合はneutralと出力\n\n"
           "前提:P9\n仮説:H9\n関係:",
    "0.3": ALPACA + "### 指示:\n与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n"
           "entailment\ncontradiction\nneutral\n\n### 入力:\n前提：P9\n仮説：H9\n\n### 応答:\n",
    "0.4": "ユーザー: 与えられた前提と仮説の関係を回答してください。出力は以下から選択してください：<NL>entailment"
           "<NL>contradiction<NL>neutral<NL>システム: 分かりました。<NL>ユーザー: 前提：P9<NL>仮説：H9<NL>システム: ",
    "0.5": "ユーザー: 与えられた前提と仮説の関係を回答してください。出力は以下から選択してください：\nentailment"
           "\ncontradiction\nneutral\nシステム: 分かりました。\nユーザー: 前提：P9\n仮説：H9\nシステム: ",
}

# 2-shot, shots in the order SHOT1 (entailment), SHOT2 (contradiction)
EXPECTED_2SHOT_13 = {
    "0.2": EXPECTED_0SHOT_13["0.2"].replace("前提:P9\n仮説:H9\n関係:", "")
           + "前提:P1\n仮説:H1\n関係:含意\n\n前提:P2\n仮説:H2\n関係:矛盾\n\n前提:P9\n仮説:H9\n関係:",
    "0.3": ALPACA
           + "### 指示:\n与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n"
             "含意\n矛盾\n中立\n\n### 入力:\n前提：P1\n仮説：H1\n\n### 応答:\n含意\n\n"
           + "### 指示:\n与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n"
             "含意\n矛盾\n中立\n\n### 入力:\n前提：P2\n仮説：H2\n\n### 応答:\n矛盾\n\n"
           + "### 指示:\n与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n"
             "含意\n矛盾\n中立\n\n### 入力:\n前提：P9\n仮説：H9\n\n### 応答:\n",
    "0.4": "ユーザー: 与えられた前提と仮説の関係を回答してください。出力は以下から選択してください：<NL>含意<NL>矛盾<NL>中立"
           "<NL>システム: 分かりました。<NL>ユーザー: 前提：P1<NL>仮説：H1<NL>システム: 含意<NL>"
           "ユーザー: 前提：P2<NL>仮説：H2<NL>システム: 矛盾<NL>ユーザー: 前提：P9<NL>仮説：H9<NL>システム: ",
    "0.5": "ユーザー: 与えられた前提と仮説の関係を回答してください。出力は以下から選択してください：\n含意\n矛盾\n中立"
           "\nシステム: 分かりました。\nユーザー: 前提：P1\n仮説：H1\nシステム: 含意\n"
           "ユーザー: 前提：P2\n仮説：H2\nシステム: 矛盾\nユーザー: 前提：P9\n仮説：H9\nシステム: ",
    "0.6": LLAMA
           + "与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n含意\n矛盾\n中立\n\n"
             "前提：P1\n仮説：H1 [/INST] 含意 </s><s>[INST] "
           + "与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n含意\n矛盾\n中立\n\n"
             "前提：P2\n仮説：H2 [/INST] 矛盾 </s><s>[INST] "
           + "与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n含意\n矛盾\n中立\n\n"
             "前提：P9\n仮説：H9 [/INST] ",
}

EXPECTED_2SHOT_11 = {
    "0.2": EXPECTED_0SHOT_11["0.2"].replace("前提:P9\n仮説:H9\n関係:", "")
           + "前提:P1\n仮説:H1\n関係:entailment\n\n前提:P2\n仮説:H2\n関係:contradiction\n\n前提:P9\n仮説:H9\n関係:",
    "0.3": ALPACA
           + "### 指示:\n与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n"
             "entailment\ncontradiction\nneutral\n\n### 入力:\n前提：P1\n仮説：H1\n\n### 応答:\nentailment\n\n"
           + "### 指示:\n与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n"
             "entailment\ncontradiction\nneutral\n\n### 入力:\n前提：P2\n仮説：H2\n\n### 応答:\ncontradiction\n\n"
           + "### 指示:\n与えられた前提と仮説の関係を回答してください。\n\n出力は以下から選択してください：\n"
             "entailment\ncontradiction\nneutral\n\n### 入力:\n前提：P9\n仮説：H9\n\n### 応答:\n",
    "0.4": "ユーザー: 与えられた前提と仮説の関係を回答してください。出力は以下から選択してください：<NL>entailment"
           "<NL>contradiction<NL>neutral<NL>システム: 分かりました。<NL>ユーザー: 前提：P1<NL>仮説：H1<NL>システム: entailment<NL>"
           "ユーザー: 前提：P2<NL>仮説：H2<NL>システム: contradiction<NL>ユーザー: 前提：P9<NL>仮説：H9<NL>システム: ",
    "0.5": "ユーザー: 与えられた前提と仮説の関係を回答してください。出力は以下から選択してください：\nentailment"
           "\ncontradiction\nneutral\nシステム: 分かりました。\nユーザー: 前提：P1\n仮説：H1\nシステム: entailment\n"
           "ユーザー: 前提：P2\n仮説：H2\nシステム: contradiction\nユーザー: 前提：P9\n仮説：H9\nシステム: ",
}


def render(variant, shots, query=QUERY):
    return variant.template.context([variant.view(s) for s in shots], variant.view(query))


@pytest.mark.parametrize("version", sorted(EXPECTED_0SHOT_13))
def test_13_prompts(version):
    assert render(V13[version], []) == EXPECTED_0SHOT_13[version]
    assert render(V13[version], [SHOT1, SHOT2]) == EXPECTED_2SHOT_13[version]


@pytest.mark.parametrize("version", sorted(EXPECTED_0SHOT_11))
def test_11_prompts(version):
    assert render(V11[version], []) == EXPECTED_0SHOT_11[version]
    assert render(V11[version], [SHOT1, SHOT2]) == EXPECTED_2SHOT_11[version]


def test_task_ids_versions_and_metrics():
    assert [v.task_id for v in TASK_1_1.variants()] == [f"jnli-1.1-{v}" for v in ("0.2", "0.3", "0.4", "0.5")]
    assert [v.task_id for v in TASK_1_3.variants()] == [f"jnli-1.3-{v}" for v in ("0.2", "0.3", "0.4", "0.5", "0.6")]
    assert TASK_1_1.metrics == ("acc", "acc_norm") and not TASK_1_1.stratified
    assert TASK_1_3.metrics == ("acc", "acc_norm", "balanced_acc", "mcc", "macro_f1") and TASK_1_3.stratified
    assert TASK_1_1.num_fewshot == TASK_1_3.num_fewshot == 3


def test_num_fewshot_option_reaches_both_versions():
    from kensa.cli.options import RunConfig

    rc = RunConfig(num_fewshot={"jnli": 1})
    assert rc.fewshot_for(TASK_1_1) == rc.fewshot_for(TASK_1_3) == 1


@pytest.mark.parametrize(("task", "words"), [(TASK_1_1, ["entailment", "contradiction", "neutral"]),
                                             (TASK_1_3, ["含意", "矛盾", "中立"])])
def test_continuations_are_label_words_without_space(task, words):
    for variant in task.variants():
        (doc,) = prepare(variant, Split([QUERY], "mem"), Split([SHOT1, SHOT2], "mem"), 0, None)
        assert doc.continuations == words
        assert doc.gold == 2
    # a Hub row holds the ClassLabel id instead of the string
    assert task.gold({**QUERY, "label": 1}) == 1


def test_13_shots_are_stratified_by_label_word():
    """k=3 from a pool of 4 entailment, 2 contradiction, 2 neutral: floors 1, 0, 0 -> +1 contradiction,
    +1 neutral -> one of each, drawn as the harness does."""
    pool = [jnli(i, f"P{i}", f"H{i}", lab) for i, lab in enumerate(
        ["entailment", "entailment", "contradiction", "entailment", "neutral", "entailment", "contradiction", "neutral"])]
    (doc,) = prepare(V13["0.4"], Split([QUERY], "mem"), Split(pool, "mem"), 3, None)
    rnd = random.Random(42)
    rnd.shuffle([QUERY])
    groups = {"entailment": [r for r in pool if r["label"] == "entailment"],
              "contradiction": [r for r in pool if r["label"] == "contradiction"],
              "neutral": [r for r in pool if r["label"] == "neutral"]}
    want = rnd.sample(groups["entailment"], 1) + rnd.sample(groups["contradiction"], 1) + rnd.sample(groups["neutral"], 1)
    rnd.shuffle(want)
    assert doc.shot_ids == [r["sentence_pair_id"] for r in want]
    # 1.1 draws plainly with rnd.sample
    (doc11,) = prepare(V11["0.4"], Split([QUERY], "mem"), Split(pool, "mem"), 3, None)
    rnd = random.Random(42)
    rnd.shuffle([QUERY])
    assert doc11.shot_ids == [r["sentence_pair_id"] for r in rnd.sample(pool, 3)]


def test_label_outside_the_three_is_a_data_error(tmp_path):
    path = tmp_path / "jglue" / "jnli" / "valid-v1.3.json"
    path.parent.mkdir(parents=True)
    rows = [SHOT1, {**SHOT2, "label": "unknown"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "jglue" / "jnli" / "train-v1.3.json").write_text(json.dumps(SHOT1) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        TASK_1_3.load(DataSource.local(tmp_path))
    msg = str(err.value)
    assert "valid-v1.3.json, row 2, field 'label'" in msg and "unknown" in msg
    assert err.value.row == 2 and err.value.field == "label"


def test_pool_falls_back_to_test_and_records_it(tmp_path):
    d = tmp_path / "jglue" / "jnli"
    d.mkdir(parents=True)
    (d / "valid-v1.3.json").write_text(json.dumps(QUERY) + "\n", encoding="utf-8")
    (d / "test-v1.3.json").write_text(json.dumps(SHOT1) + "\n" + json.dumps(SHOT2) + "\n", encoding="utf-8")
    with pytest.warns(UserWarning, match="'test' split"):
        _, pool = TASK_1_1.load(DataSource.local(tmp_path))
    assert pool.provenance()["split"] == "test" and pool.source.endswith("test-v1.3.json")
    # an explicit pool (a file) wins, and is recorded
    other = tmp_path / "pool.json"
    other.write_text(json.dumps(SHOT2) + "\n", encoding="utf-8")
    _, pool = TASK_1_1.load(DataSource("local", tmp_path, pools=(("jnli", str(other)),)))
    assert [r["sentence_pair_id"] for r in pool.rows] == ["2"] and pool.source == str(other)


def test_fixture_labels_are_balanced():
    split = read_jsonl(DATASET, DataSource.fixtures().root / "jglue/jnli/valid-v1.3.json")
    labels = [r["label"] for r in split.rows]
    assert {lab: labels.count(lab) for lab in set(labels)} == {"entailment": 11, "contradiction": 11, "neutral": 11}
