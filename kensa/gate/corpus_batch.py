"""Corpus metrics on many bootstrap resamples at once, for the sequential gate's paired bootstrap.

A resample is a row of integer weights (how often each document was drawn), so one matrix ``w`` of shape
(resamples, documents) holds them all and each statistic is computed from weighted sums: a confusion matrix per
resample for MCC, balanced accuracy and macro-F1, weighted moments for Pearson r, weighted mid-ranks for Spearman.
With every weight 1 each function equals the metric of :mod:`kensa.metrics.core` (checked in
``tests/unit/gate/test_sequential_wald.py``). Other corpus metrics (BLEU) fall back to one call per resample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from kensa.metrics.core import metric_spec

Batch = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(golds, preds, weights (B, n)) -> the metric on each of the B resamples."""


def _confusions(golds: np.ndarray, preds: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted confusion matrices (B, k, k), rows gold, columns pred, over the labels seen in either."""
    g, p = golds.astype(np.int64), preds.astype(np.int64)
    labels = np.union1d(g, p)
    k = labels.size
    cell = np.searchsorted(labels, g) * k + np.searchsorted(labels, p)
    onehot = np.zeros((g.size, k * k))
    onehot[np.arange(g.size), cell] = 1.0
    return (w @ onehot).reshape(w.shape[0], k, k)


def mcc(golds: np.ndarray, preds: np.ndarray, w: np.ndarray) -> np.ndarray:
    c = _confusions(golds, preds, w)
    t_sum, p_sum = c.sum(axis=2), c.sum(axis=1)
    n = c.sum(axis=(1, 2))
    cov_ytyp = np.trace(c, axis1=1, axis2=2) * n - (t_sum * p_sum).sum(axis=1)
    denom = (n * n - (p_sum * p_sum).sum(axis=1)) * (n * n - (t_sum * t_sum).sum(axis=1))
    return np.divide(cov_ytyp, np.sqrt(np.where(denom > 0, denom, 1.0)), out=np.zeros_like(denom), where=denom > 0)


def macro_f1(golds: np.ndarray, preds: np.ndarray, w: np.ndarray) -> np.ndarray:
    c = _confusions(golds, preds, w)
    tp = np.diagonal(c, axis1=1, axis2=2)
    denom = 2 * tp + (c.sum(axis=1) - tp) + (c.sum(axis=2) - tp)
    seen = denom > 0  # a label absent from a resample's gold and pred does not count, as in sklearn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=seen)
    return f1.sum(axis=1) / np.maximum(seen.sum(axis=1), 1)


def balanced_acc(golds: np.ndarray, preds: np.ndarray, w: np.ndarray) -> np.ndarray:
    c = _confusions(golds, preds, w)
    support = c.sum(axis=2)
    recall = np.divide(np.diagonal(c, axis1=1, axis2=2), support, out=np.zeros_like(support), where=support > 0)
    return recall.sum(axis=1) / np.maximum((support > 0).sum(axis=1), 1)


def _midranks(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Each document's mid-rank within each weighted resample (ties share their average rank), shape (B, n)."""
    order = np.argsort(x, kind="stable")
    _, starts, inverse = np.unique(x[order], return_index=True, return_inverse=True)
    per_value = np.add.reduceat(w[:, order], starts, axis=1)  # each distinct value's weight in each resample
    below = np.cumsum(per_value, axis=1) - per_value
    ranks = np.empty_like(w, dtype=float)
    ranks[:, order] = (below + (per_value + 1) / 2)[:, inverse]
    return ranks


def _weighted_r(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pearson r of (x, y) under each row of weights; x and y may be (n,) or (B, n). 0 where undefined."""
    total = w.sum(axis=1)
    safe = np.maximum(total, 1)
    if x.ndim == 1 and y.ndim == 1:  # one matrix product; centred first so the sums of squares do not cancel
        xc, yc = x - x.mean(), y - y.mean()
        sx, sy, sxx, syy, sxy = (w @ np.column_stack([xc, yc, xc * xc, yc * yc, xc * yc])).T
        sxx, syy, sxy = sxx - sx * sx / safe, syy - sy * sy / safe, sxy - sx * sy / safe
    else:
        mx, my = (w * x).sum(axis=1) / safe, (w * y).sum(axis=1) / safe
        dx, dy = x - mx[:, None], y - my[:, None]
        sxy, sxx, syy = (w * dx * dy).sum(axis=1), (w * dx * dx).sum(axis=1), (w * dy * dy).sum(axis=1)
    scale = np.maximum(np.abs(x).max(initial=0.0), 1.0) ** 2 * safe * 1e-12  # a constant side, up to rounding
    ok = (total >= 3) & (sxx > scale) & (syy > scale)
    return np.divide(sxy, np.sqrt(np.where(ok, sxx * syy, 1.0)), out=np.zeros_like(sxy), where=ok)


def _parsed(golds: np.ndarray, preds: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leave out unparseable predictions (None or NaN), as :func:`kensa.metrics.core.pearson` does."""
    p = np.array([np.nan if x is None else float(x) for x in preds], dtype=float)
    keep = np.isfinite(p)
    return np.asarray(golds, dtype=float)[keep], p[keep], w[:, keep]


def pearson(golds: np.ndarray, preds: np.ndarray, w: np.ndarray) -> np.ndarray:
    g, p, w = _parsed(golds, preds, w)
    return _weighted_r(g, p, w)


def spearman(golds: np.ndarray, preds: np.ndarray, w: np.ndarray) -> np.ndarray:
    g, p, w = _parsed(golds, preds, w)
    if g.size == 0:
        return np.zeros(w.shape[0])
    return _weighted_r(_midranks(g, w), _midranks(p, w), w)


BATCH: dict[str, Batch] = {"mcc": mcc, "macro_f1": macro_f1, "balanced_acc": balanced_acc, "pearson": pearson,
                           "spearman": spearman}


def batch_statistic(name: str) -> Batch:
    """The metric on weighted resamples: vectorised where written above, else one call of the metric per resample
    with each document repeated as often as it was drawn."""
    if name in BATCH:
        return BATCH[name]
    compute = metric_spec(name).compute
    if compute is None:
        raise ValueError(f"corpus metric {name!r} has no compute function in kensa.metrics")

    def looped(golds: np.ndarray, preds: np.ndarray, w: np.ndarray) -> np.ndarray:
        out = np.empty(w.shape[0])
        for b, row in enumerate(w):
            idx = np.repeat(np.arange(row.size), row.astype(np.int64))
            out[b] = compute(list(golds[idx]), list(preds[idx]))
        return out

    return looped


def split_rows(rows: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Stored corpus items, one ``[gold, pred]`` per document, as (golds, preds) object arrays."""
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != 2:
            raise ValueError(f"doc {i}: a corpus metric's item must be [gold, pred], not {row!r}")
    table = np.empty((len(rows), 2), dtype=object)
    table[:] = rows if rows else np.empty((0, 2), dtype=object)
    return table[:, 0], table[:, 1]
