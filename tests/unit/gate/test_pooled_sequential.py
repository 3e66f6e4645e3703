"""The pooled row under --gate-sequential: tasks stop early only to FAIL, so every task that does not fail is
pooled over all its documents; the row names every task it leaves out and why. Small seeded counts."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from bench import gate_sim
from kensa.gate import pooled, sequential
from kensa.gate.early import EARLY_PASS_OFF, METHOD, EarlyStop
from kensa.gate.thresholds import Entry, Items, MetricBaseline
from kensa.gate.verdicts import Check, GateSettings, RunRecord, finalize
from tests.helpers import accept_false_alarms as _accept

N = 1000


def _early(base, early_pass):
    keys = list(range(len(base)))
    entry = Entry("t", "t", "1", "0.3", 3, len(base), "sha", "multiple_choice", "today",
                  {"acc": MetricBaseline(sum(base) / len(base), len(base), abs_floor=0.0)})
    record = RunRecord("m", "base", "t", "t", "1", "0.3", 3, None, len(base), "sha", None, "multiple_choice", {},
                       ("acc",), Items([], {}), {}, {})
    stop = EarlyStop(entry, Items(keys, {"acc": list(base)}), record, GateSettings(0.05, 8), early_pass=early_pass)
    return stop, record, keys


def _run(keys, cand, n):
    return SimpleNamespace(item_keys=keys[:n], n=n, clusters=None,
                           items=lambda names: {"values": {"acc": list(cand[:n])}})


def _loop(stop, keys, cand):
    """The run loop of kensa.run in miniature: look after each size until the stop rule says so."""
    for size in stop.sizes:
        run = _run(keys, cand, size)
        if stop(run):
            break
    stop.finish(run)
    return stop


def test_with_early_pass_off_an_identical_model_scores_every_document_and_passes_at_the_last_look():
    base = [1.0 if i % 5 else 0.0 for i in range(N)]
    on, _, keys = _early(base, True)
    assert _loop(on, keys, base).stopped_early  # today's gate: PASS at an early look
    off, record, keys = _early(base, False)
    _loop(off, keys, base)
    assert not off.stopped_early and off.scored == N
    report = off.report()
    assert report["early_pass"] is False and report["look"] == report["looks"] == 10
    assert report["metrics"]["acc"]["decision"] == "pass"
    cand_record = RunRecord(**{**record.__dict__, "items": Items(keys, {"acc": base})})
    row = off.rows(cand_record, [])[0]
    assert row.status == "pass" and EARLY_PASS_OFF in row.message and row.n == N


def test_with_early_pass_off_a_broken_model_still_fails_early():
    base = [1.0 if i % 5 else 0.0 for i in range(N)]
    off, _, keys = _early(base, False)
    _loop(off, keys, [0.0] * N)
    assert off.stopped_early and off.results["acc"].decision == "fail"


def test_the_design_without_early_pass_only_crosses_its_pass_bound_at_the_last_look():
    design = sequential.Design(N, 0.05 / 9, 0.03, early_pass=False)
    cp = design.pass_bounds()
    assert np.isinf(cp[:-1]).all() and np.isfinite(cp[-1])
    assert (design.fail_bounds() == sequential.Design(N, 0.05 / 9, 0.03).fail_bounds()).all()
    zero = np.zeros((1, 10, 2))
    stops = sequential.decide(zero, design)
    assert stops.decision[0] == "pass" and stops.look[0] == 10 and not stops.early[0]


def _seq_row(task, decision="pass", scored=N, n=N, look=10, b=None, c=None):
    details = {"sequential": {"decision": decision, "look": look, "looks": 10, "scored": scored, "n": n,
                              "stopped_early": scored < n}}
    if b is not None:
        details["pool"] = {"b": b, "c": c, "n": n}
    return Check("m", "base", task, "acc", decision, "sequential: ...", n=scored, method=METHOD, details=details)


def test_sequential_rows_scored_in_full_are_pooled_and_every_other_task_is_named_with_its_reason():
    rows = [_seq_row("a", b=60, c=40), _seq_row("b", b=30, c=20),
            _seq_row("c", decision="fail", scored=300, look=3),
            Check("m", "base", "d", "pearson", "pass", n=500, method="permutation", p=0.4),
            Check("m", "base", "e", "acc", "error", "the entry is stale", n=200)]
    (row,) = pooled.pooled_rows(rows)
    expected = pooled.stouffer([60, 30], [40, 20], [N, N])
    assert row.p == pytest.approx(expected.p) and row.details["pooled"] == {"a": "acc", "b": "acc"}
    left = row.details["left_out"]
    assert set(left) == {"c", "d", "e"}
    assert left["c"] == "stopped early at look 3/10 (fail): 300 of 1000 docs scored"
    assert "methods: permutation" in left["d"] and "error: the entry is stale" in left["e"]
    assert "left out: c (stopped early at look 3/10" in row.message


def test_fixed_rows_left_out_of_the_pool_are_named_too():
    rows = [Check("m", "base", t, "acc", "pass", n=N, method="mcnemar-exact", p=0.3, details={"b": 5, "c": 4})
            for t in ("x", "y")]
    rows.append(Check("m", "base", "jsquad", "exact_match", "pass", n=N, method="permutation", p=0.5))
    (row,) = pooled.pooled_rows(rows)
    assert row.details["tasks"] == 2 and list(row.details["left_out"]) == ["jsquad"]
    assert "left out: jsquad (no 0/1 metric tested by McNemar" in row.message


def test_attach_counts_copies_the_full_sample_mcnemar_counts_to_the_sequential_row():
    seq = [_seq_row("a")]
    fixed = [Check("m", "base", "a", "acc", "pass", n=N, method="mcnemar-exact", p=0.2, details={"b": 7, "c": 3})]
    pooled.attach_counts(seq, fixed)
    assert pooled.pool_counts(seq[0]) == (7, 3, N)
    short = [_seq_row("a", scored=100)]  # a prefix is never paired with full counts
    pooled.attach_counts(short, fixed)
    assert pooled.pool_counts(short[0]) is None


def test_session_false_alarms_stay_at_alpha_and_power_matches_the_fixed_pooled_design():
    null = gate_sim.pooled_sequential_runs(3000, [0.0] * len(gate_sim.SUITE), np.random.default_rng(21))
    assert _accept(null["seq_pooled"].sum(), 3000, gate_sim.ALPHA)
    assert null["seq_pooled_scored"].mean() >= 0.99  # the price: an unchanged model scores (nearly) everything
    drop = gate_sim.pooled_sequential_runs(2000, [0.005] * len(gate_sim.SUITE), np.random.default_rng(22))
    assert drop["seq_pooled"].mean() >= drop["fixed_pooled"].mean() - 0.04
    assert drop["seq_pooled"].mean() >= drop["seq"].mean() + 0.08  # the pooled row's gain over today's gate


def test_the_simulated_verdict_is_the_engines_verdict_on_the_same_counts():
    m = len(gate_sim.SUITE)
    r = gate_sim.pooled_sequential_runs(40, [0.005] * m, np.random.default_rng(23))
    for s in range(40):
        rows = []
        for h, task in enumerate(gate_sim.SUITE):
            if r["task_fail"][s, h]:
                rows.append(_seq_row(task.name, "fail", scored=int(r["scored"][s, h]), n=task.n, look=1))
            else:
                rows.append(_seq_row(task.name, scored=task.n, n=task.n, b=int(r["b"][s, h]), c=int(r["c"][s, h])))
        rows += pooled.pooled_rows(rows)
        final = finalize(rows, gate_sim.ALPHA, m + 1)
        assert any(row.failed for row in final) == bool(r["seq_pooled"][s]), s
    assert 0 < r["seq_pooled"].sum() < 40  # both verdicts occur


def test_margins_mean_nothing_with_the_pooled_row():
    from kensa.cli.options import OptionError, parse_gate, parse_models

    with pytest.raises(OptionError, match="--gate-margin: means nothing with --gate-pooled"):
        parse_gate(parse_models(["tiny"], []), baselines=(), mode="on", directory="t", update=False,
                   allow_lower=False, alpha=0.05, accept_env_change=False, base="none", sequential=True,
                   margins="acc=0.02", pooled=True)


def test_a_scored_task_without_gate_rows_is_named_too():
    rows = [_seq_row("a", b=6, c=4), _seq_row("b", b=3, c=2)]
    (row,) = pooled.pooled_rows(rows, [("m", "a"), ("m", "b"), ("m", "crashed"), ("other", "x")])
    assert list(row.details["left_out"]) == ["crashed"] and "left out: crashed (no gate rows" in row.message
