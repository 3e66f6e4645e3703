"""kensa.gate.stats: hand-computed values first, then properties (hypothesis), then every validation error.

Expected numbers are literals with their arithmetic beside them, never recomputed through the code under test.
Monte Carlo tests are seeded, so they are deterministic; their tolerances are sized from the Monte Carlo standard
error so that a change of seed or of the draw order would still pass.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import pearsonr

from kensa.gate.stats import (
    PairedTest,
    bootstrap,
    holm,
    is_binary,
    mcnemar,
    mde_binary,
    mde_continuous,
    one_sided_z,
    paired_test,
    permutation,
    z_unpaired,
)

FAST = settings(max_examples=60)


def pairs(b: int, c: int, both_right: int = 3, both_wrong: int = 2) -> tuple[list[float], list[float]]:
    """0/1 outcomes with b items only the baseline got right, c only the candidate, plus concordant items."""
    base = [1.0] * b + [0.0] * c + [1.0] * both_right + [0.0] * both_wrong
    cand = [0.0] * b + [1.0] * c + [1.0] * both_right + [0.0] * both_wrong
    return base, cand


# --- McNemar -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("b", "c", "alternative", "expected"),
    [
        (5, 0, "drop", 0.03125),  # P(X >= 5 | Bin(5, 1/2)) = 0.5**5
        (3, 1, "drop", 0.3125),  # (C(4,3) + C(4,4)) / 2**4 = (4 + 1) / 16 = 5/16
        (1, 3, "drop", 0.9375),  # P(X >= 1 | Bin(4, 1/2)) = 1 - 1/16 = 15/16
        (0, 0, "drop", 1.0),  # no discordant item: no evidence
        (10, 5, "drop", 0.15087890625),  # sum C(15,k), k=10..15 = 3003+1365+455+105+15+1 = 4944; 4944 / 2**15
        (5, 0, "gain", 1.0),  # P(X >= c=0) = 1
        (1, 3, "gain", 0.3125),  # the mirror of (3, 1, "drop"): 5/16
        (5, 0, "two-sided", 0.0625),  # P(X >= 5) + P(X <= 0) = 2 / 32
        (3, 1, "two-sided", 0.625),  # P(X >= 3) + P(X <= 1) = 5/16 + 5/16
        (0, 0, "two-sided", 1.0),
    ],
)
def test_mcnemar_hand_values(b, c, alternative, expected):
    base, cand = pairs(b, c)
    t = mcnemar(base, cand, alternative=alternative)
    assert t.p_value == pytest.approx(expected, abs=1e-12)
    assert t.method == "mcnemar-exact"
    assert t.detail["b"] == b and t.detail["c"] == c
    assert t.n == b + c + 5 and t.n_clusters is None
    assert t.drop == pytest.approx((b - c) / (b + c + 5))  # concordant items dilute the drop, not the evidence


def test_mcnemar_lower_is_better_swaps_b_and_c():
    # Error rates: 1 = the model erred. The candidate erred on 5 items the baseline got right, so it is worse.
    base, cand = [0.0] * 5 + [1.0, 0.0], [1.0] * 5 + [1.0, 0.0]
    lower = mcnemar(base, cand, direction="lower")
    assert (lower.detail["b"], lower.detail["c"]) == (5, 0)
    assert lower.p_value == pytest.approx(0.03125)  # 0.5**5
    assert lower.drop == pytest.approx(5 / 7)  # candidate - baseline
    higher = mcnemar(base, cand)  # read as accuracy, the candidate is better
    assert (higher.detail["b"], higher.detail["c"]) == (0, 5)
    assert higher.p_value == 1.0


def test_mcnemar_sd_diff_is_the_sample_sd_of_differences():
    base, cand = pairs(2, 1, both_right=1, both_wrong=0)  # differences 1, 1, -1, 0: mean 1/4
    # sum of squared deviations = 2 * (3/4)**2 + (5/4)**2 + (1/4)**2 = 18/16 + 25/16 + 1/16 = 44/16; / (n - 1 = 3)
    assert mcnemar(base, cand).sd_diff == pytest.approx(math.sqrt(44 / 48))
    assert mcnemar([1.0], [0.0]).sd_diff == 0.0  # n < 2


def test_mcnemar_accepts_bools_and_refuses_non_binary_items():
    assert mcnemar([True, True], [False, True]).detail == {"b": 1, "c": 0, "alternative": "drop"}
    with pytest.raises(ValueError, match=r"cand\[2\] is 0\.5"):
        mcnemar([1, 0, 1], [1, 0, 0.5])


def test_is_binary():
    assert is_binary([0, 1, 1.0, 0.0, True])
    assert not is_binary([0, 1, 0.5])
    assert not is_binary([0, float("nan")])
    assert not is_binary(["a", "b"])


@FAST
@given(st.lists(st.tuples(st.sampled_from([0.0, 1.0]), st.sampled_from([0.0, 1.0])), min_size=1, max_size=60))
def test_mcnemar_properties(items):
    base, cand = [x for x, _ in items], [y for _, y in items]
    for alternative in ("drop", "gain", "two-sided"):
        assert 0.0 <= mcnemar(base, cand, alternative=alternative).p_value <= 1.0
    # Swapping the models turns a test for a drop into a test for a gain.
    assert mcnemar(cand, base).p_value == mcnemar(base, cand, alternative="gain").p_value
    # Two-sided is at most twice the smaller one-sided p (equal unless capped at 1).
    one_sided = min(mcnemar(base, cand).p_value, mcnemar(base, cand, alternative="gain").p_value)
    assert mcnemar(base, cand, alternative="two-sided").p_value == pytest.approx(min(1.0, 2 * one_sided))


# --- permutation -------------------------------------------------------------------------------------------------


def test_permutation_identical_arrays_give_p_exactly_one():
    values = [0.3, 0.7, 0.1, 0.9]
    assert permutation(values, values).p_value == 1.0
    assert permutation(values, values, clusters=["a", "a", "b", "b"]).p_value == 1.0
    assert permutation(values, values).drop == 0.0


def test_permutation_clear_drop_reaches_the_smallest_possible_p():
    t = permutation([1.0] * 30, [0.0] * 30, n_resamples=10000)
    # Only the all-plus sign pattern (probability 2**-30) ties the observed statistic, so no resample hits.
    assert t.p_value == pytest.approx(1 / 10001)
    assert t.drop == 1.0 and t.n == 30 and t.detail["resamples"] == 10000


def test_permutation_is_deterministic_per_seed():
    base, cand = pairs(10, 5, both_right=25, both_wrong=0)
    assert permutation(base, cand, seed=3) == permutation(base, cand, seed=3)
    assert permutation(base, cand, seed=3).p_value != permutation(base, cand, seed=4).p_value


def test_permutation_matches_exact_mcnemar_on_binary_items():
    # With +-1 differences on the 15 discordant items, the sign-flip null of #plus is exactly Bin(15, 1/2), so the
    # Monte Carlo p estimates the exact McNemar p itself: 4944 / 2**15 = 0.15088 one-sided, twice that two-sided.
    # At 20000 resamples its SE is sqrt(0.151 * 0.849 / 20000) = 0.0025 (0.0032 two-sided); 0.0125 is about 4-5 SE.
    base, cand = pairs(10, 5, both_right=25, both_wrong=0)
    assert permutation(base, cand, n_resamples=20000).p_value == pytest.approx(0.15087890625, abs=0.0125)
    two = permutation(base, cand, n_resamples=20000, alternative="two-sided").p_value
    assert two == pytest.approx(0.3017578125, abs=0.0125)
    assert permutation(base, cand, alternative="gain").p_value > 0.9  # P(X >= 5 | Bin(15, 1/2)) = 0.94


def test_permutation_with_few_clusters_cannot_be_very_significant():
    # 3 paragraphs of 10 questions, every one dropping: only 2**3 = 8 sign patterns, one of them as extreme as the
    # observed one, so p is about 1/8 however clear the per-item picture looks.
    base, cand, clusters = [1.0] * 30, [0.0] * 30, [i // 10 for i in range(30)]
    t = permutation(base, cand, clusters=clusters)
    assert t.p_value >= 0.1
    assert t.p_value == pytest.approx(0.125, abs=0.015)  # MC SE sqrt(0.125 * 0.875 / 10000) = 0.0033
    assert t.n == 30 and t.n_clusters == 3
    assert permutation(base, cand).p_value < 0.001  # treating the items as independent overstates the evidence


def test_permutation_drop_concentrated_in_one_cluster():
    # 10 paragraphs of 10 items; all 10 drops are in paragraph 0. Cluster sums: [10, 0, ..., 0], so only paragraph
    # 0's sign matters: p = P(sign = +) = 1/2. Unclustered, the 10 dropping items look very significant.
    base = [1.0] * 10 + [1.0, 0.0] * 45
    cand = [0.0] * 10 + [1.0, 0.0] * 45
    clusters = [f"para-{i // 10}" for i in range(100)]
    assert permutation(base, cand, clusters=clusters).p_value == pytest.approx(0.5, abs=0.02)  # SE 0.005
    assert permutation(base, cand).p_value < 0.01


def test_permutation_lower_direction_equals_swapped_higher():
    base, cand = [0.2, 0.5, 0.4, 0.9, 0.3], [0.1, 0.6, 0.2, 0.5, 0.3]
    assert permutation(base, cand, direction="lower").p_value == permutation(cand, base).p_value


@settings(max_examples=25)
@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(-5, 5)), min_size=1, max_size=30))
def test_permutation_properties(items):
    base, cand = [x for x, _ in items], [y for _, y in items]
    drop = permutation(base, cand, n_resamples=500)
    assert 1 / 501 <= drop.p_value <= 1.0
    # The sign matrix does not depend on the data, so a swap turns the drop tail into the gain tail exactly.
    assert permutation(cand, base, n_resamples=500).p_value == permutation(
        base, cand, n_resamples=500, alternative="gain"
    ).p_value


# --- bootstrap ---------------------------------------------------------------------------------------------------


def pearson(rows: np.ndarray) -> float:
    return pearsonr(rows[:, 0], rows[:, 1]).statistic


def similarity_rows(seed: int = 1, n: int = 60) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(gold, pred) rows: the baseline tracks the gold scores, the candidate predicts noise."""
    rng = np.random.default_rng(seed)
    gold = rng.normal(size=n)
    good, noise = gold + rng.normal(scale=0.3, size=n), rng.normal(size=n)
    return list(zip(gold, good, strict=True)), list(zip(gold, noise, strict=True))


def test_bootstrap_pearson_detects_a_candidate_that_predicts_noise():
    base, cand = similarity_rows()
    t = bootstrap(base, cand, statistic=pearson, n_resamples=500)
    assert t.method == "bootstrap" and t.n == 60
    assert t.drop > 0.5  # r of about 0.95 versus about 0
    assert t.p_value <= 0.01  # in fact 1/501: no resample gets a drop of twice the observed one
    assert math.isnan(t.sd_diff)  # a corpus-level statistic has no per-item differences
    # Mirrored: the candidate is better, so there is no drop to test.
    assert bootstrap(cand, base, statistic=pearson, n_resamples=50).p_value == 1.0


def test_bootstrap_identical_gives_p_exactly_one():
    base, _ = similarity_rows()
    assert bootstrap(base, base, statistic=pearson, n_resamples=50).p_value == 1.0
    assert bootstrap([0.0, 1.0, 1.0], [0.0, 1.0, 1.0]).p_value == 1.0


def test_bootstrap_is_deterministic_per_seed():
    base, cand = pairs(10, 5, both_right=25, both_wrong=0)
    assert bootstrap(base, cand, seed=7) == bootstrap(base, cand, seed=7)
    assert bootstrap(base, cand, seed=7).p_value != bootstrap(base, cand, seed=8).p_value
    rows_b, rows_c = similarity_rows(n=20)
    one = bootstrap(rows_b, rows_c, statistic=pearson, n_resamples=200, seed=5)
    again = bootstrap(rows_b, rows_c, statistic=pearson, n_resamples=200, seed=5)
    assert (one.p_value, one.drop, one.detail) == (again.p_value, again.drop, again.detail)


def test_bootstrap_statistic_path_matches_mean_path():
    # np.mean as a statistic must see the same draws as the built-in mean (binary data: no near-ties).
    base = [1.0] * 10 + [1.0, 0.0] * 45
    cand = [0.0] * 6 + [1.0] * 4 + [1.0, 0.0] * 45
    clusters = [i // 7 for i in range(100)]  # unequal sizes: 14 clusters of 7, one of 2
    for cl in (None, clusters):
        mean_path = bootstrap(base, cand, clusters=cl, n_resamples=2000)
        stat_path = bootstrap(base, cand, statistic=np.mean, clusters=cl, n_resamples=2000)
        assert stat_path.p_value == mean_path.p_value
        assert stat_path.drop == pytest.approx(mean_path.drop) == pytest.approx(0.06)


def test_bootstrap_clusters_resample_whole_paragraphs():
    # All 10 drops are in paragraph 0 of 10. Resampling paragraphs, the drop is K/10 with K ~ Bin(10, 1/10) draws of
    # paragraph 0; the observed drop is 1/10, so p = P(K >= 2) = 1 - 0.9**10 - 10 * 0.1 * 0.9**9 = 0.2639.
    base = [1.0] * 10 + [1.0, 0.0] * 45
    cand = [0.0] * 10 + [1.0, 0.0] * 45
    clusters = [i // 10 for i in range(100)]
    t = bootstrap(base, cand, clusters=clusters)
    assert t.n_clusters == 10 and t.n == 100
    assert t.p_value == pytest.approx(0.2639, abs=0.02)  # MC SE sqrt(0.26 * 0.74 / 10000) = 0.0044
    assert bootstrap(base, cand).p_value < 0.01  # items as independent: P(Bin(100, 0.1) >= 20) = 0.002


def test_bootstrap_lower_direction():
    base, cand = [0.2, 0.4, 0.3, 0.5], [0.4, 0.6, 0.5, 0.7]  # a loss went up by 0.2 everywhere
    t = bootstrap(base, cand, direction="lower", n_resamples=200)
    assert t.drop == pytest.approx(0.2)
    assert t.p_value == pytest.approx(1 / 201)  # every resample gives exactly 0.2 < 0.4
    assert bootstrap(base, cand, n_resamples=200).p_value == 1.0


# --- z_unpaired --------------------------------------------------------------------------------------------------


def test_z_unpaired_hand_value():
    t = z_unpaired(0.80, 0.03, 0.74, 0.04)
    # se = sqrt(0.03**2 + 0.04**2) = 0.05 (3-4-5); z = 0.06 / 0.05 = 1.2; p = 1 - Phi(1.2)
    assert t.detail["se"] == pytest.approx(0.05)
    assert t.detail["z"] == pytest.approx(1.2)
    assert t.p_value == pytest.approx(0.11506967, abs=1e-7)
    assert (t.method, t.n, t.n_clusters) == ("z-unpaired", 0, None) and math.isnan(t.sd_diff)
    lower = z_unpaired(0.20, 0.03, 0.26, 0.04, direction="lower")  # an error rate rising by 0.06
    assert lower.drop == pytest.approx(0.06) and lower.p_value == pytest.approx(0.11506967, abs=1e-7)


@pytest.mark.parametrize("se", [0.0, float("nan")])
def test_z_unpaired_without_a_standard_error(se):
    assert z_unpaired(0.80, se, 0.79, se).p_value == 0.0  # no noise model: any drop fails
    assert z_unpaired(0.80, se, 0.80, se).p_value == 1.0
    assert z_unpaired(0.80, se, 0.81, se).p_value == 1.0


# --- Holm --------------------------------------------------------------------------------------------------------


def test_holm_hand_example():
    # m = 4. Sorted: 0.005 (#3), 0.01 (#0), 0.03 (#2), 0.04 (#1); scaled by 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04;
    # running max: 0.02, 0.03, 0.06, 0.06. Back in input order: [0.03, 0.06, 0.06, 0.02].
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # 2 * 0.5 = 1.0; max(1.0, min(1, 0.6)) = 1.0
    assert holm([0.02, 0.02]) == pytest.approx([0.04, 0.04])  # ties get the same adjusted value
    assert holm([]) == []
    assert holm([0.3]) == [0.3]


@FAST
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20))
def test_holm_properties(p):
    adj, m = holm(p), len(p)
    assert len(adj) == m
    assert all(raw <= a <= 1.0 for raw, a in zip(p, adj, strict=True))
    assert all(a <= min(1.0, m * raw) + 1e-12 for raw, a in zip(p, adj, strict=True))  # never worse than Bonferroni
    ranked = sorted(range(m), key=lambda i: p[i])
    assert all(adj[i] <= adj[j] for i, j in pairwise(ranked))  # monotone in the raw order
    assert adj[ranked[0]] == pytest.approx(min(1.0, m * p[ranked[0]]))
    if m == 1:
        assert adj == p


@pytest.mark.parametrize("bad", [[0.1, float("nan")], [1.5], [-0.1]])
def test_holm_refuses_values_that_are_not_p_values(bad):
    with pytest.raises(ValueError, match=rf"p_values\[{len(bad) - 1}\]"):
        holm(bad)


# --- minimum detectable effects ----------------------------------------------------------------------------------


def test_one_sided_z():
    assert one_sided_z(0.05) == pytest.approx(1.6448536, abs=1e-7)
    assert one_sided_z(0.025) == pytest.approx(1.9599640, abs=1e-7)
    for alpha in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="alpha"):
            one_sided_z(alpha)


def test_mde_binary_hand_value():
    # (z_0.95 + z_0.8) * sqrt(0.10 / 1000) = (1.6449 + 0.8416) * 0.01 = 0.02486: about 2.5 points at n=1000, psi=10%
    assert mde_binary(1000, 0.10, alpha=0.05) == pytest.approx(0.02486, abs=1e-5)
    assert mde_binary(4000, 0.10, alpha=0.05) == pytest.approx(0.02486 / 2, abs=1e-5)  # 4x the items, half the MDE
    assert mde_binary(0, 0.10, alpha=0.05) == math.inf
    # The binary MDE is the continuous one with sd_diff = sqrt(psi).
    assert mde_binary(500, 0.2, alpha=0.01) == pytest.approx(mde_continuous(500, math.sqrt(0.2), alpha=0.01))


def test_mde_continuous_hand_value():
    # (1.6449 + 0.8416) * 0.5 / sqrt(100) = 2.4865 * 0.05 = 0.12432
    assert mde_continuous(100, 0.5, alpha=0.05) == pytest.approx(0.12432, abs=1e-5)
    # power 0.5 drops z_power to 0: 1.6449 * 0.05
    assert mde_continuous(100, 0.5, alpha=0.05, power=0.5) == pytest.approx(0.082243, abs=1e-6)
    assert mde_continuous(0, 0.5, alpha=0.05) == math.inf
    assert mde_continuous(0, float("nan"), alpha=0.05) == math.inf  # z_unpaired's n=0, sd_diff=nan


def test_mde_refuses_bad_input():
    with pytest.raises(ValueError, match="sd_diff"):
        mde_continuous(100, float("nan"), alpha=0.05)
    with pytest.raises(ValueError, match="discordance"):
        mde_binary(100, 1.5, alpha=0.05)
    with pytest.raises(ValueError, match="power"):
        mde_binary(100, 0.1, alpha=0.05, power=1.0)
    with pytest.raises(ValueError, match="n must be"):
        mde_continuous(-1, 0.5, alpha=0.05)


# --- dispatcher --------------------------------------------------------------------------------------------------


def test_paired_test_auto_picks_the_fitting_test():
    base, cand = pairs(5, 1)
    assert paired_test(base, cand, kind="auto").method == "mcnemar-exact"
    assert paired_test(base, cand, kind="auto") == mcnemar(base, cand)
    clusters = [i // 2 for i in range(len(base))]
    assert paired_test(base, cand, kind="auto", clusters=clusters).method == "permutation"
    assert paired_test([0.5, 0.2], [0.1, 0.2], kind="auto").method == "permutation"
    rows_b, rows_c = similarity_rows(n=20)
    assert paired_test(rows_b, rows_c, kind="auto", statistic=pearson, n_resamples=50).method == "bootstrap"
    assert paired_test(base, cand, kind="bootstrap", n_resamples=50).method == "bootstrap"
    assert paired_test(base, cand, kind="permutation", seed=2) == permutation(base, cand, seed=2)


def test_paired_test_refuses_contradictory_requests():
    base, cand = pairs(5, 1)
    with pytest.raises(ValueError, match="clusters"):
        paired_test(base, cand, kind="mcnemar", clusters=list(range(len(base))))
    with pytest.raises(ValueError, match="bootstrap"):
        paired_test(base, cand, kind="permutation", statistic=np.mean)
    with pytest.raises(ValueError, match="kind"):
        paired_test(base, cand, kind="wilcoxon")


# --- validation: every public function that takes items ----------------------------------------------------------

ITEM_TESTS = {
    "mcnemar": mcnemar,
    "permutation": lambda b, c, **kw: permutation(b, c, n_resamples=20, **kw),
    "bootstrap": lambda b, c, **kw: bootstrap(b, c, n_resamples=20, **kw),
    "paired_test": lambda b, c, **kw: paired_test(b, c, kind="auto", n_resamples=20, **kw),
}


@pytest.mark.parametrize("fn", ITEM_TESTS.values(), ids=ITEM_TESTS.keys())
def test_validation_errors(fn):
    with pytest.raises(ValueError, match=r"base has 3 items but cand has 2"):
        fn([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="empty"):
        fn([], [])
    with pytest.raises(ValueError, match=r"base\[1\] is nan"):
        fn([1, float("nan"), 0], [1, 0, 0])
    with pytest.raises(ValueError, match=r"cand\[2\] is inf"):
        fn([1, 0, 0], [1, 0, float("inf")])
    with pytest.raises(ValueError, match="direction"):
        fn([1, 0], [0, 0], direction="up")


@pytest.mark.parametrize("fn", [permutation, bootstrap, paired_test])
def test_clusters_must_label_every_item(fn):
    kw = {"kind": "auto"} if fn is paired_test else {}
    with pytest.raises(ValueError, match="clusters has 2 labels but there are 3 items"):
        fn([1, 0, 1], [0, 0, 1], clusters=["a", "b"], **kw)


def test_other_validation_errors():
    with pytest.raises(ValueError, match="alternative"):
        mcnemar([1], [0], alternative="less")
    with pytest.raises(ValueError, match="alternative"):
        permutation([1], [0], alternative="greater")
    with pytest.raises(ValueError, match="n_resamples"):
        permutation([1], [0], n_resamples=0)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap([1], [0], n_resamples=2.5)
    with pytest.raises(ValueError, match="direction"):
        z_unpaired(0.8, 0.01, 0.7, 0.01, direction="down")
    with pytest.raises(ValueError, match="stderr"):
        z_unpaired(0.8, -0.01, 0.7, 0.01)
    with pytest.raises(ValueError, match="finite"):
        z_unpaired(float("nan"), 0.01, 0.7, 0.01)
    with pytest.raises(ValueError, match=r"base\[1\]"):
        bootstrap([(1.0, 2.0), (float("nan"), 1.0)], [(1.0, 2.0), (1.0, 1.0)], statistic=pearson)


@FAST
@given(
    st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=20),
    st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=20),
)
def test_any_length_mismatch_is_refused_with_both_lengths(base, cand):
    if len(base) == len(cand):
        cand = [*cand, 0.0]
    for fn in ITEM_TESTS.values():
        with pytest.raises(ValueError, match=rf"base has {len(base)} items but cand has {len(cand)}"):
            fn(base, cand)


@FAST
@given(st.data())
def test_any_non_finite_item_is_refused_by_index(data):
    n = data.draw(st.integers(1, 20))
    base, cand = [1.0] * n, [0.0] * n
    i = data.draw(st.integers(0, n - 1))
    which = data.draw(st.sampled_from(["base", "cand"]))
    (base if which == "base" else cand)[i] = data.draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    for fn in ITEM_TESTS.values():
        with pytest.raises(ValueError, match=rf"{which}\[{i}\] is"):
            fn(base, cand)


def test_paired_test_is_a_frozen_record():
    t = mcnemar([1, 0], [0, 0])
    assert isinstance(t, PairedTest)
    with pytest.raises(AttributeError):
        t.p_value = 0.0  # type: ignore[misc]


def test_bootstrap_takes_none_as_an_unparsed_prediction_but_refuses_nan():
    """JSTS stores an unparseable output as ``[gold, None]``; the correlation leaves it out. A NaN given as a
    number is still a bug in the caller."""
    from kensa.metrics.core import pearson

    golds = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] * 5
    base = [[g, g] for g in golds]
    cand = [[g, None if i % 3 == 0 else g] for i, g in enumerate(golds)]

    def stat(rows):
        return pearson(rows[:, 0], rows[:, 1])

    result = bootstrap(base, cand, statistic=stat, n_resamples=200, seed=1)
    assert 0.0 <= result.p_value <= 1.0
    with pytest.raises(ValueError, match=r"cand\[0\] is \[0.0, nan\]"):
        bootstrap(base, [[g, float("nan")] for g in golds], statistic=stat, n_resamples=10)
