"""``results/summary.md`` as a pull request shows it: readable at a glance.

The verdict first; then the failing rows, each failing task with three documents that got worse (prompt trimmed
to its end, where the question is; the baseline's and the candidate's outcome, the candidate's answer and the
gold); the snapshots that changed (a link to each file, the command that shows its diff, the diff folded); under
``--gate-sequential`` the documents each task scored and the look it stopped at; the notes; and the full table,
row messages and model-against-model table folded in ``<details>``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote
from typing import Any

from kensa.report.results import COLUMNS, PAIRWISE_COLUMNS, markdown_table, pairwise_rows, table_rows

EXAMPLES = 3
PROMPT_CHARS = 160
DIFF_LINES = 60


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


def _link(path: Path, root: Path, here: Path | None) -> tuple[str, str]:
    """(text, target) of a Markdown link to ``path``: the text relative to the repository root ``root``, the
    target relative to the summary's own folder ``here`` (so the link opens from where summary.md lies)."""
    path = Path(path)
    try:
        shown = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        shown = path.as_posix()
    target = Path(os.path.relpath(path.resolve(), here.resolve())).as_posix() if here is not None else shown
    return shown, quote(target, safe="/._-~")


def snapshot_lines(snapshots: Sequence[Mapping[str, Any]], root: Path, here: Path | None = None) -> list[str]:
    """The snapshot files this session found changed (``status`` "changed": the test failed on a diff; "updated":
    --snapshot-update rewrote it; "no snapshot yet"), each linked, with the command that shows its diff."""
    if not snapshots:
        return []
    out = [f"### Snapshots changed ({len(snapshots)})", ""]
    for snap in sorted(snapshots, key=lambda s: str(s["path"])):
        shown, target = _link(Path(snap["path"]), root, here)
        text = "[" + shown.replace("[", "\\[").replace("]", "\\]") + "](" + target + ")"
        if snap["status"] == "updated":
            how = f"rewritten by --snapshot-update; review `git diff -- '{shown}'` and commit it"
        elif snap["status"] == "written":
            how = f"a new file written by --snapshot-update; review it and `git add '{shown}'`"
        elif snap["status"] == "changed":
            how = (f"differs from the committed file; to accept it: `pytest '{snap['nodeid']}' --snapshot-update`, "
                   f"then review `git diff -- '{shown}'` and commit it")
        else:
            how = f"{snap['status']}: `pytest '{snap['nodeid']}' --snapshot-update` writes it; review and commit it"
        out.append(f"- {snap['what']}: {text}: {how}")
        diff = str(snap.get("diff") or "").splitlines()
        if diff:
            cut = diff[:DIFF_LINES] + ([f"... ({len(diff) - DIFF_LINES} more lines)"] if len(diff) > DIFF_LINES else [])
            fence = "~~~~" if any(line.startswith("```") for line in cut) else "```"
            out += ["  <details><summary>diff</summary>", "", f"  {fence}diff", *(f"  {line}" for line in cut),
                    f"  {fence}", "", "  </details>"]
    return out


def sequential_lines(rows: Sequence[Any]) -> list[str]:
    """Under --gate-sequential: per task, the documents scored and the look at which it stopped, and why."""
    tasks: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        seq = (r.details or {}).get("sequential")
        if seq:
            tasks.setdefault((r.model, r.task_id), []).append(seq | {"metric": r.metric})
    if not tasks:
        return []
    out = ["### Sequential gate: documents scored", "", "| model | task | docs scored | of | stopped at look | why |",
           "|---|---|---:|---:|---:|---|"]
    for (model, task_id), seqs in sorted(tasks.items()):
        last = max(seqs, key=lambda s: (s["scored"], s["decision"] == "fail"))
        why = "; ".join(f"{s['metric']} {s['decision']}" + (" (early)" if s.get("stopped_early") else "")
                        for s in seqs)
        out.append(f"| {_cell(model, 40)} | {_cell(task_id, 40)} | {last['scored']:,} | {last['n']:,} | "
                   f"{last['look']}/{last['looks']} | {_cell(why)} |")
    return out


def summary_markdown(rows: Sequence[Any], headline: str, notes: Sequence[str] = (),
                     pairwise: Sequence[Any] = (), snapshots: Sequence[Mapping[str, Any]] = (),
                     root: Path | None = None, here: Path | None = None) -> str:
    """The gate's summary for a pull request (same rows and notes as the terminal table). ``snapshots``: the
    snapshot files that changed (see :func:`snapshot_lines`), linked relative to ``here`` (summary.md's folder)
    and shown relative to ``root`` (the repository)."""
    failed = [r for r in rows if r.failed]
    out = [f"**{headline}**", ""]
    stale = [snap for snap in snapshots if snap["status"] not in ("updated", "written")]
    if stale and rows:  # the gate's verdict alone would read as a pass: the snapshot tests failed the session
        out += [f"**{len(stale)} snapshot test(s) failed: the session fails until they are reviewed** (below)", ""]
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
    snaps = snapshot_lines(snapshots, root or Path.cwd(), here)
    if snaps:
        out += ["", *snaps]
    seq = sequential_lines(rows)
    if seq:
        out += ["", *seq]
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
