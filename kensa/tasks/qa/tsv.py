r"""The users' own TSV formats, one example per line, each a seq2seq task (version 1.0, prompt 0.1):

| task | input column | target column |
|---|---|---|
| ``qa_tsv`` | ``question: {question} context: {context}`` | the answer |
| ``aqg_tsv`` | ``answer: {answer} context: {context}`` | the question |
| ``aqg_hl_tsv`` | ``{c1 …} <hl> {answer} <hl> {… c}`` (the users' highlight form) | the question |

The first column is the example's id (``QA_ID``). The users' preprocessing is kept as a versioned
normaliser: prompt version 0.1 is normaliser ``1`` (newlines removed, NFKC, neologdn, no lower-casing;
:mod:`kensa.metrics.qa_text`), applied to each part of the input before the model sees it (the parts one
by one, so the format's own spaces survive) and, by every metric, to both the output and the reference.

Reading: the file is UTF-8 (a BOM is dropped) and read as tab-separated CSV, so a quoted field
(``"ミミ"`` with its quotes doubled, as pandas writes one) is unquoted and a broken quote is an error naming the row.
Each directory holds **one** TSV: with several, the error names them all (none is picked silently).
An empty id, question, context or answer, an answer that occurs nowhere in its context (compared
after the normaliser), or a highlight without exactly two markers is an error naming the file, row and
field. The data is the users' own: under ``--data-dir DIR`` the TSV in ``DIR/<task>/`` is read (without
one the test skips and says so); kensa's fixtures are ``fixtures/<task>/valid.tsv``.
"""

from __future__ import annotations

import csv
import hashlib
import io
from functools import partial
from pathlib import Path
from typing import Any

from kensa.data import DatasetSpec, Split
from kensa.errors import DataError
from kensa.metrics.qa_text import normaliser
from kensa.tasks.base import GenerationTask
from kensa.tasks.prompts import PromptTemplate
from kensa.tasks.qa.common import (
    HL,
    QA_BUDGET,
    QA_METRICS,
    QA_REPORTED,
    QG_METRICS,
    QG_REPORTED,
    RoundTrip,
    qg_budget,
    score_answer,
    score_question,
)
from kensa.tasks.registry import register

QUESTION, ANSWER, CONTEXT = "question: ", "answer: ", " context: "
NORMALISER_OF = {"0.1": "1"}
TSV_QG_REPORTED = tuple(m for m in QG_REPORTED if m != "copies")
"""No ``copies``: a TSV task has no few-shot pool to copy from."""
"""Prompt version -> the normaliser version it applies."""


def _parse_qa(source: str, lineno: int, text: str) -> dict[str, str]:
    if not text.startswith(QUESTION) or CONTEXT not in text:
        raise DataError(source, lineno, f"expected 'question: ... context: ...', got {text[:40]!r}", field="input")
    question, _, context = text[len(QUESTION):].partition(CONTEXT)
    return {"question": question, "context": context}


def _parse_aqg(source: str, lineno: int, text: str) -> dict[str, str]:
    if not text.startswith(ANSWER) or CONTEXT not in text:
        raise DataError(source, lineno, f"expected 'answer: ... context: ...', got {text[:40]!r}", field="input")
    answer, _, context = text[len(ANSWER):].partition(CONTEXT)
    return {"answer": answer, "context": context}


def _parse_hl(source: str, lineno: int, text: str) -> dict[str, str]:
    parts = text.split(HL)
    if len(parts) != 3:
        raise DataError(source, lineno, f"expected the answer between two {HL} markers, found {len(parts) - 1} "
                                        f"marker(s) in {text[:40]!r}", field="input")
    pre, answer, post = parts[0].removesuffix(" "), parts[1].strip(), parts[2].removeprefix(" ")
    return {"answer": answer, "context": pre + answer + post, "pre": pre, "post": post}


PARSERS = {"qa": (_parse_qa, "answer"), "aqg": (_parse_aqg, "question"), "aqg_hl": (_parse_hl, "question")}
"""Format -> (input parser, what the third column holds)."""


def _records(source: str, text: str):
    """(line number, columns) of each non-blank record, the text read as tab-separated CSV."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quotechar='"', strict=True)
    start = 1
    while True:
        try:
            cols = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(source, reader.line_num, f"not valid tab-separated CSV ({exc}); quote a field "
                                                     "holding a tab, newline or leading '\"' as CSV does",
                            field="columns") from None
        if any(c.strip() for c in cols):
            yield start, cols
        start = reader.line_num + 1


def read_tsv(spec: DatasetSpec, path: Path, split: str | None = None, form: str = "qa") -> Split:
    """Read one of the users' TSVs; a bad line is a DataError naming the file, the line and the field."""
    siblings = sorted(p.name for p in path.parent.glob("*.tsv"))
    if len(siblings) > 1:
        raise DataError(str(path.parent), None, f"{len(siblings)} TSV files where one is expected: "
                                                f"{', '.join(siblings)}; keep the one to evaluate there")
    raw = path.read_bytes()
    source = str(path)
    try:
        text = raw.decode("utf-8-sig")  # a BOM is no part of the first id
    except UnicodeDecodeError as exc:
        raise DataError(source, raw[: exc.start].count(b"\n") + 1, f"not UTF-8 (byte {exc.start})") from None
    parse, target = PARSERS[form]
    norm = normaliser(NORMALISER_OF["0.1"])
    rows, lines, seen = [], [], {}
    for lineno, cols in _records(source, text):
        if len(cols) != 3:
            raise DataError(source, lineno, f"expected 3 tab-separated columns (QA_ID, input, {target}), got "
                                            f"{len(cols)}", field="columns")
        qa_id, source_text, third = cols[0].strip(), cols[1], cols[2].rstrip("\r")
        if not qa_id:
            raise DataError(source, lineno, "empty", field="QA_ID")
        if qa_id in seen:
            raise DataError(source, lineno, f"QA_ID {qa_id!r} also on line {seen[qa_id]}", field="QA_ID")
        seen[qa_id] = lineno
        row = {"id": qa_id, "input": source_text, **parse(source, lineno, source_text), target: third}
        for name in ("context", "question", "answer"):
            if not row[name].strip():
                raise DataError(source, lineno, f"the {name} is empty",
                                field=name if name == target else f"input.{name}")
        if norm(row["answer"]) not in norm(row["context"]):
            raise DataError(source, lineno, f"{row['answer']!r} does not occur in the context (after the "
                                            "normaliser)", field="answer" if target == "answer" else "input.answer")
        rows.append(row)
        lines.append(lineno)
    if not rows:
        raise DataError(source, None, "the file holds no rows")
    return Split(rows, source, None, hashlib.sha256(raw).hexdigest(), lines, split)


def _dataset(form: str, task: str, target: str) -> DatasetSpec:
    return DatasetSpec(
        name=f"{task}: the users' TSV", local={"validation": f"{task}/*.tsv"},
        fields={"id": str, "input": str, target: str}, id_field="id", reader=partial(read_tsv, form=form),
        missing_hint=f"put the users' file at <data-dir>/{task}/<name>.tsv")


DATASET = _dataset("qa", "qa_tsv", "answer")
AQG_DATASET = _dataset("aqg", "aqg_tsv", "question")
AQG_HL_DATASET = _dataset("aqg_hl", "aqg_hl_tsv", "question")


def view(row: Any) -> dict[str, str]:
    """The input as the model gets it: each part normalised on its own and put back in the format
    (normalising the whole line would also eat the space after ``question:``)."""
    norm = normaliser(NORMALISER_OF["0.1"])
    return {"input": f"{QUESTION}{norm(row['question'])}{CONTEXT}{norm(row['context'])}", "answer": row["answer"]}


def aqg_view(row: Any) -> dict[str, str]:
    norm = normaliser(NORMALISER_OF["0.1"])
    return {"input": f"{ANSWER}{norm(row['answer'])}{CONTEXT}{norm(row['context'])}", "question": row["question"],
            "answer": row["answer"]}


def aqg_hl_view(row: Any) -> dict[str, str]:
    norm = normaliser(NORMALISER_OF["0.1"])
    return {"input": f"{norm(row['pre'])} {HL} {norm(row['answer'])} {HL} {norm(row['post'])}",
            "question": row["question"], "answer": row["answer"]}


def roundtrip_view(row: Any) -> dict[str, str]:
    """What the round trip's QA prompt reads: the normalised context (the QA TSV's own input)."""
    context = normaliser(NORMALISER_OF["0.1"])(row["context"])
    return {"title": "", "context": context, "ctx": context, "question": "", "q": ""}


def score(generation: str, row: Any, lm: Any) -> dict[str, Any]:
    return score_answer(generation, [row["answer"]], row["context"])


def score_qg(generation: str, row: Any, lm: Any) -> dict[str, Any]:
    return score_question(generation, row["question"], row["answer"], row["context"])


def _template(name: str, target: str, trained: bool = False) -> PromptTemplate:
    return PromptTemplate("0.1", name=name, description="", text="{input}", target=f"{{{target}}}",
                          model_kinds=("seq2seq",), tiny_trained=trained)


def _round_trip() -> RoundTrip:
    from kensa.tasks.qa.jsquad_qa import QA_ALPACA  # the causal QA prompt, for a causal --qa-model

    return RoundTrip(templates={"seq2seq": PromptTemplate("0.1", name="tsv-qa", description="",
                                                          text=f"{QUESTION}{{question}}{CONTEXT}{{context}}",
                                                          target="", model_kinds=("seq2seq",)),
                                "causal": QA_ALPACA},
                     view=roundtrip_view, intended=lambda row: row["answer"])


COMMON = dict(version="1.0", suite="qa", eval_split="validation", fewshot_split=None, num_fewshot=0,
              until=lambda template: ())

TASK = register(GenerationTask(
    name="qa_tsv", dataset=DATASET, templates=(_template("tsv-normaliser-1", "answer", trained=True),),
    view=view, golds=lambda row: [row["answer"]], score=score, metrics=QA_METRICS, reported=QA_REPORTED,
    max_new_tokens=lambda row, lm: QA_BUDGET,
    optional_data="the QA TSV is the users' own data: no <data-dir>/qa_tsv/*.tsv here (kensa ships only its fixture)",
    description="QA in the users' TSV format, normaliser version 1", **COMMON))

AQG_TASK = register(GenerationTask(
    name="aqg_tsv", dataset=AQG_DATASET, templates=(_template("tsv-aqg-normaliser-1", "question"),),
    view=aqg_view, golds=lambda row: [row["question"]], score=score_qg, metrics=QG_METRICS,
    reported=TSV_QG_REPORTED,
    max_new_tokens=lambda row, lm: qg_budget(lm), roundtrip=_round_trip(),
    optional_data="the AQG TSV is the users' own data: no <data-dir>/aqg_tsv/*.tsv here (kensa ships only its "
                  "fixture)",
    description="AQG in the users' TSV format, normaliser version 1", **COMMON))

AQG_HL_TASK = register(GenerationTask(
    name="aqg_hl_tsv", dataset=AQG_HL_DATASET, templates=(_template("tsv-aqg-hl-normaliser-1", "question"),),
    view=aqg_hl_view, golds=lambda row: [row["question"]], score=score_qg, metrics=QG_METRICS,
    reported=TSV_QG_REPORTED, max_new_tokens=lambda row, lm: qg_budget(lm), roundtrip=_round_trip(),
    optional_data="the AQG-HL TSV is the users' own data: no <data-dir>/aqg_hl_tsv/*.tsv here (kensa ships only its "
                  "fixture)",
    description="AQG-HL in the users' highlight TSV format, normaliser version 1", **COMMON))
