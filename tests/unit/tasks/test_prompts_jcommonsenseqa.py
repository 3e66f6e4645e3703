"""JCommonsenseQA prompts, character for character, against the jp-stable harness spec (section 3.1).

Every expected string below is typed from the spec's table (DESCRIPTION / doc_to_text / target /
SEP_fs), not built from kensa's template constants, so a changed space, colon width, separator
or system prompt fails here. Assembly follows spec 2.1:
``DESCRIPTION + SEP_fs.join(text(shot) + target(shot)) + SEP_fs + text(query)``, no SEP_fs at 0-shot.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kensa.data import Split
from kensa.tasks.jglue.jcommonsenseqa import TASK
from tests.helpers import REPO
from kensa.tasks.render import prepare

VERSIONS = ["0.1", "0.2", "0.2.1", "0.3", "0.4", "0.5", "0.6"]
VARIANTS = {v.template.version: v for v in TASK.variants()}


def jcqa(q_id, question, choices, label):
    return {"q_id": q_id, "question": question, **{f"choice{i}": c for i, c in enumerate(choices)}, "label": label}


QUERY = jcqa(9, "Q9", ["りんご", "みかん", "ぶどう", "もも", "なし"], 1)
SHOT1 = jcqa(1, "Q1", ["a", "b", "c", "d", "e"], 2)
SHOT2 = jcqa(2, "Q2", ["f", "g", "h", "i", "j"], 4)


def render(version, shots, query=QUERY):
    template = VARIANTS[version].template
    return template.context([TASK.view(s) for s in shots], TASK.view(query))


# --- 0-shot: DESCRIPTION + doc_to_text(query) ---------------------------------------------------

EXPECTED_0SHOT = {
    "0.1": "[問題]に対する[答え]を[選択肢]の中から選んでください。\n\n"
           "[問題]:Q9\n[選択肢]:[りんご, みかん, ぶどう, もも, なし]\n[答え]:",
    "0.2": "質問と回答の選択肢を入力として受け取り、選択肢から回答を選択してください。"
           "なお、回答は選択肢の番号(例:0)でするものとします。 \n\n"
           "質問:Q9\n選択肢:0.りんご,1.みかん,2.ぶどう,3.もも,4.なし\n回答:",
    "0.2.1": "与えられた選択肢の中から、最適な答えを選んでください。 \n\n"
             "質問：Q9\n選択肢：\n- りんご\n- みかん\n- ぶどう\n- もも\n- なし\n回答：",
    "0.3": "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"
           "### 指示:\n与えられた選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n"
           "- りんご\n- みかん\n- ぶどう\n- もも\n- なし\n\n### 入力:\nQ9\n\n### 応答:\n",
    "0.4": "ユーザー: 与えられた選択肢の中から、最適な答えを選んでください。<NL>システム: 分かりました。<NL>"
           "ユーザー: 質問：Q9<NL>選択肢：<NL>- りんご<NL>- みかん<NL>- ぶどう<NL>- もも<NL>- なし<NL>システム: ",
    "0.5": "ユーザー: 与えられた選択肢の中から、最適な答えを選んでください。\nシステム: 分かりました。\n"
           "ユーザー: 質問：Q9\n選択肢：\n- りんご\n- みかん\n- ぶどう\n- もも\n- なし\nシステム: ",
    "0.6": "<s>[INST] <<SYS>>\nあなたは役立つアシスタントです。\n<</SYS>>\n\n"
           "与えられた5つの選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n"
           "- りんご\n- みかん\n- ぶどう\n- もも\n- なし\n\n質問：Q9 [/INST] ",
}

# --- 2-shot: shots Q1 (gold c, index 2) and Q2 (gold j, index 4), then the query -------------------

EXPECTED_2SHOT = {
    "0.1": "[問題]に対する[答え]を[選択肢]の中から選んでください。\n\n"
           "[問題]:Q1\n[選択肢]:[a, b, c, d, e]\n[答え]:c\n\n"
           "[問題]:Q2\n[選択肢]:[f, g, h, i, j]\n[答え]:j\n\n"
           "[問題]:Q9\n[選択肢]:[りんご, みかん, ぶどう, もも, なし]\n[答え]:",
    "0.2": "質問と回答の選択肢を入力として受け取り、選択肢から回答を選択してください。"
           "なお、回答は選択肢の番号(例:0)でするものとします。 \n\n"
           "質問:Q1\n選択肢:0.a,1.b,2.c,3.d,4.e\n回答:2\n\n"
           "質問:Q2\n選択肢:0.f,1.g,2.h,3.i,4.j\n回答:4\n\n"
           "質問:Q9\n選択肢:0.りんご,1.みかん,2.ぶどう,3.もも,4.なし\n回答:",
    "0.2.1": "与えられた選択肢の中から、最適な答えを選んでください。 \n\n"
             "質問：Q1\n選択肢：\n- a\n- b\n- c\n- d\n- e\n回答：c\n\n"
             "質問：Q2\n選択肢：\n- f\n- g\n- h\n- i\n- j\n回答：j\n\n"
             "質問：Q9\n選択肢：\n- りんご\n- みかん\n- ぶどう\n- もも\n- なし\n回答：",
    "0.3": "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"
           "### 指示:\n与えられた選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n"
           "- a\n- b\n- c\n- d\n- e\n\n### 入力:\nQ1\n\n### 応答:\nc\n\n"
           "### 指示:\n与えられた選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n"
           "- f\n- g\n- h\n- i\n- j\n\n### 入力:\nQ2\n\n### 応答:\nj\n\n"
           "### 指示:\n与えられた選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n"
           "- りんご\n- みかん\n- ぶどう\n- もも\n- なし\n\n### 入力:\nQ9\n\n### 応答:\n",
    "0.4": "ユーザー: 与えられた選択肢の中から、最適な答えを選んでください。<NL>システム: 分かりました。<NL>"
           "ユーザー: 質問：Q1<NL>選択肢：<NL>- a<NL>- b<NL>- c<NL>- d<NL>- e<NL>システム: c<NL>"
           "ユーザー: 質問：Q2<NL>選択肢：<NL>- f<NL>- g<NL>- h<NL>- i<NL>- j<NL>システム: j<NL>"
           "ユーザー: 質問：Q9<NL>選択肢：<NL>- りんご<NL>- みかん<NL>- ぶどう<NL>- もも<NL>- なし<NL>システム: ",
    "0.5": "ユーザー: 与えられた選択肢の中から、最適な答えを選んでください。\nシステム: 分かりました。\n"
           "ユーザー: 質問：Q1\n選択肢：\n- a\n- b\n- c\n- d\n- e\nシステム: c\n"
           "ユーザー: 質問：Q2\n選択肢：\n- f\n- g\n- h\n- i\n- j\nシステム: j\n"
           "ユーザー: 質問：Q9\n選択肢：\n- りんご\n- みかん\n- ぶどう\n- もも\n- なし\nシステム: ",
    "0.6": "<s>[INST] <<SYS>>\nあなたは役立つアシスタントです。\n<</SYS>>\n\n"
           "与えられた5つの選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n"
           "- a\n- b\n- c\n- d\n- e\n\n質問：Q1 [/INST] c </s><s>[INST] "
           "与えられた5つの選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n"
           "- f\n- g\n- h\n- i\n- j\n\n質問：Q2 [/INST] j </s><s>[INST] "
           "与えられた5つの選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n"
           "- りんご\n- みかん\n- ぶどう\n- もも\n- なし\n\n質問：Q9 [/INST] ",
}


@pytest.mark.parametrize("version", VERSIONS)
def test_zero_shot_prompt(version):
    assert render(version, []) == EXPECTED_0SHOT[version]


@pytest.mark.parametrize("version", VERSIONS)
def test_two_shot_prompt(version):
    assert render(version, [SHOT1, SHOT2]) == EXPECTED_2SHOT[version]


def test_one_shot_04_matches_the_spec_rendering():
    """The spec's rendered 1-shot 0.4 example (its query choices elided as '…'), then in full."""
    got = render("0.4", [SHOT1])
    spec_prefix = ("ユーザー: 与えられた選択肢の中から、最適な答えを選んでください。<NL>システム: 分かりました。<NL>"
                   "ユーザー: 質問：Q1<NL>選択肢：<NL>- a<NL>- b<NL>- c<NL>- d<NL>- e<NL>システム: c<NL>"
                   "ユーザー: 質問：Q9<NL>選択肢：<NL>- ")
    assert got.startswith(spec_prefix)
    assert got.endswith("<NL>システム: ")
    assert got == (spec_prefix + "りんご<NL>- みかん<NL>- ぶどう<NL>- もも<NL>- なし<NL>システム: ")
    assert "\n" not in got  # 0.4 uses the literal 4-character <NL>, never a newline


def test_04_nl_is_literal():
    got = render("0.4", [SHOT1, SHOT2])
    assert got.count("<NL>") == 2 + 3 * 7 + 2  # description, 3 texts of 7, 2 separators
    assert "\n" not in got


def test_02_target_is_the_index_digit_and_others_the_choice_text():
    """0.2's shots end in the gold index ('2'); every other version shows the gold choice ('c')."""
    for version in VERSIONS:
        template = VARIANTS[version].template
        assert template.render_target(TASK.view(SHOT1)) == ("2" if version == "0.2" else "c"), version


def test_descriptions_trailing_spaces():
    assert VARIANTS["0.2"].template.description.endswith("。 \n\n")
    assert VARIANTS["0.2.1"].template.description.endswith("。 \n\n")
    assert not VARIANTS["0.1"].template.description.endswith(" \n\n")


def test_06_system_prompt_and_separator():
    got = render("0.6", [SHOT1, SHOT2])
    assert got.startswith("<s>[INST] <<SYS>>\nあなたは役立つアシスタントです。\n<</SYS>>\n\n")
    assert got.count(" </s><s>[INST] ") == 2
    assert got.count(" [/INST] ") == 3
    assert got.endswith(" [/INST] ")


# --- continuations and ids -----------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_continuations_are_choice_texts_without_leading_space(version):
    """Every version scores the 5 choice texts as written (even 0.2, whose shots show digits)."""
    docs = prepare(VARIANTS[version], Split([QUERY], "mem:eval"), Split([SHOT1, SHOT2], "mem:pool"), 2, None)
    (doc,) = docs
    assert doc.continuations == ["りんご", "みかん", "ぶどう", "もも", "なし"]
    assert doc.gold == 1
    assert sorted(doc.shot_ids) == [1, 2]
    shots = [SHOT1, SHOT2] if doc.shot_ids == [1, 2] else [SHOT2, SHOT1]
    assert doc.prompt == render(version, shots)
    if doc.shot_ids == [1, 2]:
        assert doc.prompt == EXPECTED_2SHOT[version]


def test_continuations_keep_spaces_in_choice_text():
    row = jcqa(5, "Q", [" a", "b ", "c", "d", "e"], 0)
    (doc,) = prepare(VARIANTS["0.1"], Split([row], "mem"), None, 0, None)
    assert doc.continuations == [" a", "b ", "c", "d", "e"]


def test_task_ids():
    assert [v.task_id for v in TASK.variants()] == [
        "jcommonsenseqa-1.1-0.1", "jcommonsenseqa-1.1-0.2", "jcommonsenseqa-1.1-0.2.1", "jcommonsenseqa-1.1-0.3",
        "jcommonsenseqa-1.1-0.4", "jcommonsenseqa-1.1-0.5", "jcommonsenseqa-1.1-0.6",
    ]
    assert TASK.num_fewshot == 3
    assert (TASK.eval_split, TASK.fewshot_split) == ("validation", "train")


def test_suite_test_ids():
    """The JGLUE suite collects one test per prompt version, with the task id as the pytest id."""
    repo = REPO
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "suites/jglue"],
        check=False, cwd=repo, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    ids = [ln.split("[", 1)[1].rstrip("]") for ln in out.stdout.splitlines() if "::test_task[" in ln]
    assert [i for i in ids if i.startswith("jcommonsenseqa-")] == [f"jcommonsenseqa-1.1-{v}" for v in VERSIONS]
    # the other JGLUE-suite tasks, in registry order (name, then task version)
    pv = ("0.2", "0.3", "0.4", "0.5", "0.6")
    assert [i for i in ids if not i.startswith("jcommonsenseqa-")] == (
        [f"jaqket_v2-0.1-{v}" for v in ("0.1", "0.2", "0.3", "0.4", "0.5")]
        + [f"jaqket_v2-0.2-{v}" for v in ("0.1", *pv)]
        + [f"jcola-0.2-{v}" for v in ("0.0", "0.3", "0.4", "0.5", "0.6")]
        + [f"jnli-1.1-{v}" for v in ("0.2", "0.3", "0.4", "0.5")]
        + [f"jnli-1.3-{v}" for v in pv]
        + [f"jsquad-1.1-{v}" for v in ("0.1", *pv)]
        + [f"jsquad-1.2-{v}" for v in pv]
        + [f"jsts-1.0-{v}" for v in ("0.3", "0.4", "0.5", "0.6")]
        + [f"marc_ja-1.1-{v}" for v in pv]
        + [f"mgsm-1.0-{v}" for v in ("0.0", "0.3", "0.4", "0.5", "0.6")]
        + [f"xlsum_ja-1.0-{v}" for v in ("0.0", "0.3", "0.4", "0.5", "0.6")]
        + ["xwinograd_ja"]
    )


# --- any text renders verbatim -------------------------------------------------------------
# doc_to_text(q, c) per version, typed from the spec table as functions of the raw strings.

EXPECTED_DESCRIPTION = {v: EXPECTED_0SHOT[v][: EXPECTED_0SHOT[v].index(start)] for v, start in {
    "0.1": "[問題]:Q9", "0.2": "質問:Q9", "0.2.1": "質問：Q9", "0.3": "### 指示:", "0.4": "ユーザー: 質問：Q9",
    "0.5": "ユーザー: 質問：Q9", "0.6": "与えられた5つ"}.items()}


def _dashed(c, nl):
    return nl.join(f"- {x}" for x in c)


EXPECTED_TEXT = {
    "0.1": lambda q, c: f"[問題]:{q}\n[選択肢]:[{c[0]}, {c[1]}, {c[2]}, {c[3]}, {c[4]}]\n[答え]:",
    "0.2": lambda q, c: f"質問:{q}\n選択肢:0.{c[0]},1.{c[1]},2.{c[2]},3.{c[3]},4.{c[4]}\n回答:",
    "0.2.1": lambda q, c: f"質問：{q}\n選択肢：\n{_dashed(c, chr(10))}\n回答：",
    "0.3": lambda q, c: ("### 指示:\n与えられた選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n"
                         f"{_dashed(c, chr(10))}\n\n### 入力:\n{q}\n\n### 応答:\n"),
    "0.4": lambda q, c: f"ユーザー: 質問：{q}<NL>選択肢：<NL>{_dashed(c, '<NL>')}<NL>システム: ",
    "0.5": lambda q, c: f"ユーザー: 質問：{q}\n選択肢：\n{_dashed(c, chr(10))}\nシステム: ",
    "0.6": lambda q, c: ("与えられた5つの選択肢の中から、最適な答えを選んでください。出力は以下から選択してください：\n"
                         f"{_dashed(c, chr(10))}\n\n質問：{q} [/INST] "),
}
EXPECTED_SEP = {"0.1": "\n\n", "0.2": "\n\n", "0.2.1": "\n\n", "0.3": "\n\n", "0.4": "<NL>", "0.5": "\n",
                "0.6": " </s><s>[INST] "}


def test_expected_tables_reproduce_the_literals():
    """Guards the function tables used by the property below against the literal strings above."""
    q, c = QUERY["question"], [QUERY[f"choice{i}"] for i in range(5)]
    for v in VERSIONS:
        assert EXPECTED_DESCRIPTION[v] + EXPECTED_TEXT[v](q, c) == EXPECTED_0SHOT[v]


_nasty = st.lists(
    st.sampled_from(["{", "}", "{}", "{question}", "{c0}", "{answer}", "{0}", "\n", "<NL>", " ", "%s", "\\",
                     "[INST]", "</s>", "：", "- ", "a", "漢字", "かな", "\u3000", "\t", "\r"]),
    max_size=8,
).map("".join)
_any_text = st.one_of(_nasty, st.text(max_size=15))


@settings(max_examples=150)
@given(
    version=st.sampled_from(VERSIONS),
    question=_any_text,
    choices=st.lists(_any_text, min_size=5, max_size=5),
    label=st.integers(0, 4),
    shot_q=_any_text,
    shot_choices=st.lists(_any_text, min_size=5, max_size=5),
    shot_label=st.integers(0, 4),
)
def test_any_text_renders_verbatim(version, question, choices, label, shot_q, shot_choices, shot_label):
    query = jcqa(1, question, choices, label)
    shot = jcqa(2, shot_q, shot_choices, shot_label)
    zero = render(version, [], query)
    assert zero.startswith(EXPECTED_DESCRIPTION[version])
    assert question in zero
    assert all(c in zero for c in choices)
    assert zero == EXPECTED_DESCRIPTION[version] + EXPECTED_TEXT[version](question, choices)
    target = str(shot_label) if version == "0.2" else shot_choices[shot_label]
    one = render(version, [shot], query)
    assert one == (EXPECTED_DESCRIPTION[version] + EXPECTED_TEXT[version](shot_q, shot_choices) + target
                   + EXPECTED_SEP[version] + EXPECTED_TEXT[version](question, choices))
