"""The QA suite's rules for inputs and settings: the normalised prompt versions, the readers (several TSVs,
CSV quoting, a BOM, answers absent from their context, empty fields), the AQG TSV formats, the
question-generation budget, the seed's ``--bad-words`` form and the round trip's fingerprint."""

from __future__ import annotations

import json

import pytest

from kensa.data import DataSource
from kensa.errors import DataError, OptionError
from kensa.tasks.qa import common
from kensa.tasks.qa.jsquad_qa import AQG, AQG_HL, QA
from kensa.tasks.qa.tsv import AQG_HL_TASK, AQG_TASK
from kensa.tasks.qa.tsv import TASK as QA_TSV
from tests.helpers import RequestLM, by_metric, entry_for, gate_rows, run_generation, run_record


def _variant(task, version):
    return next(v for v in task.variants() if v.template.version == version)


def _fixture_row(question):
    eval_split, _ = AQG_HL.load(DataSource.fixtures())
    return next(r for r in eval_split.rows if r["question"] == question)


# -- one normalisation ------------------------------------------------------------------------------

def test_normalised_prompt_versions_feed_normalised_inputs():
    row = {"title": "梅雨", "context": "梅雨 [SEP] 梅雨（つゆ）は５月上旬に始まる。", "question": "梅雨はいつ始まる？",
           "answers": {"text": ["５月上旬"], "answer_start": [16]}}
    assert row["context"][16:20] == "５月上旬"
    assert _variant(QA, "0.4").template.context([], common.view(row)) == \
        "question: 梅雨はいつ始まる? context: 梅雨[SEP]梅雨(つゆ)は5月上旬に始まる。"
    assert _variant(QA, "0.1").template.context([], common.view(row)).endswith("梅雨 [SEP] 梅雨（つゆ）は５月上旬に始まる。")
    assert _variant(AQG, "0.4").template.context([], common.view(row)) == \
        "answer: 5月上旬 context: 梅雨[SEP]梅雨(つゆ)は5月上旬に始まる。"
    # The users' highlight on normalised text wraps exactly the answer where answer_start maps to.
    assert _variant(AQG_HL, "0.4").template.context([], common.hl_view(row)) == \
        "梅雨[SEP]梅雨(つゆ)は <hl> 5月上旬 <hl> に始まる。"


def test_the_normalised_highlight_follows_answer_start_not_the_first_occurrence():
    row = _fixture_row("池の東には何がありますか？")
    assert "池の東にも <hl> 神社 <hl> がある。" in common.hl_view(row)["n_hl_context"]
    assert common.hl_view(row)["n_hl_context"].count("<hl>") == 2
    # neologdn keeps the space in "] 5" (two ASCII characters) in the whole context only
    assert common.normalised_highlight("梅雨 [SEP] 5月上旬には", 9, "5月上旬") == "梅雨[SEP] <hl> 5月上旬 <hl> には"


def test_the_users_unprefixed_highlight_is_a_prompt_version():
    row = _fixture_row("池の東には何がありますか？")
    text = _variant(AQG_HL, "0.5").template.context([], common.hl_view(row))
    assert "池の東にも <hl> 神社 <hl> がある。" in text and not text.startswith("generate question:")


def test_qa_metrics_compare_normalised_text():
    run = run_generation(AQG, "0.1", RequestLM("seq2seq", lambda r: "山梨県の県庁所在地はどこですか?"),
                         qa_lm=RequestLM("seq2seq", lambda r: "甲府市"))
    s = next(s for s in run.samples if s["doc"]["question"] == "山梨県の県庁所在地はどこですか？")
    assert s["sentence_bleu"] == pytest.approx(100.0) and s["rougeL_ja"] == 100.0
    assert "bleu_raw" in run.metrics and run.metrics["bleu_raw"] < run.metrics["bleu"]


# -- readers ----------------------------------------------------------------------------------------

def _squad(tmp_path, question="何がありますか？", answer="神社"):
    context = "三日月池 [SEP] 三日月池の西には神社がある。"
    doc = {"data": [{"title": "t", "paragraphs": [{"context": context, "qas": [
        {"id": "ok", "question": question, "answers": [{"text": answer, "answer_start": context.find("神社")}]}]}]}]}
    for name in ("valid-v1.3.json", "test-v1.3.json"):
        path = tmp_path / "jglue" / "jsquad" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return DataSource.local(tmp_path)


@pytest.mark.parametrize("question, answer, field", [(" ", "神社", "question"), ("何？", "", "answers.text")])
def test_a_jsquad_row_with_an_empty_question_or_answer_is_an_error(tmp_path, question, answer, field):
    for task in (QA, AQG, AQG_HL):
        with pytest.raises(DataError) as exc:
            task.load(_squad(tmp_path, question, answer))
        assert exc.value.field == field and exc.value.row == 1 and "valid-v1.3.json" in str(exc.value)


def _tsv(tmp_path, text, name="mine.tsv", folder="qa_tsv", encoding="utf-8"):
    path = tmp_path / folder / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def test_several_tsvs_are_an_error_naming_them_all(tmp_path):
    _tsv(tmp_path, "a\tquestion: q context: c\tc\n", "old.tsv")
    _tsv(tmp_path, "a\tquestion: q context: c\tc\n", "new.tsv")
    with pytest.raises(DataError) as exc:
        QA_TSV.load(DataSource.local(tmp_path))
    assert "new.tsv" in str(exc.value) and "old.tsv" in str(exc.value) and "2 TSV files" in str(exc.value)


def test_a_bom_is_dropped_and_csv_quoting_is_read_as_csv(tmp_path):
    _tsv(tmp_path, 'a1\tquestion: 猫の名前は？ context: 猫の名前は"ミミ"だ。\t"""ミミ"""\n', encoding="utf-8-sig")
    eval_split, _ = QA_TSV.load(DataSource.local(tmp_path))
    assert eval_split.rows[0]["id"] == "a1" and eval_split.rows[0]["answer"] == '"ミミ"'


def test_a_broken_csv_quote_is_an_error_naming_the_row(tmp_path):
    path = _tsv(tmp_path, 'a1\tquestion: q context: c\tc\na2\tquestion: q context: c\t"c\n')
    with pytest.raises(DataError) as exc:
        QA_TSV.load(DataSource.local(tmp_path))
    assert exc.value.field == "columns" and exc.value.row == 2 and str(path) in str(exc.value)


def test_the_aqg_tsv_formats(tmp_path):
    _tsv(tmp_path, "g1\tanswer: １９６４年 context: ひかり駅は１９６４年に開業した。\tひかり駅の開業は何年？\n", folder="aqg_tsv")
    row = AQG_TASK.load(DataSource.local(tmp_path))[0].rows[0]
    assert row["answer"] == "１９６４年" and row["question"] == "ひかり駅の開業は何年？"
    assert AQG_TASK.variants()[0].view(row)["input"] == "answer: 1964年 context: ひかり駅は1964年に開業した。"
    _tsv(tmp_path, "h1\tひかり駅は <hl> １９６４年 <hl> に開業した。\tひかり駅の開業は何年？\n", folder="aqg_hl_tsv")
    row = AQG_HL_TASK.load(DataSource.local(tmp_path))[0].rows[0]
    assert row["answer"] == "１９６４年" and row["context"] == "ひかり駅は１９６４年に開業した。"
    assert AQG_HL_TASK.variants()[0].view(row)["input"] == "ひかり駅は <hl> 1964年 <hl> に開業した。"


@pytest.mark.parametrize("folder, line, field", [
    ("aqg_tsv", "g\tanswer: 犬 context: ひかり駅は古い。\tq？", "input.answer"),
    ("aqg_tsv", "g\tanswer: 駅 context: ひかり駅は古い。\t ", "question"),
    ("aqg_tsv", "g\tquestion: 駅 context: ひかり駅は古い。\tq？", "input"),
    ("aqg_hl_tsv", "g\tひかり <hl> 駅は古い。\tq？", "input"),
    ("aqg_hl_tsv", "g\tひかり <hl>  <hl> 駅は古い。\tq？", "input.answer"),
])
def test_aqg_tsv_errors_name_the_file_row_and_field(tmp_path, folder, line, field):
    path = _tsv(tmp_path, line + "\n", folder=folder)
    task = AQG_TASK if folder == "aqg_tsv" else AQG_HL_TASK
    with pytest.raises(DataError) as exc:
        task.load(DataSource.local(tmp_path))
    assert exc.value.field == field and exc.value.row == 1 and str(path) in str(exc.value)


def test_the_tsv_fixtures_load():
    for task in (QA_TSV, AQG_TASK, AQG_HL_TASK):
        eval_split, _ = task.load(DataSource.fixtures())
        assert len(eval_split.rows) == 36


# -- settings ---------------------------------------------------------------------------------------

class _Spec:
    def __init__(self, max_gen_toks):
        from kensa.backends.args import ModelArgs

        self.args = ModelArgs(max_gen_toks=max_gen_toks)


def test_max_gen_toks_sets_the_question_generation_budget():
    lm = RequestLM("seq2seq", lambda r: "何か？")
    run = run_generation(AQG, "0.1", lm, qa_lm=RequestLM("seq2seq", lambda r: "x"))
    assert {s["max_new_tokens"] for s in run.samples} == {128} and run.data["max_new_tokens"] == [128]
    lm.spec = _Spec(40)
    run = run_generation(AQG_HL, "0.1", lm, qa_lm=RequestLM("seq2seq", lambda r: "x"))
    assert {s["max_new_tokens"] for s in run.samples} == {40} and {r.max_new_tokens for r in lm.asked[-5:]} == {40}


def test_bad_words_take_the_seeds_form_and_a_comma_list():
    import argparse

    from kensa.cli.generate import add_parser, bad_words

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["generate", "--model", "m", "--answer", "a", "--context", "c", "--bad-words", "山梨",
                              "山梨県"])
    assert bad_words(args.bad_words) == ("山梨", "山梨県")
    assert bad_words(["山梨,山梨県"]) == ("山梨", "山梨県") == bad_words(["山梨", "山梨県"])
    with pytest.raises(OptionError, match="'山梨 山梨県' holds whitespace"):
        bad_words(["山梨 山梨県"])
    with pytest.raises(OptionError, match="given twice"):
        bad_words(["山梨", "山梨,甲府"])
    from kensa.backends.args import parse_model_args

    with pytest.raises(OptionError, match="holds whitespace"):
        parse_model_args("bad_words=山梨 県|甲府")


# -- the round trip ---------------------------------------------------------------------------------

def test_without_a_qa_model_the_round_trip_is_self_and_not_gated():
    from kensa.gate.fingerprint import gated_metrics, incomparable, with_qa_model

    run = run_generation(AQG, "0.1", RequestLM("seq2seq", lambda r: "何か？"))
    assert run.data["roundtrip"]["qa_model"] == "self" and run.data["roundtrip"]["gated"] is False
    assert "roundtrip_f1" in run.metrics  # reported
    assert "roundtrip_f1" not in gated_metrics(AQG.metrics, None)
    qa = RequestLM("seq2seq", lambda r: "x")
    qa.info = {"identity": {"name": "fake", "weights_sha256": "ab" * 32}}
    assert "roundtrip_f1" in gated_metrics(AQG.metrics, qa)
    env = {"backend": "hf-seq2seq"}
    base, other = with_qa_model(env, AQG.metrics, None), with_qa_model(env, AQG.metrics, qa)
    assert base["qa_model"] == "self" and other["qa_model"] == "fake@" + "ab" * 8
    assert incomparable(base, other) == [f"qa_model self -> fake@{'ab' * 8}"]
    assert incomparable(base, base) == []
    assert "qa_model" not in with_qa_model(env, QA.metrics, qa)  # no round trip, no QA model in its fingerprint


def test_the_gate_leaves_docs_without_a_hallucination_rate_out_of_the_pair(tmp_path):
    from dataclasses import replace

    from kensa.gate.thresholds import Items, load_items, write_items
    from kensa.gate.verdicts import compare_models

    base_vals = [0.0] * 20 + [None] * 5
    cand_vals = [0.0] * 10 + [None] * 10 + [100.0] * 5  # the last five had no rate in the baseline
    base = run_record([1.0] * 25, gated=("acc",))
    base = replace(base, gated=("hallucination",), metrics={"hallucination": 0.0, "hallucination_stderr": 0.0},
                   items=Items(list(range(25)), {"hallucination": base_vals}))
    cand = replace(base, metrics={"hallucination": 0.0, "hallucination_stderr": 0.0},
                   items=Items(list(range(25)), {"hallucination": cand_vals}))
    row = by_metric(gate_rows(base, cand))["hallucination"]
    assert row.status in ("pass", "underpowered") and row.method == "permutation" and row.p == 1.0  # 10 pairs, equal
    assert row.flips == 0
    assert compare_models(base, cand)[0].p == 1.0
    # null items survive the thresholds file
    entry = entry_for(base)
    write_items(tmp_path, entry.items, entry, base.items)
    assert load_items(tmp_path, entry, tmp_path / "t.toml").values["hallucination"] == base_vals


def test_the_new_prompt_versions_are_not_taught_to_the_trained_tiny_models():
    # Teaching them would retrain tiny-t5-trained (its cache key holds a digest of its training text) and move
    # every threshold it has, JGLUE and quiz included.
    for task, version in [(QA, "0.4"), (AQG, "0.4"), (AQG_HL, "0.4"), (AQG_HL, "0.5"), (AQG_TASK, "0.1"),
                          (AQG_HL_TASK, "0.1")]:
        assert not _variant(task, version).trained_for("seq2seq")
    assert _variant(QA, "0.1").trained_for("seq2seq") and _variant(QA_TSV, "0.1").trained_for("seq2seq")


def test_the_aqg_tsv_tasks_run_with_a_round_trip():
    for task in (AQG_TASK, AQG_HL_TASK):
        qa = RequestLM("seq2seq", lambda r: "甲府市")
        run = run_generation(task, "0.1", RequestLM("seq2seq", lambda r: "山梨県の県庁所在地はどこですか？"), qa_lm=qa)
        assert run.n == 36 and "copies" not in run.metrics  # no few-shot pool to copy from
        assert any(r.context.startswith("question: ") and r.context.endswith(" context: 山梨県の県庁所在地は甲府市です。富士山の北側に位置する。")
                   for r in qa.asked)
        kofu = next(s for s in run.samples if s["doc"]["answer"] == "甲府市")
        assert kofu["roundtrip_f1"] == 100.0 and run.metrics["bleu"] > 0
