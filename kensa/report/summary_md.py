"""``results/summary.md`` as a pull request shows it: readable at a glance.

The verdict first; then the failing rows, each failing task with three documents that got worse (prompt trimmed
to its end, where the question is; the baseline's and the candidate's outcome, the candidate's answer and the
gold); the notes; and the full table, row messages and model-against-model table folded in ``<details>``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kensa.report.results import COLUMNS, PAIRWISE_COLUMNS, markdown_table, pairwise_rows, table_rows

EXAMPLES = 3
PROMPT_CHARS = 160


def _cell(text: Any, limit: int = 120) -> str:
    s = " ".join(str(text).split()).replace("|", "\\|").replace("`", "'")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _answer(record: dict[str, Any]) -> str:
    if "generation" in record:
        return _cell(record["generation"], 80)
    choices, pred = record.get("continuations"), record.get("pred")
    if isinstance(choices, list) and isinstance(pred, int) and 0 <= pred < len(choices):
        return _cell(choices[pred], 80)
    return _cell(pred, 80)


def _gold(record: dict[str, Any]) -> str:
    choices, gold = record.get("continuations"), record.get("gold")
    if isinstance(choices, list) and isinstance(gold, int) and 0 <= gold < len(choices):
        return _cell(choices[gold], 80)
    return _cell(gold, 80)


def flip_examples(path: Path, metric: str, limit: int = EXAMPLES) -> tuple[list[str], int]:
    """Up to ``limit`` Markdown bullet lines for documents that got worse on ``metric``, and how many there are.
    A flips file that cannot be read gives a line saying so (the summary is still written)."""
    try:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        return [f"- (flip report {path} unreadable: {exc})"], 0
    mine = [r for r in records if r.get("metric") == metric]
    out = []
    for r in mine[:limit]:
        prompt = " ".join(str(r.get("prompt", "")).split())
        trimmed = prompt if len(prompt) <= PROMPT_CHARS else "…" + prompt[-PROMPT_CHARS:]
        out.append(f"- doc `{_cell(r.get('key', r.get('doc_id')), 40)}`: baseline {_cell(r.get('baseline'), 30)} → "
                   f"candidate {_cell(r.get('candidate'), 30)}; candidate answered **{_answer(r)}**, gold "
                   f"**{_gold(r)}**<br>prompt: `{_cell(trimmed, PROMPT_CHARS + 1)}`")
    return out, len(mine)


def summary_markdown(rows: Sequence[Any], headline: str, notes: Sequence[str] = (),
                     pairwise: Sequence[Any] = ()) -> str:
    """The gate's summary for a pull request (same rows and notes as the terminal table)."""
    failed = [r for r in rows if r.failed]
    out = [f"**{headline}**", ""]
    if failed:
        out += [f"### Failing rows ({len(failed)})", "", markdown_table(table_rows(failed), COLUMNS).rstrip("\n")]
        out += sorted({f"- `{r.model}` `{r.task_id}` {r.metric}: {r.status}: {r.message}" for r in failed
                       if r.message})
        shown: set[tuple[str, str, str]] = set()
        for r in sorted(failed, key=lambda r: (r.model, r.task_id, r.metric)):
            where = (r.details or {}).get("flip_report")
            key = (r.model, r.task_id, str(where))
            if not where or key in shown:
                continue  # one example block per task: its metrics mostly flip on the same documents
            shown.add(key)
            lines, total = flip_examples(Path(where), r.metric)
            if lines:
                out += ["", f"**`{r.model}` `{r.task_id}`**: {total} documents got worse on {r.metric} "
                            f"(all in `{where}`); the first {len(lines)}:", "", *lines]
    if notes:
        out += ["", *(f"- {n}" for n in notes)]
    out += ["", f"<details><summary>All {len(rows)} rows</summary>", "",
            markdown_table(table_rows(rows), COLUMNS).rstrip("\n")]
    messages = sorted({f"- `{r.model}` `{r.task_id}` {r.metric}: {r.status}: {r.message}" for r in rows
                       if r.message and not r.failed})
    if messages:
        out += ["", *messages]
    if pairwise:
        out += ["", "Model against model (paired, two-sided):", "",
                markdown_table(pairwise_rows(pairwise), PAIRWISE_COLUMNS).rstrip("\n")]
    out += ["", "</details>"]
    return "\n".join(out) + "\n"
