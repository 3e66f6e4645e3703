"""The quiz report: per category and model, score and latency, as the QMA tables report them.

* :func:`quiz_record`: what one quiz test contributes (score, format-failure rate, latency, environment,
  the fixed budget and stops), small enough to travel from an xdist worker;
* :func:`write_records` / :func:`read_records`: each session keeps its records in
  ``<results-dir>/<model>/quiz.jsonl`` (never another model's file), so the tables can be built from any number of
  results folders, from many machines (``python -m kensa quiz report DIR...``);
* :func:`table_lines`: the terminal table, one row per test and model;
* :func:`quiz_markdown` (``quiz.md``): the seed's layout, one table per genre, Model | Environment | Score |
  Latency, sorted by score, Score at full precision, Latency the genre's total model seconds; the headline
  (generation, prompt 0.2) first, the other modes and prompts after; a genre measured under different budgets or
  stops is refused (:func:`check_budgets`);
* :func:`quiz_figure` (``quiz.png``): score against seconds per question, one point per model, one panel per
  category in the tables' order, titled with a packaged Japanese font, axes from 0 (matplotlib, Agg backend).
"""

from __future__ import annotations

import io
import json
import math
import socket
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kensa.errors import DataError, KensaError
from kensa.paths import write_atomic
from kensa.report.results import format_table, markdown_table
from kensa.run.latency import Latency, latency_of
from kensa.tasks.quiz.prompts import FORM_NAMES
from kensa.tasks.quiz.sets import GENRE_SLUGS
from kensa.tasks.quiz.tasks import MODES

CACHED_NOTE = ("answers the response cache served have no latency: such rows say 'cached', and their latency "
               "covers only the answers the model computed; run with --response-cache off to time every answer")


def quiz_record(variant: Any, run: Any, info: Mapping[str, Any], environment: Mapping[str, str],
                model: str, left_out: Sequence[str] = (), *, model_slug: str = "", machine: str = "") -> dict[str, Any]:
    """What one quiz test contributes: model, environment (with the machine), n, score at full precision, the
    format-failure rates, latency (total and per question), the budget and stops."""
    task, template = variant.task, variant.template
    ref = task.quiz
    sample = run.samples[0] if run.samples else {}
    latency = latency_of(run.samples, task.kind)
    return {
        "model": model, "model_slug": model_slug or model, "task_id": variant.task_id, "set": ref.qset.slug,
        "set_label": ref.qset.label, "category": ref.category, "mode": ref.mode, "prompt_version": template.version,
        "prompt_name": template.name,
        "form": FORM_NAMES.get(getattr(template, "form", ""), "") if ref.mode == "loglik" else "",
        "n": run.n, "score": run.metrics.get("acc"), "unparseable_rate": run.metrics.get("unparseable_rate"),
        "late_answer_rate": run.metrics.get("late_answer_rate"),
        "latency": latency.to_dict(), "environment": {**environment, "machine": machine or socket.gethostname()},
        "until": sample.get("until"), "max_new_tokens": sample.get("max_new_tokens"),
        "load_seconds": info.get("load_seconds"), "drawn": ref.qset.drawn, "left_out": list(left_out),
    }


# -- the records a session leaves, and the report across sessions and machines ----------------------------------

RECORDS_FILE = "quiz.jsonl"
"""``<results-dir>/<model slug>/quiz.jsonl``: one session's quiz records of one model. A session rewrites only
its own models' files, so one results folder (or many) collects every model ever run into it."""


class QuizReportError(KensaError):
    """Records that cannot be put in one table (a genre measured under different budgets or stops)."""


def write_records(results_dir: Path, records: Sequence[Mapping[str, Any]]) -> list[Path]:
    by_model: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        by_model[r["model_slug"]].append(r)
    out = []
    for slug, rows in sorted(by_model.items()):
        rows = sorted(rows, key=lambda r: r["task_id"])
        text = "".join(json.dumps(dict(r), ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
        out.append(write_atomic(results_dir / slug / RECORDS_FILE, text))
    return out


def read_records(folders: Sequence[Path]) -> list[dict[str, Any]]:
    """Every quiz record under the results folders (``<folder>/<model>/quiz.jsonl``), each with its folder."""
    records = []
    for folder in folders:
        files = sorted(folder.glob(f"*/{RECORDS_FILE}"))
        if not files:
            raise DataError(str(folder), None, f"no quiz records (<model>/{RECORDS_FILE}) in it: run the quiz suite "
                                               "with --results-dir pointing there first")
        for path in files:
            for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(str(path), lineno, f"malformed JSON: {exc.msg}") from None
                missing = [k for k in ("model", "set", "category", "mode", "prompt_version", "n", "score", "latency",
                                       "environment") if k not in record]
                if missing:
                    raise DataError(str(path), lineno, f"not a quiz record: no {', '.join(missing)}")
                records.append({**record, "folder": str(folder)})
    return records


def check_budgets(records: Sequence[Mapping[str, Any]]) -> None:
    """Refuse a genre measured under different budgets or stops (latency and scores would not compare)."""
    groups: dict[tuple[str, str, str, str], dict[tuple[Any, ...], set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in records:
        budget = (r.get("max_new_tokens"), tuple(r.get("until") or ()))
        groups[(r["set"], r["category"], r["mode"], r["prompt_version"])][budget].add(
            f"{r['model']} in {r.get('folder', 'this session')}")
    problems = []
    for (qset, category, mode, version), budgets in sorted(groups.items()):
        if len(budgets) > 1:
            seen = "; ".join(f"at most {b[0]} new tokens, stops {list(b[1])}: {', '.join(sorted(who))}"
                             for b, who in sorted(budgets.items(), key=str))
            problems.append(f"{qset} · {category} · {MODES[mode]} · prompt {version} was measured under different "
                            f"budgets or stops ({seen})")
    if problems:
        raise QuizReportError("kensa quiz report: refused, these would mix: " + " | ".join(problems))


def environment_text(env: Mapping[str, str]) -> str:
    parts = [env.get("machine") or "unknown machine", env.get("hardware", "unknown"), env.get("dtype", "?"),
             env.get("backend", "?"), f"batch {env.get('batch_size') or '?'}"]
    if env.get("quantization") not in (None, "", "none"):
        parts.insert(3, env["quantization"])
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


TABLE_COLUMNS = ["model", "set", "category", "mode", "prompt", "n", "score", "unparseable", "late", "s/q", "p50", "p95",
                 "tok/s", "char/s", "1st tok s", "cached", "latency gate"]


def table_lines(records: Sequence[Mapping[str, Any]], checks: Mapping[tuple[str, str], Any] | None = None) -> list[str]:
    checks = checks or {}
    rows = []
    for r in sorted(records, key=lambda r: (r["set"], r["category"], r["mode"], r["prompt_version"], r["model"])):
        lat = Latency.from_dict(r["latency"])
        check = checks.get((r["model"], r["task_id"]))
        rows.append([r["model"], r["set"], r["category"], r["mode"], r["prompt_version"], str(r["n"]),
                     _score(r["score"]), _rate(r["unparseable_rate"]) if r["mode"] == "gen" else "-",
                     _rate(r.get("late_answer_rate")) if r["mode"] == "gen" else "-",
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


HEADLINE = ("gen", "0.2")
"""The seed's tables: greedy generation on the evaluation format."""


def category_order(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(set, category) in the tables' order: sets as met, the QMA genres first within a set, then the rest sorted."""
    order = list(GENRE_SLUGS)
    sets = list(dict.fromkeys(r["set"] for r in records))
    pairs = {(r["set"], r["category"]) for r in records}
    return sorted(pairs, key=lambda p: (sets.index(p[0]), order.index(p[1]) if p[1] in order else len(order), p[1]))


def _caption(members: Sequence[Mapping[str, Any]]) -> str:
    first = members[0]
    batches = sorted({str(r["environment"].get("batch_size")) for r in members})
    batch = f"batch size {batches[0]}" if len(batches) == 1 else f"batch sizes {', '.join(batches)} (see Environment)"
    if first["mode"] == "loglik":
        what = f"each choice scored as its {first.get('form') or 'continuation'}"
    else:
        stops = ", ".join(repr(s) for s in first.get("until") or [])
        what = f"greedy, at most {first.get('max_new_tokens')} new tokens, stop at {stops}"
    return f"{what}; {batch}."


def latency_total_cell(lat: Latency) -> str:
    """The genre's total model seconds, with seconds per question beside it (the seed's Latency is the total)."""
    if not lat.timed:
        return f"cached ({lat.cached}/{lat.n})"
    text = f"{lat.total_seconds:.2f} s ({lat.mean_seconds:.4f} s/question)"
    return text + (f"; {lat.cached}/{lat.n} cached, not counted" if lat.cached else "")


def _table(rows: Sequence[Mapping[str, Any]], checks: Mapping[tuple[str, str], Any]) -> list[str]:
    mode = rows[0]["mode"]
    table = []
    for r in sorted(rows, key=lambda r: (-(r["score"] if r["score"] is not None else -1), r["model"])):
        cells = [r["model"], environment_text(r["environment"]), "-" if r["score"] is None else repr(float(r["score"])),
                 latency_total_cell(Latency.from_dict(r["latency"]))]
        if mode == "gen":
            cells += [_rate(r.get("unparseable_rate")), _rate(r.get("late_answer_rate"))]
        if checks:
            cells.append(_check_cell(checks.get((r["model"], r["task_id"]))))
        table.append(cells)
    header = ["Model", "Environment", "Score", "Latency"] + (["Unparseable", "Late answer"] if mode == "gen" else [])
    return [markdown_table(table, header + (["Latency gate"] if checks else [])).rstrip("\n"), ""]


def _section(records: Sequence[Mapping[str, Any]], checks: Mapping[tuple[str, str], Any], level: str) -> list[str]:
    lines = []
    for qset, category in category_order(records):
        rows = [r for r in records if (r["set"], r["category"]) == (qset, category)]
        lines += [f"{level} {category} ({rows[0]['set_label']}, n={rows[0]['n']})", "", *_table(rows, checks)]
    return lines


def quiz_markdown(records: Sequence[Mapping[str, Any]], checks: Mapping[tuple[str, str], Any] | None = None) -> str:
    """The seed's layout: one table per genre (Model | Environment | Score | Latency), sorted by score, the headline
    (generation, prompt 0.2) first and every other mode and prompt after. Refuses mixed budgets
    (:func:`check_budgets`)."""
    checks = checks or {}
    check_budgets(records)
    models = list(dict.fromkeys(r["model"] for r in records))
    machines = sorted({r["environment"].get("machine") or "unknown machine" for r in records})
    lines = ["# kensa quiz: score and latency per genre", "",
             f"Models: {', '.join(models)}. Machines: {', '.join(machines)}.", "",
             "Score: accuracy at full precision (log-likelihood: the best-scoring choice; generation: the answer read "
             "from the start of the first line, an unparseable one counting as wrong, and counted in Unparseable; "
             "Late answer: unparseable answers that named one choice only later; open answer: normalised exact "
             "match). Latency: the genre's total model seconds from the backend (seconds per question beside it), "
             "after one untimed warm-up batch per model; model load is not included; " + CACHED_NOTE + ".", ""]
    notes = sorted({f"{r['set_label']}: {r['drawn']}" for r in records if r.get("drawn")})
    notes += sorted({f"{r['set_label']}: left out {x}" for r in records for x in r.get("left_out", [])})
    lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    head = [r for r in records if (r["mode"], r["prompt_version"]) == HEADLINE]
    rest = [r for r in records if (r["mode"], r["prompt_version"]) != HEADLINE]
    if head:
        lines += [f"## {MODES[HEADLINE[0]]}, prompt {HEADLINE[1]} ({head[0]['prompt_name']})", "", _caption(head), ""]
        lines += _section(head, checks, "###")
    if rest:
        lines += ["## Other modes and prompts", ""]
        for mode, version in sorted({(r["mode"], r["prompt_version"]) for r in rest}):
            group = [r for r in rest if (r["mode"], r["prompt_version"]) == (mode, version)]
            lines += [f"### {MODES[mode]}, prompt {version} ({group[0]['prompt_name']})", "", _caption(group), ""]
            lines += _section(group, checks, "####")
    return "\n".join(lines).rstrip("\n") + "\n"


def headline_group(records: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """The (mode, prompt version) the figure shows: the tables' headline when it ran, else the most tests'."""
    combos = [(r["mode"], r["prompt_version"]) for r in records]
    if HEADLINE in combos:
        return HEADLINE
    return max(set(combos), key=lambda c: (combos.count(c), c))


def quiz_figure(records: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Score against seconds per question (see :func:`draw_figure`), written as a PNG."""
    import matplotlib.pyplot as plt

    fig = draw_figure(records)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, buffer.getvalue())


def draw_figure(records: Sequence[Mapping[str, Any]]) -> Any:
    """One point per model, one panel per (set, category) in the tables' order, titled in the category's own
    script (a packaged Japanese font), the score axis from 0 to 1 and the seconds axis from 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = japanese_font()
    mode, version = headline_group(records)
    chosen = [r for r in records if r["mode"] == mode and r["prompt_version"] == version]
    panels = category_order(chosen)
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    models = list(dict.fromkeys(r["model"] for r in chosen))
    markers = "osD^v<>ph*"
    for ax, (qset, category) in zip(axes.flat, panels):
        top = 0.0
        for i, model in enumerate(models):
            for r in chosen:
                if (r["set"], r["category"], r["model"]) != (qset, category, model):
                    continue
                lat = Latency.from_dict(r["latency"])
                x = lat.mean_seconds if lat.mean_seconds is not None else float("nan")
                top = max(top, x) if math.isfinite(x) else top
                ax.scatter([x], [r["score"]], marker=markers[i % len(markers)], label=model, s=40)
        ax.set_title(f"{category} ({qset})", fontsize=9, fontfamily=font)
        ax.set_xlabel("model seconds per question", fontsize=8)
        ax.set_ylabel("score", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_xlim(0, top * 1.1 if top > 0 else 1)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(models)), fontsize=8, prop={"family": font})
    fig.suptitle(f"kensa quiz: {MODES[mode]}, prompt {version} (cached answers have no time)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return fig


def japanese_font() -> str:
    """The packaged IPAexGothic (matplotlib-fontja registers it with matplotlib on import): category names are
    Japanese, and a user's may be in any script the font covers."""
    import matplotlib_fontja  # noqa: F401 (registers the font)

    return matplotlib_fontja.matplotlib_fontja.FONT_NAME
