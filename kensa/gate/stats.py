"""Paired significance tests for the release gate: did the candidate's score drop versus the stored baseline?

Both models answered the *same* documents, so the tests work on per-item pairs (``base[i]`` and ``cand[i]`` are the
two models' outcomes on document i). Pairing removes the between-document variance that swamps an unpaired comparison
of two means. Conventions: metrics are higher-is-better unless ``direction="lower"``; a *drop* is ``baseline -
candidate`` (``candidate - baseline`` when lower is better), so positive means worse; p-values are one-sided for H0
"no drop" unless a function says otherwise; Monte Carlo tests use their own ``np.random.default_rng(seed)``, so a
gate decision is reproducible.

Exact McNemar suits 0/1 items (accuracy); the sign-flip permutation test other per-item scores and items sharing a
context (``clusters``); the paired bootstrap corpus-level statistics (Pearson r). ``z_unpaired`` is the fallback when
the baseline kept only an aggregate and its stderr; ``holm`` corrects for gating many metrics at once; ``mde_*`` say
how large a drop a test of that size can detect.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

DIRECTIONS = ("higher", "lower")
ALTERNATIVES = ("drop", "gain", "two-sided")
KINDS = ("auto", "mcnemar", "permutation", "bootstrap")
Items = Sequence[float]  # one number per item (document)
Labels = Sequence[Hashable]  # one cluster label per item, e.g. the JSQuAD paragraph id
Statistic = Callable[[np.ndarray], float]  # corpus-level statistic of a set of per-item rows

# Monte Carlo draws are made in blocks of about this many matrix cells, so memory stays bounded for large test sets.
_BLOCK_CELLS = 1_000_000
# Relative slack when comparing a resampled statistic with the observed one: an exact tie must count as "at least as
# extreme" (the conservative side) even when float summation order makes the two differ in the last bits.
_REL_TOL = 1e-9


@dataclass(frozen=True)
class PairedTest:
    """The outcome of one test of candidate versus baseline."""

    method: str  # "mcnemar-exact", "permutation", "bootstrap", "z-unpaired"
    drop: float  # observed drop in metric units; positive = candidate is worse
    p_value: float  # one-sided for H0 "no drop" unless the test was asked for another alternative
    n: int  # paired items (0 for z-unpaired, which has none)
    n_clusters: int | None  # distinct clusters when the test resampled or flipped whole clusters, else None
    sd_diff: float  # sample SD (ddof=1) of the per-item differences; 0.0 when n < 2, NaN where undefined
    detail: dict[str, Any]  # method specifics: {"b": 5, "c": 1} for McNemar, {"resamples": ..., "seed": ...}


def _check_choice(name: str, value: object, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}")


def _check_lengths(base: Sequence[Any], cand: Sequence[Any]) -> int:
    if len(base) != len(cand):
        raise ValueError(f"base has {len(base)} items but cand has {len(cand)}; a paired test needs both on each item")
    if len(base) == 0:
        raise ValueError("base and cand are empty; a paired test needs at least one item")
    return len(base)


def _rng(seed: int, n_resamples: int) -> np.random.Generator:
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, not {n_resamples!r}")
    return np.random.default_rng(seed)


def _items(name: str, values: Items) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: per-item values must be numbers ({e})") from None
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a flat sequence of per-item values, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] is {arr[bad[0]]}; per-item values must be finite")
    return arr


def _paired(base: Items, cand: Items, direction: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated ``(base, cand, d)`` where ``d[i]`` is the drop on item i in the direction's sense."""
    _check_choice("direction", direction, DIRECTIONS)
    _check_lengths(base, cand)
    b, c = _items("base", base), _items("cand", cand)
    return b, c, (b - c if direction == "higher" else c - b)


def _sd(d: np.ndarray) -> float:
    return float(np.std(d, ddof=1)) if d.size >= 2 else 0.0


def _cluster_codes(clusters: Sequence[Hashable], n: int) -> tuple[np.ndarray, int]:
    """Labels -> integer codes in order of first appearance (labels need only be hashable, not sortable)."""
    if len(clusters) != n:
        raise ValueError(f"clusters has {len(clusters)} labels but there are {n} items")
    index: dict[Hashable, int] = {}
    codes = np.fromiter((index.setdefault(label, len(index)) for label in clusters), dtype=np.intp, count=n)
    return codes, len(index)


def _block_sizes(n_resamples: int, width: int) -> Iterator[int]:
    step = max(1, _BLOCK_CELLS // max(1, width))
    for start in range(0, n_resamples, step):
        yield min(step, n_resamples - start)


def is_binary(values: Items) -> bool:
    """True when every value is 0 or 1 (floats and bools included); vacuously true for no values."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return False
    return bool(np.all((arr == 0) | (arr == 1)))


def mcnemar(base: Items, cand: Items, *, direction: str = "higher", alternative: str = "drop") -> PairedTest:
    """Exact McNemar test on 0/1 items: only the discordant items (one model right, the other wrong) carry evidence.

    ``b`` counts items where the baseline was better, ``c`` where the candidate was. Under H0 each discordant item
    is a fair coin, so ``b ~ Bin(b + c, 1/2)``. ``alternative="drop"`` gives P(X >= b); ``"gain"`` the mirror
    P(X >= c), for asking whether the baseline could be raised; ``"two-sided"`` the two-sided binomial p.
    """
    b_arr, c_arr, d = _paired(base, cand, direction)
    _check_choice("alternative", alternative, ALTERNATIVES)
    for name, arr in (("base", b_arr), ("cand", c_arr)):
        bad = np.flatnonzero((arr != 0) & (arr != 1))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] is {arr[bad[0]]}; McNemar needs 0/1 items (use the permutation test)")
    # d > 0 means the baseline was better on that item, whichever the direction.
    b, c = int(np.count_nonzero(d > 0)), int(np.count_nonzero(d < 0))
    if b + c == 0:
        p = 1.0  # no discordant item: no evidence either way
    elif alternative == "two-sided":
        p = stats.binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
    else:  # "gain" is the mirror image: the candidate's wins c are then the upper tail
        p = stats.binomtest(b if alternative == "drop" else c, b + c, 0.5, alternative="greater").pvalue
    detail = {"b": b, "c": c, "alternative": alternative}
    return PairedTest("mcnemar-exact", float(d.mean()), float(p), d.size, None, _sd(d), detail)


def permutation(base: Items, cand: Items, *, clusters: Labels | None = None, direction: str = "higher",
                alternative: str = "drop", n_resamples: int = 10000, seed: int = 0) -> PairedTest:
    """Paired sign-flip permutation test on the mean per-item drop; ``p = (1 + hits) / (1 + n_resamples)``.

    Under H0 "baseline" and "candidate" are exchangeable within an item, so each difference is as likely to have either
    sign. Items in one cluster (e.g. JSQuAD questions on one paragraph) are not independent, so the per-cluster sums of
    differences are flipped together; with few clusters the smallest reachable p is then about 2**-n_clusters.
    """
    _, _, d = _paired(base, cand, direction)
    _check_choice("alternative", alternative, ALTERNATIVES)
    rng = _rng(seed, n_resamples)
    units, n_clusters = d, None
    if clusters is not None:
        codes, n_clusters = _cluster_codes(clusters, d.size)
        units = np.bincount(codes, weights=d, minlength=n_clusters)
    # A unit whose difference is 0 is unchanged by a flip, so it is left out of the sign matrix.
    units = units[units != 0]
    observed = float(units.sum())
    detail: dict[str, Any] = {"resamples": n_resamples, "seed": seed, "alternative": alternative}
    if units.size == 0:
        p = 1.0  # every difference (or cluster sum) is 0: every sign pattern ties the observed statistic
    else:
        tol = _REL_TOL * float(np.abs(units).sum())
        hits = 0
        for size in _block_sizes(n_resamples, units.size):
            signs = rng.integers(0, 2, size=(size, units.size), dtype=np.int8) * 2 - 1
            perm = signs @ units  # statistics are compared as sums; dividing by n would not change any order
            if alternative == "drop":
                hits += int(np.count_nonzero(perm >= observed - tol))
            elif alternative == "gain":
                hits += int(np.count_nonzero(perm <= observed + tol))
            else:
                hits += int(np.count_nonzero(np.abs(perm) >= abs(observed) - tol))
        p = (1 + hits) / (1 + n_resamples)
    return PairedTest("permutation", float(d.mean()), float(p), d.size, n_clusters, _sd(d), detail)


def _rows(name: str, values: Sequence[Any]) -> np.ndarray:
    """Rows for a corpus-level statistic: a float array (n,) or (n, k) when numeric, else an object array of rows.
    ``None`` in a row marks a missing value (an unparseable JSTS output): it becomes NaN, which the statistic
    handles; any other non-finite value is refused."""
    missing = np.array([isinstance(v, (list, tuple)) and any(x is None for x in v) for v in values], dtype=bool)
    try:
        arr = np.asarray([[np.nan if x is None else x for x in v] if m else v for v, m in zip(values, missing)],
                         dtype=float) if missing.any() else np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        if all(isinstance(v, (list, tuple)) for v in values) and len({len(v) for v in values}) == 1:
            rows = np.empty((len(values), len(values[0])), dtype=object)  # text rows: (reference, output)
            rows[:] = [list(v) for v in values]
            return rows
        return np.fromiter(values, dtype=object, count=len(values))  # each row stays one object
    finite = np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
    bad = np.flatnonzero(~finite & ~missing)
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] is {values[bad[0]]!r}; per-item values must be finite")
    return arr


def bootstrap(base: Sequence[Any], cand: Sequence[Any], *, statistic: Statistic | None = None,
              clusters: Labels | None = None, direction: str = "higher", n_resamples: int = 10000,
              seed: int = 0) -> PairedTest:
    """Paired bootstrap test of a drop in a corpus-level statistic (the mean of the items when ``statistic`` is None).

    ``base`` and ``cand`` hold one row per item (e.g. ``(gold, pred)`` for Pearson r); ``statistic`` gets the resampled
    rows as a numpy array ((m,) or (m, k) when numeric) and returns a float. Each resample draws items (or whole
    clusters) with replacement, the same draw for base and cand. Resamples where the statistic is not finite (a
    constant column for Pearson r) are left out and counted in ``detail["dropped"]``.
    """
    _check_choice("direction", direction, DIRECTIONS)
    n = _check_lengths(base, cand)
    rng = _rng(seed, n_resamples)
    sign = 1.0 if direction == "higher" else -1.0
    codes, n_clusters = _cluster_codes(clusters, n) if clusters is not None else (None, None)
    width = n if n_clusters is None else n_clusters
    blocks = (rng.integers(0, width, size=(size, width)) for size in _block_sizes(n_resamples, width))
    if statistic is None:
        _, _, d = _paired(base, cand, direction)
        observed, sd = float(d.mean()), _sd(d)
        if codes is None:
            deltas = np.concatenate([d[draw].mean(axis=1) for draw in blocks])
        else:
            # Clusters differ in size, so a resample's mean is its total drop over its total number of items.
            sums = np.bincount(codes, weights=d, minlength=n_clusters)
            counts = np.bincount(codes, minlength=n_clusters)
            deltas = np.concatenate([sums[draw].sum(axis=1) / counts[draw].sum(axis=1) for draw in blocks])
    else:
        rb, rc = _rows("base", base), _rows("cand", cand)
        observed, sd = sign * (float(statistic(rb)) - float(statistic(rc))), math.nan  # no per-item differences
        if not math.isfinite(observed):
            raise ValueError(f"statistic is {observed} on the full data; it must be finite there")
        if codes is None:
            idxs = (row for draw in blocks for row in draw)
        else:  # items laid out cluster by cluster; a drawn cluster contributes its whole slice, repeats kept
            order, counts = np.argsort(codes, kind="stable"), np.bincount(codes, minlength=n_clusters)
            starts = np.cumsum(counts) - counts
            idxs = (_cluster_items(row, order, counts, starts) for draw in blocks for row in draw)
        deltas = np.array([sign * (float(statistic(rb[i])) - float(statistic(rc[i]))) for i in idxs])
    # Koehn (2004), "Statistical Significance Tests for Machine Translation Evaluation", as formalised in
    # Berg-Kirkpatrick, Burkett & Klein (2012), "An Empirical Investigation of Statistical Significance in NLP",
    # Algorithm 1: delta* is centred on the observed delta, not on 0, so delta* - delta stands in for the H0
    # distribution and p = P(delta* - delta >= delta) = (1 + #{delta* >= 2 delta}) / (1 + resamples).
    # Without an observed drop (delta <= 0) there is nothing to test: p = 1.0.
    finite = deltas[np.isfinite(deltas)]
    if finite.size == 0:
        raise ValueError("statistic was not finite on any bootstrap resample")
    hits = int(np.count_nonzero(finite >= 2 * observed * (1 - _REL_TOL)))
    p = (1 + hits) / (1 + finite.size) if observed > 0 else 1.0
    se = float(np.std(finite, ddof=1)) if finite.size >= 2 else math.nan
    detail = {"resamples": n_resamples, "seed": seed, "dropped": int(deltas.size - finite.size), "se": se}
    return PairedTest("bootstrap", observed, float(p), n, n_clusters, sd, detail)


def _cluster_items(row: np.ndarray, order: np.ndarray, counts: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Item indices of the drawn clusters ``row``, repeats kept; ``order`` lists the items cluster by cluster."""
    lens = counts[row]
    within = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)  # position inside its drawn cluster
    return order[np.repeat(starts[row], lens) + within]


def z_unpaired(base_value: float, base_stderr: float, cand_value: float, cand_stderr: float, *,
               direction: str = "higher") -> PairedTest:
    """Unpaired z test from two aggregates and their standard errors, for when no per-item baseline exists.

    It ignores the positive correlation between two models' outcomes on the same items, so it is conservative.
    A combined standard error of 0 or NaN (e.g. n < 2) leaves no noise model: any drop then fails (p = 0.0).
    """
    _check_choice("direction", direction, DIRECTIONS)
    if not (math.isfinite(base_value) and math.isfinite(cand_value)):
        raise ValueError(f"base_value {base_value} and cand_value {cand_value} must both be finite")
    if base_stderr < 0 or cand_stderr < 0:
        raise ValueError(f"standard errors cannot be negative: base_stderr {base_stderr}, cand_stderr {cand_stderr}")
    drop = float(base_value - cand_value if direction == "higher" else cand_value - base_value)
    se = math.sqrt(base_stderr**2 + cand_stderr**2)
    z = drop / se if se > 0 else math.nan  # se > 0 is False for 0 and NaN alike
    p = float(stats.norm.sf(z)) if se > 0 else (0.0 if drop > 0 else 1.0)
    return PairedTest("z-unpaired", drop, p, 0, None, math.nan, {"z": z, "se": se})


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in input order; reject H0_i at level alpha when ``adjusted[i] <= alpha``."""
    p = np.asarray(list(p_values), dtype=float)
    m = p.size
    if m == 0:
        return []
    bad = np.flatnonzero(np.isnan(p) | (p < 0) | (p > 1))
    if bad.size:
        raise ValueError(f"p_values[{bad[0]}] is {p[bad[0]]}; p-values must lie in [0, 1]")
    order = np.argsort(p, kind="stable")
    # The j-th smallest (1-based) is scaled by m - j + 1; the running max keeps the adjustment monotone in p.
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    return [float(x) for x in np.maximum.accumulate(scaled)[np.argsort(order)]]  # back to input order


def one_sided_z(alpha: float) -> float:
    """The standard normal quantile z with P(Z > z) = alpha."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, not {alpha!r}")
    return float(stats.norm.isf(alpha))


def _mde_z(n: int, alpha: float, power: float) -> float:
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n!r}")
    if not 0 < power < 1:
        raise ValueError(f"power must lie strictly between 0 and 1, not {power!r}")
    return one_sided_z(alpha) + one_sided_z(1 - power)


def mde_binary(n: int, discordance: float, *, alpha: float, power: float = 0.8) -> float:
    """Minimum detectable drop (0-1 scale) of a one-sided paired McNemar test at level alpha, normal approximation.

    ``discordance`` (psi) is the expected fraction of items where exactly one model is right; the SD of a per-item
    difference is then about sqrt(psi) for a small drop.
    """
    z = _mde_z(n, alpha, power)
    if not 0 <= discordance <= 1:
        raise ValueError(f"discordance is a fraction of items and must lie in [0, 1], not {discordance!r}")
    return math.inf if n == 0 else z * math.sqrt(discordance / n)


def mde_continuous(n: int, sd_diff: float, *, alpha: float, power: float = 0.8) -> float:
    """Minimum detectable drop of a one-sided paired test on a mean, from the SD of per-item differences."""
    z = _mde_z(n, alpha, power)
    if n == 0:
        return math.inf
    if not sd_diff >= 0:  # also catches NaN, e.g. the sd_diff of a bootstrap on a corpus-level statistic
        raise ValueError(f"sd_diff must be a non-negative number, not {sd_diff!r}")
    return z * sd_diff / math.sqrt(n)


def paired_test(base: Sequence[Any], cand: Sequence[Any], *, kind: str, clusters: Labels | None = None,
                direction: str = "higher", seed: int = 0, n_resamples: int = 10000,
                statistic: Statistic | None = None) -> PairedTest:
    """Run the one-sided drop test that fits the data.

    ``kind="auto"``: a bootstrap when a corpus-level ``statistic`` is given; exact McNemar when every item is 0/1
    and there are no clusters; otherwise the sign-flip permutation test (clustered when ``clusters`` is given).
    """
    _check_choice("kind", kind, KINDS)
    if kind == "auto":
        binary = statistic is None and clusters is None and is_binary(base) and is_binary(cand)
        kind = "bootstrap" if statistic is not None else "mcnemar" if binary else "permutation"
    if kind == "bootstrap":
        return bootstrap(base, cand, statistic=statistic, clusters=clusters, direction=direction,
                         n_resamples=n_resamples, seed=seed)
    if statistic is not None:
        raise ValueError(f"kind={kind!r} tests a mean of items; a corpus-level statistic needs kind='bootstrap'")
    if kind == "mcnemar":
        if clusters is not None:
            # McNemar assumes independent items; silently ignoring the clusters would overstate the evidence.
            raise ValueError("McNemar cannot account for clusters; use kind='permutation' with clusters")
        return mcnemar(base, cand, direction=direction)
    return permutation(base, cand, clusters=clusters, direction=direction, n_resamples=n_resamples, seed=seed)
