"""MGSM, Japanese: grade-school maths with a chain of thought, answered by greedy generation. Harness
tasks ``mgsm-1.0-{0.0,0.3,0.4,0.5,0.6}`` (plain ``mgsm`` = 0.0), spec 3.8.

5 shots from the 8 exemplars; the model continues after ``ステップごとの答え：`` (or the instruction
formats' reply marker) up to its ``max_gen_toks`` (256), cut at the first newline for **every**
prompt version (0.4 too: the harness asks for ``[eos_token, "\\n"]``; the EOS stop is the backend's).
The answer is the last number in the text (:func:`extract_answer`); ``acc`` = it equals
``answer_number``.

Prompts: ``問題：`` is removed from the question and re-added where a template has it; the target
is the exemplar's CoT without its ``ステップごとの答え：``. 0.3 is HEAD's (``...導き出してください。\\n\\n###
入力:``); the published 0.3 runs (before ``5a857e3``, 2023-10-11) lacked that ``\\n\\n``. 0.5 keeps the
literal ``<NL>`` it inherits from 0.4 inside each example, as the harness does.

Prompt length: HEAD's ``fit="resample"`` (fewer shots, drawn again from the shared generator, until
the prompt fits ``max_length - 256`` tokens), which is what ``ja8.conf`` runs at HEAD. The published
runs (up to ``a4565e7``, 2023-08-28) instead cut the built prompt at ``問題：``; that is
:func:`published_cut`, kept here and tested but not wired (pass it as ``fit=`` to reproduce them).

Data: the Hub's ``juletxara/mgsm`` config ``ja`` (``test``: ``question``, ``answer`` None,
``answer_number``; ``train``: the 8 exemplars with their CoT in ``answer``), or the url-nlp files
laid out like ``shared/data/mgsm``: ``mgsm_ja.tsv`` (no header; question TAB number, maybe with
thousands separators) and ``mgsm_ja_exemplars.jsonl`` (``exemplar``, ``question``, ``answer``), read
into the Hub's fields.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from kensa.data import DatasetSpec, Split, check_row
from kensa.errors import DataError, KensaError
from kensa.tasks.base import GenerationTask
from kensa.tasks.prompts import PromptTemplate, alpaca, llama2
from kensa.tasks.registry import register

QUESTION_TAG = "問題："
ANSWER_TAG = "ステップごとの答え："
INVALID = "[invalid]"
"""gsm8k's ``INVALID_ANS``: what a completion with no usable integer extracts to."""
ANS_RE = re.compile(r"(\-?[0-9\.\,]+)")
_INT_RE = re.compile(r"-?[0-9]+")


def extract_answer(completion: str) -> int | str:
    """The harness's ``_extract_answer``: the last match of ``(\\-?[0-9\\.\\,]+)``, ``.strip(".")``,
    commas removed, ``float()``; an integral value as ``int`` (via the float, as the harness: beyond
    2**53 it rounds), anything else (no match, ``1.2.3``, ``3.5``) :data:`INVALID`."""
    matches = ANS_RE.findall(completion)
    if not matches:
        return INVALID
    text = matches[-1].strip(".").replace(",", "")
    try:
        value = float(text)
    except ValueError:
        return INVALID
    return int(value) if value.is_integer() else INVALID


# -- readers ---------------------------------------------------------------------------------------------

def _decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(source, raw[: exc.start].count(b"\n") + 1, f"not UTF-8 (byte {exc.start})") from None


def _lines(text: str):
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip():
            yield lineno, line


def read_mgsm_tsv(spec: DatasetSpec, path: Path, split: str | None = None) -> Split:
    """url-nlp's ``mgsm_ja.tsv`` (question TAB answer, no header) -> the Hub's ``test`` rows:
    ``question``, ``answer`` None, ``answer_number`` int (thousands separators removed)."""
    raw = path.read_bytes()
    source = str(path)
    rows, lines = [], []
    for lineno, line in _lines(_decode(raw, source)):
        cols = line.split("\t")
        if len(cols) != 2:
            raise DataError(source, lineno, f"expected 2 tab-separated columns (question, answer), got {len(cols)}")
        question, number = cols
        if not question.strip():
            raise DataError(source, lineno, "empty question", field="question")
        digits = number.strip().replace(",", "")
        if not _INT_RE.fullmatch(digits):
            raise DataError(source, lineno, f"{number!r} is not an integer", field="answer_number")
        row = {"question": question, "answer": None, "answer_number": int(digits)}
        rows.append(check_row(spec, row, source, lineno))
        lines.append(lineno)
    if not rows:
        raise DataError(source, None, "the file holds no rows")
    return Split(rows, source, None, hashlib.sha256(raw).hexdigest(), lines, split)


def read_mgsm_exemplars(spec: DatasetSpec, path: Path, split: str | None = None) -> Split:
    """``mgsm_ja_exemplars.jsonl`` (``exemplar``, ``question`` from ``問題：``, ``answer`` from
    ``ステップごとの答え：``) -> the Hub's ``train`` rows; ``answer_number`` is the CoT's last number."""
    raw = path.read_bytes()
    source = str(path)
    rows, lines = [], []
    for lineno, line in _lines(_decode(raw, source)):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(source, lineno, f"malformed JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(obj, dict):
            raise DataError(source, lineno, f"expected a JSON object, got {type(obj).__name__}")
        for name, tag in (("question", QUESTION_TAG), ("answer", ANSWER_TAG)):
            value = obj.get(name)
            if not isinstance(value, str) or not value.startswith(tag):
                raise DataError(source, lineno, f"expected a string starting with {tag!r}, got {value!r}", field=name)
        number = extract_answer(obj["answer"])
        if number == INVALID:
            raise DataError(source, lineno, "the chain of thought ends in no integer answer", field="answer")
        row = {**obj, "answer_number": number}
        rows.append(check_row(spec, row, source, lineno))
        lines.append(lineno)
    if not rows:
        raise DataError(source, None, "the file holds no rows")
    return Split(rows, source, None, hashlib.sha256(raw).hexdigest(), lines, split)


def read_mgsm(spec: DatasetSpec, path: Path, split: str | None = None) -> Split:
    """By the file's format: the TSV of test problems, or the JSON Lines of exemplars."""
    reader = read_mgsm_tsv if path.suffix == ".tsv" else read_mgsm_exemplars
    return reader(spec, path, split)


DATASET = DatasetSpec(
    name="MGSM (ja)",
    local={"test": "mgsm/mgsm_ja.tsv", "train": "mgsm/mgsm_ja_exemplars.jsonl"},
    fields={"question": str, "answer": (str, type(None)), "answer_number": int},
    hub_id="juletxara/mgsm",
    hub_kwargs={"name": "ja"},
    id_field="exemplar",  # only the local exemplars have it: the shots' ids in the results
    reader=read_mgsm,
    missing_hint="MGSM ja comes from google-research/url-nlp's mgsm/ folder (see shared/data/mgsm/README.md)",
)


# -- prompts ---------------------------------------------------------------------------------------------

def view(row) -> dict[str, str]:
    """``question`` without ``問題：``; ``answer`` = the CoT without ``ステップごとの答え：``, or, for a
    test row (no CoT), ``答えは{answer_number}です。`` (what a model should say; the tiny model learns it)."""
    cot = row.get("answer")
    answer = cot.replace(ANSWER_TAG, "") if isinstance(cot, str) and cot else f"答えは{row['answer_number']}です。"
    return {"question": row["question"].replace(QUESTION_TAG, ""), "answer": answer}


INSTRUCTION = "与えられた問題に対して、ステップごとに答えを導き出してください。"
RINNA_INSTRUCTION = "与えられた問題をステップごとに解説してください。"

TEMPLATES = (
    PromptTemplate("0.0", name="user", description="",
                   text=f"{QUESTION_TAG}{{question}}\n{ANSWER_TAG}", target="{answer}", fewshot_sep="\n\n"),
    alpaca("0.3", INSTRUCTION, "{question}"),
    PromptTemplate("0.4", name="rinna-sft",
                   description=f"ユーザー: {RINNA_INSTRUCTION}<NL>システム: 分かりました。<NL>",
                   text=f"ユーザー: {QUESTION_TAG}{{question}}<NL>システム: {ANSWER_TAG}", target="{answer}",
                   fewshot_sep="<NL>"),
    # 0.4 and 0.5 end the system turn with the answer tag, and 0.5 subclasses 0.4 overriding only DESCRIPTION
    # and FEWSHOT_SEP (the example keeps its <NL>): not the shared rinna formats.
    PromptTemplate("0.5", name="rinna-bilingual",
                   description=f"ユーザー: {RINNA_INSTRUCTION}\nシステム: 分かりました。\n",
                   text=f"ユーザー: {QUESTION_TAG}{{question}}<NL>システム: {ANSWER_TAG}", target="{answer}",
                   fewshot_sep="\n"),
    llama2("0.6", INSTRUCTION, "{question}"),
)


def published_cut(prompt: str, template: PromptTemplate, budget: int, lm: Any) -> str:
    """The published harness's ``preprocess_ctx`` (up to 2023-08-28): while the prompt is over
    ``budget`` tokens, split it at ``問題：`` and delete the first piece after the description (the
    first exemplar). Once the exemplars are gone the next cut deletes the question itself, as there.
    A prompt with no ``問題：`` to cut at (0.3, 0.6) cannot shrink: the harness raised, so does this."""
    while len(lm.tok_encode(prompt)) > budget:
        parts = prompt.split(QUESTION_TAG)
        if len(parts) < 2:
            raise KensaError(
                f"mgsm {template.version}: the prompt is {len(lm.tok_encode(prompt))} tokens, over the budget of "
                f"{budget}, and has no {QUESTION_TAG!r} to cut exemplars at (the published harness crashed here "
                "too); use the HEAD behaviour, fit='resample'")
        del parts[1]
        prompt = QUESTION_TAG.join(parts)
    return prompt


def golds(row) -> list[str]:
    return [str(row["answer_number"])]


def score(generation: str, row, lm) -> dict[str, Any]:
    extracted = extract_answer(generation)
    return {"acc": 1.0 if extracted == row["answer_number"] else 0.0, "extracted": extracted}


def _check_question(row) -> tuple[str, str] | None:
    if not row["question"].replace(QUESTION_TAG, "").strip():
        return "question", "empty question"
    return None


TASK = register(
    GenerationTask(
        name="mgsm",
        version="1.0",
        suite="jglue",
        dataset=DATASET,
        eval_split="test",
        fewshot_split="train",
        num_fewshot=5,
        templates=TEMPLATES,
        view=view,
        golds=golds,
        score=score,
        metrics=("acc",),
        max_new_tokens=None,
        until=lambda template: ("\n",),
        fit="resample",
        extra_checks=(_check_question,),
        description="MGSM Japanese, 250 grade-school maths problems with a 5-shot chain of thought",
    )
)
