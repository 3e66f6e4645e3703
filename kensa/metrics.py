"""Metrics and their standard errors, computed as the harness computes them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def argmax(values: Sequence[float]) -> int:
    """Index of the largest value; the first one on ties (like ``numpy.argmax``)."""
    if not values:
        raise ValueError("argmax of an empty sequence")
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def mean(xs: Sequence[float]) -> float:
    if not xs:
        raise ValueError("mean of no values")
    return sum(xs) / len(xs)


def mean_stderr(xs: Sequence[float]) -> float:
    """Sample standard deviation (ddof=1) over sqrt(n); NaN when n < 2, where it is undefined."""
    n = len(xs)
    if n < 2:
        return math.nan
    mu = mean(xs)
    var = sum((x - mu) ** 2 for x in xs) / (n - 1)
    return math.sqrt(var / n)


def multiple_choice_scores(loglikelihoods: Sequence[float], choices: Sequence[str], gold: int) -> dict[str, float]:
    """``acc`` (argmax of summed log-probs) and ``acc_norm`` (divided by the choice's length in characters)."""
    if len(loglikelihoods) != len(choices):
        raise ValueError(f"{len(loglikelihoods)} log-likelihoods for {len(choices)} choices")
    pred = argmax(loglikelihoods)
    # An empty choice would divide by zero; the harness would crash there, we refuse earlier.
    normed = [ll / len(c) for ll, c in zip(loglikelihoods, choices, strict=True)]
    return {
        "pred": pred,
        "pred_norm": argmax(normed),
        "acc": 1.0 if pred == gold else 0.0,
        "acc_norm": 1.0 if argmax(normed) == gold else 0.0,
    }


def aggregate(per_doc: Sequence[dict[str, float]], names: Sequence[str]) -> dict[str, float]:
    """``{name: mean, name_stderr: stderr}`` for each metric, in the harness's key order."""
    out: dict[str, float] = {}
    for name in names:
        xs = [d[name] for d in per_doc]
        out[name] = mean(xs)
        out[f"{name}_stderr"] = mean_stderr(xs)
    return out


@dataclass(frozen=True)
class MetricSpec:
    """How a metric is read by the gate: its direction, its scale and the shape of its per-item values."""

    name: str
    direction: str = "higher"
    """``higher`` or ``lower`` is better."""
    scale: float = 1.0
    """1.0 for a 0–1 score, 100.0 for a 0–100 score: "one point" is ``scale / 100``."""
    items: str = "binary"
    """``binary`` (0/1 per doc: exact McNemar), ``continuous`` (paired permutation) or ``corpus``
    (a statistic over all docs, such as a correlation: paired bootstrap)."""


METRICS = {spec.name: spec for spec in (
    MetricSpec("acc"),
    MetricSpec("acc_norm"),
)}


def metric_spec(name: str) -> MetricSpec:
    if name not in METRICS:
        raise KeyError(f"metric {name!r} has no MetricSpec in kensa.metrics.METRICS")
    return METRICS[name]
