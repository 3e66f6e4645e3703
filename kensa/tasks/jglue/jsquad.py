"""JSQuAD (JGLUE): extractive reading comprehension, answered by greedy generation. Harness tasks
``jsquad-1.1-{0.1..0.6}`` (the published numbers) and ``jsquad-1.2-{0.2..0.6}`` (the title in the
prompt; there is no 1.2-0.1), spec 3.4.

The prompt shows the paragraph after ``[SEP]`` (``context.split("[SEP]")[-1].strip()``), 1.2 and
0.1 also the title. The model generates up to as many tokens as the longest gold answer has in its
own tokenizer, stopping at ``SEP`` (a newline; the literal ``<NL>`` for 0.4). A question scores its
best exact match and MeCab-token F1 over every gold answer (``kensa.metrics.jasquad``, spec 4.1), on the
harness's 0-100 scale. Questions on one paragraph are one cluster for the gate's paired test.

Data: JGLUE's SQuAD-style JSON (``jglue/jsquad/{train,valid}-v*.json``: ``data[].title``,
``data[].paragraphs[].context`` = ``"{title} [SEP] {paragraph}"``, ``qas[]`` with ``id``,
``question``, ``answers[] {text, answer_start}``, ``is_impossible``), flattened in file order as
the Hub loaders do, or the Hub's parquet ``sbintuitions/JSQuAD`` (the same fields, flat).
``shared/data`` has no train file, so local runs draw shots from ``test`` (recorded in the results).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from kensa.data import DatasetSpec, Split
from kensa.errors import DataError
from kensa.metrics.jasquad import squad_scores
from kensa.tasks.base import GenerationTask
from kensa.tasks.prompts import PromptTemplate, alpaca, llama2, rinna_bilingual, rinna_sft
from kensa.tasks.registry import register

SEP_MARK = "[SEP]"


def _fail(source: str, row: int | None, message: str, field: str) -> DataError:
    return DataError(source, row, message, field=field)


def read_squad_json(spec: DatasetSpec, path: Path, split: str | None = None) -> Split:
    """JGLUE's JSQuAD file -> one row per question, in file order. A row number in an error is the
    question's 1-based position in the file (the file is one JSON document, usually on one line)."""
    raw = path.read_bytes()
    source = str(path)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(source, raw[: exc.start].count(b"\n") + 1, f"not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise DataError(source, exc.lineno, f"malformed JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(source, None, "expected a JSON object with a 'data' list (JGLUE's SQuAD layout)")
    rows: list[dict[str, Any]] = []
    for a, article in enumerate(doc["data"]):
        where = f"data[{a}]"
        if not isinstance(article, dict) or not isinstance(article.get("title"), str) \
                or not isinstance(article.get("paragraphs"), list):
            raise _fail(source, len(rows) + 1, "an article needs a string 'title' and a 'paragraphs' list", where)
        for p, para in enumerate(article["paragraphs"]):
            pwhere = f"{where}.paragraphs[{p}]"
            if not isinstance(para, dict) or not isinstance(para.get("context"), str) \
                    or not isinstance(para.get("qas"), list):
                raise _fail(source, len(rows) + 1, "a paragraph needs a string 'context' and a 'qas' list", pwhere)
            for q, qa in enumerate(para["qas"]):
                rows.append(_question(qa, article["title"], para["context"], source, len(rows) + 1,
                                      f"{pwhere}.qas[{q}]"))
    if not rows:
        raise DataError(source, None, "the file holds no questions")
    return Split(rows, source, _file_version(path), hashlib.sha256(raw).hexdigest(), None, split)


def _file_version(path: Path) -> str | None:
    stem = path.name.removesuffix(".json")
    return stem.rsplit("-v", 1)[1] if "-v" in stem else None


def _question(qa: Any, title: str, context: str, source: str, row: int, where: str) -> dict[str, Any]:
    if not isinstance(qa, dict):
        raise _fail(source, row, f"expected an object, got {type(qa).__name__}", where)
    for name in ("id", "question"):
        if not isinstance(qa.get(name), str):
            raise _fail(source, row, f"expected a string, got {qa.get(name)!r}", f"{where}.{name}")
    answers = qa.get("answers")
    if not isinstance(answers, list) or not all(isinstance(x, dict) and isinstance(x.get("text"), str)
                                                for x in answers):
        raise _fail(source, row, "expected a list of {text, answer_start} objects", f"{where}.answers")
    return {"id": qa["id"], "title": title, "context": context, "question": qa["question"],
            "answers": {"text": [x["text"] for x in answers], "answer_start": [x.get("answer_start") for x in answers]},
            "is_impossible": bool(qa.get("is_impossible", False))}


DATASET = DatasetSpec(
    name="JGLUE JSQuAD",
    local={"train": "jglue/jsquad/train-v*.json", "validation": "jglue/jsquad/valid-v*.json",
           "test": "jglue/jsquad/test-v*.json"},
    hub_id="sbintuitions/JSQuAD",
    fields={"id": str, "title": str, "context": str, "question": str, "answers": dict},
    id_field="id",
    reader=read_squad_json,
)


def _check_context(row) -> tuple[str, str] | None:
    if SEP_MARK not in row["context"]:
        return "context", f"no {SEP_MARK!r} between the title and the paragraph"
    return None


def _check_answers(row) -> tuple[str, str] | None:
    texts = row["answers"].get("text")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        return "answers", f"expected a non-empty list of non-empty answer texts, got {texts!r}"
    return None


def paragraph(row) -> str:
    """The harness's ``{ctx}``: the paragraph after the title's ``[SEP]``."""
    return row["context"].split(SEP_MARK)[-1].strip()


def view(row) -> dict[str, str]:
    return {"title": row["title"], "ctx": paragraph(row), "q": row["question"], "answer": row["answers"]["text"][0]}


def golds(row) -> list[str]:
    return list(row["answers"]["text"])


def longest_gold(row, lm) -> int:
    """The harness's DYNAMIC_MAX_LENGTH: the longest gold answer, in the model's tokens."""
    return max(len(lm.tok_encode(a)) for a in golds(row))


def score(generation: str, row, lm) -> dict[str, float]:
    return squad_scores(generation, golds(row))


INSTRUCTION = "与えられた文脈から、質問に対する答えを抜き出してください。"


def templates(with_title: bool) -> tuple[PromptTemplate, ...]:
    """1.1 shows the paragraph only; 1.2 puts the title before it (and words 0.2's instruction for it)."""
    ctx = "{title}\n{ctx}" if with_title else "{ctx}"
    ctx_nl = "{title}<NL>{ctx}" if with_title else "{ctx}"
    out = []
    if not with_title:
        out.append(PromptTemplate(
            "0.1", name="jgpt", description="[題名]と[問題]から[質問]に対する[答え]を抜き出しなさい\n\n",
            text="[題名]:{title}\n[問題]:{ctx}\n[質問]:{q}\n[答え]:", target="{answer}"))
    out.append(PromptTemplate(
        "0.2", name="fintan",
        description=("質問に対する回答を題名と文章から一言で抽出してください。回答は名詞で答えてください。\n\n" if with_title
                     else "質問に対する回答を文章から一言で抽出してください。回答は名詞で答えてください。\n\n"),
        text=("題名:{title}\n文章:{ctx}\n質問:{q}\n回答:" if with_title else "文章:{ctx}\n質問:{q}\n回答:"),
        target="{answer}"))
    out += [
        alpaca("0.3", INSTRUCTION, f"文脈：{ctx}\n質問：{{q}}"),
        rinna_sft("0.4", INSTRUCTION, f"文脈：{ctx_nl}<NL>質問：{{q}}"),
        rinna_bilingual("0.5", INSTRUCTION, f"文脈：{ctx}\n質問：{{q}}"),
        llama2("0.6", INSTRUCTION, f"文脈：{ctx}\n質問：{{q}}"),
    ]
    return tuple(out)


def _task(version: str, with_title: bool) -> GenerationTask:
    return GenerationTask(
        name="jsquad", version=version, suite="jglue", dataset=DATASET,
        eval_split="validation", fewshot_split="train", num_fewshot=2,
        templates=templates(with_title), view=view, golds=golds, score=score,
        metrics=("exact_match", "f1"), max_new_tokens=longest_gold,
        extra_checks=(_check_context, _check_answers), fewshot_fallback=("test",),
        clusters=lambda row: row["context"],
        description="JGLUE JSQuAD, extractive QA by generation" + (" (title in the prompt)" if with_title else ""),
    )


TASK_1_1 = register(_task("1.1", with_title=False))
TASK_1_2 = register(_task("1.2", with_title=True))
