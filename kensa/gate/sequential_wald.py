"""The sequential gate for statistics that are not sums of independent per-document values.

Two cases the McNemar-sum design of :mod:`kensa.gate.sequential` cannot take:

* **corpus metrics** (Pearson and Spearman r, MCC, balanced accuracy, macro-F1, BLEU): at each look both models'
  statistic is recomputed on the scored prefix; the drop D_k (0-1 scale, positive = worse) gets its standard error
  SE_k from a paired bootstrap of the prefix (one seeded draw of documents, or of whole clusters, for both models);
* **documents that share a context** (JSQuAD's questions on one paragraph): the mean per-document drop with a
  cluster-robust (sandwich) SE, SE^2 = G / (G - 1) * sum_g (sum_{i in g} (d_i - D))^2 / n^2.

Both feed z_fail = D_k / SE_k to the Lan-DeMets O'Brien-Fleming FAIL bounds and z_pass = (delta - D_k) / SE_k to
the Pocock PASS bounds of the same :class:`kensa.gate.sequential.Design`. For smooth statistics of the prefix the
sequence of such Wald statistics has asymptotically the canonical joint distribution (corr(Z_j, Z_k) =
sqrt(t_j / t_k)) the bounds are computed for (Jennison & Turnbull 2000, ch. 11; Scharfstein, Tsiatis & Robins 1997,
JASA 92:1342), so the same bounds hold; ``bench/gate_sim.py --only corpus`` checks the error rates at real sizes.

**No PASS on a zero or tiny SE.** An identical copy has D = 0 and a bootstrap SE of 0; a prefix with one changed
prediction has a tiny one. As the binary rule adds one pseudo-document each way to the discordant count
((b + c + 2) / (n + 2)), the variance gets two pseudo-changes:

* corpus: SE_k^2 = SE_boot^2 + floor^2, floor = 2 sqrt(2 / (n_k + 2)) s_k, s_k = s_N sqrt(N / n_k) the baseline's own
  bootstrap SE of the metric on all N stored documents scaled to the prefix. A changed prediction moves a
  document's influence on the metric by about two of its standard deviations (for 0/1 outcomes at 50 % exactly the
  binary rule's pseudo-count term), so the floor is the SE of a drop carried by one change each way;
* clustered: the two pseudo-documents (drops +1 and -1, each its own cluster) join the sandwich sum:
  SE_k^2 = (G / (G - 1) sum_g (...)^2 + 2) / (n_k (n_k + 2)).

An SE estimated from few changed documents is noisy itself, and z then has heavier tails than the normal: each
look's bounds are moved to the Student t quantile of the same tail probability, with the Welch-Satterthwaite
degrees of freedom of SE_k^2 (the changed documents, or clusters, less one for the estimated part; the floor is
known). Without this, a JCoLA-sized task passed a model exactly delta worse early 15 % of the time (10 % allowed).
The PASS bound of a corpus metric counts the changed documents by Kish's effective number instead (a Pearson drop
carried by a few far-off predictions has fewer degrees of freedom than it has changed documents).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from kensa.gate import corpus_batch, sequential

RESAMPLES = 500
"""Bootstrap resamples per look (vectorised metrics; looped ones such as BLEU use ``LOOPED_RESAMPLES``)."""
LOOPED_RESAMPLES = 200
SEED = 20240601


@dataclass(frozen=True)
class WaldLook:
    """One look of a Wald-type sequential test: the drop on the 0-1 scale and its (floored) standard error."""

    scored: int
    drop: float
    se: float
    se_raw: float  # bootstrap or sandwich SE before the floor
    floor: float
    changed: int  # documents whose prediction (corpus) or value (clustered) differs between the two models
    base: float  # the baseline's and candidate's statistic on the prefix (metric units)
    cand: float
    df: float = float("inf")
    """Degrees of freedom of the SE: the changed documents (clusters) less one when the estimated SE is used,
    infinite when the floor, a known quantity, is."""
    df_pass: float | None = None
    """For the PASS bound: the same from Kish's effective number of changed documents (None: ``df``)."""


def _weights(rng: np.random.Generator, n: int, resamples: int, codes: np.ndarray | None) -> np.ndarray:
    """Bootstrap weights (resamples, n): how often each document was drawn; whole clusters when ``codes``."""
    units = n if codes is None else int(codes.max()) + 1
    draws = rng.integers(0, units, size=(resamples, units), dtype=np.int64) + (units * np.arange(resamples))[:, None]
    counts = np.bincount(draws.ravel(), minlength=resamples * units).reshape(resamples, units).astype(float)
    return counts if codes is None else counts[:, codes]


def _distinct(*columns: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray] | None:
    """The distinct (gold, base pred, cand pred) rows and how many documents have each, when every value is a finite
    number and there are fewer distinct rows than documents (class labels): the bootstrap then draws multinomial
    counts of the distinct rows, the same law as drawing documents at a fraction of the cost."""
    try:
        table = np.column_stack([np.asarray(c, dtype=float) for c in columns])
    except (TypeError, ValueError):
        return None
    if not np.isfinite(table).all():
        return None
    rows, counts = np.unique(table, axis=0, return_counts=True)
    if rows.shape[0] > table.shape[0] // 2:
        return None
    return tuple(rows[:, i] for i in range(rows.shape[1])), counts.astype(float)


def cluster_codes(clusters: Sequence[Hashable]) -> np.ndarray:
    index: dict[Hashable, int] = {}
    return np.fromiter((index.setdefault(c, len(index)) for c in clusters), dtype=np.intp, count=len(clusters))


def baseline_se(name: str, rows: Sequence[Any], *, clusters: Sequence[Hashable] | None = None,
                resamples: int = RESAMPLES, seed: int = SEED) -> float:
    """The baseline's own bootstrap SE of a corpus metric over all its stored documents (metric units)."""
    golds, preds = corpus_batch.split_rows(rows)
    codes = cluster_codes(clusters) if clusters is not None else None
    n_draws = resamples if name in corpus_batch.BATCH else LOOPED_RESAMPLES
    w = _weights(np.random.default_rng(seed), len(rows), n_draws, codes)
    values = corpus_batch.batch_statistic(name)(golds, preds, w)
    values = values[np.isfinite(values)]
    return float(np.std(values, ddof=1)) if values.size >= 2 else 0.0


def corpus_margin(unit_se: float, level: float, n: int, planning_discordance: float,
                  power: float = sequential.POWER) -> float:
    """Default PASS margin of a corpus metric (0-1 scale when ``unit_se`` is): the full task's MDE as the fixed gate
    plans it, (z_level + z_power) * sqrt(2 psi) * s_N, psi the planning discordance."""
    del n  # s_N already is the full task's SE
    z = float(stats.norm.isf(level) + stats.norm.isf(1 - power))
    return z * float(np.sqrt(2 * planning_discordance)) * unit_se


def corpus_look(name: str, base_rows: Sequence[Any], cand_rows: Sequence[Any], *, direction: str, scale: float,
                unit_se: float, n_total: int, clusters: Sequence[Hashable] | None = None,
                resamples: int = RESAMPLES, seed: int = SEED) -> WaldLook:
    """The drop in a corpus metric on a scored prefix and its paired-bootstrap SE, floored (module docstring).

    ``unit_se``: the baseline's SE on all ``n_total`` documents (metric units), from :func:`baseline_se`."""
    if len(base_rows) != len(cand_rows) or not base_rows:
        raise ValueError(f"base has {len(base_rows)} rows and cand {len(cand_rows)}: a paired look needs both")
    gb, pb = corpus_batch.split_rows(base_rows)
    gc, pc = corpus_batch.split_rows(cand_rows)
    n = len(base_rows)
    sign = (1.0 if direction == "higher" else -1.0) / scale
    stat = corpus_batch.batch_statistic(name)
    ones = np.ones((1, n))
    base_value, cand_value = float(stat(gb, pb, ones)[0]), float(stat(gc, pc, ones)[0])
    codes = cluster_codes(clusters[:n]) if clusters is not None else None
    # The seed depends on the prefix length only: a look's draw is fixed before its outcomes are seen.
    n_draws = resamples if name in corpus_batch.BATCH else LOOPED_RESAMPLES
    rng = np.random.default_rng([seed, n])
    distinct = _distinct(gb, pb, gc, pc) if codes is None else None
    if distinct is not None:  # documents with equal rows are exchangeable: draw how often each distinct row is
        cols, counts = distinct
        w = rng.multinomial(n, counts / n, size=n_draws).astype(float)
    else:
        cols, counts = (gb, pb, gc, pc), np.ones(n)
        w = _weights(rng, n, n_draws, codes)
    deltas = sign * (stat(cols[0], cols[1], w) - stat(cols[2], cols[3], w))
    deltas = deltas[np.isfinite(deltas)]
    se_raw = float(np.std(deltas, ddof=1)) if deltas.size >= 2 else 0.0
    changed = int(np.count_nonzero((gb != gc) | (pb != pc)))
    floor = 2 * float(np.sqrt(2 / (n + 2) * n_total / n)) * unit_se / scale
    se = float(np.hypot(se_raw, floor))
    # Kish's effective count needs one jackknife statistic per changed row: vectorised metrics only.
    dof_docs = _effective_changes(stat, cols, counts) if changed and name in corpus_batch.BATCH else changed
    return WaldLook(n, sign * (base_value - cand_value), se, se_raw, floor, changed, base_value, cand_value,
                    satterthwaite(se, se_raw, changed), satterthwaite(se, se_raw, dof_docs))


def _effective_changes(stat: corpus_batch.Batch, cols: tuple[np.ndarray, ...], counts: np.ndarray) -> float:
    """Kish's effective number of changed documents, (sum u^2)^2 / sum u^4, u the jackknife effect of each changed
    document on the drop: a drop carried by a few documents with large effects has fewer degrees of freedom (JSTS
    at the margin: an early PASS 14 % of the time with the count of changed documents, 10 % with this). ``cols``
    hold (gold, base pred, gold, cand pred) per row, ``counts`` how many documents share the row."""
    gb, pb, gc, pc = cols
    rows = np.flatnonzero((gb != gc) | (pb != pc))
    w = np.tile(counts, (rows.size, 1))
    w[np.arange(rows.size), rows] -= 1.0  # one document of that row left out
    one = counts[None, :]
    full = stat(gb, pb, one)[0] - stat(gc, pc, one)[0]
    u = full - (stat(gb, pb, w) - stat(gc, pc, w))
    s2, s4 = float(np.sum(counts[rows] * u**2)), float(np.sum(counts[rows] * u**4))
    return s2 * s2 / s4 if s4 > 0 else float(counts[rows].sum())


def cluster_look(drops: Sequence[float], clusters: Sequence[Hashable]) -> WaldLook:
    """Mean per-document drop (0-1 scale) on a prefix of clustered documents, with its sandwich SE and pseudo-docs."""
    d = np.asarray(drops, dtype=float)
    n = d.size
    if n == 0 or len(clusters) < n:
        raise ValueError(f"{n} drops and {len(clusters)} cluster labels: every scored document needs its cluster")
    codes = cluster_codes(clusters[:n])
    g = int(codes.max()) + 1
    mean = float(d.mean())
    resid = np.bincount(codes, weights=d - mean, minlength=g)
    meat = float(np.sum(resid**2)) * (g / (g - 1) if g > 1 else 1.0)
    se_raw = float(np.sqrt(meat)) / n
    se = float(np.sqrt((meat + 2) / (n * (n + 2))))
    floor = float(np.sqrt(2 / (n * (n + 2))))
    changed = int(np.count_nonzero(np.bincount(codes, weights=np.abs(d), minlength=g)))
    return WaldLook(n, mean, se, se_raw, floor, int(np.count_nonzero(d)), float("nan"), float("nan"),
                    satterthwaite(se, se_raw * np.sqrt(n / (n + 2)), changed))


def satterthwaite(se: float, se_raw: float, changed: int) -> float:
    """Degrees of freedom of SE^2 = estimated part + known floor (Welch-Satterthwaite): the estimated part has
    ``changed`` - 1 (documents, or clusters, that changed), the floor infinitely many."""
    if se_raw <= 0 or changed < 1:
        return float("inf")
    return max(changed - 1, 1) * (se / se_raw) ** 4


def student_bounds(bounds: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Each look's normal bound moved to the Student t quantile of the same tail probability: an SE estimated from
    few changed documents is itself noisy, and z then has t-like tails (at JCoLA's size and the margin, an early
    PASS came 15 % of the time with the normal bounds, against the 10 % allowed)."""
    df = np.asarray(df, dtype=float)
    finite = np.isfinite(df)
    out = np.broadcast_to(np.asarray(bounds, dtype=float), df.shape).copy()
    out[finite] = stats.t.isf(stats.norm.sf(out[finite]), df[finite])
    return out


def decide_wald(drop: np.ndarray, se: np.ndarray, design: sequential.Design, sizes: Sequence[int] | None = None,
                min_fail_drop: float = 0.0, df: np.ndarray | None = None,
                df_pass: np.ndarray | None = None) -> sequential.Stops:
    """Run the design on Wald statistics, arrays of shape (paths, looks): the drop (0-1 scale) and its SE at each
    look, and the SE's degrees of freedom (None: infinite, the normal bounds). A look whose drop or SE is not finite
    or whose SE is 0 decides nothing (the last look passes then)."""
    sizes = list(sizes or design.sizes)
    drop, se = np.asarray(drop, dtype=float), np.asarray(se, dtype=float)
    if drop.ndim != 2 or drop.shape != se.shape or drop.shape[1] != len(sizes):
        raise ValueError(f"drop and se must have shape (paths, {len(sizes)}), not {drop.shape} and {se.shape}")
    ok = np.isfinite(drop) & np.isfinite(se) & (se > 0)
    safe = np.where(ok, se, 1.0)
    df = np.full(drop.shape, np.inf) if df is None else np.asarray(df, dtype=float)
    df_pass = df if df_pass is None else np.asarray(df_pass, dtype=float)
    cf, cp = student_bounds(design.fail_bounds(sizes), df), student_bounds(design.pass_bounds(sizes), df_pass)
    fail = ok & (drop / safe >= cf) & (drop >= min_fail_drop - 1e-12)
    pass_ = ok & ((design.margin - drop) / safe >= cp)
    pass_[:, -1] = True  # the last look passes whatever did not fail
    first = np.argmax(fail | pass_, axis=1)
    rows = np.arange(drop.shape[0])
    decision = np.where(fail[rows, first], "fail", "pass")
    return sequential.Stops(decision, first + 1, np.asarray(sizes)[first], first < len(sizes) - 1)


def run_looks(looks: Sequence[WaldLook], design: sequential.Design, *, min_fail_drop: float = 0.0,
              what: str = "bootstrap SE") -> sequential.SequentialResult | None:
    """The task's verdict from its looks so far (one per look size reached, in order), or None when no look has
    decided yet and the last look is still to come."""
    full = design.sizes
    if not looks or [lk.scored for lk in looks] != full[: len(looks)]:
        raise ValueError(f"looks at {[lk.scored for lk in looks]} documents are not a prefix of the design's {full}")
    pad = len(full) - len(looks)
    drop = np.array([lk.drop for lk in looks] + [0.0] * pad)[None]
    se = np.array([lk.se for lk in looks] + [np.nan] * pad)[None]
    df = np.array([lk.df for lk in looks] + [np.inf] * pad)[None]
    df_pass = np.array([lk.df if lk.df_pass is None else lk.df_pass for lk in looks] + [np.inf] * pad)[None]
    stops = decide_wald(drop, se, design, full, min_fail_drop, df, df_pass)
    k = int(stops.look[0])
    if k > len(looks):
        return None
    cf, cp = student_bounds(design.fail_bounds(), df[0]), student_bounds(design.pass_bounds(), df_pass[0])
    seen = [sequential.Look(i + 1, lk.scored, lk.drop * lk.scored, (lk.se * lk.scored) ** 2,
                            lk.drop / lk.se if lk.se > 0 else float("nan"), float(cf[i]),
                            (design.margin - lk.drop) / lk.se if lk.se > 0 else float("nan"), float(cp[i]))
            for i, lk in enumerate(looks[:k])]
    last, lk = seen[-1], looks[k - 1]
    floored = " (floored)" if lk.floor >= lk.se_raw else ""
    reason = sequential.stop_reason(str(stops.decision[0]), k, len(full), design, last, lk.drop, f"{what}{floored}")
    return sequential.SequentialResult(str(stops.decision[0]), reason, k, len(full), lk.scored, design.n,
                                       design.margin, seen)
