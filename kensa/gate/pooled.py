"""One pre-declared test of a uniform drop across a session's tasks.

Each task alone may be too small to see a 1-point drop, and Holm makes each stricter; a small drop on every task is
still a real regression. The pooled test combines the per-task paired McNemar score statistics
``z_h = (b_h - c_h) / sqrt(b_h + c_h)`` by Stouffer's weighted Z (Stouffer et al. 1949; weights sqrt(N_h), Whitlock
2005, "Combining probability from independent tests: the weighted Z-method is superior to Fisher's approach",
J Evol Biol 18(5)): ``Z = sum(w_h z_h) / sqrt(sum(w_h^2))``, one-sided p = P(N(0, 1) >= Z). Tasks are scored on
disjoint documents, so the z_h are independent and Z is N(0, 1) under "no drop anywhere".

It is blind to a regression in a single task (a large drop on one of eight tasks is diluted), so it only ever runs
*beside* the per-task tests: it is one more row in the session's Holm family, so the family-wise error stays at
alpha (``bench/gate_sim.py`` measures both claims). ``stratified_mcnemar`` (Mantel-Haenszel with each document
as a stratum, documents weighted equally) is the alternative the simulation compares it with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

POOLED_TASK = "pooled"
POOLED_METRIC = "uniform drop"
METHOD = "stouffer-sqrt-n"


@dataclass(frozen=True)
class PooledTest:
    method: str
    z: float
    p: float
    drop: float
    """Weighted mean of the per-task drops (0-1 scale, positive = worse), weights N_h: an effect size to report."""
    tasks: int
    n: int


def _arrays(b: Sequence[float], c: Sequence[float], n: Sequence[float]) -> tuple[np.ndarray, ...]:
    arrs = tuple(np.asarray(x, dtype=float) for x in (b, c, n))
    if len({a.shape for a in arrs}) != 1 or arrs[0].ndim not in (1, 2):
        raise ValueError(f"b, c and n need one value per task (same shapes), not {[a.shape for a in arrs]}")
    if arrs[0].shape[-1] == 0:
        raise ValueError("a pooled test needs at least one task")
    bb, cc, nn = arrs
    if np.any(nn < 1) or np.any(bb < 0) or np.any(cc < 0) or np.any(bb + cc > nn):
        raise ValueError("each task needs n >= 1 and 0 <= b, c with b + c <= n")
    return arrs


def task_z(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Per-task McNemar score z for a drop; 0 where the task has no discordant pair."""
    d = b + c
    return np.divide(b - c, np.sqrt(d), out=np.zeros(np.broadcast(b, c).shape), where=d > 0)


def stouffer_z(b: Sequence[float], c: Sequence[float], n: Sequence[float]) -> np.ndarray:
    """Weighted Stouffer Z over tasks (last axis), weights sqrt(N_h); vectorised over leading axes."""
    bb, cc, nn = _arrays(b, c, n)
    w = np.sqrt(nn)
    return np.sum(w * task_z(bb, cc), axis=-1) / np.sqrt(np.sum(w**2, axis=-1))


def stratified_mcnemar_z(b: Sequence[float], c: Sequence[float], n: Sequence[float]) -> np.ndarray:
    """Mantel-Haenszel / stratified McNemar: sum(b - c) / sqrt(sum(b + c)) over tasks (last axis); 0 if no pair."""
    bb, cc, _ = _arrays(b, c, n)
    return task_z(bb.sum(axis=-1), cc.sum(axis=-1))


def stouffer(b: Sequence[int], c: Sequence[int], n: Sequence[int]) -> PooledTest:
    """The pooled one-sided test of a uniform drop from each task's discordant counts b, c and documents n."""
    bb, cc, nn = _arrays(b, c, n)
    if bb.ndim != 1:
        raise ValueError("stouffer() takes one session: flat b, c and n")
    z = float(stouffer_z(bb, cc, nn))
    drop = float(np.sum(bb - cc) / np.sum(nn))  # sum_h N_h * D_h / sum_h N_h
    return PooledTest(METHOD, z, float(stats.norm.sf(z)), drop, int(bb.size), int(nn.sum()))


def holm_reject(p: np.ndarray, alpha: float) -> np.ndarray:
    """Vectorised Holm over the last axis: True where H0 is rejected at family-wise level alpha."""
    p = np.asarray(p, dtype=float)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=-1)
    ok = sorted_p <= alpha / (m - np.arange(m))
    # Step-down: reject the j smallest while every one before also met its level.
    run = np.cumprod(ok, axis=-1).astype(bool)
    out = np.zeros_like(run)
    np.put_along_axis(out, order, run, axis=-1)
    return out


def any_rejected(p: np.ndarray, alpha: float) -> np.ndarray:
    """Holm rejects something iff min p <= alpha / m (the release verdict: fail if any row fails)."""
    p = np.asarray(p, dtype=float)
    return np.min(p, axis=-1) <= alpha / p.shape[-1] if p.shape[-1] else np.zeros(p.shape[:-1], bool)


def minimum_uniform_drop(n: Sequence[int], discordance: Sequence[float], alpha: float, power: float = 0.8) -> float:
    """The uniform drop (0-1 scale) the pooled test detects with ``power`` (normal approximation)."""
    nn, psi = np.asarray(n, dtype=float), np.asarray(discordance, dtype=float)
    # E z_h = delta * sqrt(N_h / psi_h); Z's mean is sum(sqrt(N_h) * E z_h) / sqrt(sum N_h).
    slope = float(np.sum(nn / np.sqrt(psi)) / math.sqrt(nn.sum()))
    return (stats.norm.isf(alpha) + stats.norm.isf(1 - power)) / slope


MCNEMAR = "mcnemar-exact"
NOT_POOLED = "not tested"


def attach_counts(rows: Sequence[Any], fixed: Sequence[Any]) -> None:
    """Under ``--gate-sequential``: give each sequential row of a task scored in full its metric's full-sample
    McNemar counts (from the fixed test's rows ``fixed``, same documents), so the pooled row can use it."""
    counts = {c.metric: c for c in fixed if c.method == MCNEMAR and c.n and "b" in c.details}
    for r in rows:
        f = counts.get(r.metric)
        if f is not None and r.method != MCNEMAR and r.n == f.n:
            r.details["pool"] = {"b": f.details["b"], "c": f.details["c"], "n": f.n}


def pool_counts(row: Any) -> tuple[int, int, int] | None:
    """(b, c, n) over every document of the task, or None: a fixed McNemar row, or a sequential row with the
    counts :func:`attach_counts` gave it."""
    if row.method == MCNEMAR and row.n and "b" in row.details:
        return int(row.details["b"]), int(row.details["c"]), int(row.n)
    pool = row.details.get("pool")
    return (int(pool["b"]), int(pool["c"]), int(pool["n"])) if pool else None


def _left_out_reason(rows: Sequence[Any]) -> str:
    """Why a task has no counts to pool, from its rows (never a silent drop)."""
    for r in rows:
        seq = r.details.get("sequential")
        if seq and seq.get("stopped_early"):
            return (f"stopped early at look {seq['look']}/{seq['looks']} ({seq['decision']}): "
                    f"{seq['scored']} of {seq['n']} docs scored")
    for r in rows:
        if r.p is None and r.method is None:
            return f"{r.metric} {r.status}" + (f": {r.message[:80]}" if r.message else "")
    methods = sorted({str(r.method) for r in rows})
    return f"no 0/1 metric tested by McNemar over every document (methods: {', '.join(methods)})"


def pooled_rows(checks: Sequence[Any], scored: Sequence[tuple[str, str]] = ()) -> list[Any]:
    """One row per model: the pooled test over each task's first metric with full-sample McNemar counts
    (``kensa.gate.Check`` rows; the row then joins the session's Holm family). Every task of the model that is not
    pooled is named in the row with the reason, ``scored`` (model, task) pairs without a row too (their test
    failed before the gate compared them); with fewer than two tasks to pool the row is ``not tested``."""
    from kensa.gate.verdicts import Check

    out = []
    for model in dict.fromkeys(c.model for c in checks if c.task_id != POOLED_TASK):
        by_task: dict[str, list[Any]] = {}
        for c in checks:
            if c.model == model and c.task_id != POOLED_TASK:
                by_task.setdefault(c.task_id, []).append(c)
        first: dict[str, tuple[Any, tuple[int, int, int]]] = {}
        left_out = {t: "no gate rows: its test failed before the gate compared it" for m, t in scored
                    if m == model and t not in by_task}
        for task_id in sorted(by_task):
            found = next(((r, n) for r in by_task[task_id] if (n := pool_counts(r)) is not None), None)
            if found is None:
                left_out[task_id] = _left_out_reason(by_task[task_id])
            else:
                first[task_id] = found
        rows = [first[t] for t in sorted(first)]
        tasks = ", ".join(f"{r.task_id} {r.metric}" for r, _ in rows) or "none"
        left_out = dict(sorted(left_out.items()))
        missing = "; ".join(f"{t} ({why})" for t, why in left_out.items())
        details = {"tasks": len(rows), "pooled": {r.task_id: r.metric for r, _ in rows}, "left_out": left_out}
        baseline = by_task[next(iter(by_task))][0].baseline
        if len(rows) < 2:
            out.append(Check(model, baseline, POOLED_TASK, POOLED_METRIC, NOT_POOLED,
                             f"needs two tasks with McNemar counts over every document; pooled: {tasks}"
                             + (f"; left out: {missing}" if missing else ""), details=details))
            continue
        b, c, n = zip(*(counts for _, counts in rows))
        t = stouffer(b, c, n)
        out.append(Check(model, rows[0][0].baseline, POOLED_TASK, POOLED_METRIC, "pass",
                         f"weighted Stouffer (weights sqrt(n)) over {len(rows)} tasks: {tasks}; z {t.z:.2f}"
                         + (f"; left out: {missing}" if missing else ""),
                         n=t.n, drop=t.drop, delta=-t.drop, method=METHOD, p=t.p, abs_floor=0.0,
                         hard_limit=math.inf, details={"z": t.z} | details))
    return out
