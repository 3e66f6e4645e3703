"""The model line's trend: every gated metric across a series of results folders (release candidates).

``python -m kensa trend DIR... [--out trend.md] [--plot trend.png] [--order given|date]`` reads each run's
``results.json`` (a results directory holding ``<model>/results.json``, or a model's folder holding it) and
writes one table row per (task, metric, release): the value with its 95 % interval (value ± 1.96 se), the gate's
verdict against the baseline that run was gated with (and the change against it), and the cumulative change from
the first release that has the metric. Quiz tasks also get seconds per question (the task's model wall time over
its questions). ``--plot`` draws one panel per suite, a line per task (its first gated metric), with the first
gated release's baseline and MDE as a band (baseline - MDE to baseline: the drops the gate could not see).
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kensa.errors import KensaError
from kensa.paths import write_atomic

Z95 = 1.959963984540054


class TrendError(KensaError):
    """A results folder that cannot be read as a release of the model line."""


@dataclass
class Release:
    """One results.json: a run of one model."""

    label: str
    path: Path
    model: str
    date: float  # seconds since the epoch: the model's recorded date if any, else the file's modification time
    metrics: dict[str, dict[str, Any]]
    tasks: dict[str, dict[str, Any]]
    gate: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


def _results_files(directory: Path) -> list[Path]:
    if (directory / "results.json").is_file():
        return [directory / "results.json"]
    found = sorted(directory.glob("*/results.json"))
    if not found:
        raise TrendError(f"{directory}: no results.json there nor in a model folder under it")
    return found


def _recorded_date(doc: Mapping[str, Any], path: Path) -> float:
    info = doc.get("kensa", {}).get("model_info", {}) or {}
    for key in ("date", "created", "model_date"):
        value = info.get(key)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            from datetime import datetime

            try:
                return datetime.fromisoformat(value).timestamp()
            except ValueError:
                raise TrendError(f"{path}: kensa.model_info.{key} is {value!r}, not an ISO date") from None
    return os.stat(path).st_mtime


def read_release(path: Path, label: str) -> Release:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TrendError(f"{path}: cannot be read as JSON ({exc})") from None
    kensa = doc.get("kensa")
    if not isinstance(doc.get("results"), dict) or not isinstance(kensa, dict):
        raise TrendError(f"{path}: not a kensa results.json (no 'results' or 'kensa' block)")
    if kensa.get("partial"):
        raise TrendError(f"{path}: a partial run ({kensa['partial'].get('reason', 'stopped early')}); a trend needs "
                         "finished runs")
    gate = {}
    for i, row in enumerate(kensa.get("gate", [])):
        missing = [k for k in ("task_id", "metric", "status") if k not in row]
        if missing:
            raise TrendError(f"{path}: kensa.gate[{i}] has no {', '.join(missing)}")
        gate[(row["task_id"], row["metric"])] = row
    return Release(label, path, str(kensa.get("model", label)), _recorded_date(doc, path), doc["results"],
                   kensa.get("tasks", {}), gate)


def read_releases(directories: Sequence[Path], order: str = "given") -> list[Release]:
    """Every results.json under the folders, in the order given (folders, then model folders by name) or by date."""
    if order not in ("given", "date"):
        raise ValueError(f"order must be 'given' or 'date', not {order!r}")
    releases = []
    for d in directories:
        if not d.is_dir():
            raise TrendError(f"{d}: not a directory")
        files = _results_files(d)
        releases += [read_release(f, d.name if len(files) == 1 else f"{d.name}/{f.parent.name}") for f in files]
    if order == "date":
        releases.sort(key=lambda r: r.date)
    return releases


def suite_of(task_id: str) -> str:
    from kensa.tasks import all_tasks

    for task in all_tasks():
        if any(v.task_id == task_id for v in task.variants()):
            return task.suite
    return "quiz" if task_id.startswith("quiz") else "other"


@dataclass
class TrendRow:
    task_id: str
    metric: str
    release: str
    value: float | None
    low: float | None
    high: float | None
    verdict: str
    vs_baseline: float | None
    cumulative: float | None
    seconds_per_question: float | None


def trend_rows(releases: Sequence[Release]) -> list[TrendRow]:
    """One row per gated (task, metric) and release, in release order; releases lacking it are skipped."""
    keys = list(dict.fromkeys(k for r in releases for k in r.gate))
    out = []
    for task_id, metric in sorted(keys):
        first = None
        for rel in releases:
            row = rel.gate.get((task_id, metric))
            value = rel.metrics.get(task_id, {}).get(metric)
            if row is None and value is None:
                continue
            if value is None and row is not None:
                value = row.get("score")
            se = rel.metrics.get(task_id, {}).get(f"{metric}_stderr")
            ok = isinstance(se, (int, float)) and math.isfinite(se) and value is not None
            if first is None and value is not None:
                first = value
            tinfo = rel.tasks.get(task_id, {})
            spq = None
            if suite_of(task_id) == "quiz" and tinfo.get("n") and tinfo.get("seconds") is not None:
                spq = tinfo["seconds"] / tinfo["n"]
            out.append(TrendRow(task_id, metric, rel.label, value, value - Z95 * se if ok else None,
                                value + Z95 * se if ok else None, row["status"] if row else "not gated",
                                row.get("delta") if row else None,
                                None if value is None or first is None else value - first, spq))
    return out


def _num(x: float | None, fmt: str = ".4f") -> str:
    return "-" if x is None else format(x, fmt)


def trend_markdown(releases: Sequence[Release], rows: Sequence[TrendRow]) -> str:
    lines = ["# kensa trend", "", "Releases, in order: " + ", ".join(f"`{r.label}` ({r.model})" for r in releases),
             "", "| task | metric | release | value | 95 % interval | verdict | Δ vs baseline | Δ from first | "
             "s/question |", "|---|---|---|---:|---|---|---:|---:|---:|"]
    for r in rows:
        interval = "-" if r.low is None else f"[{r.low:.4f}, {r.high:.4f}]"
        lines.append(f"| {r.task_id} | {r.metric} | {r.release} | {_num(r.value)} | {interval} | {r.verdict} | "
                     f"{_num(r.vs_baseline, '+.4f')} | {_num(r.cumulative, '+.4f')} | "
                     f"{_num(r.seconds_per_question, '.3f')} |")
    return "\n".join(lines) + "\n"


def trend_figure(releases: Sequence[Release], rows: Sequence[TrendRow], path: Path) -> Path:
    """One panel per suite, a line per task (its first gated metric), the first baseline's MDE as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r.label for r in releases]
    primary: dict[str, str] = {}
    for r in rows:
        primary.setdefault(r.task_id, r.metric)
    suites: dict[str, list[str]] = {}
    for task_id in primary:
        suites.setdefault(suite_of(task_id), []).append(task_id)
    if not suites:
        raise TrendError("no gated metric in these results: nothing to plot")
    fig, axes = plt.subplots(len(suites), 1, figsize=(7, 3.2 * len(suites)), squeeze=False)
    for ax, (suite, task_ids) in zip(axes.flat, sorted(suites.items())):
        for i, task_id in enumerate(task_ids):
            metric = primary[task_id]
            points = [(labels.index(r.release), r.value) for r in rows
                      if r.task_id == task_id and r.metric == metric and r.value is not None]
            color = f"C{i % 10}"
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color=color,
                    label=f"{task_id} {metric}")
            base = next((rel.gate[(task_id, metric)] for rel in releases if (task_id, metric) in rel.gate
                         and rel.gate[(task_id, metric)].get("base") is not None), None)
            if base is not None and base.get("mde") is not None and math.isfinite(base["mde"]):
                ax.axhspan(base["base"] - base["mde"], base["base"], color=color, alpha=0.12, lw=0)
        ax.set_title(f"{suite} (band: baseline - MDE .. baseline)", fontsize=9)
        ax.set_xticks(range(len(labels)), labels, fontsize=7, rotation=20)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, buffer.getvalue())


def run(directories: Sequence[str], out: str | None, plot: str | None, order: str) -> str:
    """The trend's Markdown (also written to ``out``); the figure to ``plot``."""
    releases = read_releases([Path(d).expanduser() for d in directories], order)
    rows = trend_rows(releases)
    text = trend_markdown(releases, rows)
    if out:
        write_atomic(Path(out), text)
    if plot:
        trend_figure(releases, rows, Path(plot))
    return text
