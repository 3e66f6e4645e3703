"""The session's report, written on the controller once the gate has decided.

* ``<results-dir>/<model>/results.json`` in the harness's shape, with the gate rows under ``kensa.gate``;
* ``<results-dir>/summary.md``: the headline, the table and its notes, ready for a pull-request comment;
* the same table in the terminal, then model-against-model deltas when several models ran.

Everything is formatted by ``kensa.report``; this module only decides what goes where.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from .gate import SESSION_KEY
from .kensa_plugin import CONFIG_KEY


def _ungated_rows(summaries: list[dict[str, Any]], status: str) -> list[Any]:
    from kensa.gate.verdicts import Check

    return [Check(s["model"], s["baseline"], s["task_id"], m, status, n=s["n"], score=s["metrics"][m],
                  stderr=s["metrics"].get(f"{m}_stderr")) for s in summaries for m in s["gated"]]


REPORTED = "reported (not gated)"


def _reported_rows(summaries: list[dict[str, Any]]) -> list[Any]:
    """One row per metric a test reports beside its gated ones (termination, copies, ...), so the table
    shows every metric of every check with its verdict."""
    from kensa.gate.verdicts import Check

    return [Check(s["model"], s["baseline"], s["task_id"], m, REPORTED, n=s["n"], score=v,
                  stderr=s["metrics"].get(f"{m}_stderr"))
            for s in summaries for m, v in s["metrics"].items()
            if m not in s["gated"] and not m.endswith("_stderr")]


def _pairwise(summaries: list[dict[str, Any]], models: list[str]) -> tuple[list[Any], list[str]]:
    """Each later model against the first, task by task, on the same documents."""
    from kensa.gate.verdicts import RunRecord, compare_models

    if len(models) < 2:
        return [], []
    by_key = {(s["model"], s["task_id"]): RunRecord.from_summary(s) for s in summaries}
    pairs, notes = [], []
    for task_id in sorted({s["task_id"] for s in summaries}):
        first = by_key.get((models[0], task_id))
        for other in models[1:]:
            b = by_key.get((other, task_id))
            if first is None or b is None:
                continue
            try:
                pairs += compare_models(first, b)
            except ValueError as exc:
                notes.append(str(exc))
    return pairs, notes


REPORT_KEY = pytest.StashKey[dict]()


@pytest.hookimpl(trylast=True)  # after the gate's own sessionfinish has finalized its rows
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write results.json and summary.md; a write that fails (a full disk) fails the session, and the
    files already there are left as they were."""
    config = session.config
    if hasattr(config, "workerinput") or SESSION_KEY not in config.stash:
        return
    from kensa.errors import WriteError
    from kensa.report.results import (
        averages,
        gate_headline,
        harness_results,
        write_results,
        write_summary,
    )
    from kensa.report.summary_md import summary_markdown

    gate_session = config.stash[SESSION_KEY]
    rc = config.stash[CONFIG_KEY]
    changed = config.pluginmanager.get_plugin("kensa-changed-snapshots")
    snapshots = list(changed.files) if changed is not None else []
    if not gate_session.summaries and not gate_session.rows and not snapshots:
        return
    gate = rc.gate
    rows = list(gate_session.rows)
    if not gate.enabled:
        rows = _ungated_rows(gate_session.summaries, "not gated")
    else:
        seen = {(r.model, r.task_id) for r in rows}
        rows += _ungated_rows([s for s in gate_session.summaries if (s["model"], s["task_id"]) not in seen],
                              "not compared (test failed)")
    partial = None
    if session.exitstatus == pytest.ExitCode.INTERRUPTED or session.shouldstop:
        reason = ("interrupted (Ctrl-C)" if session.exitstatus == pytest.ExitCode.INTERRUPTED
                  else "stopped early (-x or --maxfail)")
        partial = {"reason": reason, "scored_tests": len(gate_session.summaries),
                   "collected_tests": session.testscollected}
    headline = gate_headline(rows, gate, partial)
    if not gate_session.summaries and not gate_session.rows:
        headline = f"kensa: no model was scored; {len(snapshots)} snapshot file(s) changed"
    # Reported beside the gated metrics (termination, copies, ...): in the table, not in results.json's gate.
    gate_rows, rows = rows, rows + _reported_rows(gate_session.summaries)
    pairs, pair_notes = _pairwise(gate_session.summaries, [m.name for m in rc.models])
    notes = gate_session.notes + pair_notes
    # in --model order, whatever order the workers finished in
    scored = {s["model"] for s in gate_session.summaries}
    average_lines = [f"{model}: {line}" for model in [m.name for m in rc.models if m.name in scored]
                     for line in averages([s for s in gate_session.summaries if s["model"] == model])]
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for summary in gate_session.summaries:
        by_model[summary["model_slug"]].append(summary)
    written = []
    try:
        for slug, runs in sorted(by_model.items()):
            runs.sort(key=lambda r: r["task_id"])
            model = runs[0]["model"]
            doc = harness_results(model, runs, model_args=runs[0]["model_args"], model_info=runs[0]["model_info"],
                                  run_config=rc.describe(), gate=[r.to_dict() for r in gate_rows if r.model == model],
                                  partial=partial)
            written.append(write_results(rc.results_dir / slug / "results.json", doc))
        written.append(write_summary(rc.results_dir / "summary.md",
                                     summary_markdown(rows, headline, average_lines + notes, pairs,
                                                      snapshots=snapshots, root=config.rootpath,
                                                      here=rc.results_dir)))
    except WriteError as exc:
        notes.append(f"kensa: {exc}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    config.stash[REPORT_KEY] = dict(rows=rows, headline=headline, pairs=pairs, notes=notes,
                                    average_lines=average_lines, written=written)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or REPORT_KEY not in config.stash:
        return
    from kensa.report.results import PAIRWISE_COLUMNS, format_table, gate_lines, pairwise_rows

    report = config.stash[REPORT_KEY]
    rows, pairs = report["rows"], report["pairs"]
    tr = terminalreporter
    tr.section("kensa scores")
    tr.write_line(report["headline"], bold=True, red=any(r.failed for r in rows),
                  green=not any(r.failed for r in rows))
    for line in gate_lines(rows):
        tr.write_line(line)
    if pairs:
        tr.write_line("")
        tr.write_line("model against model (paired, two-sided):")
        for line in format_table(pairwise_rows(pairs), PAIRWISE_COLUMNS):
            tr.write_line(line)
    for line in report["average_lines"]:
        tr.write_line(line)
    for note in report["notes"]:
        tr.write_line(note, yellow=True)
    for path in report["written"]:
        tr.write_line(f"{'summary' if path.name == 'summary.md' else 'results'}: {path}")
    gate_session = config.stash[SESSION_KEY]
    if gate_session.written:
        for path in gate_session.written:
            tr.write_line(f"wrote: {path}")
