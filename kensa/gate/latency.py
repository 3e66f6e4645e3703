"""The latency gate: did seconds per question rise by more than a tolerance against the baseline?

Per question, the candidate's model seconds are paired with the baseline's (stored beside its per-document
outcomes in ``thresholds/<baseline>/<task-id>.jsonl``). With tolerance t (``--gate-latency PCT``), the
one-sided Wilcoxon signed-rank test (scipy.stats.wilcoxon) asks whether ``run - (1 + t) * base`` is
positive more than chance allows: a category fails when p x m < alpha, m being the session's latency-gated
tests (Bonferroni, an upper bound on Holm's adjusted p). The report shows the ratio of seconds per question,
``sum(run) / sum(base)``, with a 95 % paired-bootstrap interval.

Timings only compare on the same hardware (GPU or CPU model), device, dtype, quantization, backend, batch
size and thread count; otherwise the check is ``incomparable``. A run whose answers came from the response
cache has no times (``untimed``); a baseline without times cannot be compared (``missing``). All three fail
the check: a gate that was asked for and could not look never passes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

LATENCY_COMPARED = ("hardware", "device", "dtype", "quantization", "backend", "batch_size", "threads")
RESAMPLES = 2000
SEED = 20240601
FAILING = ("fail", "incomparable", "untimed", "missing")


@dataclass(frozen=True)
class LatencyCheck:
    model: str
    task_id: str
    status: str
    """pass, fail, incomparable, untimed or missing."""
    message: str = ""
    n: int = 0
    tolerance_pct: float = 0.0
    base_mean: float | None = None
    run_mean: float | None = None
    ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p: float | None = None
    p_bound: float | None = None
    """min(1, p x m): the bound the verdict used."""

    @property
    def failed(self) -> bool:
        return self.status in FAILING

    def to_dict(self) -> dict:
        return asdict(self)


def latency_incomparable(base: Mapping[str, str], run: Mapping[str, str]) -> list[str]:
    return [f"{k} {base.get(k, 'unknown')} -> {run.get(k, 'unknown')}" for k in LATENCY_COMPARED
            if str(base.get(k, "unknown")) != str(run.get(k, "unknown"))]


def ratio_interval(base: Sequence[float], run: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """``sum(run) / sum(base)`` and its paired-bootstrap percentile interval (questions resampled together)."""
    import numpy as np

    b, r = np.asarray(base, dtype=float), np.asarray(run, dtype=float)
    ratio = float(r.sum() / b.sum())
    rng = np.random.default_rng(SEED)
    idx = rng.integers(0, len(b), size=(RESAMPLES, len(b)))
    sums = b[idx].sum(axis=1)
    ratios = r[idx].sum(axis=1)[sums > 0] / sums[sums > 0]
    tail = (1 - level) / 2 * 100
    return ratio, float(np.percentile(ratios, tail)), float(np.percentile(ratios, 100 - tail))


def slower_p(base: Sequence[float], run: Sequence[float], tolerance: float) -> float:
    """One-sided Wilcoxon signed-rank p for ``run > (1 + tolerance) * base`` on paired questions."""
    from scipy.stats import wilcoxon

    d = [r - (1 + tolerance) * b for b, r in zip(base, run, strict=True)]
    if not any(d):
        return 1.0
    return float(wilcoxon(d, alternative="greater").pvalue)


def compare_latency(*, model: str, task_id: str, base_seconds: Sequence[float | None] | None,
                    run_seconds: Sequence[float | None], base_env: Mapping[str, str], run_env: Mapping[str, str],
                    tolerance_pct: float, alpha: float, family_size: int, fix: str) -> LatencyCheck:
    """One test's latency verdict. ``fix`` is the command that re-baselines (shown in the messages)."""
    common = dict(model=model, task_id=task_id, n=len(run_seconds), tolerance_pct=tolerance_pct)
    changed = latency_incomparable(base_env, run_env)
    if changed:
        return LatencyCheck(status="incomparable", message=f"the baseline's times were measured elsewhere "
                            f"({'; '.join(changed)}); re-baseline here with `{fix}`", **common)
    cached = sum(1 for t in run_seconds if t is None)
    if cached:
        return LatencyCheck(status="untimed", message=f"{cached} of {len(run_seconds)} answers came from the response "
                            "cache and have no model time: rerun with --response-cache off", **common)
    # A run shorter than the baseline is a prefix of the same order (the sequential gate stopped the task early).
    base_seconds = None if base_seconds is None else list(base_seconds)[: len(run_seconds)]
    if base_seconds is None or any(t is None for t in base_seconds) or len(base_seconds) != len(run_seconds):
        return LatencyCheck(status="missing", message=f"the baseline entry has no per-question times for every "
                            f"question; re-baseline with `{fix}` (and --response-cache off)", **common)
    base = [float(t) for t in base_seconds]  # type: ignore[arg-type]
    run = [float(t) for t in run_seconds]  # type: ignore[arg-type]
    if sum(base) <= 0:
        return LatencyCheck(status="missing", message="the baseline's times add up to zero", **common)
    tolerance = tolerance_pct / 100
    p = slower_p(base, run, tolerance)
    bound = min(1.0, p * max(family_size, 1))
    ratio, low, high = ratio_interval(base, run)
    status = "fail" if bound < alpha else "pass"
    message = (f"seconds per question x{ratio:.2f} (95% CI {low:.2f}-{high:.2f}) against the baseline; more than "
               f"+{tolerance_pct:g}% slower: p = {p:.2g}, x{max(family_size, 1)} tests = {bound:.2g}")
    return LatencyCheck(status=status, message=message, base_mean=sum(base) / len(base), run_mean=sum(run) / len(run),
                        ratio=ratio, ci_low=low, ci_high=high, p=p, p_bound=bound, **common)


def ratio_text(check: LatencyCheck) -> str:
    if check.ratio is None or not math.isfinite(check.ratio):
        return "-"
    return f"x{check.ratio:.2f} [{check.ci_low:.2f}, {check.ci_high:.2f}]"
