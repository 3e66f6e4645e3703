"""JSTS (kensa's own ``jsts-1.0-*``): prompts character for character in the JNLI families (spec 3.2),
the strict number parser, the row checks, and Pearson/Spearman/unparseable through the task."""

from __future__ import annotations

import json
import math
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kensa.data import DataSource, Split
from kensa.errors import DataError
from kensa.run.generation import evaluate_generation
from kensa.tasks.jglue.jsts import MAX_NEW_TOKENS, TASK, parse_similarity
from kensa.tasks.render import prepare_generation
from tests.helpers import PromptLM, answering

VARIANTS = {v.template.version: v for v in TASK.variants()}


def row(i, s1, s2, label):
    return {"sentence_pair_id": str(i), "yjcaptions_id": f"{i}-{i}-{i}", "sentence1": s1, "sentence2": s2,
            "label": label}


QUERY = row(9, "A9", "B9", 3.6)
SHOT1 = row(1, "A1", "B1", 2.4)
SHOT2 = row(2, "A2", "B2", 5.0)

EXPECTED_0SHOT = {
    "0.3": "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"
           "### 指示:\n与えられた2つの文の意味がどれくらい似ているかを0から5の数値で答えてください。\n\n"
           "出力は0.0から5.0までの小数点以下1桁の数値としてください（5.0は同じ意味、0.0は全く異なる意味）。\n\n"
           "### 入力:\n文1：A9\n文2：B9\n\n### 応答:\n",
    "0.4": "ユーザー: 与えられた2つの文の意味がどれくらい似ているかを0から5の数値で答えてください。"
           "出力は0.0から5.0までの小数点以下1桁の数値としてください（5.0は同じ意味、0.0は全く異なる意味）。"
           "<NL>システム: 分かりました。<NL>ユーザー: 文1：A9<NL>文2：B9<NL>システム: ",
    "0.5": "ユーザー: 与えられた2つの文の意味がどれくらい似ているかを0から5の数値で答えてください。"
           "出力は0.0から5.0までの小数点以下1桁の数値としてください（5.0は同じ意味、0.0は全く異なる意味）。"
           "\nシステム: 分かりました。\nユーザー: 文1：A9\n文2：B9\nシステム: ",
    "0.6": "<s>[INST] <<SYS>>\nあなたは役立つアシスタントです。\n<</SYS>>\n\n"
           "与えられた2つの文の意味がどれくらい似ているかを0から5の数値で答えてください。\n\n"
           "出力は0.0から5.0までの小数点以下1桁の数値としてください（5.0は同じ意味、0.0は全く異なる意味）。\n\n"
           "文1：A9\n文2：B9 [/INST] ",
}

EXPECTED_2SHOT = {
    "0.3": "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"
           "### 指示:\n与えられた2つの文の意味がどれくらい似ているかを0から5の数値で答えてください。\n\n"
           "出力は0.0から5.0までの小数点以下1桁の数値としてください（5.0は同じ意味、0.0は全く異なる意味）。\n\n"
           "### 入力:\n文1：A1\n文2：B1\n\n### 応答:\n2.4\n\n"
           "### 指示:\n与えられた2つの文の意味がどれくらい似ているかを0から5の数値で答えてください。\n\n"
           "出力は0.0から5.0までの小数点以下1桁の数値としてください（5.0は同じ意味、0.0は全く異なる意味）。\n\n"
           "### 入力:\n文1：A2\n文2：B2\n\n### 応答:\n5.0\n\n"
           "### 指示:\n与えられた2つの文の意味がどれくらい似ているかを0から5の数値で答えてください。\n\n"
           "出力は0.0から5.0までの小数点以下1桁の数値としてください（5.0は同じ意味、0.0は全く異なる意味）。\n\n"
           "### 入力:\n文1：A9\n文2：B9\n\n### 応答:\n",
    "0.4": "ユーザー: 与えられた2つの文の意味がどれくらい似ているかを0から5の数値で答えてください。"
           "出力は0.0から5.0までの小数点以下1桁の数値としてください（5.0は同じ意味、0.0は全く異なる意味）。"
           "<NL>システム: 分かりました。<NL>ユーザー: 文1：A1<NL>文2：B1<NL>システム: 2.4<NL>"
           "ユーザー: 文1：A2<NL>文2：B2<NL>システム: 5.0<NL>ユーザー: 文1：A9<NL>文2：B9<NL>システム: ",
    "0.5": "ユーザー: 与えられた2つの文の意味がどれくらい似ているかを0から5の数値で答えてください。"
           "出力は0.0から5.0までの小数点以下1桁の数値としてください（5.0は同じ意味、0.0は全く異なる意味）。"
           "\nシステム: 分かりました。\nユーザー: 文1：A1\n文2：B1\nシステム: 2.4\n"
           "ユーザー: 文1：A2\n文2：B2\nシステム: 5.0\nユーザー: 文1：A9\n文2：B9\nシステム: ",
    "0.6": "<s>[INST] <<SYS>>\nあなたは役立つアシスタントです。\n<</SYS>>\n\n"
           "与えられた2つの文の意味がどれくらい似ているかを0から5の数値で答えてください。\n\n"
           "出力は0.0から5.0までの小数点以下1桁の数値としてください（5.0は同じ意味、0.0は全く異なる意味）。\n\n"
           "文1：A1\n文2：B1 [/INST] 2.4 </s><s>[INST] "
           "与えられた2つの文の意味がどれくらい似ているかを0から5の数値で答えてください。\n\n"
           "出力は0.0から5.0までの小数点以下1桁の数値としてください（5.0は同じ意味、0.0は全く異なる意味）。\n\n"
           "文1：A2\n文2：B2 [/INST] 5.0 </s><s>[INST] "
           "与えられた2つの文の意味がどれくらい似ているかを0から5の数値で答えてください。\n\n"
           "出力は0.0から5.0までの小数点以下1桁の数値としてください（5.0は同じ意味、0.0は全く異なる意味）。\n\n"
           "文1：A9\n文2：B9 [/INST] ",
}

STOPS = {"0.3": ("\n",), "0.4": ("<NL>",), "0.5": ("\n",), "0.6": ("\n",)}


def render(version, shots, query=QUERY):
    v = VARIANTS[version]
    return v.template.context([v.view(s) for s in shots], v.view(query))


# --- prompts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", sorted(EXPECTED_0SHOT))
def test_prompts(version):
    assert render(version, []) == EXPECTED_0SHOT[version]
    assert render(version, [SHOT1, SHOT2]) == EXPECTED_2SHOT[version]


def test_task_ids_and_shape():
    assert [v.task_id for v in TASK.variants()] == ["jsts-1.0-0.3", "jsts-1.0-0.4", "jsts-1.0-0.5", "jsts-1.0-0.6"]
    assert (TASK.eval_split, TASK.fewshot_split, TASK.num_fewshot, TASK.stratified) == ("validation", "train", 3, False)
    assert TASK.metrics == ("pearson", "spearman") and TASK.reported == ("unparseable",)
    assert TASK.kind == "generation" and TASK.suite == "jglue"


@pytest.mark.parametrize("version", sorted(STOPS))
def test_stop_strings_and_budget(version):
    lm = PromptLM(lambda p: "")
    (doc,) = prepare_generation(VARIANTS[version], Split([QUERY], "mem"), None, 0, None, lm)
    assert doc.until == STOPS[version]
    assert doc.max_new_tokens == MAX_NEW_TOKENS == 8
    assert doc.golds == ["3.6"] and doc.prompt == EXPECTED_0SHOT[version]


@pytest.mark.parametrize(("label", "target"), [(0.0, "0.0"), (2.4, "2.4"), (5.0, "5.0"), (3, "3.0"), (0.2, "0.2"),
                                               (2.4000000953674316, "2.4")])  # the last: a float32 Hub label
def test_target_is_the_label_with_one_decimal(label, target):
    r = row(1, "a", "b", label)
    assert TASK.view(r)["answer"] == target and TASK.golds(r) == [target]
    assert TASK.score(target, r, None) == {"extracted": float(target), "pred": float(target),
                                           "gold_value": float(target)}


def test_budget_fits_an_answer_and_the_longest_stop_in_the_tiny_tokenizer():
    """The reason for 8: ``▁`` + ``x.y`` + ``<NL>`` (4 byte pieces) is 8 tokens in kensa's SentencePiece model."""
    tokenizers = pytest.importorskip("tokenizers")
    from kensa.tiny.build import build_spm

    tok = tokenizers.Tokenizer.from_file(str(build_spm() / "tokenizer.json"))
    worst = max(len(tok.encode(f" {x / 5:.1f}{stop}", add_special_tokens=False).ids)
                for x in range(26) for stop in ("\n", "<NL>"))
    assert worst == MAX_NEW_TOKENS


# --- parsing -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [
    ("2.4", 2.4), ("0.0", 0.0), ("5.0", 5.0), ("5", 5.0), ("0", 0.0), ("3", 3.0), ("2.45", 2.45), ("04.0", 4.0),
    (" 3.2\n", 3.2), ("\u30003.2\u3000", 3.2),  # whitespace, ideographic spaces included
    ("２．４", 2.4), ("５", 5.0), ("３.０", 3.0),  # full-width, NFKC
    ("5.1", None), ("10", None), ("6", None), ("5.0000001", None),  # out of range
    ("-0.0", None), ("-1", None), ("+3", None), ("+3.0", None),  # no sign
    (".5", None), ("3.", None), ("1e0", None), ("nan", None), ("inf", None), ("3,5", None),
    ("", None), ("   ", None), ("abc", None), ("3.0点", None), ("約3", None), ("3.0 です", None),
    ("2.4 3.0", None), ("2.4\n3.0", None), ("類似度は2.4です。", None), ("٣", None),  # Arabic-Indic three
])
def test_parse_similarity_by_hand(text, value):
    assert parse_similarity(text) == value


def _fullwidth(s):
    return s.translate(str.maketrans("0123456789.", "０１２３４５６７８９．"))


@given(st.floats(min_value=0.0, max_value=5.0))
def test_any_label_with_one_decimal_parses_back(x):
    s = f"{x:.1f}"
    assert parse_similarity(s) == float(s)
    assert parse_similarity(f" {_fullwidth(s)}\n") == float(s)


@given(st.floats(min_value=5.0, max_value=1e9, exclude_min=True))
def test_numbers_above_five_are_unparseable(x):
    s = f"{x:.1f}"
    assert parse_similarity(s) == (5.0 if s == "5.0" else None)


@given(st.text())
def test_text_without_digits_is_unparseable(text):
    if not any(c in "0123456789" for c in unicodedata.normalize("NFKC", text)):
        assert parse_similarity(text) is None


@given(st.one_of(st.text(max_size=12), st.text(alphabet="0123456789.+-eE ０５．\n点", max_size=8)))
def test_a_parse_is_none_or_in_range(text):
    value = parse_similarity(text)
    assert value is None or (0.0 <= value <= 5.0 and math.isfinite(value))


# --- bad input -------------------------------------------------------------------------------------------


def write_jsts(root, valid_rows, train_rows=(SHOT1,)):
    d = root / "jglue" / "jsts"
    d.mkdir(parents=True)

    def lines(rows):
        return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)
    (d / "valid-v1.3.json").write_text(lines(valid_rows), encoding="utf-8")
    (d / "train-v1.3.json").write_text(lines(train_rows), encoding="utf-8")
    return DataSource.local(root)


BAD_LABELS = ['"3.0"', '"abc"', "true", "false", "null", "5.2", "-0.2", "NaN", "Infinity", "2.45", "[3.0]"]


@pytest.mark.parametrize("label", BAD_LABELS)
def test_bad_label_is_a_data_error(tmp_path, label):
    bad = json.dumps({**QUERY, "label": 0.0}, ensure_ascii=False).replace('"label": 0.0', f'"label": {label}')
    source = write_jsts(tmp_path, [QUERY, bad])
    with pytest.raises(DataError) as err:
        TASK.load(source)
    assert "valid-v1.3.json, row 2, field 'label'" in str(err.value)


def test_bad_label_in_the_pool_names_the_train_file(tmp_path):
    source = write_jsts(tmp_path, [QUERY], [SHOT1, SHOT2, {**SHOT1, "label": "2.4"}])
    with pytest.raises(DataError, match=r"train-v1\.3\.json, row 3, field 'label'"):
        TASK.load(source)


@pytest.mark.parametrize(("change", "field"), [({"sentence_pair_id": 9}, "sentence_pair_id"),
                                               ({"sentence2": None}, "sentence2")])
def test_bad_fields_are_data_errors(tmp_path, change, field):
    source = write_jsts(tmp_path, [QUERY, {**QUERY, **change}])
    with pytest.raises(DataError, match=f"row 2, field '{field}'"):
        TASK.load(source)


def test_missing_label_is_a_data_error(tmp_path):
    source = write_jsts(tmp_path, [{k: v for k, v in QUERY.items() if k != "label"}])
    with pytest.raises(DataError, match="row 1, field 'label': missing"):
        TASK.load(source)


def test_good_edge_labels_load(tmp_path):
    source = write_jsts(tmp_path, [{**QUERY, "label": 0.0}, {**QUERY, "label": 5.0}, {**QUERY, "label": 3}])
    eval_split, pool = TASK.load(source)
    assert [TASK.golds(r) for r in eval_split.rows] == [["0.0"], ["5.0"], ["3.0"]] and len(pool.rows) == 1


# --- metrics through the task ---------------------------------------------------------------------------


def run_outputs(golds, outputs, version="0.3"):
    rows = [row(i, f"文{i}の一", f"文{i}の二", g) for i, g in enumerate(golds)]
    variant = VARIANTS[version]
    lm = PromptLM(answering(variant, rows, outputs))
    return evaluate_generation(variant, lm, Split(rows, "mem"), None, 0)


def pearson_by_hand(xs, ys):
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return cov / math.sqrt(sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys))


@pytest.mark.parametrize(("golds", "outputs", "pearson", "spearman", "unparseable"), [
    # perfectly linear (pred = g/2 + 1): both 1
    ([0.0, 1.0, 2.0, 3.0, 4.0], ["1.0", "1.5", "2.0", "2.5", "3.0"], 1.0, 1.0, 0),
    # reversed: both -1
    ([0.0, 1.0, 2.0, 3.0, 4.0], ["5.0", "4.0", "3.0", "2.0", "1.0"], -1.0, -1.0, 0),
    # one swap: cov 4 / sqrt(5 * 5) = 0.8; ranks equal the values, so Spearman 0.8 too (1 - 6*2/(4*15))
    ([1.0, 2.0, 3.0, 4.0], ["1.0", "3.0", "2.0", "4.0"], 0.8, 0.8, 0),
    # monotone but not linear: Spearman 1, Pearson 7.55 / sqrt(5 * 18.0275)
    ([0.0, 1.0, 2.0, 3.0], ["0.0", "0.1", "0.2", "5.0"], 7.55 / math.sqrt(5 * 18.0275), 1.0, 0),
    # tied predictions get mid-ranks 1.5, 1.5, 3, 4.5, 4.5: 9 / sqrt(10 * 9)
    ([1.0, 2.0, 3.0, 4.0, 5.0], ["1.0", "1.0", "2.0", "3.0", "3.0"], pearson_by_hand([1, 2, 3, 4, 5], [1, 1, 2, 3, 3]),
     9 / math.sqrt(90), 0),
    # an unparseable output is left out of the pairs and counted
    ([0.0, 1.0, 2.0, 3.0, 4.0], ["0.0", "1.0", "たぶん2", "3.0", "4.0"], 1.0, 1.0, 1),
    # an out-of-range number is unparseable too, never clipped
    ([0.0, 1.0, 2.0, 3.0, 4.0], ["0.0", "1.0", "7.0", "3.0", "4.0"], 1.0, 1.0, 1),
    # fewer than 3 parsed pairs: undefined -> 0.0
    ([0.0, 1.0, 2.0, 3.0, 4.0], ["0.0", "1.0", "x", "y", "z"], 0.0, 0.0, 3),
    # a constant prediction: undefined -> 0.0
    ([0.0, 1.0, 2.0, 3.0], ["2.0", "2.0", "2.0", "2.0"], 0.0, 0.0, 0),
    # nothing parsed
    ([0.0, 1.0, 2.0], ["abc", "", "似ている"], 0.0, 0.0, 3),
])
def test_correlations_through_the_task(golds, outputs, pearson, spearman, unparseable):
    run = run_outputs(golds, outputs)
    assert list(run.metrics) == ["pearson", "spearman", "unparseable", "unterminated", "unterminated_stderr"]
    assert run.metrics["pearson"] == pytest.approx(pearson, abs=1e-12)
    assert run.metrics["spearman"] == pytest.approx(spearman, abs=1e-12)
    assert run.metrics["unparseable"] == unparseable
    assert run.n == len(golds) and run.kind == "generation"


def test_hand_values_agree_with_the_formula():
    assert pearson_by_hand([0, 1, 2, 3], [0.0, 0.1, 0.2, 5.0]) == pytest.approx(7.55 / math.sqrt(5 * 18.0275))
    assert pearson_by_hand([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)


def test_samples_record_the_parse():
    run = run_outputs([2.4, 0.0, 5.0], ["２．４", "なし", "5"])
    by_gold = {tuple(s["gold"]): s for s in run.samples}
    assert by_gold[("2.4",)]["extracted"] == 2.4 and by_gold[("2.4",)]["pred"] == 2.4
    assert by_gold[("0.0",)]["extracted"] is None and by_gold[("0.0",)]["pred"] is None
    assert by_gold[("5.0",)]["gold_value"] == 5.0 and by_gold[("5.0",)]["generation"] == "5"
    assert all(s["max_new_tokens"] == 8 and s["until"] == ["\n"] for s in run.samples)
    assert sorted((d["gold"], d["pred"]) for d in run.per_doc if d["pred"] is not None) == [(2.4, 2.4), (5.0, 5.0)]


# --- fixtures -------------------------------------------------------------------------------------------


def test_fixtures_are_spread_over_the_scale():
    eval_split, pool = TASK.load(DataSource.fixtures())
    assert len(eval_split.rows) == 30 and len(pool.rows) == 12
    for split in (eval_split, pool):
        labels = [r["label"] for r in split.rows]
        assert min(labels) == 0.0 and max(labels) == 5.0
        assert all(parse_similarity(TASK.golds(r)[0]) == r["label"] for r in split.rows)
    assert len({r["label"] for r in eval_split.rows}) == 26  # every 0.2 step once, a few twice
    ids = [r["sentence_pair_id"] for r in eval_split.rows + pool.rows]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("version", sorted(STOPS))
def test_fixtures_end_to_end_with_a_model_that_echoes_the_gold(version):
    eval_split, pool = TASK.load(DataSource.fixtures())
    variant = VARIANTS[version]
    lm = PromptLM(answering(variant, eval_split.rows, [TASK.golds(r)[0] for r in eval_split.rows]))
    run = evaluate_generation(variant, lm, eval_split, pool, 3)
    assert run.metrics == {"pearson": pytest.approx(1.0), "spearman": pytest.approx(1.0), "unparseable": 0.0,
                           "unterminated": 0.0, "unterminated_stderr": 0.0}
    assert all(s["shots"] == 3 for s in run.samples) and run.task_id == f"jsts-1.0-{version}"
    assert all(r.until == STOPS[version] and r.max_new_tokens == 8 for r in lm.requests)
