"""Simulations of the sequential gate and the pooled cross-task test, on kensa.gate's own code.

Per-document paired outcomes are drawn at the suite's real sizes: each document is "baseline right, candidate
wrong" (b) with probability (psi + drop) / 2, the reverse (c) with (psi - drop) / 2, concordant otherwise (psi: the
share of documents the two models disagree on). Counts are drawn per look segment (multinomial), which has the same
joint law as drawing every document. Accuracy does not enter the paired tests, only psi and the drop.

    python -m bench.gate_sim                    # every table, 10,000 sessions each (minutes on 2 cores)
    python -m bench.gate_sim --sessions 2000    # quicker, noisier
    python -m bench.gate_sim --only small       # the small-task PASS rule: candidates compared at N = 100-400
    python -m bench.gate_sim --only corpus --corpus-sessions 1000 --resamples 200   # corpus metrics, JSQuAD
    python -m bench.gate_sim --only pooled-seq  # the pooled row under --gate-sequential
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from bench import gate_sim_corpus
from kensa.gate import pooled, sequential


@dataclass(frozen=True)
class SimTask:
    name: str
    n: int
    accuracy: float
    psi: float  # share of discordant documents between two close releases


# Sizes: the validation splits (JSTS 1,457; JCoLA 865 in-domain valid); (accuracy, psi) as in the design note.
SUITE = (
    SimTask("JCommonsenseQA", 1119, 0.85, 0.08),
    SimTask("JNLI", 2434, 0.60, 0.15),
    SimTask("MARC-ja", 5654, 0.90, 0.05),
    SimTask("JSQuAD EM", 4442, 0.80, 0.10),
    SimTask("JSTS (0/1)", 1457, 0.70, 0.12),
    SimTask("JCoLA", 865, 0.75, 0.12),
    SimTask("XWinograd", 959, 0.70, 0.10),
    SimTask("MGSM", 250, 0.50, 0.15),
)
ALPHA = 0.05


def draw_counts(sessions: int, sizes: Sequence[int], psi: float, drop: float,
                rng: np.random.Generator) -> np.ndarray:
    """Cumulative (b, c) at each look: shape (sessions, looks, 2)."""
    pb, pc = (psi + drop) / 2, (psi - drop) / 2
    if pc < 0 or pb > 1:
        raise ValueError(f"drop {drop} is impossible at discordance {psi}")
    seg = np.diff([0, *sizes])
    inc = np.stack([rng.multinomial(k, [pb, pc, 1 - pb - pc], size=sessions)[:, :2] for k in seg], axis=1)
    return np.cumsum(inc, axis=1)


def design_for(task: SimTask, alpha: float, looks: int = sequential.DEFAULT_LOOKS) -> sequential.Design:
    """The gate's default design: margin = the full task's MDE at the task's discordance (the design's psi)."""
    margin = sequential.default_margin(task.n, task.psi, alpha)
    return sequential.Design(task.n, alpha, margin, looks=looks)


def fixed_p(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Exact one-sided McNemar p (today's fixed-sample gate); 1 where there is no discordant pair."""
    return stats.binom.sf(b - 1, b + c, 0.5)


@dataclass
class TaskRun:
    fail: np.ndarray  # sequential FAIL per session
    fixed_fail: np.ndarray  # fixed-sample exact McNemar at the same level
    share: np.ndarray  # documents scored / N
    early_pass: np.ndarray


def run_task(task: SimTask, design: sequential.Design, sessions: int, drop: float, psi: float,
             rng: np.random.Generator) -> TaskRun:
    counts = draw_counts(sessions, design.sizes, psi, drop, rng)
    stops = sequential.decide(counts, design)
    b, c = counts[:, -1, 0], counts[:, -1, 1]
    return TaskRun(stops.decision == "fail", fixed_p(b, c) <= design.alpha, stops.scored / task.n,
                   (stops.decision == "pass") & stops.early)


def per_task_table(sessions: int, seed: int, out: list[str]) -> None:
    m = len(SUITE)
    level = ALPHA / m
    rng = np.random.default_rng(seed)
    out.append(f"Per task, alpha/{m} = {level:.5f} each, K = {sequential.DEFAULT_LOOKS} looks, {sessions:,} runs "
               "per cell, seed " + str(seed))
    out.append("| task | N | psi | margin (pt) | false fails seq / fixed | power at MDE seq / fixed | "
               "early PASS at margin | docs scored, no change | docs scored, 10 pt worse |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for task in SUITE:
        design = design_for(task, level)
        null = run_task(task, design, sessions, 0.0, task.psi, rng)
        at_mde = run_task(task, design, sessions, design.margin, task.psi, rng)
        worse = run_task(task, design, sessions, 0.10, task.psi + 0.10, rng)
        out.append(f"| {task.name} | {task.n:,} | {task.psi:.0%} | {100 * design.margin:.2f} | "
                   f"{null.fail.mean():.3%} / {null.fixed_fail.mean():.3%} | "
                   f"{at_mde.fail.mean():.1%} / {at_mde.fixed_fail.mean():.1%} | {at_mde.early_pass.mean():.1%} | "
                   f"{null.share.mean():.1%} | {worse.share.mean():.1%} |")


def session_runs(sessions: int, drop: float, rng: np.random.Generator, alpha_tasks: float) -> dict[str, np.ndarray]:
    """Every task of SUITE once per session, sequentially and fixed, at a uniform drop."""
    fails, fixed_p_values, scored, b_full, c_full = [], [], [], [], []
    for task in SUITE:
        design = design_for(task, alpha_tasks)
        counts = draw_counts(sessions, design.sizes, task.psi, drop, rng)
        stops = sequential.decide(counts, design)
        fails.append(stops.decision == "fail")
        scored.append(stops.scored)
        b_full.append(counts[:, -1, 0])
        c_full.append(counts[:, -1, 1])
        fixed_p_values.append(fixed_p(counts[:, -1, 0], counts[:, -1, 1]))
    return {"seq_fail": np.stack(fails, 1), "scored": np.stack(scored, 1), "p": np.stack(fixed_p_values, 1),
            "b": np.stack(b_full, 1), "c": np.stack(c_full, 1)}


def session_table(sessions: int, seed: int, out: list[str]) -> None:
    rng = np.random.default_rng(seed)
    n_total = sum(t.n for t in SUITE)
    out.append(f"\nEight-task session, alpha = {ALPHA} family-wise, {sessions:,} sessions per column, seed {seed}")
    out.append("| uniform drop | P(fail) sequential | P(fail) fixed Holm | docs scored, sequential |")
    out.append("|---|---:|---:|---:|")
    for drop in (0.0, 0.005, 0.01, 0.02):
        r = session_runs(sessions, drop, rng, ALPHA / len(SUITE))
        seq = r["seq_fail"].any(axis=1).mean()
        holm = pooled.any_rejected(r["p"], ALPHA).mean()
        share = r["scored"].sum(axis=1).mean() / n_total
        out.append(f"| {100 * drop:g} pt | {seq:.2%} | {holm:.2%} | {share:.1%} |")


def pooled_table(sessions: int, seed: int, out: list[str]) -> None:
    """Fixed-sample: Holm over the 8 tasks alone, against Holm over the 8 tasks plus the pooled row."""
    rng = np.random.default_rng(seed)
    n = np.array([t.n for t in SUITE])
    out.append(f"\nPooled test, fixed sample, alpha = {ALPHA} family-wise, {sessions:,} sessions per column, "
               f"seed {seed}; pooled MDE at alpha/{len(SUITE) + 1}: "
               f"{100 * pooled.minimum_uniform_drop(n, [t.psi for t in SUITE], ALPHA / (len(SUITE) + 1)):.2f} pt")
    out.append("| true change | Holm, 8 tasks | Holm, 8 tasks + pooled Stouffer | pooled row alone rejects |")
    out.append("|---|---:|---:|---:|")
    cases: list[tuple[str, np.ndarray]] = [(f"uniform {x:g} pt", np.full(len(SUITE), x / 100))
                                           for x in (0, 0.25, 0.5, 0.75, 1)]
    cases.append(("JCommonsenseQA only, 4 pt", np.array([0.04] + [0.0] * (len(SUITE) - 1))))
    cases.append(("MGSM only, 10 pt", np.array([0.0] * (len(SUITE) - 1) + [0.10])))
    for label, drops in cases:
        b = np.empty((sessions, len(SUITE)))
        c = np.empty_like(b)
        for h, (task, d) in enumerate(zip(SUITE, drops)):
            psi = task.psi + max(d - task.psi, 0.0)
            counts = draw_counts(sessions, [task.n], psi, d, rng)
            b[:, h], c[:, h] = counts[:, 0, 0], counts[:, 0, 1]
        p_tasks = fixed_p(b, c)
        p_pool = stats.norm.sf(pooled.stouffer_z(b, c, np.broadcast_to(n, b.shape)))
        with_pool = pooled.holm_reject(np.column_stack([p_tasks, p_pool]), ALPHA)
        out.append(f"| {label} | {pooled.any_rejected(p_tasks, ALPHA).mean():.2%} | {with_pool.any(axis=1).mean():.2%}"
                   f" | {with_pool[:, -1].mean():.2%} |")


# -- small tasks: which extra condition an early PASS needs under SMALL_N documents -------------------------------

SmallRule = Callable[[np.ndarray, np.ndarray, np.ndarray, sequential.Design, np.ndarray], np.ndarray]


def _no_rule(b, c, n, design, cp):
    return np.ones(np.broadcast(b, cp).shape, dtype=bool)


def _clopper_pearson(b, c, n, design, cp):
    return sequential.exact_drop_bound(b, c, n, stats.norm.sf(cp)) < design.margin


def _tango(b, c, n, design, cp):
    return sequential.tango_z(b, c, n, design.margin) >= cp


def _twenty_pairs(b, c, n, design, cp):
    return b + c >= 20


SMALL_RULES: dict[str, tuple[SmallRule, bool]] = {
    # name: (extra condition, whether the pseudo-count z_pass must also cross)
    "Wald SE only (no small-N rule)": (_no_rule, True),
    "Clopper-Pearson (before)": (_clopper_pearson, True),
    "Tango score (the engine's)": (_tango, True),
    "Tango score alone": (_tango, False),
    "b + c >= 20": (_twenty_pairs, True),
}
SMALL_SIZES = (100, 250, 400)
SMALL_PSI = (0.05, 0.10, 0.15)


def decide_small(counts: np.ndarray, design: sequential.Design, rule: SmallRule, with_z_pass: bool = True,
                 ) -> sequential.Stops:
    """``sequential.decide`` with another small-task PASS condition (same FAIL test, bounds and last look)."""
    sizes = design.sizes
    n = np.asarray(sizes, dtype=float)[None, :]
    b, c = counts[..., 0].astype(float), counts[..., 1].astype(float)
    cf, cp = design.fail_bounds(sizes), design.pass_bounds(sizes)
    fail = sequential.z_fail(b - c, b + c) >= cf[None, :]
    pass_ = rule(b, c, n, design, cp[None, :])
    if with_z_pass:
        pass_ = pass_ & (sequential.z_pass(b - c, b + c, n, design.margin) >= cp[None, :])
    pass_[:, -1] = True
    first = np.argmax(fail | pass_, axis=1)
    rows = np.arange(counts.shape[0])
    return sequential.Stops(np.where(fail[rows, first], "fail", "pass"), first + 1, np.asarray(sizes)[first],
                            first < len(sizes) - 1)


def identical_copy_look(design: sequential.Design, rule: SmallRule, with_z_pass: bool) -> int:
    """The look at which a copy with no discordant document stops (10 = it runs in full)."""
    counts = np.zeros((1, len(design.sizes), 2))
    return int(decide_small(counts, design, rule, with_z_pass).look[0])


def small_cases() -> list[tuple[int, float, float]]:
    """(N, true psi, psi the margin is planned at): the margin at the true psi, and the gate's default margin
    (planning psi 10 %) when the true psi is far from it."""
    cases = [(n, psi, psi) for n in SMALL_SIZES for psi in SMALL_PSI]
    return cases + [(n, psi, 0.10) for n in SMALL_SIZES for psi in (0.02, 0.25)]


def small_table(sessions: int, seed: int, out: list[str]) -> None:
    rng = np.random.default_rng(seed)
    level = ALPHA / len(SUITE)
    a = sequential.ALPHA_PASS
    out.append(f"\nSmall tasks, alpha/{len(SUITE)} = {level:.5f}, K = {sequential.DEFAULT_LOOKS} looks, margin = MDE "
               f"at the planning psi, {sessions:,} runs per cell (the same draws for every rule), seed {seed}; "
               f"early-PASS limit alpha_pass + 3 SE = {a + 3 * np.sqrt(a * (1 - a) / sessions):.2%}, false-fail "
               f"limit {stats.binom.ppf(0.999, sessions, level) / sessions:.2%}")
    out.append("| N | psi (planned) | margin (pt) | rule | early PASS at margin | false fails seq / fixed | "
               "power at MDE seq / fixed | docs scored, no change | identical copy stops at look |")
    out.append("|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for n, psi, planned in small_cases():
        design = design_for(SimTask(f"N={n}", n, 0.5, planned), level)
        null = draw_counts(sessions, design.sizes, psi, 0.0, rng)
        # A drop above psi needs that much discordance: psi = margin there (N = 100 at psi 5 %).
        at_mde = draw_counts(sessions, design.sizes, max(psi, design.margin), design.margin, rng)
        fixed_null = (fixed_p(null[:, -1, 0], null[:, -1, 1]) <= level).mean()
        fixed_power = (fixed_p(at_mde[:, -1, 0], at_mde[:, -1, 1]) <= level).mean()
        for name, (rule, with_z) in SMALL_RULES.items():
            s0 = decide_small(null, design, rule, with_z)
            s1 = decide_small(at_mde, design, rule, with_z)
            out.append(f"| {n} | {psi:.0%} ({planned:.0%}) | {100 * design.margin:.2f} | {name} | "
                       f"{((s1.decision == 'pass') & s1.early).mean():.1%} | "
                       f"{(s0.decision == 'fail').mean():.2%} / {fixed_null:.2%} | "
                       f"{(s1.decision == 'fail').mean():.1%} / {fixed_power:.1%} | "
                       f"{(s0.scored / n).mean():.1%} | {identical_copy_look(design, rule, with_z)} |")


def pooled_sequential_runs(sessions: int, drops: Sequence[float], rng: np.random.Generator,
                           alpha: float = ALPHA) -> dict[str, np.ndarray]:
    """One session per row with the pooled row under --gate-sequential (each task at alpha / (m + 1), stopping
    early only to FAIL; the pooled row over the tasks that did not fail), against the fixed Holm + pooled design
    and today's --gate-sequential without the pooled row, all three on the same simulated documents."""
    m = len(SUITE)
    level = alpha / (m + 1)
    n = np.array([t.n for t in SUITE])
    seq_fail, scored, scored_pass_on, fail_pass_on, b, c = (np.empty((sessions, m)) for _ in range(6))
    for h, (task, d) in enumerate(zip(SUITE, drops)):
        fail_only = replace(design_for(task, level), early_pass=False)
        counts = draw_counts(sessions, fail_only.sizes, task.psi + max(d - task.psi, 0.0), d, rng)
        stops = sequential.decide(counts, fail_only)
        seq_fail[:, h], scored[:, h] = stops.decision == "fail", stops.scored
        pass_on = sequential.decide(counts, design_for(task, alpha / m))
        fail_pass_on[:, h], scored_pass_on[:, h] = pass_on.decision == "fail", pass_on.scored
        b[:, h], c[:, h] = counts[:, -1, 0], counts[:, -1, 1]
    p_pool = stats.norm.sf(pooled.stouffer_z(b, c, np.broadcast_to(n, b.shape)))
    # The pooled row is the only row with a p-value under --gate-sequential; the family's other m rows count as
    # p = 1 (kensa.gate.verdicts.finalize). A task that failed is left out of the real row, but the session has
    # failed then whatever the row says: pooling all tasks' counts here gives the same verdict.
    pooled_rejects = pooled.any_rejected(np.column_stack([p_pool, np.ones((sessions, m))]), alpha)
    fixed = pooled.holm_reject(np.column_stack([fixed_p(b, c), p_pool]), alpha).any(axis=1)
    return {"seq_pooled": seq_fail.any(axis=1) | pooled_rejects, "seq_pooled_scored": scored.sum(axis=1) / n.sum(),
            "pooled_row": pooled_rejects & ~seq_fail.any(axis=1), "fixed_pooled": fixed,
            "seq": fail_pass_on.any(axis=1), "seq_scored": scored_pass_on.sum(axis=1) / n.sum(),
            "task_fail": seq_fail.astype(bool), "scored": scored, "b": b, "c": c}


def pooled_sequential_table(sessions: int, seed: int, out: list[str]) -> None:
    """--gate-sequential --gate-pooled: tasks stop early only to FAIL; against fixed Holm + pooled."""
    rng = np.random.default_rng(seed)
    m = len(SUITE)
    out.append(f"\nPooled row under --gate-sequential (tasks at alpha/{m + 1}, early stop only to FAIL), alpha = "
               f"{ALPHA} family-wise, {sessions:,} sessions per row, seed {seed}; each cell P(session fails) / "
               "share of documents scored")
    out.append("| true change | sequential + pooled | of which the pooled row alone | fixed Holm + pooled (all docs) | "
               "sequential, no pooled row (early PASS on) |")
    out.append("|---|---:|---:|---:|---:|")
    cases: list[tuple[str, list[float]]] = [(f"uniform {x:g} pt", [x / 100] * m) for x in (0, 0.5, 1, 2)]
    cases += [("JCommonsenseQA only, 4 pt", [0.04] + [0.0] * (m - 1)), ("MGSM only, 10 pt", [0.0] * (m - 1) + [0.10])]
    for label, drops in cases:
        r = pooled_sequential_runs(sessions, drops, rng)
        out.append(f"| {label} | {r['seq_pooled'].mean():.2%} / {r['seq_pooled_scored'].mean():.1%} | "
                   f"{r['pooled_row'].mean():.2%} | {r['fixed_pooled'].mean():.2%} / 100% | "
                   f"{r['seq'].mean():.2%} / {r['seq_scored'].mean():.1%} |")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=20261206)
    ap.add_argument("--only", choices=("tasks", "session", "pooled", "small", "corpus", "pooled-seq"), default=None)
    ap.add_argument("--corpus-sessions", type=int, default=1000,
                    help="sessions per cell for corpus metrics (a paired bootstrap at each look: costly)")
    ap.add_argument("--resamples", type=int, default=200, help="bootstrap resamples per look in the corpus part")
    args = ap.parse_args(argv)
    out: list[str] = []
    start = time.perf_counter()
    if args.only in (None, "tasks"):
        per_task_table(args.sessions, args.seed, out)
    if args.only in (None, "session"):
        session_table(args.sessions, args.seed + 1, out)
    if args.only in (None, "pooled"):
        pooled_table(args.sessions, args.seed + 2, out)
    if args.only in (None, "small"):
        small_table(args.sessions, args.seed + 3, out)
    if args.only in (None, "corpus"):
        gate_sim_corpus.corpus_table(args.corpus_sessions, args.seed + 3, ALPHA / len(SUITE), args.resamples, out)
        gate_sim_corpus.cluster_table(args.sessions, args.seed + 4, ALPHA / len(SUITE), out)
    if args.only in (None, "pooled-seq"):
        pooled_sequential_table(args.sessions, args.seed + 3, out)
    out.append(f"\n({time.perf_counter() - start:.1f} s)")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
