"""QA, AQG and AQG-HL on JSQuAD (task version 1.0 each), for seq2seq and causal models.

| task | 0.1 (seq2seq) | 0.2 (seq2seq) | 0.3 (causal, ja-alpaca) | 0.4 (seq2seq, normalised) |
|---|---|---|---|---|
| ``qa`` | ``question: {question} context: {context}`` | | JSQuAD's 0.3 prompt | 0.1 on normalised text |
| ``aqg`` | ``answer: {answer} context: {context}`` | | instruction + context + answer | 0.1 on normalised text |
| ``aqg_hl`` | the context with ``<hl> a <hl>`` (lmqg) | ``generate question: `` + `` <hl> a <hl> `` (patil-suraj) | instruction + highlighted context | the users' ``c … <hl> a <hl> … c``, normalised |

``aqg_hl`` 0.5 is the users' unprefixed highlight ``c … <hl> a <hl> … c`` on the raw text. 0.4 is what a
model trained the users' way (normalised data) reads: question, context and answer each pass through
normaliser 1, and the highlight wraps the normalised answer where ``answer_start`` maps to.

All are 0-shot (fine-tuned models; ``--num-fewshot aqg=2`` adds shots from the pool) and stop at EOS only.
QA is scored by exact match and char F1 after the normaliser, and by hallucination against the
context; AQG by corpus BLEU (sacrebleu ja-mecab), ROUGE-1/2/L (MeCab tokens), hallucination against
the context and the answer, the answerability round trip, the question form and whether the answer
leaks into the question; ``copies`` counts questions identical to one of the pool's. Data: JSQuAD's
validation split (``jglue/jsquad/valid-v*.json``), the pool its train split (``shared/data`` has none:
test); the fixtures are the suite's own, in JSQuAD's format (``fixtures/qa/jsquad/``).
"""

from __future__ import annotations

import dataclasses

from kensa.tasks.jglue import jsquad
from kensa.tasks.base import GenerationTask
from kensa.tasks.prompts import ALPACA_HEADER, PromptTemplate
from kensa.tasks.qa.common import (
    QA_BUDGET,
    QA_METRICS,
    QA_REPORTED,
    QG_METRICS,
    QG_REPORTED,
    RoundTrip,
    check_answers,
    check_context,
    check_highlight,
    check_question,
    first_answer,
    hl_view,
    qg_budget,
    score_answer,
    score_question,
    view,
)
from kensa.tasks.registry import register

SEQ2SEQ, CAUSAL = ("seq2seq",), ("causal",)

DATASET = dataclasses.replace(jsquad.DATASET, fixture_local={"train": "qa/jsquad/train-v*.json",
                                                             "validation": "qa/jsquad/valid-v*.json",
                                                             "test": "qa/jsquad/valid-v*.json"})

QA_T5 = PromptTemplate("0.1", name="t5-qa", description="", text="question: {question} context: {context}",
                       target="{answer}", model_kinds=SEQ2SEQ)
QA_T5_NORMALISED = PromptTemplate("0.4", name="t5-qa-normalised", description="", tiny_trained=False,
                                  text="question: {n_question} context: {n_context}", target="{n_answer}",
                                  model_kinds=SEQ2SEQ)
QA_ALPACA = dataclasses.replace(next(t for t in jsquad.templates(False) if t.version == "0.3"), model_kinds=CAUSAL)

AQG_INSTRUCTION = "与えられた文脈から、答えが「{answer}」になる質問を作ってください。"
AQG_HL_INSTRUCTION = "与えられた文脈の<hl>で囲まれた部分が答えになる質問を作ってください。"

AQG_TEMPLATES = (
    PromptTemplate("0.1", name="t5-aqg", description="", text="answer: {answer} context: {context}",
                   target="{question}", model_kinds=SEQ2SEQ),
    PromptTemplate("0.3", name="ja-alpaca", description=ALPACA_HEADER,
                   text=f"### 指示:\n{AQG_INSTRUCTION}\n\n### 入力:\n文脈：{{ctx}}\n答え：{{answer}}\n\n### 応答:\n",
                   target="{question}", model_kinds=CAUSAL),
    PromptTemplate("0.4", name="t5-aqg-normalised", description="", tiny_trained=False, text="answer: {n_answer} context: {n_context}",
                   target="{n_question}", model_kinds=SEQ2SEQ),
)
AQG_HL_TEMPLATES = (
    PromptTemplate("0.1", name="lmqg-hl", description="", text="{hl_context}", target="{question}",
                   model_kinds=SEQ2SEQ),
    PromptTemplate("0.2", name="patil-hl", description="", text="generate question: {hl_context_spaced}",
                   target="{question}", model_kinds=SEQ2SEQ),
    PromptTemplate("0.3", name="ja-alpaca", description=ALPACA_HEADER,
                   text=f"### 指示:\n{AQG_HL_INSTRUCTION}\n\n### 入力:\n文脈：{{hl_context}}\n\n### 応答:\n",
                   target="{question}", model_kinds=CAUSAL),
    PromptTemplate("0.4", name="users-hl-normalised", description="", tiny_trained=False, text="{n_hl_context}", target="{n_question}",
                   model_kinds=SEQ2SEQ),
    PromptTemplate("0.5", name="users-hl", description="", tiny_trained=False, text="{hl_context_spaced}", target="{question}",
                   model_kinds=SEQ2SEQ),
)

ROUND_TRIP = RoundTrip(templates={"seq2seq": QA_T5, "causal": QA_ALPACA}, view=view,
                       intended=lambda row: first_answer(row)[0])


def _answers(row) -> list[str]:
    return list(row["answers"]["text"])


def _question(row) -> list[str]:
    return [row["question"]]


def _score_qa(generation: str, row, lm) -> dict:
    return score_answer(generation, _answers(row), row["context"])


def _score_qg(generation: str, row, lm) -> dict:
    return score_question(generation, row["question"], first_answer(row)[0], row["context"])


def _no_stop(template) -> tuple[str, ...]:
    return ()


COMMON = dict(version="1.0", suite="qa", dataset=DATASET, eval_split="validation", fewshot_split="train",
              num_fewshot=0, until=_no_stop, fewshot_fallback=("test",), clusters=lambda row: row["context"])

QA = register(GenerationTask(
    name="qa", templates=(QA_T5, QA_ALPACA, QA_T5_NORMALISED), view=view, golds=_answers, score=_score_qa,
    metrics=QA_METRICS, reported=QA_REPORTED, max_new_tokens=lambda row, lm: QA_BUDGET,
    extra_checks=(check_context, check_question, check_answers),
    description="JSQuAD QA: exact match and char F1 after the normaliser, hallucination", **COMMON))

AQG = register(GenerationTask(
    name="aqg", templates=AQG_TEMPLATES, view=view, golds=_question, score=_score_qg, metrics=QG_METRICS,
    reported=QG_REPORTED, max_new_tokens=lambda row, lm: qg_budget(lm),
    extra_checks=(check_context, check_question, check_answers),
    pool_text=lambda row: row["question"], roundtrip=ROUND_TRIP,
    description="JSQuAD answer-aware question generation", **COMMON))

AQG_HL = register(GenerationTask(
    name="aqg_hl", templates=AQG_HL_TEMPLATES, view=hl_view, golds=_question, score=_score_qg, metrics=QG_METRICS,
    reported=QG_REPORTED, max_new_tokens=lambda row, lm: qg_budget(lm),
    extra_checks=(check_context, check_question, check_answers, check_highlight),
    pool_text=lambda row: row["question"], roundtrip=ROUND_TRIP,
    description="JSQuAD question generation from a highlighted answer span", **COMMON))
