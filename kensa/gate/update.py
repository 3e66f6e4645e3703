"""``--thresholds-update``: write a new version of a baseline's thresholds from a run.

* A new entry is created; an entry whose scores rose (or stayed) is rewritten, keeping its
  first ``anchor`` so ratchet drift stays visible.
* A lower score is refused unless ``allow_lower``; then it is written and listed as lowered.
* A stale entry (other task or prompt version, k, n or data) or one from another
  environment is replaced: it measured something else, so nothing is being lowered.
* Entries the run did not touch are kept as they are: a partial run never deletes anything.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from kensa import __version__
from kensa.faults import fault_point
from kensa.gate.fingerprint import incomparable
from kensa.gate.thresholds import Entry, MetricBaseline, Thresholds, write_items, write_thresholds
from kensa.gate.verdicts import RunRecord, default_abs_floor, stale_reasons
from kensa.metrics.core import metric_spec


@dataclass(frozen=True)
class Change:
    baseline: str
    task_id: str
    status: str
    """created, raised, unchanged, lowered, refused or replaced."""
    detail: str = ""


def now_utc() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def git_sha(root: Path) -> str:
    """The suite's commit, with ``-dirty`` when the work tree has changes; ``unknown`` outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def _identity(run: RunRecord) -> dict[str, str]:
    # The source path is machine-specific; the hashes say which weights were scored.
    return {k: v for k, v in run.identity.items() if k != "source"}


def entry_from_run(run: RunRecord, date: str, previous: Entry | None = None, *, keep_anchor: bool = True) -> Entry:
    """An entry for ``run``. Reviewed overrides (abs_floor, hard_limit) survive; so does the anchor
    (the first value ever recorded) unless the old entry measured something else."""
    metrics = {}
    for name in run.gated:
        old = previous.metrics.get(name) if previous else None
        spec = metric_spec(name)
        value = run.metrics[name]
        stderr = run.metrics.get(f"{name}_stderr")
        anchor = value
        if old is not None and keep_anchor:
            anchor = old.anchor if old.anchor is not None else old.value
        metrics[name] = MetricBaseline(
            value=value, n=run.n, direction=spec.direction, rule="paired",
            # One document has no stderr (NaN); TOML could hold nan, but the reader rightly refuses it.
            stderr=round(stderr, 8) if stderr is not None and math.isfinite(stderr) else None,
            anchor=anchor, abs_floor=old.abs_floor if old else None, hard_limit=old.hard_limit if old else None)
    return Entry(task_id=run.task_id, task=run.task, task_version=run.task_version,
                 prompt_version=run.prompt_version, num_fewshot=run.num_fewshot, n=run.n,
                 data_sha256=run.data_sha256, kind=run.kind, updated=date, metrics=metrics, limit=run.limit,
                 fewshot_sha256=run.fewshot_sha256, items=f"{run.baseline}/{run.task_id}.jsonl",
                 weights_sha256=run.identity.get("weights_sha256") or None,
                 environment={k: v for k, v in run.environment.items()})


def _lowered(old: Entry, run: RunRecord) -> list[str]:
    """Each metric the run would lower, and a warning when it ends more than 2 x abs_floor below the
    entry's first anchor: several small lowerings must not add up to a large unreviewed drop."""
    out = []
    for name in run.gated:
        mb = old.metrics[name]
        sign = 1.0 if mb.direction == "higher" else -1.0
        if sign * (run.metrics[name] - mb.value) < 0:
            text = f"{name} {mb.value:.4f} -> {run.metrics[name]:.4f}"
            floor = mb.abs_floor if mb.abs_floor is not None else default_abs_floor(
                run.kind, run.environment.get("device", "cpu"), run.n, metric_spec(name).scale)
            anchor = mb.anchor if mb.anchor is not None else mb.value
            if sign * (anchor - run.metrics[name]) > 2 * floor:
                text += f" (WARNING: {sign * (anchor - run.metrics[name]):.4f} below its first anchor {anchor:.4f})"
            out.append(text)
    return out


def apply_update(th: Thresholds, runs: Sequence[RunRecord], *, allow_lower: bool, provenance: Mapping[str, str],
                 date: str | None = None) -> tuple[Thresholds, list[Change], list[RunRecord]]:
    """The new thresholds, what changed, and the runs whose items must be written."""
    date = date or now_utc()
    entries = dict(th.entries)
    changes, written = [], []
    for run in sorted(runs, key=lambda r: r.task_id):
        old = entries.get(run.task_id)
        differences = stale_reasons(old, run) + incomparable(old.environment, run.environment) if old else []
        if old is None:
            status, detail = "created", ""
        elif differences:
            status, detail = "replaced", "; ".join(differences)
        elif (lowered := _lowered(old, run)) and not allow_lower:
            changes.append(Change(th.baseline, run.task_id, "refused",
                                  f"{'; '.join(lowered)}: lowering needs --allow-lower"))
            continue
        elif lowered:
            status, detail = "lowered", "; ".join(lowered)
        elif any(run.metrics[m] != old.metrics[m].value for m in run.gated):
            status, detail = "raised", "; ".join(f"{m} {old.metrics[m].value:.4f} -> {run.metrics[m]:.4f}"
                                                 for m in run.gated if run.metrics[m] != old.metrics[m].value)
        else:
            status, detail = "unchanged", ""
        if status == "replaced" and old is not None and any(
                m.abs_floor is not None or m.hard_limit is not None for m in old.metrics.values()):
            detail += "; its abs_floor/hard_limit overrides are kept: check they still fit"
        entries[run.task_id] = entry_from_run(run, date, old, keep_anchor=status != "replaced")
        changes.append(Change(th.baseline, run.task_id, status, detail))
        written.append(run)
    if not written:
        return th, changes, []
    last = written[-1]
    new = replace(th, entries=entries, model=_identity(last), environment=dict(last.environment),
                  provenance={**provenance, "date": date, "kensa_version": __version__})
    return new, changes, written


def write_update(th: Thresholds, written: Sequence[RunRecord]) -> list[Path]:
    """Write the items first and the TOML last, so a crash never leaves a file naming missing items."""
    paths = [write_items(th.path.parent, th.entries[r.task_id].items, th.entries[r.task_id], r.items)
             for r in written]
    fault_point("thresholds-items")  # the kill sweep kills here: new items, the old TOML
    return [*paths, write_thresholds(th)]
