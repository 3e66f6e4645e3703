"""Simulations of the sequential gate on corpus metrics (paired bootstrap) and clustered documents (sandwich SE).

Each simulated session draws a baseline and a candidate at a task's real size, then runs the engine's own code:
``kensa.gate.sequential_wald.corpus_look`` at each look until ``run_looks`` decides (corpus metrics), or
``cluster_look`` (JSQuAD). The fixed comparator is the fixed-sample test on all N documents with the same standard
error at level alpha (z = D_N / SE_N, the bootstrap's or the sandwich's, without the floor).

* JSTS (Pearson r): gold uniform on 0, 0.2, ..., 5; the baseline predicts gold + N(0, 1) rounded to 0.1 (r about
  0.83); the candidate redraws a share psi of the predictions with noise sigma_c, set so the expected r drops by
  the wanted amount (sigma_c = 1 for no change).
* JCoLA (MCC), MARC-ja (macro-F1), JNLI (balanced accuracy): gold labels with the given class shares; a prediction is
  right with probability acc, else another label at random; the candidate redraws a share psi of the predictions
  with accuracy acc_c, set (on a 400,000-document draw) so the metric drops by the wanted amount.
* JSQuAD (exact match, clusters): paragraphs of 4 or 5 questions; a share q of paragraphs changes, and in a changed
  paragraph each question flips with probability f (psi = q f), all in the paragraph's one direction (worse with
  probability (1 + drop / psi) / 2): the drops of one paragraph are correlated, as a new model's answers on one
  context are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sys

import numpy as np
from scipy import stats
from scipy.optimize import brentq

from kensa.gate import corpus_batch, sequential, sequential_wald

PLANNING_DISCORDANCE = 0.10


@dataclass(frozen=True)
class CorpusTask:
    name: str
    metric: str
    n: int
    psi: float  # share of redrawn predictions between two close releases
    classes: tuple[float, ...] = ()  # gold class shares (classification); empty: JSTS regression
    acc: float = 0.0


CORPUS_SUITE = (
    CorpusTask("JSTS", "pearson", 1457, 0.10),
    CorpusTask("JSTS, 30 % churn", "pearson", 1457, 0.30),
    CorpusTask("JCoLA", "mcc", 865, 0.12, (0.3, 0.7), 0.80),
    CorpusTask("MARC-ja", "macro_f1", 5654, 0.05, (0.15, 0.85), 0.93),
    CorpusTask("JNLI", "balanced_acc", 2434, 0.15, (0.35, 0.15, 0.5), 0.85),
)


def _classes(rng: np.random.Generator, n: int, shares: tuple[float, ...], acc: np.ndarray | float,
             gold: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    k = len(shares)
    g = rng.choice(k, size=n, p=shares) if gold is None else gold
    wrong = (g + rng.integers(1, k, size=n)) % k
    return g, np.where(rng.random(n) < acc, g, wrong)


def draw(task: CorpusTask, param: float, psi: float, rng: np.random.Generator) -> tuple[list, list]:
    """One session's stored rows: ([gold, base pred], [gold, cand pred]) per document. ``param``: the candidate's
    noise SD (JSTS) or accuracy (classification) on its redrawn share ``psi``."""
    redraw = rng.random(task.n) < psi
    if not task.classes:
        g = rng.integers(0, 26, size=task.n) * 0.2
        base = np.round(g + rng.normal(0, 1.0, task.n), 1)
        cand = np.where(redraw, np.round(g + rng.normal(0, param, task.n), 1), base)
    else:
        g, base = _classes(rng, task.n, task.classes, task.acc)
        cand = np.where(redraw, _classes(rng, task.n, task.classes, param, g)[1], base)
    return [[a, b] for a, b in zip(g.tolist(), base.tolist())], [[a, b] for a, b in zip(g.tolist(), cand.tolist())]


def _metric(task: CorpusTask) -> Callable[[np.ndarray, np.ndarray], float]:
    batch = corpus_batch.batch_statistic(task.metric)
    return lambda g, p: float(batch(g, p, np.ones((1, g.size)))[0])


def candidate_param(task: CorpusTask, drop: float, psi: float) -> float:
    """The candidate's parameter that makes the expected metric ``drop`` lower than the baseline's."""
    if not task.classes:
        sd_g2 = float(np.var(np.arange(26) * 0.2))
        r_b = np.sqrt(sd_g2 / (sd_g2 + 1.0 + 0.1**2 / 12))
        r_c = r_b - drop
        return float(np.sqrt(((sd_g2 / r_c**2) - sd_g2 - (1 - psi) * (1.0 + 0.1**2 / 12)) / psi))
    rng = np.random.default_rng(0)
    n = 400_000
    g, base = _classes(rng, n, task.classes, task.acc)
    redraw, u, shift = rng.random(n) < psi, rng.random(n), rng.integers(1, len(task.classes), size=n)
    metric = _metric(task)
    target = metric(g, base) - drop

    def gap(acc_c: float) -> float:
        cand = np.where(redraw, np.where(u < acc_c, g, (g + shift) % len(task.classes)), base)
        return metric(g, cand) - target

    return float(brentq(gap, 0.0, 1.0, xtol=1e-6))


@dataclass
class Sessions:
    fail: np.ndarray
    fixed_fail: np.ndarray
    share: np.ndarray
    early_pass: np.ndarray


def run_sessions(task: CorpusTask, design: sequential.Design, unit_se: float, sessions: int, drop: float,
                 psi: float, rng: np.random.Generator, resamples: int, fixed: bool = True) -> Sessions:
    """``sessions`` paired draws through the engine's looks; ``fixed``: also the fixed-sample bootstrap z test."""
    param = candidate_param(task, drop, psi) if psi > 0 else 0.0
    z_fixed = stats.norm.isf(design.alpha)
    out = Sessions(*(np.zeros(sessions, dtype=bool) for _ in range(2)), np.zeros(sessions), np.zeros(sessions, bool))
    for s in range(sessions):
        base, cand = draw(task, param, psi, rng)
        looks, result = [], None
        for size in design.sizes:
            looks.append(sequential_wald.corpus_look(task.metric, base[:size], cand[:size], direction="higher",
                                                     scale=1.0, unit_se=unit_se, n_total=task.n,
                                                     resamples=resamples, seed=s))
            result = sequential_wald.run_looks(looks, design)
            if result is not None:
                break
        assert result is not None
        out.fail[s], out.share[s] = result.decision == "fail", result.scored / task.n
        out.early_pass[s] = result.decision == "pass" and result.look < result.looks
        if fixed:
            full = looks[-1] if looks[-1].scored == task.n else sequential_wald.corpus_look(
                task.metric, base, cand, direction="higher", scale=1.0, unit_se=unit_se, n_total=task.n,
                resamples=resamples, seed=s)
            out.fixed_fail[s] = full.se_raw > 0 and full.drop / full.se_raw >= z_fixed
    return out


def design_for(task: CorpusTask, alpha: float, rng: np.random.Generator) -> tuple[sequential.Design, float]:
    """The gate's default design for a corpus metric: margin from a baseline's own bootstrap SE (one draw)."""
    base, _ = draw(task, 0.0, 0.0, rng)
    unit_se = sequential_wald.baseline_se(task.metric, base)
    margin = sequential_wald.corpus_margin(unit_se, alpha, task.n, PLANNING_DISCORDANCE)
    return sequential.Design(task.n, alpha, margin), unit_se


def corpus_table(sessions: int, seed: int, alpha: float, resamples: int, out: list[str]) -> None:
    rng = np.random.default_rng(seed)
    out.append(f"Corpus metrics, alpha = {alpha:.5f} per task, K = {sequential.DEFAULT_LOOKS} looks, {sessions:,} "
               f"sessions per cell, {resamples} bootstrap resamples per look, seed {seed}")
    out.append("| task | metric | N | psi | margin | false fails seq / fixed | power at margin seq / fixed | "
               "early PASS at margin | docs scored: identical / no change / 10 pt worse |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for task in CORPUS_SUITE:
        design, unit_se = design_for(task, alpha, rng)
        null = run_sessions(task, design, unit_se, sessions, 0.0, task.psi, rng, resamples)
        at = run_sessions(task, design, unit_se, sessions, design.margin, task.psi, rng, resamples)
        same = run_sessions(task, design, unit_se, max(sessions // 10, 10), 0.0, 0.0, rng, resamples, fixed=False)
        worse = run_sessions(task, design, unit_se, max(sessions // 4, 10), 0.10, task.psi + 0.10, rng, resamples,
                             fixed=False)
        out.append(f"| {task.name} | {task.metric} | {task.n:,} | {task.psi:.0%} | {design.margin:.4f} | "
                   f"{null.fail.mean():.2%} / {null.fixed_fail.mean():.2%} | "
                   f"{at.fail.mean():.1%} / {at.fixed_fail.mean():.1%} | {at.early_pass.mean():.1%} | "
                   f"{same.share.mean():.1%} / {null.share.mean():.1%} / {worse.share.mean():.1%} |")
        print(out[-1], file=sys.stderr, flush=True)  # a long run shows its rows as they come


# -- JSQuAD: clustered per-document outcomes ---------------------------------------------------------

def cluster_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """Paragraph of each question, 4 or 5 questions a paragraph, in the harness's shuffled order."""
    sizes = rng.integers(4, 6, size=n)
    labels = np.repeat(np.arange(n), sizes)[:n]
    return labels[rng.permutation(n)]


def cluster_drops(labels: np.ndarray, q: float, f: float, drop: float, rng: np.random.Generator,
                  sessions: int) -> np.ndarray:
    """Per-question drops (sessions, n) in {-1, 0, 1}: a changed paragraph's flips all go its one way."""
    g = int(labels.max()) + 1
    psi = q * f
    if abs(drop) > psi:
        raise ValueError(f"drop {drop} is impossible at discordance {psi}")
    changed = rng.random((sessions, g)) < q
    worse = rng.random((sessions, g)) < (1 + drop / psi) / 2
    sign = np.where(changed, np.where(worse, 1.0, -1.0), 0.0)
    return sign[:, labels] * (rng.random((sessions, labels.size)) < f)


def run_clustered(labels: np.ndarray, design: sequential.Design, d: np.ndarray, robust: bool = True) -> Sessions:
    """The engine's clustered looks on each row of ``d``; ``robust=False`` treats every question as its own cluster
    (the plain per-document SE, which ignores the paragraphs)."""
    n = labels.size
    own = np.arange(n)
    z_fixed = stats.norm.isf(design.alpha)
    out = Sessions(*(np.zeros(d.shape[0], dtype=bool) for _ in range(2)), np.zeros(d.shape[0]),
                   np.zeros(d.shape[0], bool))
    for s, row in enumerate(d):
        groups = labels if robust else own
        looks, result = [], None
        for size in design.sizes:
            looks.append(sequential_wald.cluster_look(row[:size], groups[:size]))
            result = sequential_wald.run_looks(looks, design)
            if result is not None:
                break
        assert result is not None
        out.fail[s], out.share[s] = result.decision == "fail", result.scored / n
        out.early_pass[s] = result.decision == "pass" and result.look < result.looks
        full = sequential_wald.cluster_look(row, groups)
        out.fixed_fail[s] = full.se_raw > 0 and full.drop / full.se_raw >= z_fixed
    return out


def cluster_table(sessions: int, seed: int, alpha: float, out: list[str], n: int = 4442, q: float = 0.25,
                  f: float = 0.4) -> None:
    rng = np.random.default_rng(seed)
    labels = cluster_labels(n, rng)
    design = sequential.Design(n, alpha, sequential.default_margin(n, PLANNING_DISCORDANCE, alpha))
    out.append(f"\nJSQuAD exact match, N = {n:,} in {labels.max() + 1:,} paragraphs (4-5 questions), psi = "
               f"{q * f:.0%} (a quarter of the paragraphs change, {f:.0%} of their questions flip, one way per "
               f"paragraph), alpha = {alpha:.5f}, margin {100 * design.margin:.2f} pt, {sessions:,} sessions, seed {seed}")
    out.append("| SE | false fails seq / fixed | power at margin seq / fixed | early PASS at margin | "
               "docs scored: identical / no change / 10 pt worse |")
    out.append("|---|---:|---:|---:|---:|")
    for robust in (True, False):
        null = run_clustered(labels, design, cluster_drops(labels, q, f, 0.0, rng, sessions), robust)
        at = run_clustered(labels, design, cluster_drops(labels, q, f, design.margin, rng, sessions), robust)
        same = run_clustered(labels, design, np.zeros((10, n)), robust)
        worse = run_clustered(labels, design, cluster_drops(labels, 0.5, 0.6, 0.10, rng, max(sessions // 4, 10)),
                              robust)
        out.append(f"| {'cluster-robust' if robust else 'plain (ignores paragraphs)'} | "
                   f"{null.fail.mean():.2%} / {null.fixed_fail.mean():.2%} | {at.fail.mean():.1%} / "
                   f"{at.fixed_fail.mean():.1%} | {at.early_pass.mean():.1%} | {same.share.mean():.1%} / "
                   f"{null.share.mean():.1%} / {worse.share.mean():.1%} |")
        print(out[-1], file=sys.stderr, flush=True)
