"""The QA suite's tasks: the highlight, bad input, the TSV format, the marker's tokens, and the loop's
checks (termination, copies, bad words, the answerability round trip) with fake backends."""

from __future__ import annotations

import json

import pytest

from kensa.data import DataSource
from kensa.errors import DataError
from kensa.tasks.qa import common
from kensa.tasks.qa.jsquad_qa import AQG, AQG_HL, QA
from kensa.tasks.qa.tsv import TASK as TSV
from tests.helpers import RequestLM, run_generation

CONTEXT = "三日月池 [SEP] 三日月池の西には神社があり、池の東にも神社がある。"


def test_the_highlight_goes_where_answer_start_points_not_at_the_first_occurrence():
    second = CONTEXT.index("神社", CONTEXT.index("神社") + 1)
    assert common.highlight(CONTEXT, second, "神社") == "三日月池 [SEP] 三日月池の西には神社があり、池の東にも<hl> 神社 <hl>がある。"
    assert common.highlight(CONTEXT, second, "神社", spaced=True).endswith("池の東にも <hl> 神社 <hl> がある。")
    # the fixtures hold this case, so a find()-based highlight would change a snapshot
    eval_split, _ = AQG_HL.load(DataSource.fixtures())
    row = next(r for r in eval_split.rows if r["question"] == "池の東には何がありますか？")
    assert "池の東にも<hl> 神社 <hl>がある。" in common.hl_view(row)["hl_context"]


def _squad_file(tmp_path, context, answer, start, question="何がありますか？"):
    doc = {"data": [{"title": "t", "paragraphs": [{"context": context, "qas": [
        {"id": "ok", "question": "q", "answers": [{"text": "西", "answer_start": context.find("西")}]},
        {"id": "bad", "question": question, "answers": [{"text": answer, "answer_start": start}]}]}]}]}
    path = tmp_path / "jglue" / "jsquad" / "valid-v1.3.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "jglue" / "jsquad" / "test-v1.3.json").write_text(json.dumps(doc, ensure_ascii=False))
    return DataSource.local(tmp_path)


@pytest.mark.parametrize("task, context, answer, start, row, field, message", [
    (AQG, CONTEXT, "神社", 3, 2, "answers[0].answer_start", "3 points at '池 ', not at the answer text '神社'"),
    (QA, CONTEXT, "神社", 999, 2, "answers[0].answer_start", "999 is not an offset in the context"),
    (QA, CONTEXT, "神社", None, 2, "answers[0].answer_start", "None is not an offset"),
    # the paragraph is shared, so its first question is the row named
    (AQG, "三日月池西 [SEP] ", "西", 4, 1, "context", "holds no text after the title"),
    (AQG_HL, "三日月池 [SEP] 西の<hl>神社<hl>", "西", 11, 1, "context", "cannot be highlighted"),
])
def test_bad_input_names_the_file_row_and_field(tmp_path, task, context, answer, start, row, field, message):
    with pytest.raises(DataError) as exc:
        task.load(_squad_file(tmp_path, context, answer, start))
    assert exc.value.row == row and exc.value.field == field and message in str(exc.value)
    assert str(tmp_path / "jglue" / "jsquad" / "valid-v1.3.json") in str(exc.value)


def test_tsv_rows_and_their_errors(tmp_path):
    path = tmp_path / "qa_tsv" / "mine.tsv"
    path.parent.mkdir()
    path.write_text("a1\tquestion: 何？ context: りんご\tりんご\n", encoding="utf-8")
    eval_split, pool = TSV.load(DataSource.local(tmp_path))
    assert pool is None and eval_split.rows[0]["context"] == "りんご"
    view = TSV.variants()[0].view(eval_split.rows[0])
    assert view["input"] == "question: 何? context: りんご"  # NFKC per field, the format's spaces kept
    for text, field in [("a\tb\n", "columns"), ("\tquestion: q context: c\tc\n", "QA_ID"),
                        ("a\tq: c\tc\n", "input"), ("a\tquestion: q context: \tx\n", "input.context"),
                        ("a\tquestion: q context: c\t \n", "answer"),
                        ("a\tquestion:  context: c\tc\n", "input.question"),
                        ("a\tquestion: q context: c\tx\n", "answer"),  # an answer its context does not hold
                        ("a\tquestion: q context: c\tc\nx1\tquestion: q context: c\tc\n", "QA_ID")]:
        path.write_text("x1\tquestion: q context: c\tc\n" + text, encoding="utf-8")
        with pytest.raises(DataError) as exc:
            TSV.load(DataSource.local(tmp_path))
        row = 3 if text.count("\n") == 2 else 2
        assert exc.value.field == field and exc.value.row == row and str(path) in str(exc.value), text


def test_the_marker_is_one_token_for_the_t5_tokenizers_and_pieces_for_the_causal_one():
    from transformers import AutoTokenizer

    from kensa.tiny import build as tiny

    for name in ("tiny-t5", "tiny-t5-trained"):
        tok = AutoTokenizer.from_pretrained(tiny.build_model(name))
        assert tok.tokenize(common.HL) == [common.HL], name
        # lmqg's and patil-suraj's spacing give different ids around the marker
        assert tok.encode("町<hl> a <hl>は", add_special_tokens=False) != tok.encode("町 <hl> a <hl> は",
                                                                                     add_special_tokens=False)
    causal = AutoTokenizer.from_pretrained(tiny.build_model("tiny"))
    assert len(causal.tokenize(common.HL)) > 1


def test_round_trip_with_a_fake_backend():
    import re

    eval_split, _ = AQG.load(DataSource.fixtures())
    rows = eval_split.rows
    questions = {f"answer: {r['answers']['text'][0]} context: {r['context']}": r["question"] for r in rows}
    answers = {(common.paragraph(r["context"]), r["question"]): r["answers"]["text"][0] for r in rows}

    def answer(request):  # a causal QA model that knows every fixture question
        ctx, question = re.search(r"文脈：(.*)\n質問：(.*)\n", request.context).groups()
        return answers.get((ctx, question), "わからない")

    aqg_model = RequestLM("seq2seq", lambda r: questions[r.context])
    qa_model = RequestLM("causal", answer)
    run = run_generation(AQG, "0.1", aqg_model, qa_lm=qa_model)
    # the QA model got the causal QA prompt (its kind), 0-shot, stopping at EOS only
    assert len(qa_model.asked) == len(rows) and all("### 応答:" in r.context and r.until == () for r in qa_model.asked)
    assert run.data["roundtrip"]["qa_model"] == "fake" and run.data["roundtrip"]["qa_model_kind"] == "causal"
    assert run.metrics["roundtrip_f1"] == pytest.approx(100.0) and run.metrics["roundtrip_em"] == 100.0
    # a seq2seq QA model gets the seq2seq prompt; a wrong answer scores char F1 against the intended answer
    wrong = RequestLM("seq2seq", lambda r: "甲府")
    run = run_generation(AQG, "0.1", aqg_model, qa_lm=wrong)
    assert all(r.context.startswith("question: ") and " context: " in r.context for r in wrong.asked)
    kofu = next(s for s in run.samples if s["doc"]["answers"]["text"][0] == "甲府市")
    assert kofu["roundtrip_f1"] == pytest.approx(80.0) and kofu["roundtrip_em"] == 0.0
    assert kofu["roundtrip_prompt"] == f"question: {kofu['generation']} context: {kofu['doc']['context']}"


def test_termination_copies_and_bad_words_are_checked_per_sample():
    eval_split, pool = AQG.load(DataSource.fixtures())
    pool_question = pool.rows[0]["question"]
    lm = RequestLM("seq2seq", lambda r: pool_question, reason="length", bad_words=("坂",))
    run = run_generation(AQG, "0.1", lm, qa_lm=RequestLM("seq2seq", lambda r: "x"))
    assert run.metrics["unterminated"] == 1.0 and run.metrics["copies"] == 1.0
    assert run.metrics["bad_word_violations"] == len(eval_split.rows) * pool_question.count("坂")
    s = run.samples[0]
    assert s["stop_reason"] == "length" and s["unterminated"] == 1.0 and s["copies"] == 1.0
    assert s["bad_words_found"] == {"坂": pool_question.count("坂")}
    # a generation that stopped at EOS is terminated
    run = run_generation(QA, "0.1", RequestLM("seq2seq", lambda r: "甲府市"))
    assert run.metrics["unterminated"] == 0.0 and "copies" not in run.metrics


def test_every_jglue_generation_task_reports_termination():
    from kensa.tasks import get_task

    task = get_task("jsquad", "1.1")
    variant = task.variants()[0]
    eval_split, pool = task.load(DataSource.fixtures())
    from kensa.run.generation import evaluate_generation

    run = evaluate_generation(variant, RequestLM("causal", lambda r: "りんご", reason="length"), eval_split, pool, 0)
    assert run.metrics["unterminated"] == 1.0 and "unterminated" not in task.metrics
    assert all(s["stop_reason"] == "length" for s in run.samples)


def test_question_scores_record_the_bleu_signature_and_dictionaries():
    run = run_generation(AQG, "0.1", RequestLM("seq2seq", lambda r: "山梨県の県庁所在地はどこですか？"),
                         qa_lm=RequestLM("seq2seq", lambda r: ""))
    assert run.data["metrics"]["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:ja-mecab-")
    assert run.data["metrics"]["bleu_dictionary"]["size"] == 392126
    s = next(s for s in run.samples if s["doc"]["question"] == "山梨県の県庁所在地はどこですか？")
    assert s["sentence_bleu"] == pytest.approx(100.0)
    assert s["rougeL_ja"] == 100.0 and s["question_form"] == 1.0 and s["answer_leak"] == 0.0
    assert s["hallucinated_words"] == [] and s["pred"] == s["gold_value"]
    other = next(s for s in run.samples if s["doc"]["question"] != "山梨県の県庁所在地はどこですか？")
    assert other["hallucinated_words"]  # 山梨, 県庁 ... are not in another article
