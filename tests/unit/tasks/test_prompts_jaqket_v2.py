"""JAQKET v2 (spec 3.5): prompts character for character for both task versions (0.1 published,
0.2 HEAD), the 0.2 prompt-length refit (fewer shots, drawn again from the shared generator), and
the reader of the loading script's source files (DPR retriever output) with its drop rule."""

from __future__ import annotations

import json
import random

import pytest

from kensa.data import DataSource, Split
from kensa.errors import DataError
from kensa.run.generation import evaluate_generation
from kensa.tasks.jglue.jaqket_v2 import DATASET, TASK_0_1, TASK_0_2, read_jaqket_dpr
from kensa.tasks.render import prepare_generation
from tests.helpers import SHARED_DATA, CharLM

V01 = {v.template.version: v for v in TASK_0_1.variants()}
V02 = {v.template.version: v for v in TASK_0_2.variants()}


def row(qid, question, answers, titles, texts, has_answer=None):
    """A row as the loading script yields it (and as the reader returns it)."""
    has_answer = has_answer or [i == 0 for i in range(len(texts))]
    return {"qid": qid, "question": question, "answers": {"text": answers, "answer_start": [-1] * len(answers)},
            "ctxs": {"id": [str(i) for i in range(len(texts))], "title": titles, "text": texts,
                     "score": [80.0 - i for i in range(len(texts))], "has_answer": has_answer}}


QUERY = row("Q1", "問？", ["答", "別答"], [f"題{c}" for c in "ABCDE"], [f"文{c}" for c in "ABCDE"])
SHOT = row("S1", "例問？", ["例答"], [f"例題{c}" for c in "ABCDE"], [f"例{c}" for c in "ABCDE"])

ALPACA = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"
LLAMA = "<s>[INST] <<SYS>>\nあなたは役立つアシスタントです。\n<</SYS>>\n\n"
INSTR = "与えられた文脈から、質問に対する答えを抜き出してください。"

EXPECTED_0SHOT = {
    "0.1": "[題名]と[問題]から[質問]に対する[答え]を抜き出しなさい\n\n"
           "[題名]:題A\n[問題]:文A\n[題名]:題B\n[問題]:文B\n[題名]:題C\n[問題]:文C\n[題名]:題D\n[問題]:文D\n"
           "[題名]:題E\n[問題]:文E\n[質問]:問？\n[答え]:",
    "0.2": "質問に対する回答を文章から一言で抽出してください。回答は名詞で答えてください。\n\n"
           "文章:文A\n文B\n文C\n文D\n文E\n質問:問？\n回答:",
    "0.3": ALPACA + f"### 指示:\n{INSTR}\n\n### 入力:\n文脈：文A\n文B\n文C\n文D\n文E\n質問：問？\n\n### 応答:\n",
    "0.4": f"ユーザー: {INSTR}<NL>システム: 分かりました。<NL>"
           "ユーザー: 文脈：文A<NL>文B<NL>文C<NL>文D<NL>文E<NL>質問：問？<NL>システム: ",
    "0.5": f"ユーザー: {INSTR}\nシステム: 分かりました。\n"
           "ユーザー: 文脈：文A\n文B\n文C\n文D\n文E\n質問：問？\nシステム: ",
    "0.6": LLAMA + f"{INSTR}\n\n文脈：文A\n文B\n文C\n文D\n文E\n質問：問？ [/INST] ",
}

EXPECTED_1SHOT = {
    "0.1": "[題名]と[問題]から[質問]に対する[答え]を抜き出しなさい\n\n"
           "[題名]:例題A\n[問題]:例A\n[題名]:例題B\n[問題]:例B\n[題名]:例題C\n[問題]:例C\n[題名]:例題D\n[問題]:例D\n"
           "[題名]:例題E\n[問題]:例E\n[質問]:例問？\n[答え]:例答\n\n"
           "[題名]:題A\n[問題]:文A\n[題名]:題B\n[問題]:文B\n[題名]:題C\n[問題]:文C\n[題名]:題D\n[問題]:文D\n"
           "[題名]:題E\n[問題]:文E\n[質問]:問？\n[答え]:",
    "0.2": "質問に対する回答を文章から一言で抽出してください。回答は名詞で答えてください。\n\n"
           "文章:例A\n例B\n例C\n例D\n例E\n質問:例問？\n回答:例答\n\n"
           "文章:文A\n文B\n文C\n文D\n文E\n質問:問？\n回答:",
    "0.3": ALPACA + f"### 指示:\n{INSTR}\n\n### 入力:\n文脈：例A\n例B\n例C\n例D\n例E\n質問：例問？\n\n### 応答:\n例答\n\n"
           f"### 指示:\n{INSTR}\n\n### 入力:\n文脈：文A\n文B\n文C\n文D\n文E\n質問：問？\n\n### 応答:\n",
    "0.4": f"ユーザー: {INSTR}<NL>システム: 分かりました。<NL>"
           "ユーザー: 文脈：例A<NL>例B<NL>例C<NL>例D<NL>例E<NL>質問：例問？<NL>システム: 例答<NL>"
           "ユーザー: 文脈：文A<NL>文B<NL>文C<NL>文D<NL>文E<NL>質問：問？<NL>システム: ",
    "0.5": f"ユーザー: {INSTR}\nシステム: 分かりました。\n"
           "ユーザー: 文脈：例A\n例B\n例C\n例D\n例E\n質問：例問？\nシステム: 例答\n"
           "ユーザー: 文脈：文A\n文B\n文C\n文D\n文E\n質問：問？\nシステム: ",
    "0.6": LLAMA + f"{INSTR}\n\n文脈：例A\n例B\n例C\n例D\n例E\n質問：例問？ [/INST] 例答 </s><s>[INST] "
           f"{INSTR}\n\n文脈：文A\n文B\n文C\n文D\n文E\n質問：問？ [/INST] ",
}

CASES = [("0.1", v) for v in sorted(V01)] + [("0.2", v) for v in sorted(V02)]


def by_last_question(answers):
    """An ``answer(request)`` from ``answers`` (question -> text): the query's question is the last one in the
    prompt; わからない where the prompt holds none of them."""

    def answer(request):
        last = max(answers, key=request.context.rfind, default=None)
        return answers[last] if last is not None and last in request.context else "わからない"
    return answer


def render(variants, version, shots, query=QUERY):
    v = variants[version]
    return v.template.context([v.view(s) for s in shots], v.view(query))


# --- task shape -------------------------------------------------------------------------------------

def test_task_ids_versions_and_shape():
    assert [v.task_id for v in TASK_0_1.variants()] == [f"jaqket_v2-0.1-0.{i}" for i in range(1, 6)]
    assert [v.task_id for v in TASK_0_2.variants()] == [f"jaqket_v2-0.2-0.{i}" for i in range(1, 7)]
    for task in (TASK_0_1, TASK_0_2):
        assert task.name == "jaqket_v2" and task.num_fewshot == 1
        assert (task.eval_split, task.fewshot_split) == ("validation", "train")
        assert task.metrics == ("exact_match", "f1") and task.dataset.id_field == "qid"
    assert TASK_0_1.fit is None and TASK_0_2.fit == "resample"
    assert DATASET.hub_id == "kumapo/JAQKET" and DATASET.hub_kwargs["name"] == "v2.0"
    assert "loading script" in DATASET.missing_hint and "jaqket_v2/" in DATASET.missing_hint


# --- prompts ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("task_version", "version"), CASES)
def test_prompts(task_version, version):
    """0.1 and 0.2 render the same text (spec 3.5); 0.6 exists only in 0.2."""
    variants = V01 if task_version == "0.1" else V02
    assert render(variants, version, []) == EXPECTED_0SHOT[version]
    assert render(variants, version, [SHOT]) == EXPECTED_1SHOT[version]


def test_published_version_has_no_llama2_prompt():
    assert "0.6" not in V01 and "0.6" in V02


@pytest.mark.parametrize(("task_version", "version"), CASES)
def test_stop_string_and_generation_budget(task_version, version):
    variant = (V01 if task_version == "0.1" else V02)[version]
    (doc,) = prepare_generation(variant, Split([QUERY], "mem"), Split([SHOT], "mem"), 1, None, CharLM())
    assert doc.until == (("<NL>",) if version == "0.4" else ("\n",))
    assert doc.max_new_tokens == 2  # the longest gold answer in the model's tokens: "別答"
    assert doc.golds == ["答", "別答"] and doc.shots == 1 and doc.shot_ids == ["S1"]
    assert doc.prompt == EXPECTED_1SHOT[version]


def test_score_is_jasquad_em_and_f1_over_every_answer():
    task = TASK_0_2
    assert task.score("別答", QUERY, None) == {"exact_match": 100.0, "f1": 100.0}
    assert task.score("答", QUERY, None)["exact_match"] == 100.0
    assert task.score("ＡＢＣ", row("Q", "q", ["ABC"], ["t"], ["ABC"]), None)["exact_match"] == 100.0  # neologdn
    assert task.score("違う", QUERY, None) == {"exact_match": 0.0, "f1": 0.0}


def test_end_to_end_on_fixtures_with_a_fake_model():
    """A model that answers every question with its last gold answer (an alias where there is one)."""
    for task in (TASK_0_1, TASK_0_2):
        ev, pool = task.load(DataSource.fixtures())
        answers = {r["question"]: r["answers"]["text"][-1] for r in ev.rows}
        variant = task.variants()[0]
        run = evaluate_generation(variant, CharLM(by_last_question(answers)), ev, pool, 1)
        assert run.n == 24 and run.metrics["exact_match"] == 100.0 and run.metrics["f1"] == 100.0
        assert [s["shots"] for s in run.samples] == [1] * 24


# --- the 0.2 refit ----------------------------------------------------------------------------------

def _doc(qid, size):
    return row(qid, f"問{qid}？", ["答え"], [f"題{i}" for i in range(5)], [f"{qid}文{i}" * size for i in range(5)])


POOL = [row(f"P{i}", f"例問{i}？", ["例答"], [f"例題{j}" for j in range(5)], [f"例文{i}{j}" for j in range(5)])
        for i in range(6)]
SHORT, LONG, HUGE = ("E1", "E3"), "E2", "E4"
EVAL = [_doc("E1", 1), _doc("E2", 12), _doc("E3", 1), _doc("E4", 80)]


def _lengths(variant, doc, k_shots):
    lm = CharLM()
    shots = [variant.view(s) for s in POOL[:k_shots]]
    return len(lm.tok_encode(variant.template.context(shots, variant.view(doc))))


def _oracle(k, too_long, wasted_draws=True):
    """The harness's evaluator + JAQKETV2.fewshot_context: shuffle with Random(42); per doc try k, k-1, ...
    shots, each try a fresh ``rnd.sample`` (none for 0) from the shared generator. ``wasted_draws=False``
    is what an implementation that picked the shot count before drawing would do (not the harness)."""
    rnd = random.Random()
    rnd.seed(42)
    docs = list(EVAL)
    rnd.shuffle(docs)
    out = []
    for d in docs:
        kk = k
        if not wasted_draws:
            while kk in too_long.get(d["qid"], ()):
                kk -= 1
        while True:
            shots = rnd.sample(POOL, kk) if kk else []
            if kk == 0 or kk not in too_long.get(d["qid"], ()):
                break
            kk -= 1
        out.append((d["qid"], [s["qid"] for s in shots]))
    return out


@pytest.mark.parametrize("version", sorted(V02))
def test_resample_drops_the_shot_and_keeps_the_generators_draws(version):
    """k=1: E2's 1-shot prompt is too long, its 0-shot fits; E4 is too long even 0-shot (the harness
    returns a ValueError object; kensa sends the 0-shot prompt, cut by the backend). The failed
    draw still advanced the generator, so the later docs' shots are the harness's."""
    variant = V02[version]
    budget = _lengths(variant, EVAL[1], 1) - 1
    assert all(_lengths(variant, EVAL[i], 1) <= budget for i in (0, 2))
    assert _lengths(variant, EVAL[1], 0) <= budget < _lengths(variant, EVAL[3], 0)
    lm = CharLM(max_length=budget + 2)  # max_new_tokens = len("答え") = 2
    docs = prepare_generation(variant, Split(EVAL, "mem"), Split(POOL, "mem"), 1, None, lm)
    got = [(d.row["qid"], d.shot_ids) for d in docs]
    assert got == _oracle(1, {"E2": (1,), "E4": (1,)})
    shots = {d.row["qid"]: d.shots for d in docs}
    assert shots == {"E1": 1, "E2": 0, "E3": 1, "E4": 0}
    huge = next(d for d in docs if d.row["qid"] == "E4")
    assert huge.prompt == render(V02, version, [], EVAL[3]) and len(huge.prompt) > budget
    # The failed draws count: without them the shots of the docs after E2 would differ.
    assert got != _oracle(1, {"E2": (1,), "E4": (1,)}, wasted_draws=False)


def test_resample_draws_afresh_with_fewer_shots():
    """k=2: E2 fits with 1 shot, not 2: the 1 shot is a new ``rnd.sample(pool, 1)``, not one of the 2."""
    variant = V02["0.2"]
    budget = _lengths(variant, EVAL[1], 2) - 1
    assert _lengths(variant, EVAL[1], 1) <= budget and _lengths(variant, EVAL[0], 2) <= budget
    lm = CharLM(max_length=budget + 2)
    docs = prepare_generation(variant, Split(EVAL, "mem"), Split(POOL, "mem"), 2, None, lm)
    got = [(d.row["qid"], d.shot_ids) for d in docs]
    assert got == _oracle(2, {"E2": (2,), "E4": (2, 1)})
    assert {d.row["qid"]: d.shots for d in docs} == {"E1": 2, "E2": 1, "E3": 2, "E4": 0}


def test_published_version_never_refits():
    variant = V01["0.2"]
    lm = CharLM(max_length=_lengths(variant, EVAL[1], 1) + 1)
    docs = prepare_generation(variant, Split(EVAL, "mem"), Split(POOL, "mem"), 1, None, lm)
    assert [d.shots for d in docs] == [1, 1, 1, 1]
    assert [(d.row["qid"], d.shot_ids) for d in docs] == _oracle(1, {})


# --- the reader -------------------------------------------------------------------------------------

def dpr_question(qid, answers, passages, hits=None):
    """One question of the retriever output: passages are (title, text); has_answer = answer in text."""
    ctxs = [{"id": str(100 + j), "title": t, "text": x, "score": f"{70 - j}.25",
             "has_answer": hits[j] if hits else any(a in x for a in answers)} for j, (t, x) in enumerate(passages)]
    return {"qid": qid, "question": f"{qid}の答えは？", "answers": answers, "ctxs": ctxs}


def five(answer_at, answer="正解", n=5):
    return [(f"t{j}", f"本文{j}" + (answer if j == answer_at else "")) for j in range(n)]


def write(path, questions, indent=4):
    path.write_text(json.dumps(questions, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def test_reader_keeps_the_top_five_and_the_scripts_shape(tmp_path):
    q = dpr_question("A", ["正解", "別名"], five(2, n=8))
    (r,) = read_jaqket_dpr(DATASET, write(tmp_path / "dev.json", [q])).rows
    assert r == {"qid": "A", "question": "Aの答えは？", "answers": {"text": ["正解", "別名"], "answer_start": [-1, -1]},
                 "ctxs": {"id": ["100", "101", "102", "103", "104"], "title": ["t0", "t1", "t2", "t3", "t4"],
                          "text": ["本文0", "本文1", "本文2正解", "本文3", "本文4"],
                          "score": [70.25, 69.25, 68.25, 67.25, 66.25],
                          "has_answer": [False, False, True, False, False]}}


def test_drop_rule_top_five_passages_without_an_answer(tmp_path):
    questions = [dpr_question("first", ["正解"], five(0)), dpr_question("sixth", ["正解"], five(5, n=6)),
                 dpr_question("fifth", ["正解"], five(4, n=6)), dpr_question("none", ["正解"], five(-1))]
    split = read_jaqket_dpr(DATASET, write(tmp_path / "dev.json", questions))
    assert [r["qid"] for r in split.rows] == ["first", "fifth"]
    text = (tmp_path / "dev.json").read_text(encoding="utf-8").splitlines()
    assert all(text[line - 1] == "    {" for line in split.lines)  # each row's line is its object's start
    assert split.lines[0] == 2 and split.lines[1] > split.lines[0]


def test_drop_rule_reads_has_answer_not_the_text(tmp_path):
    """The script trusts the retriever's has_answer flags (string match at retrieval time)."""
    q = dpr_question("flag", ["正解"], five(0), hits=[False] * 5)
    r = dpr_question("flag2", ["正解"], five(-1), hits=[False, False, False, True, False])
    assert [x["qid"] for x in read_jaqket_dpr(DATASET, write(tmp_path / "d.json", [q, r])).rows] == ["flag2"]


def test_fixture_question_without_an_answer_in_its_top_five_is_dropped():
    path = DataSource.fixtures().root / "jaqket_v2" / "dev_jaqket_59.350.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    dropped = [q["qid"] for q in raw if not any(c["has_answer"] for c in q["ctxs"][:5])]
    assert dropped == ["KENSA-JQ-DEV-0013"]
    assert any(c["has_answer"] for c in raw[12]["ctxs"][5:])  # its answer is in passage 6, beyond the top 5
    ev, pool = TASK_0_2.load(DataSource.fixtures())
    assert len(raw) == 25 and len(ev.rows) == 24 and "KENSA-JQ-DEV-0013" not in {r["qid"] for r in ev.rows}
    assert len(pool.rows) == 8
    assert any(len(q["ctxs"]) > 5 for q in raw if q["qid"] != "KENSA-JQ-DEV-0013")
    assert all(len(r["ctxs"]["text"]) == 5 and any(r["ctxs"]["has_answer"]) for r in ev.rows + pool.rows)
    golds = [r["answers"]["text"][0] for r in ev.rows]
    assert len(set(golds)) == len(golds)  # varied answers


def test_all_questions_dropped_is_a_data_error(tmp_path):
    path = write(tmp_path / "dev.json", [dpr_question("none", ["正解"], five(-1))])
    with pytest.raises(DataError, match="no question has an answer in its top 5 passages"):
        read_jaqket_dpr(DATASET, path)


BROKEN_JSON = [
    ('[\n  {"qid": "a"}\n  {"qid": "b"}\n]\n', 3, "expected ',' or ']'"),
    ('[\n  {"qid": "a",\n   "question": }\n]\n', 3, "malformed JSON"),
    ('[\n  {"qid": "a"},\n]\n', 3, "malformed JSON"),
    ('{"qid": "a"}\n{"qid": "b"}\n', 1, "expected a JSON array"),
    ('[\n  {"qid": "a"}\n]\n]\n', 4, "extra data"),
]


@pytest.mark.parametrize(("text", "line", "message"), BROKEN_JSON)
def test_malformed_json_names_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "dev_jaqket_59.350.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_jaqket_dpr(DATASET, path)
    assert err.value.source == str(path) and err.value.row == line
    assert message in str(err.value) and f"{path}, row {line}:" in str(err.value)


def _broken(tmp_path, mutate):
    good = dpr_question("ok", ["正解"], five(1))
    bad = dpr_question("bad", ["正解"], five(1))
    mutate(bad)
    path = write(tmp_path / "dev_jaqket_59.350.json", [good, bad])
    start = path.read_text(encoding="utf-8").splitlines().index("    {", 2) + 1
    with pytest.raises(DataError) as err:
        read_jaqket_dpr(DATASET, path)
    assert err.value.source == str(path) and err.value.row == start
    return err.value


@pytest.mark.parametrize(("mutate", "field", "message"), [
    (lambda q: q.pop("question"), "question", "missing"),
    (lambda q: q.pop("ctxs"), "ctxs", "missing"),
    (lambda q: q.update(qid=7), "qid", "expected a string"),
    (lambda q: q.update(answers="正解"), "answers", "expected a list of answer strings"),
    (lambda q: q.update(answers=["正解", 3]), "answers", "expected a list of answer strings"),
    (lambda q: q.update(ctxs={"title": []}), "ctxs", "expected a list of passages"),
    (lambda q: q["ctxs"][1].pop("text"), "ctxs[1].text", "missing"),
    (lambda q: q["ctxs"][2].update(has_answer="true"), "ctxs[2].has_answer", "expected true or false"),
    (lambda q: q["ctxs"][0].update(score="high"), "ctxs[0].score", "not a number"),
    (lambda q: q["ctxs"][0].update(title=None), "ctxs[0].title", "expected a string"),
    (lambda q: q["ctxs"].__setitem__(3, "passage"), "ctxs[3]", "expected a passage object"),
])
def test_bad_field_names_file_line_and_field(tmp_path, mutate, field, message):
    err = _broken(tmp_path, mutate)
    assert err.field == field and message in str(err)


def test_only_the_top_five_passages_are_checked(tmp_path):
    """The script never reads passages beyond num_contexts, so a broken 7th one is no error."""
    q = dpr_question("A", ["正解"], five(0, n=7))
    q["ctxs"][6] = {"junk": True}
    assert len(read_jaqket_dpr(DATASET, write(tmp_path / "d.json", [q])).rows) == 1


def test_non_array_element_and_empty_file(tmp_path):
    with pytest.raises(DataError, match="expected a JSON object, got list"):
        read_jaqket_dpr(DATASET, write(tmp_path / "a.json", [[1, 2]]))
    with pytest.raises(DataError, match="holds no questions"):
        read_jaqket_dpr(DATASET, write(tmp_path / "b.json", []))
    bad = tmp_path / "c.json"
    bad.write_bytes(b'[\n  {"qid": "\xff"}\n]\n')
    with pytest.raises(DataError) as err:
        read_jaqket_dpr(DATASET, bad)
    assert err.value.row == 2 and "not UTF-8" in str(err.value)


def test_load_from_a_data_dir_and_the_missing_file_hint(tmp_path):
    with pytest.raises(DataError, match="loading script"):
        TASK_0_1.load(DataSource.local(tmp_path))
    d = tmp_path / "jaqket_v2"
    d.mkdir()
    write(d / "dev_jaqket_59.350.json", [dpr_question("E", ["正解"], five(3))])
    write(d / "train_jaqket_59.350.json", [dpr_question("T", ["別解"], five(0, answer="別解"))])
    ev, pool = TASK_0_1.load(DataSource.local(tmp_path))
    assert [r["qid"] for r in ev.rows] == ["E"] and [r["qid"] for r in pool.rows] == ["T"]
    assert ev.sha256 and ev.split == "validation" and pool.split == "train"


@pytest.mark.parametrize(("change", "field"), [
    (lambda r: r["answers"].update(text=[]), "answers"),
    (lambda r: r["answers"].update(text=[""]), "answers"),
    (lambda r: r["ctxs"].update(text=r["ctxs"]["text"] + ["6th"], title=r["ctxs"]["title"] + ["t6"]), "ctxs"),
    (lambda r: r["ctxs"].update(title=r["ctxs"]["title"][:4]), "ctxs"),
])
def test_row_checks_catch_hub_shaped_rows_too(change, field):
    """Rows from the Hub skip the reader; the task's checks still refuse what the prompts cannot use."""
    bad = json.loads(json.dumps(QUERY))
    change(bad)
    with pytest.raises(DataError) as err:
        TASK_0_2.check_rows(Split([QUERY, bad], "hub:kumapo/JAQKET[validation]"))
    assert err.value.row == 2 and err.value.field == field


def test_real_data():
    root = SHARED_DATA
    if not (root / "jaqket_v2" / "dev_jaqket_59.350.json").is_file():
        pytest.skip(f"no JAQKET v2 source files under {root}/jaqket_v2 (the AIO2 DPR retriever output from "
                    "huggingface.co/datasets/kumapo/JAQKET is not in shared/data)")
    ev, pool = TASK_0_2.load(DataSource.local(root))
    assert len(ev.rows) == 1164 and len(pool.rows) == 2154  # as kumapo/JAQKET v2.0 yields them
