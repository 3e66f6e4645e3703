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
from kensa.paths import write_atomic


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
    return write_atomic(path, "".join(json.dumps(_clean(dict(s)), ensure_ascii=False) + "\n" for s in samples))


def _version_number(version: str) -> float | str:
    """The harness writes task versions as floats (1.1); keep strings that are not numbers."""
    try:
        return float(version)
    except ValueError:
        return version


def harness_results(model: str, runs: Sequence[Mapping[str, Any]], *, model_args: str,
                    model_info: Mapping[str, Any], run_config: Mapping[str, Any],
                    gate: Sequence[Mapping[str, Any]] = (), partial: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A results document a harness user can read: ``results``, ``versions``, ``config``. ``partial``
    (why and how far, when the session stopped early) marks the document as incomplete."""
    return _clean({
        "results": {r["task_id"]: r["metrics"] for r in runs},
        "versions": {r["task_id"]: _version_number(r["version"]) for r in runs},
        "config": {
            "model": "hf-causal",
            "model_args": model_args,
            "num_fewshot": [r["num_fewshot"] for r in runs],
            "batch_size": model_info.get("batch_size"),
            "device": model_info.get("device"),
            # True only when no answer could have come from kensa's response cache (--response-cache off);
            # each task's data.responses says how many were computed and how many were read.
            "no_cache": run_config.get("response_cache", "off") == "off",
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
            "gate": [dict(g) for g in gate],
            "partial": dict(partial) if partial else False,
        },
    })


def write_results(path: Path, document: Mapping[str, Any]) -> Path:
    return write_atomic(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def write_summary(path: Path, markdown: str) -> Path:
    return write_atomic(path, markdown)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or isinstance(value, float) and math.isnan(value):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


# -- the score table: one row per model, task and metric -----------------------------------------

COLUMNS = ["model", "task", "metric", "n", "score", "± se", "baseline", "Δ", "p (Holm)", "MDE", "verdict"]
FAILING_FIRST = {"fail (hard limit)": 0, "fail": 1, "error": 2, "missing": 3, "stale": 4, "incomparable": 5,
                 "refused": 6}


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4f}"


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def table_rows(rows: Sequence[Any]) -> list[list[str]]:
    """Cells of the score table from gate rows (``kensa.gate.Check``), in a stable order."""
    out = []
    for r in sorted(rows, key=lambda r: (r.model, r.task_id, r.metric)):
        out.append([r.model, r.task_id, r.metric, _fmt(r.n), _fmt(r.score), _fmt(r.stderr), _fmt(r.base),
                    _signed(r.delta), _p(r.p_holm), _fmt(r.mde), r.status])
    return out


def partial_note(partial: Mapping[str, Any]) -> str:
    return (f"PARTIAL RUN, {partial['reason']}: {partial['scored_tests']} tests scored before it stopped "
            f"(the session had {partial['collected_tests']}); the results cover only those")


def gate_headline(rows: Sequence[Any], gate: Any, partial: Mapping[str, Any] | None = None) -> str:
    """The first line of every summary: what was gated, against what, and the outcome."""
    if partial:
        return f"kensa gate: {partial_note(partial)}"
    if not gate.enabled:
        return "kensa gate: OFF (--gate off): nothing was gated; these scores were compared with no baseline"
    where = ", ".join(f"{gate.directory.name}/{b}.toml" for b in dict.fromkeys(gate.baselines))
    if gate.update:
        return f"kensa gate: UPDATING {where}: nothing was gated; review the new thresholds and commit them"
    compared = sum(1 for r in rows if r.p is not None)
    failed = [r for r in rows if r.failed]
    verdict = f"FAIL ({len(failed)} of {len(rows)} rows)" if failed else "PASS"
    if not failed and rows and all(r.status == "underpowered" for r in rows):
        # a smoke run (too few documents to see a drop of 2 x abs_floor anywhere), not a demonstration of the gate
        verdict = "PASS (all rows underpowered)"
    return (f"kensa gate: {verdict}; baselines {where}; alpha {gate.alpha} family-wise, Holm over {compared} "
            "paired metrics")


def gate_lines(rows: Sequence[Any]) -> list[str]:
    lines = format_table(table_rows(rows))
    notes = sorted({(FAILING_FIRST.get(r.status, 9), f"{r.model} {r.task_id}: {r.status}: {r.message}")
                    for r in rows if r.message})
    return lines + [text for _, text in notes]


def gate_markdown(rows: Sequence[Any], headline: str, notes: Sequence[str] = (),
                  pairwise: Sequence[Any] = ()) -> str:
    """The same rows as a Markdown document, ready to paste as a pull-request comment."""
    out = [f"**{headline}**", "", markdown_table(table_rows(rows), COLUMNS).rstrip("\n")]
    messages = sorted({f"- `{r.model}` `{r.task_id}` {r.metric}: {r.status}: {r.message}" for r in rows if r.message})
    if messages:
        out += ["", *messages]
    if notes:
        out += ["", *(f"- {n}" for n in notes)]
    if pairwise:
        out += ["", "Model against model (paired, two-sided):", "",
                markdown_table(pairwise_rows(pairwise), PAIRWISE_COLUMNS).rstrip("\n")]
    return "\n".join(out) + "\n"


def junit_properties(rows: Sequence[Any], gate: Any) -> list[tuple[str, str]]:
    """The rows as JUnit XML global properties (one per row, plus the headline)."""
    out = [("kensa_gate", gate_headline(rows, gate))]
    for r, cells in zip(sorted(rows, key=lambda r: (r.model, r.task_id, r.metric)), table_rows(rows)):
        value = "; ".join(f"{k}={v}" for k, v in zip(COLUMNS[3:], cells[3:]))
        out.append((f"kensa[{r.model}][{r.task_id}][{r.metric}]", value))
    return out


PAIRWISE_COLUMNS = ["task", "metric", "n", "A", "B", "A score", "B score", "B − A", "p (two-sided)", "test"]


def pairwise_rows(pairs: Sequence[Any]) -> list[list[str]]:
    return [[p.task_id, p.metric, str(p.n), p.model_a, p.model_b, _fmt(p.a), _fmt(p.b), _signed(p.delta),
             _p(p.p), p.method] for p in pairs]


def format_table(rows: Sequence[Sequence[str]], header: Sequence[str] = COLUMNS) -> list[str]:
    """A plain-text table with aligned columns (text left-aligned, numbers right-aligned)."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    left = {i for i, h in enumerate(header) if h in ("model", "task", "metric", "verdict", "A", "B", "test")}

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def markdown_table(rows: Sequence[Sequence[str]], header: Sequence[str] = COLUMNS) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


# -- the averages people quote -------------------------------------------------------------------

# (name, {task: task version or None for any}); rinna's model cards quote the 4- and 6-task averages
# with the published task versions, the leaderboard the 8 tasks of ja8.conf (spec §5).
AVERAGES = (
    ("4-task", {"jcommonsenseqa": "1.1", "jnli": "1.1", "marc_ja": "1.1", "jsquad": "1.1"}),
    ("6-task", {"jcommonsenseqa": "1.1", "jnli": "1.1", "marc_ja": "1.1", "jsquad": "1.1", "jaqket_v2": "0.1",
                "xwinograd_ja": None}),
    ("8-task leaderboard", {"jcommonsenseqa": "1.1", "jnli": "1.3", "marc_ja": "1.1", "jsquad": "1.1",
                            "jaqket_v2": "0.2", "xlsum_ja": "1.0", "xwinograd_ja": None, "mgsm": "1.0"}),
)


def headline(metrics: Mapping[str, Any]) -> float | None:
    """The leaderboard's number for one result: acc x 100, else exact_match, else rouge2 (spec §5)."""
    if metrics.get("acc") is not None:
        return 100 * metrics["acc"]
    for key in ("exact_match", "rouge2"):
        if metrics.get(key) is not None:
            return metrics[key]
    return None


def averages(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per average and prompt version whose tasks all ran; otherwise one line naming what is missing.

    Tasks without prompt versions (``xwinograd_ja``) count at every prompt version."""
    lines = []
    for name, members in AVERAGES:
        pvs = sorted({r["prompt_version"] for r in runs if r["task"] in members and r["prompt_version"]})
        if not pvs:
            continue
        done, missing = [], set()
        for pv in pvs:
            picked, lacking = [], []
            for task, version in members.items():
                match = [r for r in runs if r["task"] == task and (version is None or str(r["version"]) == version)
                         and (r["prompt_version"] in (pv, "", None))]
                value = headline(match[0]["metrics"]) if match else None
                if value is None:
                    lacking.append(f"{task} {version}" if version else task)
                else:
                    picked.append(value)
            if lacking:
                missing.update(lacking)
            else:
                done.append(f"{name} average at prompt {pv}: {round(sum(picked) / len(picked), 2):.2f}")
        lines += done
        if not done:
            lines.append(f"{name} average: not computed; it also needs {', '.join(sorted(missing))} "
                         "at the same prompt version")
    return lines
