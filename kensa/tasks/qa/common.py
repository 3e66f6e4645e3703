"""What the QA suite's tasks share: the view of a JSQuAD question, the answer highlight, the row checks,
the per-doc scores and the answerability round trip.

Contexts are JSQuAD's whole ``context`` field, ``"{title} [SEP] {paragraph}"``, because its
``answer_start`` counts from the start of that string: the AQG-HL span is placed there, at
``answer_start``, never at the first occurrence of the answer text. (In JSQuAD v1.3 valid every
``answer_start`` happens to equal the first occurrence in that string, so 469 of 4,442 first answers
sit in the title; the fixtures hold a span that is the answer's second occurrence.) The causal QA
prompt shows the paragraph only, as the JSQuAD task does.

Prompt versions 0.1 and 0.2 are for seq2seq models (0-shot, ``question: … context: …`` and the rest);
0.3 is the ja-alpaca instruction format for causal models; 0.4 (and AQG-HL's 0.5) are the users' own
seq2seq formats, 0.4 with every input passed through the normaliser as the users' training data is
(``n_*`` fields; the AQG-HL span re-mapped so that it still wraps exactly the answer at
``answer_start``). Every QA-suite prompt stops at EOS only:
a newline stop would hide the EOS/padding bug that makes a fine-tuned model run on past its answer,
which the ``unterminated`` check is for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kensa.backends.contract import GenerationRequest
from kensa.metrics.hallucination import QUESTION_WORDS, hallucination, lemma_hallucination
from kensa.metrics.qa_text import best, char_f1, ends_as_question, exact_match, normaliser
from kensa.metrics.rouge import qa_rouge
from kensa.tasks.prompts import PromptTemplate

HL = "<hl>"
"""The highlight marker (the tiny T5 tokenizers have it as one special token; ``tests/unit/tasks/test_qa_tasks.py``
says which tokenizers split it)."""
SEP_MARK = "[SEP]"
NORMALISER = "1"
"""The normaliser version every QA-suite metric uses (:mod:`kensa.metrics.qa_text`)."""
QA_BUDGET = 32
"""Tokens for an answer (JSQuAD answers are short; a run past this is ``unterminated``)."""
QG_BUDGET = 128
"""Tokens for a question when the model arguments set no ``max_gen_toks`` (the users' ``max_target_length``)."""


def qg_budget(lm: Any) -> int:
    """The question-generation budget: ``max_gen_toks=`` when the model arguments set it, else :data:`QG_BUDGET`
    (``max_gen_toks=256``, the argument's own default, reads as not set)."""
    from kensa.backends.args import ModelArgs

    spec = getattr(lm, "spec", None)
    given = getattr(getattr(spec, "args", None), "max_gen_toks", None)
    return given if isinstance(given, int) and given != ModelArgs.max_gen_toks else QG_BUDGET


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


def normalised_highlight(context: str, start: int, answer: str) -> str:
    """The users' highlight form on normalised text: ``normalise(context)`` with ``normalise(answer)`` wrapped
    as ``… <hl> a <hl> …`` where ``answer_start`` maps to. The span's new offset is the length of the
    normalised text before it; a span the normaliser moves or merges with its neighbours is an error."""
    highlight(context, start, answer)  # the raw span is valid first
    norm = normaliser(NORMALISER)
    n_context, n_pre, n_answer = norm(context), norm(context[:start]), norm(answer)
    offset = len(n_pre)
    # neologdn keeps a space between two ASCII characters only, so the one before the span (``] 5月``) may
    # survive in the whole context but not in the text before the span alone: step over it.
    while offset < len(n_context) and n_context[offset].isspace() and not n_answer[:1].isspace():
        offset += 1
    if not n_answer or not n_context.startswith(n_pre) or not n_context[offset:].startswith(n_answer):
        raise ValueError(f"after the normaliser the answer {n_answer!r} no longer follows {n_pre[-20:]!r}")
    highlight(n_context, offset, n_answer)  # checks the span and the marker
    return f"{n_context[:offset].rstrip()} {HL} {n_answer} {HL} {n_context[offset + len(n_answer):].lstrip()}"


def first_answer(row: Any) -> tuple[str, Any]:
    return row["answers"]["text"][0], row["answers"]["answer_start"][0]


def view(row: Any) -> dict[str, str]:
    """Every field a QA-suite template may use. The highlighted contexts are only built for AQG-HL rows
    (other rows may have an answer that cannot be highlighted, which only AQG-HL checks)."""
    answer, _ = first_answer(row)
    norm = normaliser(NORMALISER)
    return {"title": row["title"], "context": row["context"], "ctx": paragraph(row["context"]),
            "question": row["question"], "q": row["question"], "answer": answer,
            "n_context": norm(row["context"]), "n_question": norm(row["question"]), "n_answer": norm(answer)}


def hl_view(row: Any) -> dict[str, str]:
    answer, start = first_answer(row)
    return {**view(row), "hl_context": highlight(row["context"], start, answer),
            "hl_context_spaced": highlight(row["context"], start, answer, spaced=True),
            "n_hl_context": normalised_highlight(row["context"], start, answer)}


# -- row checks (errors name the file, row and field) ----------------------------------------------

def check_context(row: Any) -> tuple[str, str] | None:
    if not paragraph(row["context"]):
        return "context", f"the context {row['context']!r} holds no text after the title"
    return None


def check_question(row: Any) -> tuple[str, str] | None:
    if not isinstance(row.get("question"), str) or not row["question"].strip():
        return "question", f"the question {row.get('question')!r} is empty"
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
        normalised_highlight(row["context"], start, answer)
    except ValueError as exc:
        return "context", f"the answer span cannot be highlighted: {exc}"
    return None


# -- scores --------------------------------------------------------------------------------------------

def hallucination_scores(output: str, sources: Sequence[str],
                         stop_words: frozenset[str] = QUESTION_WORDS) -> dict[str, Any]:
    """The users' hallucination rate (0-100; None for an empty output, which ``empty`` counts instead), whether
    any word is hallucinated (0/100; None when empty), the lenient lemma variant and the words themselves."""
    h = hallucination(output, sources, stop_words)
    lenient = lemma_hallucination(output, sources, stop_words)
    return {"hallucination": h.rate, "hallucinated": None if h.empty else 100.0 * bool(h.hallucinated),
            "empty": 100.0 * h.empty, "hallucination_lemma": lenient.rate, "hallucinated_words": h.hallucinated}


def score_answer(generation: str, golds: Sequence[str], context: str) -> dict[str, Any]:
    norm = normaliser(NORMALISER)
    return {"exact_match": best(exact_match, generation, golds, norm), "char_f1": best(char_f1, generation, golds, norm),
            **hallucination_scores(generation, [context])}


def score_question(generation: str, reference: str, answer: str, context: str) -> dict[str, Any]:
    """Per-doc scores of a generated question: ROUGE and (per sample) sentence BLEU against the reference,
    corpus BLEU's pair (raw: ``bleu`` normalises both sides, ``bleu_raw`` does not), hallucination against
    the context and the answer, and the format checks."""
    from kensa.metrics.bleu_ja import sentence_bleu

    norm = normaliser(NORMALISER)
    return {**qa_rouge(reference, generation), "gold_value": reference, "pred": generation,
            "sentence_bleu": sentence_bleu(norm(reference), norm(generation)),
            **hallucination_scores(generation, [context, answer]),
            "question_form": float(ends_as_question(generation)),
            "answer_leak": float(norm(answer) in norm(generation))}


QA_METRICS = ("exact_match", "char_f1", "hallucination", "empty", "unterminated")
QA_REPORTED = ("hallucinated", "hallucination_lemma")
QG_METRICS = ("bleu", "rouge1_ja", "rouge2_ja", "rougeL_ja", "hallucination", "empty", "roundtrip_f1", "question_form",
              "answer_leak", "unterminated")
"""What a question-generation task can gate; ``roundtrip_f1`` only with a separate ``--qa-model``
(:func:`kensa.gate.fingerprint.gated_metrics`)."""
QG_REPORTED = ("bleu_raw", "hallucinated", "hallucination_lemma", "roundtrip_em", "copies")


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
