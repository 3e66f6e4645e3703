"""JAQKET v2 (AI王 2nd competition): open-domain quiz questions answered by greedy generation from 5
retrieved Wikipedia passages. Harness tasks ``jaqket_v2-0.1-{0.1..0.5}`` (the published numbers) and
``jaqket_v2-0.2-{0.1..0.6}`` (harness HEAD), spec 3.5.

The prompt shows the top 5 passages in retrieval order (0.1: each as ``[題名]:title\\n[問題]:text``;
the other versions: the texts only, joined by ``SEP``), then the question. The model generates up to as
many tokens as the longest gold answer has in its own tokenizer, stopping at ``SEP`` (a newline; the
literal ``<NL>`` for 0.4); the target of the one shot is the first answer. A question scores its best
exact match and MeCab-token F1 over every gold answer (``kensa.metrics.jasquad``, spec 4.1), on 0-100.

* 0.1 [published]: no prompt-length handling; an over-long prompt is cut from the left by the backend.
* 0.2 [HEAD]: while the prompt is longer than ``max_length - longest answer`` tokens, the harness
  builds it again with one shot fewer, drawing the shots afresh from the shared generator (``fit=
  "resample"``). When even the 0-shot prompt is too long, the harness *returns* a ``ValueError``
  object as the prompt (a bug; the LM then fails on it); kensa instead sends the 0-shot prompt,
  which the backend cuts from the left as for 0.1.

Data: the Hub's ``kumapo/JAQKET`` config ``v2.0`` is a *loading script* (``JAQKET.py``), which
``datasets`` 4 no longer runs, so ``--data-from-hub`` fails with a DataError naming the Hub id (it
would need ``datasets`` < 4, which kensa does not use). Use ``--data-dir`` with the script's source
files under ``jaqket_v2/``: ``train_jaqket_59.350.json`` (train, 2154 kept) and
``dev_jaqket_59.350.json`` (validation, 1164 kept), the AIO2 DPR baseline's retriever output
(``dense_retriever.py``'s ``save_results``): one JSON array (``indent=4``) of questions ``{qid,
question, answers: [str], ctxs: [{id, title, text, score (a string), has_answer}]}``, passages in
rank order. :func:`read_jaqket_dpr` reads them as the script does: the top 5 passages only
(``num_contexts=5``, the default that HEAD also passes), and a question whose top 5 passages have
no ``has_answer`` is dropped; rows get the script's shape (``answers {text, answer_start=-1}``,
``ctxs {id, title, text, score, has_answer}`` as lists).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from kensa.data import DatasetSpec, Split, check_row
from kensa.errors import DataError
from kensa.tasks.base import GenerationTask

# Answers, budget, scoring and the instruction are JSQuAD's (spec 3.5: "metric JaSQuAD EM/F1 ... as JSQuAD").
from kensa.tasks.jglue.jsquad import INSTRUCTION, golds, longest_gold, score
from kensa.tasks.prompts import PromptTemplate, alpaca, llama2, rinna_bilingual, rinna_sft
from kensa.tasks.registry import register

NUM_CONTEXTS = 5
"""The loading script's ``num_contexts``: passages kept per question, and where an answer must be."""

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class _Lines:
    """1-based line of a character offset, counted forward only (the real files are ~100 MB)."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.line = text, 0, 1

    def at(self, offset: int) -> int:
        if offset < self.pos:  # never happens while reading forward; stay correct anyway
            self.pos, self.line = 0, 1
        self.line += self.text.count("\n", self.pos, offset)
        self.pos = offset
        return self.line


def _array_items(text: str, source: str) -> list[tuple[Any, int]]:
    """The elements of a top-level JSON array, each with the line its text starts on."""
    lines = _Lines(text)
    i = _WS.match(text, 0).end()
    if text[i:i + 1] != "[":
        raise DataError(source, lines.at(i), "expected a JSON array of questions (the DPR retriever's output)")
    items: list[tuple[Any, int]] = []
    i = _WS.match(text, i + 1).end()
    if text[i:i + 1] == "]":
        i += 1
    else:
        while True:
            try:
                obj, end = _DECODER.raw_decode(text, i)
            except json.JSONDecodeError as exc:
                raise DataError(source, exc.lineno, f"malformed JSON: {exc.msg} at column {exc.colno}") from None
            items.append((obj, lines.at(i)))
            i = _WS.match(text, end).end()
            if text[i:i + 1] == ",":
                i = _WS.match(text, i + 1).end()
                continue
            if text[i:i + 1] == "]":
                i += 1
                break
            raise DataError(source, lines.at(i), "malformed JSON: expected ',' or ']' after a question")
    i = _WS.match(text, i).end()
    if i != len(text):
        raise DataError(source, lines.at(i), "malformed JSON: extra data after the array")
    return items


def _passage(ctx: Any, source: str, line: int, where: str) -> dict[str, Any]:
    if not isinstance(ctx, dict):
        raise DataError(source, line, f"expected a passage object, got {type(ctx).__name__}", field=where)
    for name, types, wanted in (("id", (str, int), "a string or int"), ("title", str, "a string"),
                                ("text", str, "a string"), ("score", (str, int, float), "a number or numeric string"),
                                ("has_answer", bool, "true or false")):
        if name not in ctx:
            raise DataError(source, line, "missing", field=f"{where}.{name}")
        value = ctx[name]
        if isinstance(value, bool) and types is not bool or not isinstance(value, types):
            raise DataError(source, line, f"expected {wanted}, got {value!r}", field=f"{where}.{name}")
    try:
        retrieval_score = float(ctx["score"])
    except ValueError:
        raise DataError(source, line, f"not a number: {ctx['score']!r}", field=f"{where}.score") from None
    return {"id": str(ctx["id"]), "title": ctx["title"], "text": ctx["text"], "score": retrieval_score,
            "has_answer": ctx["has_answer"]}


def _question(obj: Any, source: str, line: int) -> dict[str, Any] | None:
    """One retriever-output question -> the loading script's row, or None when it drops the question."""
    if not isinstance(obj, dict):
        raise DataError(source, line, f"expected a JSON object, got {type(obj).__name__}")
    for name in ("qid", "question", "answers", "ctxs"):
        if name not in obj:
            raise DataError(source, line, "missing", field=name)
    for name in ("qid", "question"):
        if not isinstance(obj[name], str):
            raise DataError(source, line, f"expected a string, got {obj[name]!r}", field=name)
    answers = obj["answers"]
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise DataError(source, line, f"expected a list of answer strings, got {answers!r}", field="answers")
    if not isinstance(obj["ctxs"], list):
        raise DataError(source, line, f"expected a list of passages, got {obj['ctxs']!r}", field="ctxs")
    # Only the top passages are read (the script never looks further), so only they are checked.
    top = [_passage(c, source, line, f"ctxs[{j}]") for j, c in enumerate(obj["ctxs"][:NUM_CONTEXTS])]
    if not any(c["has_answer"] for c in top):
        return None
    return {"qid": obj["qid"], "question": obj["question"],
            "answers": {"text": list(answers), "answer_start": [-1] * len(answers)},
            "ctxs": {k: [c[k] for c in top] for k in ("id", "title", "text", "score", "has_answer")}}


def read_jaqket_dpr(spec: DatasetSpec, path: Path, split: str | None = None) -> Split:
    """A ``*_jaqket_59.350.json`` file -> rows as ``kumapo/JAQKET`` ``v2.0`` yields them (top 5 passages,
    questions with no answer in them dropped). A row number in an error is the line the question's
    object starts on."""
    raw = path.read_bytes()
    source = str(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(source, raw[: exc.start].count(b"\n") + 1, f"not UTF-8 (byte {exc.start})") from None
    items = _array_items(text, source)
    if not items:
        raise DataError(source, None, "the file holds no questions")
    rows, lines = [], []
    for obj, line in items:
        row = _question(obj, source, line)
        if row is not None:
            rows.append(check_row(spec, row, source, line))
            lines.append(line)
    if not rows:
        raise DataError(source, None, f"no question has an answer in its top {NUM_CONTEXTS} passages")
    return Split(rows, source, None, hashlib.sha256(raw).hexdigest(), lines, split)


DATASET = DatasetSpec(
    name="JAQKET v2 (AIO2 with DPR passages)",
    local={"train": "jaqket_v2/train_jaqket_59.350.json", "validation": "jaqket_v2/dev_jaqket_59.350.json"},
    hub_id="kumapo/JAQKET",
    hub_kwargs={"name": "v2.0", "num_contexts": NUM_CONTEXTS},
    fields={"qid": str, "question": str, "answers": dict, "ctxs": dict},
    id_field="qid",
    reader=read_jaqket_dpr,
    missing_hint="JAQKET v2 is the loading script kumapo/JAQKET (config v2.0), which datasets 4 cannot run: put "
                 "its source files train_jaqket_59.350.json and dev_jaqket_59.350.json (from "
                 "huggingface.co/datasets/kumapo/JAQKET) under <data-dir>/jaqket_v2/",
)


def _check_answers(row) -> tuple[str, str] | None:
    texts = row["answers"].get("text")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        return "answers", f"expected a non-empty list of non-empty answer texts, got {texts!r}"
    return None


def _check_ctxs(row) -> tuple[str, str] | None:
    titles, texts = row["ctxs"].get("title"), row["ctxs"].get("text")
    if not isinstance(titles, list) or not isinstance(texts, list) or len(titles) != len(texts) \
            or not all(isinstance(s, str) for s in titles + texts):
        return "ctxs", "expected equal-length lists of passage titles and texts"
    if not 1 <= len(texts) <= NUM_CONTEXTS:
        return "ctxs", f"{len(texts)} passages; the task shows the top {NUM_CONTEXTS} (load with num_contexts=5)"
    return None


def view(row) -> dict[str, str]:
    """The passages, pre-joined per prompt family (the harness joins with its ``SEP``), the question
    and the first answer (the shot's target)."""
    titles, texts = row["ctxs"]["title"], row["ctxs"]["text"]
    return {
        "titled": "\n".join(f"[題名]:{t}\n[問題]:{x}" for t, x in zip(titles, texts, strict=True)),
        "texts": "\n".join(texts),
        "texts_nl": "<NL>".join(texts),
        "question": row["question"],
        "answer": row["answers"]["text"][0],
    }



TEMPLATES = (
    PromptTemplate("0.1", name="jgpt", description="[題名]と[問題]から[質問]に対する[答え]を抜き出しなさい\n\n",
                   text="{titled}\n[質問]:{question}\n[答え]:", target="{answer}"),
    PromptTemplate("0.2", name="fintan",
                   description="質問に対する回答を文章から一言で抽出してください。回答は名詞で答えてください。\n\n",
                   text="文章:{texts}\n質問:{question}\n回答:", target="{answer}"),
    alpaca("0.3", INSTRUCTION, "文脈：{texts}\n質問：{question}"),
    rinna_sft("0.4", INSTRUCTION, "文脈：{texts_nl}<NL>質問：{question}"),
    rinna_bilingual("0.5", INSTRUCTION, "文脈：{texts}\n質問：{question}"),
    llama2("0.6", INSTRUCTION, "文脈：{texts}\n質問：{question}"),
)


def _task(version: str) -> GenerationTask:
    published = version == "0.1"
    return GenerationTask(
        name="jaqket_v2", version=version, suite="jglue", dataset=DATASET,
        eval_split="validation", fewshot_split="train", num_fewshot=1,
        # 0.6 (llama2) came after the 0.1 runs.
        templates=TEMPLATES[:5] if published else TEMPLATES,
        view=view, golds=golds, score=score, metrics=("exact_match", "f1"), max_new_tokens=longest_gold,
        fit=None if published else "resample",
        extra_checks=(_check_answers, _check_ctxs),
        description="JAQKET v2 (AIO2), quiz answers from 5 retrieved passages by generation"
                    + ("" if published else "; fewer shots when the prompt is too long"),
    )


TASK_0_1 = register(_task("0.1"))
TASK_0_2 = register(_task("0.2"))
TASKS = (TASK_0_1, TASK_0_2)
