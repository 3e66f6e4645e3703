"""The users' own QA format: one question per TSV line, ``{QA_ID}\\tquestion: {question} context: {context}\\t{answer}``
(task ``qa_tsv``, seq2seq models).

The users' preprocessing is kept as a versioned normaliser: prompt version 0.1 is normaliser ``1``
(newlines removed, NFKC, neologdn, no lower-casing; :mod:`kensa.metrics.qa_text`), applied to the
question and the context of the input column before the model sees them and, for exact match and char
F1, to the answer and the output. Lines are independent questions (no clusters). The data is the users' own: under
``--data-dir DIR`` the newest ``DIR/qa_tsv/*.tsv`` is read, and without one the test skips and says so;
kensa's fixture is ``fixtures/qa_tsv/valid.tsv``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from kensa.data import DatasetSpec, Split
from kensa.errors import DataError
from kensa.metrics.qa_text import normaliser
from kensa.tasks.base import GenerationTask
from kensa.tasks.prompts import PromptTemplate
from kensa.tasks.qa.common import QA_BUDGET, score_answer
from kensa.tasks.registry import register

QUESTION, CONTEXT = "question: ", " context: "
NORMALISER_OF = {"0.1": "1"}
"""Prompt version -> the normaliser version it applies."""


def read_tsv(spec: DatasetSpec, path: Path, split: str | None = None) -> Split:
    """Read the users' TSV; a bad line is a DataError naming the file, the line and the column."""
    raw = path.read_bytes()
    source = str(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(source, raw[: exc.start].count(b"\n") + 1, f"not UTF-8 (byte {exc.start})") from None
    rows, lines, seen = [], [], {}
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != 3:
            raise DataError(source, lineno, f"expected 3 tab-separated columns (QA_ID, input, answer), got {len(cols)}",
                            field="columns")
        qa_id, source_text, answer = cols[0].strip(), cols[1], cols[2].rstrip("\r")
        if not qa_id:
            raise DataError(source, lineno, "empty", field="QA_ID")
        if qa_id in seen:
            raise DataError(source, lineno, f"QA_ID {qa_id!r} also on line {seen[qa_id]}", field="QA_ID")
        seen[qa_id] = lineno
        if not source_text.startswith(QUESTION) or CONTEXT not in source_text:
            raise DataError(source, lineno, f"expected 'question: ... context: ...', got {source_text[:40]!r}",
                            field="input")
        question, _, context = source_text[len(QUESTION):].partition(CONTEXT)
        if not context.strip():
            raise DataError(source, lineno, "the context is empty", field="input.context")
        if not question.strip():
            raise DataError(source, lineno, "the question is empty", field="input.question")
        if not answer.strip():
            raise DataError(source, lineno, "empty", field="answer")
        rows.append({"id": qa_id, "input": source_text, "question": question, "context": context, "answer": answer})
        lines.append(lineno)
    if not rows:
        raise DataError(source, None, "the file holds no rows")
    return Split(rows, source, None, hashlib.sha256(raw).hexdigest(), lines, split)


DATASET = DatasetSpec(
    name="QA TSV (the users' format)", local={"validation": "qa_tsv/*.tsv"},
    fields={"id": str, "input": str, "answer": str}, id_field="id", reader=read_tsv,
    missing_hint="put the users' file at <data-dir>/qa_tsv/<name>.tsv ({QA_ID}\\tquestion: ... context: ...\\t{answer})")


def view(row: Any) -> dict[str, str]:
    """The input as the model gets it: the question and the context normalised one by one and put back in
    the format (normalising the whole line would also eat the space after ``question:``)."""
    norm = normaliser(NORMALISER_OF["0.1"])
    return {"input": f"{QUESTION}{norm(row['question'])}{CONTEXT}{norm(row['context'])}", "answer": row["answer"]}


def score(generation: str, row: Any, lm: Any) -> dict[str, Any]:
    return score_answer(generation, [row["answer"]], row["context"])


TASK = register(GenerationTask(
    name="qa_tsv", version="1.0", suite="qa", dataset=DATASET, eval_split="validation", fewshot_split=None,
    num_fewshot=0,
    templates=(PromptTemplate("0.1", name="tsv-normaliser-1", description="", text="{input}", target="{answer}",
                              model_kinds=("seq2seq",)),),
    view=view, golds=lambda row: [row["answer"]], score=score,
    metrics=("exact_match", "char_f1", "hallucination", "unterminated"), reported=("hallucinated",),
    max_new_tokens=lambda row, lm: QA_BUDGET, until=lambda template: (),
    optional_data="the QA TSV is the users' own data: no <data-dir>/qa_tsv/*.tsv here (kensa ships only its fixture)",
    description="QA in the users' TSV format, normaliser version 1"))
