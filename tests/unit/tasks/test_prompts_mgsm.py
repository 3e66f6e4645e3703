"""MGSM-ja (spec 3.8): prompts character for character for every version, the answer extraction
(hand-computed cases, a property, and the published harness's own extractions), the two ways of
fitting a long prompt, the TSV and exemplar readers and their errors, and scoring through the loop."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kensa.data import DataSource, Split
from kensa.errors import DataError, KensaError
from kensa.run.generation import evaluate_generation
from kensa.tasks.jglue.mgsm import (
    DATASET,
    INVALID,
    TASK,
    extract_answer,
    published_cut,
    read_mgsm_exemplars,
    read_mgsm_tsv,
    view,
)
from kensa.tasks.render import prepare_generation
from tests.helpers import REPO, CharLM

VARIANTS = {v.template.version: v for v in TASK.variants()}
GOLDEN = json.loads((REPO / "tests" / "golden" / "mgsm_0.0_k4.json").read_text(encoding="utf-8"))

ALPACA = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"
LLAMA = "<s>[INST] <<SYS>>\nあなたは役立つアシスタントです。\n<</SYS>>\n\n"
INSTR = "与えられた問題に対して、ステップごとに答えを導き出してください。"
RINNA = "与えられた問題をステップごとに解説してください。"


def shot(i, q, cot):
    return {"exemplar": i, "question": f"問題：{q}", "answer": f"ステップごとの答え：{cot}", "answer_number": 0}


SHOT1 = shot(1, "Q1", "C1。答えは1です。")
SHOT2 = shot(2, "Q2\nx", "C2。答えは2です。")
QUERY = {"question": "Q9", "answer": None, "answer_number": 9}

EXPECTED_0SHOT = {
    "0.0": "問題：Q9\nステップごとの答え：",
    "0.3": ALPACA + f"### 指示:\n{INSTR}\n\n### 入力:\nQ9\n\n### 応答:\n",
    "0.4": f"ユーザー: {RINNA}<NL>システム: 分かりました。<NL>ユーザー: 問題：Q9<NL>システム: ステップごとの答え：",
    "0.5": f"ユーザー: {RINNA}\nシステム: 分かりました。\nユーザー: 問題：Q9<NL>システム: ステップごとの答え：",
    "0.6": LLAMA + f"{INSTR}\n\nQ9 [/INST] ",
}

EXPECTED_2SHOT = {
    "0.0": "問題：Q1\nステップごとの答え：C1。答えは1です。\n\n問題：Q2\nx\nステップごとの答え：C2。答えは2です。\n\n"
           "問題：Q9\nステップごとの答え：",
    "0.3": ALPACA + f"### 指示:\n{INSTR}\n\n### 入力:\nQ1\n\n### 応答:\nC1。答えは1です。\n\n"
                    f"### 指示:\n{INSTR}\n\n### 入力:\nQ2\nx\n\n### 応答:\nC2。答えは2です。\n\n"
                    f"### 指示:\n{INSTR}\n\n### 入力:\nQ9\n\n### 応答:\n",
    "0.4": f"ユーザー: {RINNA}<NL>システム: 分かりました。<NL>"
           "ユーザー: 問題：Q1<NL>システム: ステップごとの答え：C1。答えは1です。<NL>"
           "ユーザー: 問題：Q2\nx<NL>システム: ステップごとの答え：C2。答えは2です。<NL>"
           "ユーザー: 問題：Q9<NL>システム: ステップごとの答え：",
    "0.5": f"ユーザー: {RINNA}\nシステム: 分かりました。\n"
           "ユーザー: 問題：Q1<NL>システム: ステップごとの答え：C1。答えは1です。\n"
           "ユーザー: 問題：Q2\nx<NL>システム: ステップごとの答え：C2。答えは2です。\n"
           "ユーザー: 問題：Q9<NL>システム: ステップごとの答え：",
    "0.6": LLAMA + f"{INSTR}\n\nQ1 [/INST] C1。答えは1です。 </s><s>[INST] "
                   f"{INSTR}\n\nQ2\nx [/INST] C2。答えは2です。 </s><s>[INST] "
                   f"{INSTR}\n\nQ9 [/INST] ",
}


def render(version, shots, query=QUERY):
    v = VARIANTS[version]
    return v.template.context([v.view(s) for s in shots], v.view(query))


# -- the task's shape and prompts ------------------------------------------------------------------------

def test_task_ids_and_settings():
    assert [v.task_id for v in TASK.variants()] == [f"mgsm-1.0-{v}" for v in ("0.0", "0.3", "0.4", "0.5", "0.6")]
    assert TASK.num_fewshot == 5 and TASK.metrics == ("acc",) and TASK.kind == "generation"
    assert TASK.eval_split == "test" and TASK.fewshot_split == "train"
    assert TASK.max_new_tokens is None and TASK.fit == "resample"
    assert TASK.dataset.hub_id == "juletxara/mgsm" and dict(TASK.dataset.hub_kwargs) == {"name": "ja"}


@pytest.mark.parametrize("version", sorted(EXPECTED_0SHOT))
def test_prompts(version):
    assert render(version, []) == EXPECTED_0SHOT[version]
    assert render(version, [SHOT1, SHOT2]) == EXPECTED_2SHOT[version]


@pytest.mark.parametrize("version", sorted(EXPECTED_0SHOT))
def test_question_tag_is_removed_and_readded_where_the_template_has_it(version):
    assert render(version, [], {**QUERY, "question": "問題：Q9"}) == EXPECTED_0SHOT[version]


def test_05_keeps_the_literal_nl_of_04():
    prompt = render("0.5", [SHOT1])
    assert prompt.count("<NL>") == 2 and "分かりました。\n" in prompt


@pytest.mark.parametrize("version", sorted(EXPECTED_0SHOT))
def test_stop_is_a_newline_and_the_budget_the_models(version):
    (doc,) = prepare_generation(VARIANTS[version], Split([QUERY], "mem"), None, 0, None, CharLM())
    assert doc.until == ("\n",)  # 0.4 too: the harness asks for [eos, "\n"]
    assert doc.max_new_tokens == 256
    assert doc.golds == ["9"]


def test_view_of_a_test_row_answers_with_its_number():
    assert view(QUERY) == {"question": "Q9", "answer": "答えは9です。"}
    assert view({**QUERY, "answer_number": -1200})["answer"] == "答えは-1200です。"
    assert view(SHOT1) == {"question": "Q1", "answer": "C1。答えは1です。"}


# -- answer extraction -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("completion", "expected"), [
    ("5+6=11。答えは11です。", 11),
    ("答えは-3です。", -3),
    ("答えは1,234です。", 1234),
    ("2,000円と3,500円で5,500円。", 5500),
    ("答えは18.", 18),             # the sentence's period is stripped
    ("答えは18.0です。", 18),      # integral float -> int
    ("$.25です。", 25),             # ".25" -> strip(".") -> "25"
    ("答えは3.5です。", INVALID),   # not integral
    ("1.2.3", INVALID),            # float() fails
    ("...", INVALID),              # strips to ""
    ("答えは,です。", INVALID),     # "," -> ""
    ("", INVALID),
    ("答えはわかりません。", INVALID),
    ("１２です。", INVALID),        # full-width digits are not matched
    ("3個と4個。合計7", 7),         # the last number, not the first
    ("-", INVALID),                 # a lone minus is not a match
    ("x-0.", 0),
    ("2e5", 5),                     # no exponent in the regex: "2", then "5"
])
def test_extraction_hand_computed(completion, expected):
    assert extract_answer(completion) == expected


@given(st.integers(min_value=-(2**53), max_value=2**53), st.text(alphabet="あいう。、ドル個", max_size=8))
def test_extraction_of_a_stated_answer_is_the_number(n, prefix):
    assert extract_answer(f"{prefix}答えは{n}です。") == n
    assert extract_answer(f"{prefix}答えは{n:,}です。") == n


def test_extraction_rounds_through_a_float_as_the_harness():
    assert extract_answer("9007199254740993") == 9007199254740992


@pytest.mark.parametrize("case", GOLDEN["extraction"], ids=lambda c: f"{c['case']}:{c['where'].split()[0]}")
def test_extraction_matches_the_published_harness(case):
    """Completions and extracted answers copied from the harness's verbose results (golden file)."""
    assert extract_answer(case["completion"]) == case["extracted_answer"]


@pytest.mark.parametrize(("generation", "acc", "extracted"), [
    ("9+0=9。答えは9です。", 1.0, 9), ("答えは8です。", 0.0, 8), ("わかりません", 0.0, INVALID),
    ("答えは9.5です。", 0.0, INVALID),
])
def test_score(generation, acc, extracted):
    assert TASK.score(generation, QUERY, None) == {"acc": acc, "extracted": extracted}


def test_scoring_through_the_generation_loop():
    ev, pool = TASK.load(DataSource.fixtures())
    answers = {r["question"]: r["answer_number"] for r in ev.rows}

    def reply(prompt):  # right for every doc whose answer is even, a non-number for the others
        n = next(v for q, v in answers.items() if prompt.endswith(f"問題：{q}\nステップごとの答え："))
        return f"計算します。答えは{n}です。" if n % 2 == 0 else "答えはわかりません。"

    run = evaluate_generation(VARIANTS["0.0"], CharLM(lambda r: reply(r.context)), ev, pool, 5)
    evens = sum(1 for n in answers.values() if n % 2 == 0)
    assert run.metrics["acc"] == pytest.approx(evens / len(answers))
    assert set(run.metrics) == {"acc", "acc_stderr", "unterminated", "unterminated_stderr"}
    assert {s["extracted"] for s in run.samples if s["acc"] == 0.0} == {INVALID}
    assert all(len(s["fewshot_ids"]) == 5 and set(s["fewshot_ids"]) <= set(range(1, 9)) for s in run.samples)


# -- fitting a long prompt -------------------------------------------------------------------------------

def _replay_resample(ev, pool, k, fits):
    """The harness at HEAD, written out: shuffle with Random(42), then per doc sample k, k-1, ... shots
    from the same generator until the prompt fits."""
    v = VARIANTS["0.0"]
    rnd = random.Random(42)
    docs = list(ev.rows)
    rnd.shuffle(docs)
    out = []
    for row in docs:
        kk = k
        shots = rnd.sample(pool.rows, kk)
        prompt = v.template.context([v.view(s) for s in shots], v.view(row))
        while not fits(prompt) and kk > 0:
            kk -= 1
            shots = rnd.sample(pool.rows, kk) if kk else []
            prompt = v.template.context([v.view(s) for s in shots], v.view(row))
        out.append(prompt)
    return out


def test_resample_fits_with_fewer_shots_drawn_again():
    ev, pool = TASK.load(DataSource.fixtures())
    lm = CharLM(max_length=256 + 250)  # a budget of 250 characters: 5 shots never fit, 2 or 3 do
    docs = prepare_generation(VARIANTS["0.0"], ev, pool, 5, None, lm)
    assert all(len(d.prompt) <= 250 for d in docs)
    assert {d.shots for d in docs} == {2, 3}
    assert [d.prompt for d in docs] == _replay_resample(ev, pool, 5, lambda p: len(p) <= 250)


def test_published_cut_deletes_the_first_exemplars():
    ev, pool = TASK.load(DataSource.fixtures())
    query = ev.rows[0]
    for version in ("0.0", "0.4", "0.5"):
        v = VARIANTS[version]
        views = [v.view(s) for s in pool.rows[:5]]
        full = v.template.context(views, v.view(query))
        want = v.template.context(views[2:], v.view(query))
        assert published_cut(full, v.template, len(want), CharLM()) == want
        assert published_cut(full, v.template, len(full), CharLM()) == full  # fits: unchanged


def test_published_cut_finally_deletes_the_question_itself():
    v = VARIANTS["0.4"]
    prompt = v.template.context([], v.view(QUERY))
    kept = f"ユーザー: {RINNA}<NL>システム: 分かりました。<NL>ユーザー: "
    assert published_cut(prompt, v.template, len(kept), CharLM()) == kept
    with pytest.raises(KensaError, match="no '問題：'"):  # nothing left to cut: the harness raised too
        published_cut(prompt, v.template, len(kept) - 1, CharLM())
    assert published_cut(render("0.0", []), VARIANTS["0.0"].template, 5, CharLM()) == ""


@pytest.mark.parametrize("version", ["0.3", "0.6"])
def test_published_cut_cannot_shorten_a_prompt_without_the_question_tag(version):
    v = VARIANTS[version]
    prompt = v.template.context([v.view(SHOT1), v.view(SHOT2)], v.view(QUERY))
    assert published_cut(prompt, v.template, len(prompt), CharLM()) == prompt
    with pytest.raises(KensaError, match=f"mgsm {version}: .*'問題：'.*resample"):
        published_cut(prompt, v.template, len(prompt) - 1, CharLM())


# -- readers and bad input -------------------------------------------------------------------------------

def test_fixtures_load():
    ev, pool = TASK.load(DataSource.fixtures())
    assert len(ev.rows) == 30 and len(pool.rows) == 8
    numbers = [r["answer_number"] for r in ev.rows]
    assert 1200 in numbers and -2 in numbers and len(set(numbers)) == len(numbers)
    assert all(r["answer"] is None for r in ev.rows)
    assert [r["exemplar"] for r in pool.rows] == list(range(1, 9))
    assert all(r["answer_number"] == extract_answer(r["answer"]) for r in pool.rows)
    assert any("\n" in r["question"] for r in pool.rows)  # like upstream exemplar 5
    for r in ev.rows:  # every eval doc's target is a short sentence that extracts to its own answer
        assert TASK.score(view(r)["answer"], r, None)["acc"] == 1.0


def _local(tmp_path, tsv: bytes, jsonl: bytes | None = None):
    d = tmp_path / "mgsm"
    d.mkdir()
    (d / "mgsm_ja.tsv").write_bytes(tsv)
    good = json.dumps({"exemplar": 1, "question": "問題：Q", "answer": "ステップごとの答え：答えは1です。"},
                      ensure_ascii=False)
    (d / "mgsm_ja_exemplars.jsonl").write_bytes(jsonl if jsonl is not None else (good + "\n").encode())
    return DataSource.local(tmp_path)


def test_tsv_reader(tmp_path):
    path = tmp_path / "mgsm_ja.tsv"
    path.write_text("Q1\t18\n\nQ2\t2,125\r\nQ3\t-4\n", encoding="utf-8")
    split = read_mgsm_tsv(DATASET, path, "test")
    assert split.rows == [{"question": "Q1", "answer": None, "answer_number": 18},
                          {"question": "Q2", "answer": None, "answer_number": 2125},
                          {"question": "Q3", "answer": None, "answer_number": -4}]
    assert split.lines == [1, 3, 4] and split.sha256


@pytest.mark.parametrize("line", ["Q2", "Q2\t3\tx"])
def test_wrong_column_count_is_a_data_error(tmp_path, line):
    with pytest.raises(DataError) as err:
        TASK.load(_local(tmp_path, f"Q1\t1\n{line}\n".encode()))
    assert "mgsm_ja.tsv, row 2:" in str(err.value) and "2 tab-separated columns" in str(err.value)


@pytest.mark.parametrize("number", ["abc", "1.5", "", "1,2x", "--3"])
def test_answer_that_is_not_an_integer_is_a_data_error(tmp_path, number):
    with pytest.raises(DataError) as err:
        TASK.load(_local(tmp_path, f"Q1\t1\nQ2\t{number}\n".encode()))
    assert "mgsm_ja.tsv, row 2, field 'answer_number'" in str(err.value)


def test_empty_question_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"mgsm_ja.tsv, row 1, field 'question'"):
        TASK.load(_local(tmp_path, b" \t1\n"))


def test_not_utf8_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"mgsm_ja.tsv, row 2: not UTF-8"):
        TASK.load(_local(tmp_path, b"Q1\t1\n" + "問題\t2\n".encode("shift_jis")))
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match=r"mgsm_ja_exemplars.jsonl, row 1: not UTF-8"):
        TASK.load(_local(tmp_path / "b", b"Q1\t1\n", '{"question": "問題"}\n'.encode("shift_jis")))


@pytest.mark.parametrize(("obj", "field"), [
    ({"exemplar": 2, "question": "Q", "answer": "ステップごとの答え：答えは1です。"}, "question"),
    ({"exemplar": 2, "question": "問題：Q", "answer": "答えは1です。"}, "answer"),
    ({"exemplar": 2, "question": "問題：Q", "answer": "ステップごとの答え：わかりません。"}, "answer"),
    ({"exemplar": 2, "question": "問題：Q", "answer": "ステップごとの答え：答えは1.5です。"}, "answer"),
    ({"exemplar": 2, "question": "問題：Q"}, "answer"),
])
def test_bad_exemplar_is_a_data_error(tmp_path, obj, field):
    good = {"exemplar": 1, "question": "問題：Q", "answer": "ステップごとの答え：答えは1です。"}
    text = "\n".join(json.dumps(o, ensure_ascii=False) for o in (good, obj)) + "\n"
    with pytest.raises(DataError) as err:
        TASK.load(_local(tmp_path, b"Q1\t1\n", text.encode()))
    assert f"mgsm_ja_exemplars.jsonl, row 2, field '{field}'" in str(err.value)


@pytest.mark.parametrize("text", ['{"exemplar": 1,\n', "[1, 2]\n"])
def test_malformed_exemplar_line_is_a_data_error(tmp_path, text):
    with pytest.raises(DataError, match=r"mgsm_ja_exemplars.jsonl, row 1: (malformed JSON|expected a JSON object)"):
        read_mgsm_exemplars(DATASET, _write(tmp_path, text))


def _write(tmp_path, text):
    path = tmp_path / "mgsm_ja_exemplars.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def test_empty_files_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="no rows"):
        read_mgsm_tsv(DATASET, _write(tmp_path, "\n"))
    with pytest.raises(DataError, match="no rows"):
        read_mgsm_exemplars(DATASET, _write(tmp_path, "\n"))
