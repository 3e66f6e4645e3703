"""The sequential gate and the pooled test: boundaries against gsDesign, error rates on small simulated counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from bench import gate_sim
from kensa.gate import pooled, sequential
from kensa.gate.stats import holm
from tests.helpers import accept_false_alarms as _accept

TEN = [k / 10 for k in range(1, 11)]



# -- boundaries ---------------------------------------------------------------------------------

def test_bounds_match_gsdesign_published_values():
    # gsDesign, K = 5 equally spaced, one-sided alpha = 0.025 (sfLDOF and sfLDPocock).
    obf = sequential.bounds([0.2, 0.4, 0.6, 0.8, 1.0], 0.025, "obf")
    pocock = sequential.bounds([0.2, 0.4, 0.6, 0.8, 1.0], 0.025, "pocock")
    assert obf == pytest.approx([4.877, 3.357, 2.680, 2.290, 2.031], abs=0.002)
    assert pocock == pytest.approx([2.438, 2.427, 2.410, 2.397, 2.386], abs=0.002)


def test_bounds_at_a_session_split_level_keep_the_first_look_finite():
    # alpha/8 spends ~5e-18 at t = 0.1: computed as 2 - 2 cdf it rounds to 0 and the first bound explodes.
    c = sequential.bounds(TEN, 0.05 / 8, "obf")
    assert c == pytest.approx([8.57, 6.00, 4.86, 4.17, 3.71, 3.37, 3.11, 2.90, 2.73, 2.58], abs=0.01)
    assert c[-1] > stats.norm.isf(0.05 / 8)  # the price of the looks: a final bound above the fixed z (2.50)


def test_bounds_are_crossed_alpha_of_the_time_by_brownian_paths():
    rng = np.random.default_rng(3)
    s, alpha = 20000, 0.05
    z = np.cumsum(rng.standard_normal((s, 10)), axis=1) / np.sqrt(np.arange(1, 11))  # canonical Z_k
    rate = np.mean(np.any(z >= sequential.bounds(TEN, alpha, "obf"), axis=1))
    assert abs(rate - alpha) <= 3 * math.sqrt(alpha * (1 - alpha) / s)


@pytest.mark.parametrize("t", [[0.5, 0.9], [0.5, 0.5, 1.0], [0.0, 1.0], []])
def test_bounds_refuse_bad_information_fractions(t):
    with pytest.raises(ValueError, match="information fractions"):
        sequential.bounds(t, 0.05)


def test_look_sizes_cover_the_task_when_n_is_not_a_multiple_of_k_or_below_it():
    assert sequential.look_sizes(1119) == [112, 224, 336, 448, 560, 671, 783, 895, 1007, 1119]
    assert sequential.look_sizes(4) == [1, 2, 3, 4]
    assert sequential.look_sizes(25, 4) == [6, 12, 19, 25]


# -- one task -----------------------------------------------------------------------------------

def _design(n: int = 1119, alpha: float = 0.05 / 8) -> sequential.Design:
    return sequential.Design(n, alpha, sequential.default_margin(n, 0.10, alpha))


def test_identical_models_pass_at_the_first_look_without_nan():
    base = np.tile([1.0, 0.0, 1.0], 373)
    result = sequential.run_task(base, base, _design())
    assert (result.decision, result.look, result.scored) == ("pass", 1, 112)
    assert all(math.isfinite(x) for x in (result.looks_seen[0].z_fail, result.looks_seen[0].z_pass))


def test_a_small_identical_task_passes_early_once_tangos_bound_is_below_the_margin():
    base = np.ones(250)
    result = sequential.run_task(base, base, _design(250))
    z = np.array([look.pass_bound for look in result.looks_seen])
    n = np.array([look.scored for look in result.looks_seen])
    # zero discordant pairs: Tango's bound solves n U / (1 - U) = z^2, U = z^2 / (n + z^2); the copy stops at the
    # first look where that is below the margin (look 3 of 10, 75 documents).
    below = z**2 / (n + z**2) < result.margin
    assert result.decision == "pass" and result.look == 3 and below[-1] and not below[:-1].any()
    level = stats.norm.sf(z)
    assert sequential.tango_upper_bound(np.zeros(3), 0, n, level) == pytest.approx(z**2 / (n + z**2), abs=1e-9)
    assert sequential.exact_drop_bound(0, 0, 25, 0.02) == pytest.approx(1 - 0.01 ** (1 / 25))


def test_a_small_task_with_a_few_balanced_discordant_pairs_passes_where_clopper_pearson_waited():
    # N = 250 (MGSM's size), one b and one c in every 25 documents: no drop, 8 % discordant.
    base, cand = np.ones(250), np.ones(250)
    base[5::25], cand[17::25] = 0.0, 0.0
    result = sequential.run_task(base, cand, _design(250))
    assert (result.decision, result.look, result.scored) == ("pass", 4, 100)
    level = stats.norm.sf(result.looks_seen[-1].pass_bound)
    assert sequential.tango_upper_bound(4, 4, 100, level) < result.margin  # 6.49 pt < 6.68 pt
    assert sequential.exact_drop_bound(4, 4, 100, level) > result.margin  # 9.98 pt: the former rule waited to look 8
    assert sequential.tango_upper_bound(3, 3, 75, stats.norm.sf(result.looks_seen[-2].pass_bound)) > result.margin


def test_a_small_graded_task_counts_every_document_that_lost_anything_as_worse():
    # F1-like scores: 20 % of the documents lose 0.05 and 20 % gain 0.05 (no mean drop; z_pass alone would pass at
    # look 2). Tango's bound runs on (#d > 0, #d <= -1) = (20 %, 0), which bounds the mean drop from above but
    # stays over the 6.7-point margin: no early PASS, a PASS at the last look.
    base = np.full(250, 0.8)
    cand = base - np.where(np.arange(250) % 5 == 0, 0.05, 0.0) + np.where(np.arange(250) % 5 == 1, 0.05, 0.0)
    result = sequential.run_task(base, cand, _design(250))
    assert (result.decision, result.look) == ("pass", 10)
    assert result.looks_seen[1].z_pass >= result.looks_seen[1].pass_bound


def test_a_model_wrong_everywhere_fails_early_and_all_discordant_pairs_are_finite():
    base, cand = np.ones(1119), np.zeros(1119)
    result = sequential.run_task(base, cand, _design())
    assert (result.decision, result.look) == ("fail", 1)
    z = sequential.z_pass(np.array([112]), np.array([0]), np.array([112]), 0.03)
    assert np.isfinite(z).all() and z[0] < 0


def test_a_better_candidate_passes_and_a_prefix_without_a_decision_asks_for_more():
    rng = np.random.default_rng(0)
    base = (rng.random(1119) < 0.5).astype(float)
    cand = np.where(rng.random(1119) < 0.2, 1.0, base)
    assert sequential.run_task(base, cand, _design()).decision == "pass"
    noisy = np.where(rng.random(1119) < 0.3, 1 - base, base)  # 30 % discordant, no drop: undecided at look 1
    with pytest.raises(ValueError, match="score on to look 2"):
        sequential.run_task(base[:150], noisy[:150], _design())


def test_graded_scores_use_the_same_sums_and_values_beyond_the_scale_are_refused():
    # Exact match on a 0-100 scale is the 0/1 case scaled: the same decision at the same look.
    rng = np.random.default_rng(2)
    base = (rng.random(1119) < 0.7).astype(float)
    cand = np.where(rng.random(1119) < 0.1, 0.0, base)
    binary, graded = sequential.run_task(base, cand, _design()), sequential.run_task(100 * base, 100 * cand,
                                                                                         _design(), scale=100)
    assert (binary.decision, binary.look, binary.reason) == (graded.decision, graded.look, graded.reason)
    with pytest.raises(ValueError, match="doc 1: base 1.0 and cand -1.0 differ by more than"):
        sequential.run_task([1, 1], [1, -1], _design(2))
    with pytest.raises(ValueError, match="margin"):
        sequential.Design(100, 0.05, 0.0)


# -- Tango's score bound: the small-task PASS rule ---------------------------------------------------

def test_tango_interval_matches_the_published_one():
    # Cavo et al. (2012), complete response before and after consolidation, n12 = 6, n21 = 16, N = 161: Tango's
    # 95 % score interval for p12 - p21 is -0.1240 to -0.0054 (Fagerland, Lydersen & Laake 2017, ch. 8).
    upper = sequential.tango_upper_bound(6, 16, 161, 0.025)
    lower = -sequential.tango_upper_bound(16, 6, 161, 0.025)
    assert (round(float(lower), 4), round(float(upper), 4)) == (-0.1240, -0.0054)


def _score_z_by_numerical_mle(b: int, c: int, n: int, delta: float) -> float:
    """Tango's statistic with the constrained MLE of p_c found by maximising the trinomial likelihood numerically."""
    from scipy.optimize import minimize_scalar
    from scipy.special import xlogy

    def nll(q: float) -> float:
        return -(xlogy(b, q + delta) + xlogy(c, q) + xlogy(n - b - c, 1 - 2 * q - delta))

    eps = 1e-13
    q = minimize_scalar(nll, bounds=(max(0.0, -delta) + eps, (1 - delta) / 2 - eps), method="bounded",
                        options={"xatol": 1e-12}).x
    return (n * delta - (b - c)) / math.sqrt(n * (2 * q + delta * (1 - delta)))


@pytest.mark.parametrize(("b", "c", "n"), [(0, 0, 25), (6, 16, 161), (3, 0, 75), (9, 4, 100), (20, 21, 250)])
def test_tango_bound_is_the_numerical_inversion_of_the_score_statistic(b, c, n):
    level, step = 0.05, 0.001
    z = stats.norm.isf(level)
    grid = np.arange(math.floor((b - c) / n / step) * step, 0.6, step)
    direct = np.array([_score_z_by_numerical_mle(b, c, n, float(d)) for d in grid])
    assert np.all(np.diff(direct) > 0)  # the statistic increases in the hypothesised drop
    assert sequential.tango_z(b, c, n, grid[5:]) == pytest.approx(direct[5:], rel=1e-5, abs=1e-6)
    first_rejected = grid[np.argmax(direct >= z)]
    assert first_rejected - step <= sequential.tango_upper_bound(b, c, n, level) <= first_rejected


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 500), st.data(), st.floats(0.001, 0.2))
def test_tango_bound_is_monotone_in_b_and_c_and_covers_the_observed_drop(n, data, level):
    b = data.draw(st.integers(0, n - 1))
    c = data.draw(st.integers(0, n - 1 - b))
    u = float(sequential.tango_upper_bound(b, c, n, level))
    assert (b - c) / n <= u <= 1
    assert float(sequential.tango_upper_bound(b + 1, c, n, level)) >= u - 1e-12
    if c:
        assert float(sequential.tango_upper_bound(b, c - 1, n, level)) >= u - 1e-12
    z = stats.norm.isf(level)
    assert float(sequential.tango_upper_bound(0, 0, n, level)) == pytest.approx(z**2 / (n + z**2), abs=1e-9)


# -- error rates on small simulated counts --------------------------------------------------------

JCQA = gate_sim.SUITE[0]


def test_type_one_error_of_a_whole_session_stays_at_alpha():
    sessions = 3000
    r = gate_sim.session_runs(sessions, 0.0, np.random.default_rng(11), gate_sim.ALPHA / len(gate_sim.SUITE))
    assert _accept(r["seq_fail"].any(axis=1).sum(), sessions, gate_sim.ALPHA)
    share = r["scored"].sum(axis=1).mean() / sum(t.n for t in gate_sim.SUITE)
    assert share <= 0.5  # an unchanged model: half the documents or fewer


def test_power_at_the_mde_stays_within_a_few_points_of_the_fixed_test():
    design = gate_sim.design_for(JCQA, gate_sim.ALPHA / 8)
    run = gate_sim.run_task(JCQA, design, 4000, design.margin, JCQA.psi, np.random.default_rng(12))
    assert run.fail.mean() >= run.fixed_fail.mean() - 0.04


@pytest.mark.parametrize("task", [gate_sim.SUITE[7], JCQA], ids=lambda t: t.name)
def test_consumer_risk_an_early_pass_of_a_model_exactly_margin_worse_is_capped(task):
    design = gate_sim.design_for(task, gate_sim.ALPHA / 8)
    s = 4000
    run = gate_sim.run_task(task, design, s, design.margin, task.psi, np.random.default_rng(13))
    a = design.alpha_pass
    assert run.early_pass.mean() <= a + 3 * math.sqrt(a * (1 - a) / s)


@pytest.mark.parametrize(("n", "psi", "planned"), [(100, 0.05, 0.05), (250, 0.05, 0.10), (250, 0.15, 0.15),
                                               (400, 0.05, 0.05)])
def test_small_tasks_keep_the_consumer_risk_and_the_false_fails_under_tangos_rule(n, psi, planned):
    design = gate_sim.design_for(gate_sim.SimTask("small", n, 0.5, planned), gate_sim.ALPHA / 8)
    s, rng, a = 4000, np.random.default_rng(15), design.alpha_pass
    at_margin = sequential.decide(gate_sim.draw_counts(s, design.sizes, max(psi, design.margin), design.margin, rng),
                                  design)
    assert ((at_margin.decision == "pass") & at_margin.early).mean() <= a + 3 * math.sqrt(a * (1 - a) / s)
    null = sequential.decide(gate_sim.draw_counts(s, design.sizes, psi, 0.0, rng), design)
    assert _accept((null.decision == "fail").sum(), s, design.alpha)


def test_an_unchanged_model_scores_half_of_an_mgsm_sized_task_or_less():
    mgsm = gate_sim.SUITE[7]
    design = gate_sim.design_for(mgsm, gate_sim.ALPHA / 8)
    run = gate_sim.run_task(mgsm, design, 3000, 0.0, mgsm.psi, np.random.default_rng(16))
    assert run.share.mean() <= 0.5  # measured 45.7 % at 10,000 runs (76.5 % with the former Clopper-Pearson rule)


def test_the_benchs_rule_comparison_runs_the_engines_rule_for_tango():
    design = gate_sim.design_for(gate_sim.SUITE[7], gate_sim.ALPHA / 8)
    counts = gate_sim.draw_counts(2000, design.sizes, 0.15, 0.04, np.random.default_rng(17))
    rule, with_z = gate_sim.SMALL_RULES["Tango score (the engine's)"]
    mirror, engine = gate_sim.decide_small(counts, design, rule, with_z), sequential.decide(counts, design)
    assert (mirror.look == engine.look).all() and (mirror.decision == engine.decision).all()


def test_a_model_ten_points_worse_stops_within_45_percent_of_the_documents():
    design = gate_sim.design_for(JCQA, gate_sim.ALPHA / 8)
    run = gate_sim.run_task(JCQA, design, 2000, 0.10, JCQA.psi + 0.10, np.random.default_rng(14))
    assert run.fail.all() and run.share.mean() <= 0.45


# -- pooled test -----------------------------------------------------------------------------------

def test_stouffer_matches_a_hand_computation():
    # z_1 = (9 - 1) / sqrt(10) = 2.5298, z_2 = (4 - 4) / sqrt(8) = 0; weights sqrt(100), sqrt(400) = 10, 20.
    t = pooled.stouffer([9, 4], [1, 4], [100, 400])
    assert t.z == pytest.approx(10 * 8 / math.sqrt(10) / math.sqrt(500), rel=1e-12)
    assert t.p == pytest.approx(stats.norm.sf(t.z)) and t.drop == pytest.approx(8 / 500)
    assert pooled.stratified_mcnemar_z([9, 4], [1, 4], [100, 400]) == pytest.approx(8 / math.sqrt(18))
    with pytest.raises(ValueError, match="b \\+ c <= n"):
        pooled.stouffer([9], [5], [10])


def test_vectorised_holm_agrees_with_the_gate_holm():
    rng = np.random.default_rng(5)
    p = rng.random((200, 6)) ** 3
    expected = np.array([[q <= 0.05 for q in holm(row)] for row in p])
    assert (pooled.holm_reject(p, 0.05) == expected).all()
    assert (pooled.any_rejected(p, 0.05) == expected.any(axis=1)).all()


def test_pooled_row_catches_a_uniform_drop_per_task_holm_misses_at_the_same_false_alarm_rate():
    sessions, n = 3000, np.array([t.n for t in gate_sim.SUITE])
    rng = np.random.default_rng(21)

    def rates(drop: float) -> tuple[float, float]:
        r = gate_sim.session_runs(sessions, drop, rng, gate_sim.ALPHA / 8)
        p_pool = stats.norm.sf(pooled.stouffer_z(r["b"], r["c"], np.broadcast_to(n, r["b"].shape)))
        both = pooled.holm_reject(np.column_stack([r["p"], p_pool]), gate_sim.ALPHA).any(axis=1)
        return pooled.any_rejected(r["p"], gate_sim.ALPHA).mean(), both.mean()

    null_tasks, null_both = rates(0.0)
    assert _accept(null_both * sessions, sessions, gate_sim.ALPHA)
    assert _accept(null_tasks * sessions, sessions, gate_sim.ALPHA)
    tasks, both = rates(0.005)
    assert both >= tasks + 0.10  # measured 50 % against 34 % at 10,000 sessions


def test_pooled_row_joins_holm_and_fails_a_uniform_drop_no_task_fails_alone():
    from kensa.gate.verdicts import Check, finalize

    rows = []
    for i in range(8):  # each task: 1,000 docs, b = 60, c = 40 (a 2-point drop, one-sided p ~ 0.03 each)
        p = float(stats.binom.sf(59, 100, 0.5))
        rows.append(Check("m", "base", f"task{i}", "acc", "pass", n=1000, drop=0.02, delta=-0.02,
                          method="mcnemar-exact", p=p, abs_floor=0.001, hard_limit=0.05, details={"b": 60, "c": 40}))
        rows.append(Check("m", "base", f"task{i}", "acc_norm", "pass", n=1000, drop=0.0, delta=0.0,
                          method="mcnemar-exact", p=0.5, abs_floor=0.001, hard_limit=0.05, details={"b": 1, "c": 1}))
    extra = pooled.pooled_rows(rows)
    assert len(extra) == 1 and extra[0].task_id == pooled.POOLED_TASK
    assert extra[0].details["z"] == pytest.approx(8 * 20 / math.sqrt(100) * math.sqrt(1000) / math.sqrt(8000))
    final = finalize(rows + extra, 0.05, len(rows) + 1)
    assert not any(r.failed for r in final[:-1])  # no task fails alone under Holm over 17 rows
    assert final[-1].status == "fail" and final[-1].p_holm <= 0.05
    alone = pooled.pooled_rows(rows[:2])  # one task: nothing to pool, and the row says so
    assert [(r.status, r.p) for r in alone] == [(pooled.NOT_POOLED, None)]
    assert "needs two tasks" in alone[0].message and alone[0].details["pooled"] == {"task0": "acc"}
