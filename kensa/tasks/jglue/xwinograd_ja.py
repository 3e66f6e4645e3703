"""XWinograd, Japanese: Winograd schemas as sentence pairs. Harness task ``xwinograd_ja``, VERSION 1.0,
no prompt versions (spec 3.7).

0-shot with an empty prompt (the backend scores ``""`` as ``[eos]``), two continuations = the two
full sentences, summed log-probs. ``acc`` = 1 only when the answer sentence's log-likelihood is
**strictly** greater (a tie scores 0), the harness's ``li1 > li2`` rather than argmax-first.

Data: the Hub's ``polm-stability/xwinograd-ja`` (config ``jp``, split ``test``: ``sentence1``,
``sentence2``, ``answer`` "1"/"2"), or XWINO's TSV (``xwinograd/dataset.jp.tsv``, 7 columns, no header;
see ``shared/data/xwinograd/README.md``), read into the same three fields: sentence *i* is the
schema's tokens with candidate *i*'s text in place of the pronoun's token span, joined without
spaces, and ``answer`` is the candidate marked correct.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from kensa.data import DatasetSpec, Split, check_row
from kensa.errors import DataError
from kensa.tasks.base import MultipleChoiceTask
from kensa.tasks.prompts import PromptTemplate
from kensa.tasks.registry import register

COLUMNS = 7


def read_xwinograd_tsv(spec: DatasetSpec, path: Path, split: str | None = None) -> Split:
    """XWINO's TSV (only ``jp`` rows are kept) -> rows of ``sentence1``, ``sentence2``, ``answer``."""
    raw = path.read_bytes()
    source = str(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(source, line, f"not UTF-8 (byte {exc.start})") from None
    rows, lines = [], []
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != COLUMNS:
            raise DataError(source, lineno, f"expected {COLUMNS} tab-separated columns, got {len(cols)}")
        if cols[0] != "jp":
            continue
        rows.append(check_row(spec, _pair(cols, source, lineno), source, lineno))
        lines.append(lineno)
    if not rows:
        raise DataError(source, None, "the file holds no jp rows")
    return Split(rows, source, None, hashlib.sha256(raw).hexdigest(), lines, split)


def _pair(cols: list[str], source: str, lineno: int) -> dict[str, str]:
    names = {4: "tokens", 5: "pronoun", 6: "candidates"}
    parsed = {}
    for i, name in names.items():
        try:
            parsed[name] = json.loads(cols[i])
        except json.JSONDecodeError as exc:
            raise DataError(source, lineno, f"column {i + 1} is not JSON: {exc.msg}", field=name) from None
    tokens, pronoun, cands = parsed["tokens"], parsed["pronoun"], parsed["candidates"]
    try:
        start, end = pronoun[1]
        texts = [c[0] for c in cands]
        correct = [bool(c[3]) for c in cands]
        before, after = "".join(tokens[:start]), "".join(tokens[end:])
        if len(texts) != 2 or correct.count(True) != 1:
            raise DataError(source, lineno, f"need 2 candidates with exactly one correct, got {correct}",
                            field="candidates")
        return {"sentence1": before + texts[0] + after, "sentence2": before + texts[1] + after,
                "answer": "1" if correct[0] else "2"}
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise DataError(source, lineno, f"malformed tokens, pronoun or candidates: {exc}",
                        field="candidates") from None


DATASET = DatasetSpec(
    name="XWinograd (jp)",
    local={"test": "xwinograd/dataset.jp.tsv"},
    hub_id="polm-stability/xwinograd-ja",
    hub_kwargs={"name": "jp"},
    fields={"sentence1": str, "sentence2": str, "answer": str},
    reader=read_xwinograd_tsv,
)


def check_answer(row):
    if row["answer"] not in ("1", "2"):
        return "answer", f"{row['answer']!r} is not '1' or '2'"
    return None


TASK = register(
    MultipleChoiceTask(
        name="xwinograd_ja",
        version="1.0",
        suite="jglue",
        dataset=DATASET,
        eval_split="test",
        fewshot_split=None,
        num_fewshot=0,
        templates=(PromptTemplate("", name="none", description="", text="", target="{answer}"),),
        view=lambda row: {"answer": row[f"sentence{row['answer']}"]},
        choices=lambda row: [row["sentence1"], row["sentence2"]],
        choice_fields=("sentence1", "sentence2"),
        gold=lambda row: int(row["answer"]) - 1,
        metrics=("acc",),
        strict_acc=True,
        prompt_versioned=False,
        extra_checks=(check_answer,),
        description="XWinograd Japanese, 959 Winograd schemas scored as sentence pairs",
    )
)
