"""Group-sequential paired gate: decide a task early, after a share of its documents, without inflating alpha.

Documents are scored in the harness's shuffled order and looked at K times (by default every 10 % of the task).
At each look two one-sided tests run on the discordant pairs seen so far (b: baseline right and candidate wrong,
c: the reverse, n scored, N the task's size, t = n / N):

* FAIL, H0 "no drop": the McNemar score ``z_fail = (b - c) / sqrt(b + c)`` against a Lan-DeMets O'Brien-Fleming
  boundary at the task's alpha (the session's alpha split across its gated metrics, Bonferroni, which gives the
  same release verdict as Holm). OBF spends almost nothing early, so the last bound stays near the fixed-sample z
  and the power at the full-sample MDE is about the fixed test's.
* PASS, H0 "worse by at least the margin delta": ``z_pass = (delta - D) / SE``, D = (b - c) / n, against a
  Lan-DeMets Pocock boundary at ``alpha_pass`` (0.10): a one-sided non-inferiority bound, repeated-CI style
  (Jennison & Turnbull 1989), ``D + c_k * SE < delta``. Passing early only removes chances to fail, so the FAIL
  test's alpha holds whatever the PASS rule does (a non-binding futility bound); ``alpha_pass`` caps the chance of
  passing early a model that is exactly ``delta`` worse. SE uses pseudo-counts (b + c + 2) / (n + 2), so that an
  early look with no discordant pair cannot pass on a zero standard error, and tasks under ``SMALL_N`` documents
  also need Tango's (1998) score upper bound on the drop (variance from the constrained MLE) below the margin.
* At the last look FAIL iff ``z_fail`` crosses its last bound; otherwise the task passes, as in the fixed gate.

Boundaries come from the canonical joint distribution of the z's (corr(Z_j, Z_k) = sqrt(t_j / t_k)) by recursive
numerical integration (Armitage, McPherson & Rowe 1969; Jennison & Turnbull 2000, ch. 19), with the spending
functions of Lan & DeMets (1983). ``bounds`` reproduces gsDesign's published bounds
(tests/unit/gate/test_sequential.py). Everything is vectorised over simulated sessions, so ``bench/gate_sim.py`` runs this very code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import stats
from scipy.optimize import brentq

DEFAULT_LOOKS = 10
ALPHA_PASS = 0.10
"""Chance of an early PASS for a model exactly ``delta`` worse (the consumer's risk of stopping early)."""
SMALL_N = 500
"""Under this many documents an early PASS also needs Tango's score bound (:func:`small_task_pass`) below the
margin: with few discordant pairs the normal SE is unreliable (with the plain Wald SE an MGSM-sized task passed a
model exactly delta worse early 37 % of the time, against the 10 % allowed; with pseudo-counts alone up to 11 % at
N = 100-400, above the 10.9 % that 10,000 runs allow; with Tango's bound 4-10 %, bench/gate_sim.py --only small)."""
POWER = 0.8

# Integration grid: step and lower end. h = 0.02 gives gsDesign's bounds to four decimals.
_H = 0.02
_LO = -9.0


def spend_obf(alpha: float, t: float) -> float:
    """Lan-DeMets O'Brien-Fleming spending (one-sided): alpha(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t))."""
    if t <= 0:
        return 0.0
    return float(2 * stats.norm.sf(stats.norm.isf(alpha / 2) / math.sqrt(t)))  # 2 - 2 cdf loses early looks


def spend_pocock(alpha: float, t: float) -> float:
    """Lan-DeMets Pocock spending: alpha(t) = alpha * ln(1 + (e - 1) t)."""
    return alpha * math.log(1 + (math.e - 1) * t) if t > 0 else 0.0


SPENDING: dict[str, Callable[[float, float], float]] = {"obf": spend_obf, "pocock": spend_pocock}


def _trap_grid(lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Points lo..hi, both ends included (the grid must end exactly at the bound), with trapezoid weights."""
    z = np.linspace(lo, hi, max(int(math.ceil((hi - lo) / _H)), 1) + 1)
    w = np.full(z.size, z[1] - z[0])
    w[[0, -1]] /= 2
    return z, w


@lru_cache(maxsize=4096)
def _bounds(t: tuple[float, ...], alpha: float, spending: str) -> tuple[float, ...]:
    sf = SPENDING[spending]
    cum = [min(sf(alpha, x), alpha) for x in t[:-1]] + [alpha]
    inc = np.diff([0.0, *cum])
    inc = np.maximum(inc, 1e-300)  # a look that spends nothing has an (effectively) infinite bound
    c = [float(stats.norm.isf(inc[0]))]
    z, w = _trap_grid(_LO, min(c[0], 40.0))
    f = stats.norm.pdf(z)  # sub-density of Z_k over the paths that have not crossed yet
    for k in range(1, len(t)):
        r, s = math.sqrt(t[k - 1] / t[k]), math.sqrt(1 - t[k - 1] / t[k])
        mass = w * f

        def crossing(x: float, r: float = r, s: float = s, mass: np.ndarray = mass, k: int = k) -> float:
            return float(np.sum(mass * stats.norm.sf((x - r * z) / s))) - inc[k]

        ck = brentq(crossing, -5.0, 40.0) if crossing(40.0) < 0 else 40.0
        z2, w2 = _trap_grid(_LO, ck)
        f = (stats.norm.pdf((z2[:, None] - r * z[None, :]) / s) / s) @ mass
        z, w = z2, w2
        c.append(float(ck))
    return tuple(c)


def bounds(t: Sequence[float], alpha: float, spending: str = "obf") -> np.ndarray:
    """One-sided upper boundaries c_1..c_K for information fractions ``t`` (increasing, last 1) and total ``alpha``.

    P(Z_k >= c_k for some k) = alpha under H0, with the error spent across looks by ``spending`` ("obf" or
    "pocock"). The last fraction must be 1: a look that stops short of the task spends what is left there.
    """
    if spending not in SPENDING:
        raise ValueError(f"spending must be one of {', '.join(map(repr, SPENDING))}, not {spending!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, not {alpha!r}")
    ts = tuple(round(float(x), 12) for x in t)
    if not ts or ts[-1] != 1.0 or any(b <= a for a, b in zip(ts, ts[1:])) or ts[0] <= 0:
        raise ValueError(f"information fractions must increase strictly from > 0 to exactly 1, not {list(t)!r}")
    return np.array(_bounds(ts, float(alpha), spending))


def look_sizes(n: int, looks: int = DEFAULT_LOOKS) -> list[int]:
    """Cumulative document counts at each look: round(N k / K), k = 1..K, repeats dropped (N < K)."""
    if n < 1:
        raise ValueError(f"a task needs at least one document for a sequential test, not {n!r}")
    if looks < 1:
        raise ValueError(f"looks must be a positive integer, not {looks!r}")
    return sorted({max(1, round(n * k / looks)) for k in range(1, looks + 1)})


def default_margin(n: int, discordance: float, alpha: float, power: float = POWER) -> float:
    """The PASS margin when none is set: the full task's minimum detectable drop (0-1 scale) at level ``alpha``.

    PASS then reads "no loss as large as what the whole task could detect". Same formula as the fixed gate's MDE.
    """
    from kensa.gate.stats import mde_binary

    return mde_binary(n, discordance, alpha=alpha, power=power)


@dataclass(frozen=True)
class Design:
    """A pre-declared sequential design for one task (K looks, spending, levels, margin)."""

    n: int
    alpha: float
    margin: float
    """delta on the 0-1 scale: PASS means "worse by less than this" at level ``alpha_pass``."""
    looks: int = DEFAULT_LOOKS
    alpha_pass: float = ALPHA_PASS
    fail_spending: str = "obf"
    pass_spending: str = "pocock"
    early_pass: bool = True
    """False: never stop early to PASS, only to FAIL (the pooled test under ``--gate-pooled`` needs every document
    of every task that does not fail); the last look still passes what did not fail."""

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1 or not 0 < self.alpha_pass < 1:
            raise ValueError(f"alpha {self.alpha!r} and alpha_pass {self.alpha_pass!r} must lie in (0, 1)")
        if not self.margin > 0:
            raise ValueError(f"the PASS margin must be a positive drop (0-1 scale), not {self.margin!r}")

    @property
    def sizes(self) -> list[int]:
        return look_sizes(self.n, self.looks)

    def fail_bounds(self, sizes: Sequence[int] | None = None) -> np.ndarray:
        return bounds(_fractions(sizes or self.sizes, self.n), self.alpha, self.fail_spending)

    def pass_bounds(self, sizes: Sequence[int] | None = None) -> np.ndarray:
        cp = bounds(_fractions(sizes or self.sizes, self.n), self.alpha_pass, self.pass_spending)
        if not self.early_pass:
            cp[:-1] = np.inf  # no z reaches it: FAIL alone can stop the task before its last look
        return cp


def _fractions(sizes: Sequence[int], n: int) -> list[float]:
    if list(sizes) != sorted(set(sizes)) or sizes[-1] != n or sizes[0] < 1:
        raise ValueError(f"look sizes must increase strictly and end at the task's {n} documents, not {list(sizes)}")
    return [s / n for s in sizes]


def z_fail(s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """Score z for a drop from the sums of per-document drops d (s1 = sum d, s2 = sum d^2); 0 where s2 = 0.

    For 0/1 outcomes d is +1 (b), -1 (c) or 0, so this is McNemar's (b - c) / sqrt(b + c)."""
    s1, s2 = np.asarray(s1, dtype=float), np.asarray(s2, dtype=float)
    return np.divide(s1, np.sqrt(s2), out=np.zeros(np.broadcast(s1, s2).shape), where=s2 > 0)


def z_pass(s1: np.ndarray, s2: np.ndarray, n: np.ndarray, margin: float) -> np.ndarray:
    """Non-inferiority z: (margin - D) / SE, D = s1 / n, SE^2 = (psi~ - D^2) / n, psi~ = (s2 + 2) / (n + 2).

    For 0/1 outcomes psi~ = (b + c + 2) / (n + 2): pseudo-counts, so no discordant pair does not mean SE = 0."""
    s1, s2, n = (np.asarray(x, dtype=float) for x in (s1, s2, n))
    drop = s1 / n
    psi = (s2 + 2) / (n + 2)
    # psi~ >= s2 / n >= D^2 (|d| <= 1); they meet only when every d is +1 or every d is -1: floor the variance there.
    var = np.maximum(psi - drop**2, 1.0 / (n + 2) ** 2) / n
    return (margin - drop) / np.sqrt(var)


def exact_drop_bound(b: np.ndarray, c: np.ndarray, n: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Conservative upper confidence bound on the drop at one-sided ``level``: the Clopper-Pearson upper bound of
    the share of documents that got worse (b) minus the lower bound of the share that went from full marks to none
    (c), each at level / 2 (Bonferroni). For |d| <= 1 the mean drop is at most that difference of shares, so the
    bound holds for graded per-document scores too. Valid at any count, zero included. The gate's small-task rule
    used it before Tango's bound (:func:`tango_z`), which reaches the margin with fewer documents."""
    b, c, n = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (b, c, n)))
    half = np.broadcast_to(np.asarray(level, dtype=float) / 2, b.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        upper = np.where(b >= n, 1.0, stats.beta.isf(half, b + 1, np.maximum(n - b, 1)))
        lower = np.where(c <= 0, 0.0, stats.beta.ppf(half, np.maximum(c, 1), n - c + 1))
    return upper - lower


def tango_z(b: np.ndarray, c: np.ndarray, n: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Tango's (1998) score statistic for "the drop is ``delta``" on paired counts, signed so that large values say
    the drop is below ``delta``: ``(n delta - (b - c)) / sqrt(n (2 q + delta (1 - delta)))``.

    The drop is p_b - p_c (b: documents that got worse, c: better, n in all). q is the maximum-likelihood p_c under
    the constraint p_b - p_c = delta, the root of ``2n q^2 + B q + C = 0`` with ``B = (2n - b + c) delta - (b + c)``,
    ``C = -c delta (1 - delta)``: the variance is the one the null hypothesis implies, not the observed one, so zero
    discordant pairs still give a positive variance (n delta (1 - delta)) and the test stays valid there. 0 where
    the variance vanishes (delta = 0 and b = c = 0)."""
    b, c, n, d = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (b, c, n, delta)))
    big_b = (2 * n - b + c) * d - (b + c)
    small_c = -c * d * (1 - d)
    root = np.sqrt(np.maximum(big_b**2 - 8 * n * small_c, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        # The larger root, in the form that does not cancel when B > 0 (then C <= 0 and q is small).
        q = np.where(big_b > 0, np.divide(-2 * small_c, big_b + root, out=np.zeros_like(root), where=big_b + root > 0),
                     (root - big_b) / (4 * n))
    var = n * np.maximum(2 * q + d * (1 - d), 0.0)
    num = n * d - (b - c)
    return np.divide(num, np.sqrt(var), out=np.zeros_like(num), where=var > 0)


def tango_upper_bound(b: np.ndarray, c: np.ndarray, n: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Tango's score upper confidence bound on the drop p_b - p_c at one-sided ``level``: the largest drop that
    the score test does not reject, ``tango_z(b, c, n, U) = z_level``. The statistic increases in the hypothesised
    drop, so ``U < delta`` iff ``tango_z(b, c, n, delta) > z_level`` (the gate tests that directly). By bisection,
    vectorised; 1 when every document got worse."""
    b, c, n, z = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (b, c, n, stats.norm.isf(level))))
    lo, hi = (b - c) / n, np.ones(b.shape)
    for _ in range(60):  # 2^-60: below float resolution on [-1, 1]
        mid = (lo + hi) / 2
        below = tango_z(b, c, n, mid) < z
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return np.where(b >= n, 1.0, hi)


def small_task_pass(worse: np.ndarray, lost: np.ndarray, n: np.ndarray, margin: float,
                    bound: np.ndarray) -> np.ndarray:
    """The extra condition for an early PASS on a task under ``SMALL_N`` documents: Tango's score test rejects
    "the drop is the margin" at the look's PASS bound, i.e. Tango's upper confidence bound on the drop is below the
    margin. ``worse`` counts documents with d > 0 and ``lost`` those with d <= -1: for graded scores (|d| <= 1) the
    mean drop is at most p_worse - p_lost, and (worse, lost, the rest) is a trinomial, so the bound on that
    difference of shares bounds the mean drop too (conservatively)."""
    return tango_z(worse, lost, n, margin) >= bound


@dataclass(frozen=True)
class Stops:
    """Where simulated or real paths stopped: one entry per path."""

    decision: np.ndarray  # "fail" or "pass"
    look: np.ndarray  # 1-based look at which the path stopped
    scored: np.ndarray  # documents scored when it stopped
    early: np.ndarray  # True when it stopped before the last look


def decide(counts: np.ndarray, design: Design, sizes: Sequence[int] | None = None,
           min_fail_drop: float = 0.0) -> Stops:
    """Run the design on cumulative (b, c) counts of 0/1 outcomes, shape (paths, looks, 2)."""
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 3 or counts.shape[-1] != 2:
        raise ValueError(f"counts must have shape (paths, looks, 2), not {counts.shape}")
    b, c = counts[..., 0], counts[..., 1]
    return decide_sums(np.stack([b - c, b + c, b, c], axis=-1), design, sizes, min_fail_drop)


def decide_sums(sums: np.ndarray, design: Design, sizes: Sequence[int] | None = None,
                min_fail_drop: float = 0.0) -> Stops:
    """Run the design on cumulative sums at each look, shape (paths, looks, 4): sum d, sum d^2, #(d > 0) and
    #(d <= -1), d the per-document drop on the 0-1 scale, at the cumulative document counts ``sizes``.

    ``min_fail_drop`` (0-1 scale) is the gate's abs_floor: FAIL also needs the observed drop to reach it.
    """
    sizes = list(sizes or design.sizes)
    sums = np.asarray(sums, dtype=float)
    if sums.ndim != 3 or sums.shape[1:] != (len(sizes), 4):
        raise ValueError(f"sums must have shape (paths, {len(sizes)}, 4), not {sums.shape}")
    n = np.asarray(sizes, dtype=float)[None, :]
    s1, s2, worse, lost = (sums[..., i] for i in range(4))
    cf, cp = design.fail_bounds(sizes), design.pass_bounds(sizes)
    fail = (z_fail(s1, s2) >= cf[None, :]) & (s1 / n >= min_fail_drop - 1e-12)
    pass_ = z_pass(s1, s2, n, design.margin) >= cp[None, :]
    if design.n < SMALL_N:
        pass_ &= small_task_pass(worse, lost, n, design.margin, cp[None, :])
    pass_[:, -1] = True  # the last look passes whatever did not fail
    stop = fail | pass_
    first = np.argmax(stop, axis=1)  # every row stops by the last look
    rows = np.arange(sums.shape[0])
    decision = np.where(fail[rows, first], "fail", "pass")
    return Stops(decision, first + 1, np.asarray(sizes)[first], first < len(sizes) - 1)


@dataclass
class Look:
    k: int
    scored: int
    sum_d: float  # b - c for 0/1 outcomes
    sum_d2: float  # b + c for 0/1 outcomes
    z_fail: float
    fail_bound: float
    z_pass: float
    pass_bound: float


@dataclass
class SequentialResult:
    """One task's sequential verdict, for the report."""

    decision: str  # "fail" or "pass"
    reason: str
    look: int
    looks: int
    scored: int
    n: int
    margin: float
    looks_seen: list[Look] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"decision": self.decision, "reason": self.reason, "look": self.look, "looks": self.looks,
                "scored": self.scored, "n": self.n, "margin": self.margin}


def run_task(base: Sequence[float], cand: Sequence[float], design: Design, *, scale: float = 1.0,
             min_fail_drop: float = 0.0, direction: str = "higher") -> SequentialResult:
    """Apply the design to one task's paired per-document values in scoring order (``len`` <= N: the prefix
    scored so far). Values lie in [0, scale] (0/1 for accuracy, 0-100 for exact match); ``min_fail_drop`` is on
    the 0-1 scale. Stops at the first look that decides; a prefix that reaches no decision is an error (the
    caller must score on to the next look).
    """
    bd = np.asarray(base, dtype=float)
    cd = np.asarray(cand, dtype=float)
    if bd.shape != cd.shape or bd.ndim != 1:
        raise ValueError(f"base and cand must be flat and of equal length, not {bd.shape} and {cd.shape}")
    d = (bd - cd if direction == "higher" else cd - bd) / scale
    bad = np.flatnonzero(~np.isfinite(d) | (np.abs(d) > 1 + 1e-9))
    if bad.size:
        raise ValueError(f"doc {bad[0]}: base {bd[bad[0]]} and cand {cd[bad[0]]} differ by more than the metric's "
                         f"scale {scale:g}; the sequential gate needs per-document values in [0, scale]")
    sizes = [s for s in design.sizes if s <= d.size]
    if not sizes:
        raise ValueError(f"{d.size} documents scored: fewer than the first look's {design.sizes[0]}")
    cum = np.cumsum(np.stack([d, d**2, d > 0, d <= -1 + 1e-9], axis=1), axis=0)
    seen_sums = cum[np.asarray(sizes) - 1]
    full = design.sizes
    padded = np.concatenate([seen_sums, np.repeat(seen_sums[-1:], len(full) - len(sizes), axis=0)])
    stops = decide_sums(padded[None], design, full, min_fail_drop)
    k = int(stops.look[0])
    if k > len(sizes) or (k == len(sizes) and len(sizes) < len(full) and not stops.early[0]):
        raise ValueError(f"no decision after {d.size} of {design.n} documents; score on to look {len(sizes) + 1}")
    cf, cp = design.fail_bounds(), design.pass_bounds()
    seen = [Look(i + 1, s, float(row[0]), float(row[1]), float(z_fail(row[0], row[1])), float(cf[i]),
                 float(z_pass(row[0], row[1], s, design.margin)), float(cp[i]))
            for i, (s, row) in enumerate(zip(sizes, seen_sums))]
    last = seen[k - 1]
    decision = str(stops.decision[0])
    reason = stop_reason(decision, k, len(full), design, last, last.sum_d / last.scored)
    return SequentialResult(decision, reason, k, len(full), last.scored, design.n, design.margin, seen[:k])


def stop_reason(decision: str, k: int, looks: int, design: Design, last: Look, drop: float, note: str = "") -> str:
    """Why a task stopped at look ``k`` of ``looks`` (``drop`` on the 0-1 scale; ``note`` names the test used)."""
    extra = f", {note}" if note else ""
    if decision == "fail":
        return (f"drop {100 * drop:.2f} pt: z {last.z_fail:.2f} >= bound {last.fail_bound:.2f} at look "
                f"{k}/{looks}{extra}")
    if k < looks:
        return (f"not worse by {100 * design.margin:.2f} pt: z {last.z_pass:.2f} >= bound {last.pass_bound:.2f} "
                f"at look {k}/{looks}{extra}")
    return f"no drop detected after all {design.n} documents (z {last.z_fail:.2f} < {last.fail_bound:.2f}{extra})"
