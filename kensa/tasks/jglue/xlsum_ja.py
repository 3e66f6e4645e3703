"""XL-Sum, Japanese: news summarisation scored by ROUGE-2. Harness task ``xlsum_ja-1.0-*`` (spec 3.6, 4.2).

Eval split ``test``, one shot from ``train``. Greedy generation stops at ``SEP`` (``<NL>`` for 0.4,
a newline otherwise) after at most ``len(tok_encode(summary)) + 10`` new tokens (the harness's
``DYNAMIC_MAX_LENGTH=true`` default). ``rouge2`` = ROUGE-2 F x 100 on the evaluated model's
``tokenize`` pieces (the published numbers, a harness quirk); ``rouge2_mecab`` = the same on MeCab
tokens (the harness's documented intent). Both are reported as the bootstrap median
(``kensa.metrics.rouge``).

A prompt longer than ``max_length - max_new_tokens`` tokens has its articles cut at sentence ends
(:func:`truncate_articles`, ported line for line from ``XLSumJa.preprocess_ctx`` on the jp-stable
branch, ``lm_eval/tasks/ja/xlsum_ja.py``).

Data: the Hub's ``mkshing/xlsum_ja`` (CC BY-NC-SA 4.0; CSV files ``data/{train,validation,test}.csv``
with ``text`` and ``summary`` columns, plus XL-Sum's ``id``, ``url``, ``title``). A local copy is read
from ``<data-dir>/xlsum_ja/data/<split>.csv`` (the Hub repository's own layout); ``shared/data`` has no
copy (NC licence), the fixtures are our own articles in the same CSV format.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

from kensa.data import DatasetSpec, Split, check_row
from kensa.errors import DataError, KensaError
from kensa.metrics.rouge import mecab_tokens, rouge2_f
from kensa.tasks.base import GenerationTask, stop_at_separator
from kensa.tasks.prompts import PromptTemplate, alpaca, llama2, rinna_bilingual, rinna_sft
from kensa.tasks.registry import register


def read_xlsum_csv(spec: DatasetSpec, path: Path, split: str | None = None) -> Split:
    """A CSV file with a header row (the Hub files' format; RFC 4180 quoting, fields may span lines)."""
    raw = path.read_bytes()
    source = str(path)
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise DataError(source, raw[: exc.start].count(b"\n") + 1, f"not UTF-8 (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DataError(source, 1, f"malformed CSV header: {exc}") from None
    if not header:
        raise DataError(source, None, "the file holds no header row")
    if len(set(header)) != len(header):
        raise DataError(source, 1, f"duplicate column names in the header {header}")
    for name in spec.fields:
        if name not in header:
            raise DataError(source, 1, f"no such column in the header {header}", field=name)
    rows, lines = [], []
    while True:
        start = reader.line_num + 1  # a quoted field may span lines: report the record's first line
        try:
            cols = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataError(source, start, f"malformed CSV: {exc}") from None
        if not cols:
            continue  # a blank line
        if len(cols) < len(header):
            raise DataError(source, start, f"missing: the row has {len(cols)} of the header's {len(header)} columns",
                            field=header[len(cols)])
        if len(cols) > len(header):
            raise DataError(source, start, f"the row has {len(cols)} columns, the header {len(header)}")
        rows.append(check_row(spec, dict(zip(header, cols, strict=True)), source, start))
        lines.append(start)
    if not rows:
        raise DataError(source, None, "the file holds no rows")
    return Split(rows, source, None, hashlib.sha256(raw).hexdigest(), lines, split)


DATASET = DatasetSpec(
    name="XL-Sum ja",
    local={s: f"xlsum_ja/data/{s}.csv" for s in ("train", "validation", "test")},
    hub_id="mkshing/xlsum_ja",
    fields={"text": str, "summary": str},
    id_field="id",
    reader=read_xlsum_csv,
    missing_hint="XL-Sum ja is CC BY-NC-SA 4.0 and not in shared/data: download the Hub dataset mkshing/xlsum_ja "
                 "into <data-dir>/xlsum_ja (files data/train.csv and data/test.csv)",
)

INSTRUCTION = "与えられたニュース記事を要約してください。"

TEMPLATES = (
    PromptTemplate(
        "0.0", name="user",
        description=f"{INSTRUCTION}\n\n",
        text="ニュース記事:{text}\n要約:",
        target="{answer}",
        fewshot_sep="\n\n",
    ),
    alpaca("0.3", INSTRUCTION, "ニュース記事:{text}"),
    rinna_sft("0.4", INSTRUCTION, "ニュース記事:{text}"),
    rinna_bilingual("0.5", INSTRUCTION, "ニュース記事:{text}"),
    llama2("0.6", INSTRUCTION, "ニュース記事:{text}"),
)

MARKERS = {
    # version: (article marker ``ctx_prompt``, summary marker ``summary_prompt``) of each preprocess_ctx
    "0.0": ("ニュース記事:", "要約:"),
    "0.3": (f"### 指示:\n{INSTRUCTION}\n\n### 入力:\n", "### 応答:\n"),
    "0.4": ("ユーザー: ", "<NL>システム: "),
    "0.5": ("ユーザー: ", "\nシステム: "),
    "0.6": (f"{INSTRUCTION}\n\n", " [/INST] "),
}
COLLAPSE_NL = frozenset({"0.4", "0.5"})
"""The rinna classes (0.5 inherits 0.4's method) replace ``<NL><NL>`` by ``<NL>`` on every prompt."""


def _decode(lm, ids: list[int]) -> str:
    """``tokenizer.decode(ids, skip_special_tokens=True)``, for the hard cut of a too-long first sentence."""
    if hasattr(lm, "tok_decode"):
        return lm.tok_decode(ids)
    tokenizer = getattr(lm, "tokenizer", None)
    if tokenizer is None:
        raise KensaError(f"{getattr(lm, 'name', lm)!r} cannot decode tokens (needed to cut an XL-Sum sentence)")
    return tokenizer.decode(ids, skip_special_tokens=True)


def _truncate(ctx: str, budget: int, lm, ctx_prompt: str, summary_prompt: str, sep: str) -> str:
    """``XLSumJa.preprocess_ctx`` past its length check. Quirks kept: the article marker and anything
    before ``。`` in it count towards a segment's tokens; the description (when the first piece has no
    summary marker), the summaries, the markers and the appended ``。`` + SEP are not counted, so the
    result can still exceed ``budget``; in 0.4/0.5 the description itself is a segment."""
    ctxs = [f"{ctx_prompt}{c}" for c in ctx.split(ctx_prompt)]
    description = ""
    if summary_prompt not in ctxs[0]:
        description = ctxs[0].replace(ctx_prompt, "")
        ctxs = ctxs[1:]
    if not ctxs:
        raise KensaError(f"cannot truncate an XL-Sum prompt with no article marker {ctx_prompt!r}")
    per_segment = budget // len(ctxs)
    res = description
    for c in ctxs:
        parts = c.split(summary_prompt)
        if len(parts) != 2:  # the harness's ``text, summary = c.split(...)`` raises here
            raise KensaError(f"cannot truncate an XL-Sum prompt: a segment holds {len(parts) - 1} summary markers "
                             f"{summary_prompt!r} (an article or summary contains a marker): {c[:80]!r}")
        text, summary = parts
        kept: list[str] = []
        for s in text.split("。"):
            if len(lm.tok_encode("。".join([*kept, s]))) > per_segment:
                if kept:
                    kept[-1] += "。" + sep
                else:
                    kept.append(_decode(lm, lm.tok_encode(s)[:per_segment]) + sep)
                break
            kept.append(s)
        res += "。".join(kept) + summary_prompt + summary
    return res


def truncate_articles(prompt: str, template: PromptTemplate, budget: int, lm) -> str:
    """The harness's ``preprocess_ctx(ctx, max_length=max_length - max_new_tokens)`` for this version."""
    ctx_prompt, summary_prompt = MARKERS[template.version]
    if len(lm.tok_encode(prompt)) > budget:
        prompt = _truncate(prompt, budget, lm, ctx_prompt, summary_prompt, stop_at_separator(template)[0])
    if template.version in COLLAPSE_NL:
        prompt = prompt.replace("<NL><NL>", "<NL>")
    return prompt


def score(generation: str, row, lm) -> dict[str, float]:
    return {"rouge2": 100.0 * rouge2_f(row["summary"], generation, lm.tokenize),
            "rouge2_mecab": 100.0 * rouge2_f(row["summary"], generation, mecab_tokens)}


def check_non_empty(row):
    for name in ("text", "summary"):
        if not row[name].strip():
            return name, "empty"
    return None


TASK = register(
    GenerationTask(
        name="xlsum_ja",
        version="1.0",
        suite="jglue",
        dataset=DATASET,
        eval_split="test",
        fewshot_split="train",
        num_fewshot=1,
        templates=TEMPLATES,
        view=lambda row: {"text": row["text"], "summary": row["summary"], "answer": row["summary"]},
        golds=lambda row: [row["summary"]],
        score=score,
        metrics=("rouge2", "rouge2_mecab"),
        max_new_tokens=lambda row, lm: len(lm.tok_encode(row["summary"])) + 10,
        until=stop_at_separator,
        fit=truncate_articles,
        extra_checks=(check_non_empty,),
        description="XL-Sum Japanese (mkshing/xlsum_ja, PaLM 2 filtered), news summarisation, ROUGE-2",
    )
)
