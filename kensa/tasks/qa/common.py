"""What the QA suite's tasks share: the view of a JSQuAD question, the answer highlight, the row checks,
the per-doc scores and the answerability round trip.

Contexts are JSQuAD's whole ``context`` field, ``"{title} [SEP] {paragraph}"``, because its
``answer_start`` counts from the start of that string: the AQG-HL span is placed there, at
``answer_start``, never at the first occurrence of the answer text. (In JSQuAD v1.3 valid every
``answer_start`` happens to equal the first occurrence in that string, so 469 of 4,442 first answers
sit in the title; the fixtures hold a span that is the answer's second occurrence.) The causal QA
prompt shows the paragraph only, as the JSQuAD task does.

Prompt versions 0.1 and 0.2 are for seq2seq models (0-shot, ``question: … context: …`` and the rest);
0.3 is the ja-alpaca instruction format for causal models. Every QA-suite prompt stops at EOS only:
a newline stop would hide the EOS/padding bug that makes a fine-tuned model run on past its answer,
which the ``unterminated`` check is for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kensa.backends.contract import GenerationRequest
from kensa.metrics.hallucination import QUESTION_WORDS, hallucination
from kensa.metrics.qa_text import best, char_f1, ends_as_question, exact_match, normaliser
from kensa.metrics.rouge import qa_rouge
from kensa.tasks.prompts import PromptTemplate

HL = "<hl>"
"""The highlight marker (the tiny T5 tokenizers have it as one special token; ``tests/test_qa_tasks.py``
says which tokenizers split it)."""
SEP_MARK = "[SEP]"
NORMALISER = "1"
"""The normaliser version every QA-suite metric uses (:mod:`kensa.metrics.qa_text`)."""
QA_BUDGET = 32
"""Tokens for an answer (JSQuAD answers are short; a run past this is ``unterminated``)."""
QG_BUDGET = 64
"""Tokens for a question (lmqg's ``max_length_output``)."""


def paragraph(context: str) -> str:
    return context.split(SEP_MARK)[-1].strip()


def highlight(context: str, start: int, answer: str, spaced: bool = False) -> str:
    """``context`` with ``answer`` wrapped in markers at ``start``: lmqg writes ``<hl> a <hl>`` (a space inside
    each marker, none outside), patil-suraj's pipelines ``… <hl> a <hl> …`` (spaces on both sides)."""
    if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start <= len(context) - len(answer):
        raise ValueError(f"answer_start {start!r} is outside the context ({len(context)} characters)")
    if context[start: start + len(answer)] != answer:
        raise ValueError(f"answer_start {start} points at {context[start: start + len(answer)]!r}, not {answer!r}")
    if HL in context:
        raise ValueError(f"the context already holds the marker {HL!r}, so a highlight would be ambiguous")
    pre, post = context[:start], context[start + len(answer):]
    if spaced:
        return f"{pre} {HL} {answer} {HL} {post}"
    return f"{pre}{HL} {answer} {HL}{post}"


def first_answer(row: Any) -> tuple[str, Any]:
    return row["answers"]["text"][0], row["answers"]["answer_start"][0]


def view(row: Any) -> dict[str, str]:
    """Every field a QA-suite template may use. The highlighted contexts are only built for AQG-HL rows
    (other rows may have an answer that cannot be highlighted, which only AQG-HL checks)."""
    answer, _ = first_answer(row)
    return {"title": row["title"], "context": row["context"], "ctx": paragraph(row["context"]),
            "question": row["question"], "q": row["question"], "answer": answer}


def hl_view(row: Any) -> dict[str, str]:
    answer, start = first_answer(row)
    return {**view(row), "hl_context": highlight(row["context"], start, answer),
            "hl_context_spaced": highlight(row["context"], start, answer, spaced=True)}


# -- row checks (errors name the file, row and field) ----------------------------------------------

def check_context(row: Any) -> tuple[str, str] | None:
    if not paragraph(row["context"]):
        return "context", f"the context {row['context']!r} holds no text after the title"
    return None


def check_answers(row: Any) -> tuple[str, str] | None:
    texts, starts = row["answers"].get("text"), row["answers"].get("answer_start")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        return "answers.text", f"expected a non-empty list of non-empty answer texts, got {texts!r}"
    if not isinstance(starts, list) or len(starts) != len(texts):
        return "answers.answer_start", f"expected one answer_start per answer text, got {starts!r}"
    context = row["context"]
    for i, (text, start) in enumerate(zip(texts, starts)):
        if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start <= len(context) - len(text):
            return f"answers[{i}].answer_start", f"{start!r} is not an offset in the context ({len(context)} characters)"
        if context[start: start + len(text)] != text:
            pointed = context[start: start + len(text)]
            return f"answers[{i}].answer_start", f"{start} points at {pointed!r}, not at the answer text {text!r}"
    return None


def check_highlight(row: Any) -> tuple[str, str] | None:
    answer, start = first_answer(row)
    try:
        highlight(row["context"], start, answer)
    except ValueError as exc:
        return "context", f"the answer span cannot be highlighted: {exc}"
    return None


# -- scores --------------------------------------------------------------------------------------------

def hallucination_scores(output: str, sources: Sequence[str],
                         stop_words: frozenset[str] = QUESTION_WORDS) -> dict[str, Any]:
    h = hallucination(output, sources, stop_words)
    return {"hallucination": h.rate, "hallucinated": float(bool(h.hallucinated)),
            "hallucinated_words": h.hallucinated}


def score_answer(generation: str, golds: Sequence[str], context: str) -> dict[str, Any]:
    norm = normaliser(NORMALISER)
    return {"exact_match": best(exact_match, generation, golds, norm), "char_f1": best(char_f1, generation, golds, norm),
            **hallucination_scores(generation, [context])}


def score_question(generation: str, reference: str, answer: str, context: str) -> dict[str, Any]:
    """Per-doc scores of a generated question: ROUGE and (per sample) sentence BLEU against the reference,
    corpus BLEU's pair, hallucination against the context and the answer, and the format checks."""
    from kensa.metrics.bleu_ja import sentence_bleu

    norm = normaliser(NORMALISER)
    return {**qa_rouge(reference, generation), "gold_value": reference, "pred": generation,
            "sentence_bleu": sentence_bleu(reference, generation),
            **hallucination_scores(generation, [context, answer]),
            "question_form": float(ends_as_question(generation)),
            "answer_leak": float(norm(answer) in norm(generation))}


QA_METRICS = ("exact_match", "char_f1", "hallucination", "unterminated")
QG_METRICS = ("bleu", "rouge1_ja", "rouge2_ja", "rougeL_ja", "hallucination", "roundtrip_f1", "question_form", "answer_leak",
              "unterminated")
QG_REPORTED = ("hallucinated", "roundtrip_em", "copies")


# -- the answerability round trip ----------------------------------------------------------------------

@dataclass(frozen=True)
class RoundTrip:
    """A QA model answers each generated question from the same context with the QA prompt for its kind
    (``templates[kind]``); the answer is scored against the intended answer with char F1 and EM."""

    templates: dict[str, PromptTemplate]
    view: Callable[[Any], dict[str, str]]
    intended: Callable[[Any], str]
    budget: int = QA_BUDGET
    metrics: tuple[str, ...] = field(default=("roundtrip_f1", "roundtrip_em"))

    def request(self, question: str, row: Any, kind: str) -> GenerationRequest:
        template = self.templates.get(kind) or self.templates["causal"]
        fields = {**self.view(row), "question": question, "q": question}
        return GenerationRequest(template.context([], fields), (), self.budget)

    def score(self, answer: str, row: Any) -> dict[str, float]:
        norm = normaliser(NORMALISER)
        gold = self.intended(row)
        return {"roundtrip_f1": char_f1(answer, gold, norm), "roundtrip_em": exact_match(answer, gold, norm)}
