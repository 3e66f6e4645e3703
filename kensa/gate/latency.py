"""The latency gate: did the model's time rise by more than a tolerance against the baseline?

**The unit is what was timed.** A backend times a batch and shares its time among the batch's questions, so
per-question seconds of a batched run are not independent measurements (16 questions in batches of 4 are 4
measurements). The paired test therefore runs on *units*: each question when the batch size is 1, else each
group of questions whose time was measured together (the backend's batches, joined where a question's choices
span two). Both runs must have grouped the same questions together, else the check is ``incomparable``.

With tolerance t (``--gate-latency PCT``), the one-sided Wilcoxon signed-rank test (scipy.stats.wilcoxon) on the
units' ``run - (1 + t) * base`` asks whether the run is slower than allowed: a category fails when p x m < alpha,
m being the session's latency-gated tests (Bonferroni). The printed ratio is ``sum(run) / sum(base)`` and its
interval inverts the same test on the same units (the ratios r for which ``run - r * base`` is not one-sidedly
significant at alpha / m), so the verdict fails exactly when the interval's lower end is above 1 + t.

A one-sided signed-rank test on n units cannot give a p below 2^-n: with too few units for alpha / m the check
is ``underpowered`` (it could never fail; the message says how many units it needs), and fails, as a gate that
was asked for and could not look never passes. Timings only compare on the same hardware (GPU or CPU model),
device, dtype, quantization, backend, batch size and thread count (``incomparable``); a run the response cache
served has no times (``untimed``); a baseline without times cannot be compared (``missing``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

LATENCY_COMPARED = ("hardware", "device", "dtype", "quantization", "backend", "batch_size", "threads")
FAILING = ("fail", "incomparable", "untimed", "missing", "underpowered")


@dataclass(frozen=True)
class LatencyCheck:
    model: str
    task_id: str
    status: str
    """pass, fail, incomparable, untimed, missing or underpowered."""
    message: str = ""
    n: int = 0
    """Questions."""
    tolerance_pct: float = 0.0
    base_mean: float | None = None
    run_mean: float | None = None
    ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p: float | None = None
    p_bound: float | None = None
    """min(1, p x m): the bound the verdict used."""
    unit: str = ""
    """What the test paired: ``question`` or ``batch``."""
    units: int = 0

    @property
    def failed(self) -> bool:
        return self.status in FAILING

    def to_dict(self) -> dict:
        return asdict(self)


def latency_incomparable(base: Mapping[str, str], run: Mapping[str, str]) -> list[str]:
    return [f"{k} {base.get(k, 'unknown')} -> {run.get(k, 'unknown')}" for k in LATENCY_COMPARED
            if str(base.get(k, "unknown")) != str(run.get(k, "unknown"))]


def timing_units(batches: Sequence[Sequence[int] | None] | None, n: int,
                 batch_size: str) -> list[frozenset[int]] | None:
    """The groups of questions (indices) whose time was measured together: each question at batch size 1, else
    the questions of one backend batch, joined through a question whose choices span batches. None when the
    run is batched and does not say how."""
    if str(batch_size) == "1":
        return [frozenset([i]) for i in range(n)]
    if batches is None or len(batches) != n or any(not b for b in batches):
        return None
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[int, int] = {}
    for i, bs in enumerate(batches):
        for b in bs:  # type: ignore[union-attr]
            if b in first:
                parent[root(i)] = root(first[b])
            else:
                first[b] = i
    groups: dict[int, set[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), set()).add(i)
    return sorted((frozenset(g) for g in groups.values()), key=min)


def looks_split_batches(batch_size: object) -> str | None:
    """Why a latency-gated task must score in one call under ``--gate-sequential``, or None (batch size 1).

    A run scored in looks makes one backend call per look; a batched backend groups (and length-sorts) only that
    look's questions, so its batches, and the time each question's share stands for, are not the ones the
    baseline measured in one call, and a look's last batch is a short one. Per-question times (batch size 1)
    pair whatever the calls: a stopped run is compared with the same prefix of the baseline."""
    if str(batch_size) == "1":
        return None
    return (f"the latency gate pairs the baseline's batches (batch size {batch_size}), which looks would split: "
            "this timed task scores in one call (batch_size=1 keeps the sequential gate)")


def signed_rank_p(diffs: Sequence[float], alternative: str) -> float:
    """One-sided Wilcoxon signed-rank p (scipy; zeros dropped); 1 when every difference is zero."""
    from scipy.stats import wilcoxon

    if not any(diffs):
        return 1.0
    return float(wilcoxon(diffs, alternative=alternative).pvalue)


def unit_seconds(seconds: Sequence[float], units: Sequence[frozenset[int]]) -> list[float]:
    """Each unit's time: the sum of its questions' shares (what the backend measured)."""
    return [sum(float(seconds[i]) for i in sorted(g)) for g in units]


def slower_p(base: Sequence[float], run: Sequence[float], tolerance: float) -> float:
    """One-sided signed-rank p for ``run > (1 + tolerance) * base``, on paired units' seconds."""
    return signed_rank_p([r - (1 + tolerance) * b for b, r in zip(base, run, strict=True)], "greater")


def min_units(alpha: float, family_size: int) -> int:
    """The fewest units whose smallest one-sided signed-rank p (2^-n) is below alpha / m."""
    return math.floor(math.log2(max(family_size, 1) / alpha)) + 1


def ratio_bounds(base: Sequence[float], run: Sequence[float], level: float) -> tuple[float, float]:
    """The ratios r for which the one-sided signed-rank test on ``run - r * base`` is not significant at
    ``level`` in either direction (the test's own interval, by bisection; p moves monotonically with r)."""
    top = 2 * max(r / b for b, r in zip(base, run) if b > 0) + 1

    def p(r: float, alternative: str) -> float:
        return signed_rank_p([x - r * b for b, x in zip(base, run)], alternative)

    def bisect(lo: float, hi: float, rejects_at_lo: bool, alternative: str) -> float:
        for _ in range(30):  # 2^-30 of the range: far below the 2 decimals shown
            mid = (lo + hi) / 2
            if (p(mid, alternative) < level) == rejects_at_lo:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    low = bisect(0.0, top, True, "greater")  # below it, "slower than r" is significant
    high = bisect(0.0, top, False, "less")  # above it, "faster than r" is significant
    return low, high


def compare_latency(*, model: str, task_id: str, base_seconds: Sequence[float | None] | None,
                    run_seconds: Sequence[float | None], base_env: Mapping[str, str], run_env: Mapping[str, str],
                    tolerance_pct: float, alpha: float, family_size: int, fix: str,
                    base_batches: Sequence[Sequence[int] | None] | None = None,
                    run_batches: Sequence[Sequence[int] | None] | None = None) -> LatencyCheck:
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
    size = str(run_env.get("batch_size", "unknown"))
    n = len(run_seconds)
    base_units, run_units = timing_units(base_batches, n, size), timing_units(run_batches, n, size)
    if base_units is None or run_units is None:
        which = "the baseline" if base_units is None else "this run"
        return LatencyCheck(status="incomparable", message=f"batch size {size}: a question's seconds are a share of "
                            f"its batch's time, and {which} does not say which questions shared a batch; re-baseline "
                            f"with `{fix}` or run with --model-args batch_size=1", **common)
    if base_units != run_units:
        return LatencyCheck(status="incomparable", message="the two runs batched different questions together, so "
                            f"their batch times do not pair; re-baseline with `{fix}`", **common)
    unit = "question" if size == "1" else "batch"
    base, run = unit_seconds(base_seconds, run_units), unit_seconds(run_seconds, run_units)  # type: ignore[arg-type]
    common.update(unit=unit, units=len(run_units))
    if sum(base) <= 0:
        return LatencyCheck(status="missing", message="the baseline's times add up to zero", **common)
    m = max(family_size, 1)
    ratio = sum(run) / sum(base)
    means = dict(base_mean=sum(base) / n, run_mean=sum(run) / n, ratio=ratio)
    need = min_units(alpha, m)
    if len(run_units) < need:
        plural = f"{len(run_units)} {unit}{'es' if unit == 'batch' else 's'}"
        return LatencyCheck(status="underpowered", message=f"x{ratio:.2f}, but only {plural} were timed: a one-sided "
                            f"signed-rank test on them cannot reach p < alpha/m = {alpha / m:.2g} (it needs {need}); "
                            "use "
                            "more questions, a smaller batch size or fewer latency-gated tests", **common, **means)
    tolerance = tolerance_pct / 100
    p = slower_p(base, run, tolerance)
    bound = min(1.0, p * m)
    low, high = ratio_bounds(base, run, alpha / m)
    status = "fail" if bound < alpha else "pass"
    message = (f"seconds x{ratio:.2f} (interval {low:.2f}-{high:.2f} from the same test, {len(run_units)} {unit}"
               f"{'es' if unit == 'batch' else 's'}) against the baseline; more than +{tolerance_pct:g}% slower: "
               f"p = {p:.2g}, x{m} tests = {bound:.2g}")
    return LatencyCheck(status=status, message=message, ci_low=low, ci_high=high, p=p, p_bound=bound, **common,
                        **means)


def ratio_text(check: LatencyCheck) -> str:
    if check.ratio is None or not math.isfinite(check.ratio):
        return "-"
    if check.ci_low is None or check.ci_high is None:
        return f"x{check.ratio:.2f}"
    return f"x{check.ratio:.2f} [{check.ci_low:.2f}, {check.ci_high:.2f}]"
