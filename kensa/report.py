"""Results on disk and on screen.

* ``<results-dir>/<model>/results.json``: the harness's shape (``results``, ``versions``,
  ``config``) plus a ``kensa`` block with provenance (data files and hashes, library versions,
  model details, timings).
* ``<results-dir>/<model>/samples_<task-id>.jsonl``: one line per doc.
* A summary table, printed at the end of the session and written as ``summary.md``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kensa import __version__


def _clean(value: Any) -> Any:
    """NaN is not JSON; an undefined stderr is written as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_samples(path: Path, samples: Iterable[Mapping[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for s in samples:
            f.write(json.dumps(_clean(dict(s)), ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def _version_number(version: str) -> float | str:
    """The harness writes task versions as floats (1.1); keep strings that are not numbers."""
    try:
        return float(version)
    except ValueError:
        return version


def harness_results(model: str, runs: Sequence[Mapping[str, Any]], *, model_args: str,
                    model_info: Mapping[str, Any], run_config: Mapping[str, Any]) -> dict[str, Any]:
    """A results document a harness user can read: ``results``, ``versions``, ``config``."""
    return _clean({
        "results": {r["task_id"]: r["metrics"] for r in runs},
        "versions": {r["task_id"]: _version_number(r["version"]) for r in runs},
        "config": {
            "model": "hf-causal",
            "model_args": model_args,
            "num_fewshot": [r["num_fewshot"] for r in runs],
            "batch_size": model_info.get("batch_size"),
            "device": model_info.get("device"),
            "no_cache": True,
            "limit": run_config.get("limit"),
            "bootstrap_iters": 100000,
            "description_dict": {},
        },
        "kensa": {
            "version": __version__,
            "model": model,
            "model_info": dict(model_info),
            "run": dict(run_config),
            "tasks": {r["task_id"]: {k: r[k] for k in ("n", "prompt_version", "data", "seconds", "requests")}
                      for r in runs},
        },
    })


def write_results(path: Path, document: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or isinstance(value, float) and math.isnan(value):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def summary_rows(model: str, runs: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    rows = []
    for r in sorted(runs, key=lambda r: r["task_id"]):
        m = r["metrics"]
        rows.append([model, r["task_id"], str(r["num_fewshot"]), str(r["n"]),
                     _fmt(m.get("acc")), _fmt(m.get("acc_stderr")),
                     _fmt(m.get("acc_norm")), _fmt(m.get("acc_norm_stderr")), f"{r['seconds']:.1f}s"])
    return rows


HEADER = ["model", "task", "k", "n", "acc", "± se", "acc_norm", "± se", "time"]


def format_table(rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> list[str]:
    """A plain-text table with aligned columns (numbers right-aligned)."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    def line(cells):
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def markdown_table(rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"
