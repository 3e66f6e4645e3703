"""Thresholds against their committed history: was a threshold lowered by hand?

``--thresholds-update`` lowers an entry only with ``--allow-lower``, rewrites its per-document
outcomes and stamps it ``updated``; the run lists it for review. A hand edit that lowers a value
leaves the stamp as it was. So, against a git ref (``--thresholds-base``, by default the merge base
with the default branch), an entry whose value went down while its ``updated`` stamp did not move
was lowered outside the update flow, and the gate says so.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

from kensa.gate.thresholds import Thresholds
from kensa.gate.verdicts import HAND_LOWERED, BaselineStore, Check

UPDATE_LOWERED = "lowered by --thresholds-update"


@dataclass(frozen=True)
class Lowering:
    task_id: str
    metric: str
    before: float
    now: float
    how: str
    """:data:`HAND_LOWERED` or :data:`UPDATE_LOWERED`."""

    def describe(self, path: Path, ref: str) -> str:
        return (f"{path} entry {self.task_id} {self.metric}: {self.before:.4f} at {ref} -> {self.now:.4f} now, "
                f"{self.how}")


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def default_base(root: Path) -> str | None:
    """The merge base of HEAD with the default branch (``origin/HEAD``'s target, else ``main`` or
    ``master``); None outside git or when there is no such branch."""
    candidates = []
    head = _git(root, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD")
    if head:
        candidates.append(head.strip())
    candidates += ["refs/remotes/origin/main", "refs/heads/main", "refs/remotes/origin/master", "refs/heads/master"]
    for branch in candidates:
        base = _git(root, "merge-base", "HEAD", branch)
        if base:
            return base.strip()
    return None


def file_at(ref: str, path: Path) -> str | None:
    """The text of ``path`` at git ``ref`` in the repository holding it (None when the file did not exist
    there or git cannot say)."""
    root = Path(path).resolve().parent
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None:
        return None
    try:
        rel = Path(path).resolve().relative_to(Path(top.strip()).resolve())
    except ValueError:
        return None  # the thresholds live outside this repository
    return _git(root, "show", f"{ref}:{rel.as_posix()}")


def lowerings(before_text: str, now: Thresholds) -> list[Lowering]:
    """Every gated value of ``now`` that is worse than in ``before_text`` (the same file at the ref)."""
    try:
        before: dict[str, Any] = tomllib.loads(before_text)
    except tomllib.TOMLDecodeError:
        return []  # the old file was unreadable; nothing to compare with
    old_entries = before.get("entries") if isinstance(before.get("entries"), dict) else {}
    out = []
    for task_id, entry in sorted(now.entries.items()):
        old = old_entries.get(task_id)
        if not isinstance(old, dict) or not isinstance(old.get("metrics"), dict):
            continue
        for name, mb in sorted(entry.metrics.items()):
            old_mb = old["metrics"].get(name)
            if not isinstance(old_mb, dict) or not isinstance(old_mb.get("value"), (int, float)):
                continue
            sign = 1.0 if mb.direction == "higher" else -1.0
            if sign * (mb.value - float(old_mb["value"])) < 0:
                how = UPDATE_LOWERED if entry.updated != old.get("updated") else HAND_LOWERED
                out.append(Lowering(task_id, name, float(old_mb["value"]), mb.value, how))
    return out


_REF = re.compile(r"^[A-Za-z0-9_][\w./@^~{}-]*$")


def check_ref(text: str) -> str:
    """``auto``, ``none`` or a git ref (a name, a hash, ``HEAD~3``...); ValueError otherwise."""
    if text in ("auto", "none") or _REF.match(text):
        return text
    raise ValueError(f"{text!r}: expected auto, none or a git ref")


def hand_lowered_rows(store: BaselineStore, used: Mapping[str, Sequence[str]],
                      base: str) -> tuple[list[Check], list[str]]:
    """Rows for every threshold of the ``used`` baselines (baseline -> models) lowered by hand since
    ``base`` (``auto``: the merge base with the default branch of the repository holding the
    thresholds; ``none``: no check), and notes: lowerings made by ``--thresholds-update`` (listed for
    review, not failed), or why no comparison was made."""
    if base == "none" or not used:
        return [], []
    folder = store.directory.resolve()
    ref = (default_base(folder) if folder.is_dir() else None) if base == "auto" else base
    if ref is None:  # auto outside git, or with no default branch: there is no history to compare with
        return [], []
    rows, notes = [], []
    for baseline, models in sorted(used.items()):
        th = store.get(baseline)
        if th is None:
            continue
        before = file_at(ref, th.path)
        if before is None:
            continue  # the file is new since the ref: nothing was lowered
        for low in lowerings(before, th):
            text = low.describe(th.path, ref[:12])
            if low.how == UPDATE_LOWERED:
                notes.append(f"kensa gate: {text} (review it)")
                continue
            rows += [Check(model, baseline, low.task_id, low.metric, HAND_LOWERED,
                           f"{text}: a threshold may only go down through --thresholds-update --allow-lower",
                           base=low.now, details={"before": low.before, "ref": ref}) for model in models]
    return rows, notes
