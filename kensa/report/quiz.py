"""The quiz report: per category and model, score and latency, as the QMA tables report them.

* :func:`quiz_record`: what one quiz test contributes (score, format-failure rate, latency, environment,
  the fixed budget and stops), small enough to travel from an xdist worker;
* :func:`table_lines`: the terminal table, one row per test and model;
* :func:`quiz_markdown` (``results/quiz.md``): one table per category, Model | Environment | Score |
  Latency | Unparseable, sorted by score, under a heading per set, mode and prompt version whose caption
  gives the token budget, stop strings and batch size;
* :func:`quiz_figure` (``results/quiz.png``): score against seconds per question, one point per model,
  one panel per category (matplotlib, Agg backend).
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kensa.paths import write_atomic
from kensa.report.results import format_table, markdown_table
from kensa.run.latency import Latency, latency_of
from kensa.tasks.quiz.prompts import FORM_NAMES
from kensa.tasks.quiz.sets import category_slug
from kensa.tasks.quiz.tasks import MODES

CACHED_NOTE = ("answers the response cache served have no latency: such rows say 'cached', and their latency "
               "covers only the answers the model computed; run with --response-cache off to time every answer")


def quiz_record(variant: Any, run: Any, info: Mapping[str, Any], environment: Mapping[str, str],
                model: str, left_out: Sequence[str] = ()) -> dict[str, Any]:
    task, template = variant.task, variant.template
    ref = task.quiz
    sample = run.samples[0] if run.samples else {}
    latency = latency_of(run.samples, task.kind)
    return {
        "model": model, "task_id": variant.task_id, "set": ref.qset.slug, "set_label": ref.qset.label,
        "category": ref.category, "mode": ref.mode, "prompt_version": template.version, "prompt_name": template.name,
        "form": FORM_NAMES.get(getattr(template, "form", ""), "") if ref.mode == "loglik" else "",
        "n": run.n, "score": run.metrics.get("acc"), "unparseable_rate": run.metrics.get("unparseable_rate"),
        "latency": latency.to_dict(), "environment": dict(environment),
        "until": sample.get("until"), "max_new_tokens": sample.get("max_new_tokens"),
        "load_seconds": info.get("load_seconds"), "drawn": ref.qset.drawn, "left_out": list(left_out),
    }


def environment_text(env: Mapping[str, str]) -> str:
    parts = [env.get("hardware", "unknown"), env.get("dtype", "?"), env.get("backend", "?"),
             f"batch {env.get('batch_size') or '?'}"]
    if env.get("quantization") not in (None, "", "none"):
        parts.insert(2, env["quantization"])
    return " · ".join(parts)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _per_s(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.1f}"


def latency_cell(lat: Latency) -> str:
    if not lat.timed:
        return f"cached ({lat.cached}/{lat.n})"
    text = f"{lat.mean_seconds:.4f} (p50 {lat.p50_seconds:.4f}, p95 {lat.p95_seconds:.4f})"
    return text + (f"; {lat.cached}/{lat.n} cached" if lat.cached else "")


TABLE_COLUMNS = ["model", "set", "category", "mode", "prompt", "n", "score", "unparseable", "s/q", "p50", "p95",
                 "tok/s", "char/s", "1st tok s", "cached", "latency gate"]


def table_lines(records: Sequence[Mapping[str, Any]], checks: Mapping[tuple[str, str], Any] | None = None) -> list[str]:
    checks = checks or {}
    rows = []
    for r in sorted(records, key=lambda r: (r["set"], r["category"], r["mode"], r["prompt_version"], r["model"])):
        lat = Latency.from_dict(r["latency"])
        check = checks.get((r["model"], r["task_id"]))
        rows.append([r["model"], r["set"], r["category"], r["mode"], r["prompt_version"], str(r["n"]),
                     _score(r["score"]), _rate(r["unparseable_rate"]) if r["mode"] == "gen" else "-",
                     _seconds(lat.mean_seconds), _seconds(lat.p50_seconds), _seconds(lat.p95_seconds),
                     _per_s(lat.tokens_per_second), _per_s(lat.chars_per_second), _seconds(lat.first_token_seconds),
                     str(lat.cached), _check_cell(check)])
    header = list(TABLE_COLUMNS)
    return format_table(rows, header)


def _check_cell(check: Any) -> str:
    if check is None:
        return "-"
    from kensa.gate.latency import ratio_text

    return f"{check.status} {ratio_text(check)}".strip()


def _groups(records: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, str], dict[str, list[Mapping[str, Any]]]]:
    out: dict[tuple[str, str, str], dict[str, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        out[(r["set"], r["mode"], r["prompt_version"])][r["category"]].append(r)
    return out


def _caption(members: Sequence[Mapping[str, Any]]) -> str:
    first = members[0]
    batches = sorted({str(r["environment"].get("batch_size")) for r in members})
    batch = f"batch size {batches[0]}" if len(batches) == 1 else f"batch sizes DIFFER ({', '.join(batches)})"
    if first["mode"] == "loglik":
        what = f"each choice scored as its {first['form'] or 'continuation'}"
    else:
        stops = ", ".join(repr(s) for s in first["until"] or [])
        what = f"greedy, at most {first['max_new_tokens']} new tokens, stop at {stops}"
    return f"{what}; {batch}: the same for every model in the tables below."


def quiz_markdown(records: Sequence[Mapping[str, Any]], checks: Mapping[tuple[str, str], Any] | None = None) -> str:
    checks = checks or {}
    lines = ["# kensa quiz: score and latency per category", ""]
    models = list(dict.fromkeys(r["model"] for r in records))
    loads = {r["model"]: r.get("load_seconds") for r in records}
    lines += [f"Models: {', '.join(models)}. Model load time (reported apart, never inside a category): "
              + ", ".join(f"{m} {loads[m]:.1f} s" if loads[m] is not None else f"{m} -" for m in models) + ".", "",
              "Score: accuracy (log-likelihood: the best-scoring choice; generation: the parsed answer, an "
              "unparseable one counting as wrong; open answer: normalised exact match). Latency: the model's "
              "seconds per question from the backend (a batch's time shared among its questions), mean with p50 "
              "and p95, after one untimed warm-up batch per model; " + CACHED_NOTE + ".", ""]
    notes = sorted({f"{r['set_label']}: {r['drawn']}" for r in records if r.get("drawn")})
    notes += sorted({f"{r['set_label']}: left out {x}" for r in records for x in r.get("left_out", [])})
    lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    for (qset, mode, version), by_category in sorted(_groups(records).items()):
        members = [r for rs in by_category.values() for r in rs]
        first = members[0]
        lines += [f"## {first['set_label']} · {MODES[mode]} · prompt {version} ({first['prompt_name']})", "",
                  _caption(members), ""]
        for category, rows in by_category.items():
            lines += [f"### {category}", ""]
            table = []
            for r in sorted(rows, key=lambda r: -(r["score"] if r["score"] is not None else -1)):
                lat = Latency.from_dict(r["latency"])
                check = checks.get((r["model"], r["task_id"]))
                cells = [r["model"], environment_text(r["environment"]), f"{_score(r['score'])} (n={r['n']})",
                         latency_cell(lat), _rate(r["unparseable_rate"]) if mode == "gen" else "-"]
                table.append(cells + ([_check_cell(check)] if checks else []))
            header = ["Model", "Environment", "Score", "Latency (s/question)", "Unparseable"]
            lines += [markdown_table(table, header + (["Latency gate"] if checks else [])).rstrip("\n"), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def headline_group(records: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """The (mode, prompt version) the figure shows: generation with the evaluation format (0.2, how the QMA
    tables score fine-tuned models) when it ran, else the combination with the most tests."""
    combos = [(r["mode"], r["prompt_version"]) for r in records]
    if ("gen", "0.2") in combos:
        return "gen", "0.2"
    return max(set(combos), key=lambda c: (combos.count(c), c))


def quiz_figure(records: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Score against seconds per question, one point per model, one panel per (set, category)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mode, version = headline_group(records)
    chosen = [r for r in records if r["mode"] == mode and r["prompt_version"] == version]
    panels = sorted({(r["set"], r["category"]) for r in chosen})
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    models = list(dict.fromkeys(r["model"] for r in chosen))
    markers = "osD^v<>ph*"
    for ax, (qset, category) in zip(axes.flat, panels):
        for i, model in enumerate(models):
            for r in chosen:
                if (r["set"], r["category"], r["model"]) != (qset, category, model):
                    continue
                lat = Latency.from_dict(r["latency"])
                x = lat.mean_seconds if lat.mean_seconds is not None else float("nan")
                ax.scatter([x], [r["score"]], marker=markers[i % len(markers)], label=model, s=40)
        font = _font()
        title = f"{qset}: {category}" if font != "sans-serif" else f"{qset}: {category_slug(category)}"
        ax.set_title(title, fontsize=9, fontfamily=font)
        ax.set_xlabel("model seconds per question", fontsize=8)
        ax.set_ylabel("score", fontsize=8)
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(models)), fontsize=8)
    fig.suptitle(f"kensa quiz: {MODES[mode]}, prompt {version} (cached answers have no time)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, buffer.getvalue())


def _font() -> str:
    """A font with Japanese glyphs when one is installed (category names are Japanese), else the default."""
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    for name in ("Noto Sans CJK JP", "IPAexGothic", "IPAGothic", "TakaoGothic", "Hiragino Sans", "Yu Gothic"):
        if name in names:
            return name
    return "sans-serif"
