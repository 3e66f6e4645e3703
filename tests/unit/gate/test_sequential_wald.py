"""The sequential gate on corpus metrics (paired bootstrap) and clustered documents (sandwich SE): the resampled
statistics against kensa.metrics, the SE floor, hand-computed sandwich SEs, and error rates on small simulations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bench import gate_sim_corpus as sim
from kensa.gate import corpus_batch, sequential, sequential_wald
from kensa.metrics.core import metric_spec
from tests.helpers import accept_false_alarms as _accept

ALPHA = 0.05 / 8


def _task(name: str) -> sim.CorpusTask:
    return next(t for t in sim.CORPUS_SUITE if t.name == name)


# -- resampled statistics --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mcc", "macro_f1", "balanced_acc", "pearson", "spearman"])
@pytest.mark.parametrize("labels", [2, 3])
def test_weighted_statistics_equal_the_metric_on_the_resampled_documents(name, labels):
    rng = np.random.default_rng(labels)
    n = 120
    if name in ("pearson", "spearman"):
        golds = np.round(rng.uniform(0, 5, n) * 5) / 5
        preds = np.round(golds + rng.normal(0, 1, n), 1).astype(object)
        preds[[3, 17]] = None  # unparseable outputs are left out, as the metric does
        golds = golds.astype(object)
    else:
        golds = rng.integers(0, labels, n).astype(object)
        preds = np.where(rng.random(n) < 0.7, golds, rng.integers(0, labels, n)).astype(object)
    compute = metric_spec(name).compute
    draws = list(rng.integers(0, n, size=(5, n)))
    if name not in ("pearson", "spearman"):  # a resample without the last label at all: it must not count
        draws.append(np.flatnonzero((golds != labels - 1) & (preds != labels - 1)))
    w = np.vstack([np.ones(n)] + [np.bincount(d, minlength=n) for d in draws]).astype(float)
    got = corpus_batch.batch_statistic(name)(golds, preds, w)
    want = [compute(list(golds), list(preds))] + [compute(list(golds[d]), list(preds[d])) for d in draws]
    assert got == pytest.approx(want, abs=1e-12)


def test_rows_that_are_not_pairs_are_named():
    with pytest.raises(ValueError, match="doc 1: a corpus metric's item must be \\[gold, pred\\]"):
        corpus_batch.split_rows([[1, 1], [1]])


# -- the SE floor ---------------------------------------------------------------------------------

def _rows(n: int = 865, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    gold = (rng.random(n) < 0.7).astype(int)
    pred = np.where(rng.random(n) < 0.8, gold, 1 - gold)
    return [[int(g), int(p)] for g, p in zip(gold, pred)]


def test_an_identical_copy_has_a_zero_bootstrap_se_and_passes_early_on_the_floor():
    rows = _rows()
    unit_se = sequential_wald.baseline_se("mcc", rows)
    margin = sequential_wald.corpus_margin(unit_se, ALPHA, len(rows), 0.10)
    design = sequential.Design(len(rows), ALPHA, margin)
    looks = []
    for size in design.sizes:
        looks.append(sequential_wald.corpus_look("mcc", rows[:size], rows[:size], direction="higher", scale=1.0,
                                                 unit_se=unit_se, n_total=len(rows)))
        result = sequential_wald.run_looks(looks, design)
        if result is not None:
            break
    first = looks[0]
    assert first.drop == 0 and first.se_raw == 0 and first.changed == 0
    # floor = 2 sqrt(psi~ N / n) s_N with psi~ = 2 / (n + 2): one pseudo-change each way
    assert first.se == pytest.approx(2 * math.sqrt(2 / (first.scored + 2) * len(rows) / first.scored) * unit_se)
    assert result is not None and result.decision == "pass" and result.look < 10
    assert "(floored)" in result.reason


def test_one_changed_prediction_adds_the_pseudo_changes_and_has_one_degree_of_freedom():
    rows = _rows()
    cand = [list(r) for r in rows]
    cand[5][1] = 1 - cand[5][1]
    unit_se = sequential_wald.baseline_se("mcc", rows)
    look = sequential_wald.corpus_look("mcc", rows[:87], cand[:87], direction="higher", scale=1.0, unit_se=unit_se,
                                       n_total=865)
    assert look.changed == 1 and look.se_raw > 0 and look.floor > 0
    assert look.se == pytest.approx(math.hypot(look.se_raw, look.floor))  # the pseudo-changes add their variance
    assert look.df == pytest.approx((look.se / look.se_raw) ** 4)  # Satterthwaite: one change, 1 df on its part
    assert look.df < 5 and sequential_wald.student_bounds(np.array([2.0]), np.array([look.df]))[0] > 3.0


def test_a_baseline_without_spread_gives_no_margin_and_a_zero_se_decides_nothing():
    rows = [[1, 1]] * 50
    assert sequential_wald.baseline_se("mcc", rows) == 0.0
    design = sequential.Design(50, ALPHA, 0.05)
    stops = sequential_wald.decide_wald(np.zeros((1, 10)), np.zeros((1, 10)), design)
    assert (stops.decision[0], stops.look[0], stops.early[0]) == ("pass", 10, False)
    with pytest.raises(ValueError, match="shape"):
        sequential_wald.decide_wald(np.zeros((1, 9)), np.zeros((1, 9)), design)


def test_student_bounds_widen_only_estimated_ses():
    c = np.array([2.0, 2.0])
    out = sequential_wald.student_bounds(c, np.array([4.0, np.inf]))
    assert out[1] == 2.0 and out[0] == pytest.approx(stats.t.isf(stats.norm.sf(2.0), 4))


# -- clustered documents ----------------------------------------------------------------------------

def test_sandwich_se_matches_a_hand_computation():
    # mean 1/3; cluster residual sums 1/3, -5/3, 4/3: sum of squares 42/9, times G/(G-1) = 3/2 -> 7
    look = sequential_wald.cluster_look([1, 0, 0, -1, 1, 1], ["a", "a", "b", "b", "c", "c"])
    assert look.drop == pytest.approx(1 / 3)
    assert look.se_raw == pytest.approx(math.sqrt(7) / 6)
    assert look.se == pytest.approx(math.sqrt((7 + 2) / (6 * 8)))  # with the two pseudo-documents
    assert look.df == pytest.approx(2 * (look.se**2 / (7 / 48)) ** 2)  # 3 changed clusters: 2 df, Satterthwaite
    same = sequential_wald.cluster_look([0.0] * 6, ["a", "a", "b", "b", "c", "c"])
    assert same.se_raw == 0 and same.se == pytest.approx(math.sqrt(2 / 48)) and math.isinf(same.df)


def test_cluster_robust_se_keeps_false_fails_at_alpha_where_the_plain_se_does_not():
    rng = np.random.default_rng(31)
    labels = sim.cluster_labels(1000, rng)
    alpha, sessions = 0.05, 800
    design = sequential.Design(1000, alpha, sequential.default_margin(1000, 0.10, alpha))
    d = sim.cluster_drops(labels, 0.25, 0.6, 0.0, rng, sessions)
    robust = sim.run_clustered(labels, design, d, robust=True)
    plain = sim.run_clustered(labels, design, d, robust=False)
    assert _accept(robust.fail.sum(), sessions, alpha), robust.fail.mean()
    assert not _accept(plain.fail.sum(), sessions, alpha), plain.fail.mean()  # the paragraphs' correlated flips, read as independent
    assert sim.run_clustered(labels, design, np.zeros((1, 1000))).share[0] <= 0.5  # an identical copy stops early


# -- corpus metrics in simulation (small counts; bench/gate_sim.py --only corpus has the full tables) ----

def test_corpus_false_fails_stay_at_alpha_and_an_unchanged_model_stops_early():
    task = _task("JCoLA")
    rng = np.random.default_rng(41)
    design, unit_se = sim.design_for(task, ALPHA, rng)
    sessions = 300
    null = sim.run_sessions(task, design, unit_se, sessions, 0.0, task.psi, rng, 100, fixed=False)
    assert _accept(null.fail.sum(), sessions, ALPHA)
    assert null.share.mean() <= 0.6


def test_corpus_consumer_risk_an_early_pass_of_a_model_exactly_margin_worse_is_capped():
    task = _task("JCoLA")
    rng = np.random.default_rng(7)
    design, unit_se = sim.design_for(task, ALPHA, rng)
    sessions = 500
    at = sim.run_sessions(task, design, unit_se, sessions, design.margin, task.psi, rng, 200, fixed=False)
    a = design.alpha_pass
    assert at.early_pass.mean() <= a + 3 * math.sqrt(a * (1 - a) / sessions)


# -- EarlyStop: corpus and clustered metrics are decided like the others ------------------------------

class _Run:
    """What the run loop hands the stop rule after a look: the prefix scored so far."""

    def __init__(self, values: dict, n: int, clusters: list | None = None):
        self.n, self.item_keys = n, list(range(n))
        self.values = {k: v[:n] for k, v in values.items()}
        self.clusters = clusters[:n] if clusters is not None else None

    def items(self, names):
        return {"values": {m: self.values[m] for m in names}}


def _early(values: dict, clusters: list | None = None):
    from kensa.gate.early import EarlyStop
    from kensa.gate.thresholds import Entry, Items, MetricBaseline
    from kensa.gate.verdicts import GateSettings, RunRecord

    n = len(next(iter(values.values())))
    metrics = {m: MetricBaseline(0.5, n, stderr=0.01) for m in values}
    entry = Entry("t-1.0-0.3", "t", "1.0", "0.3", 0, n, "x", "multiple_choice", "now", metrics)
    base = Items(list(range(n)), values)
    record = RunRecord("cand", "base", "t-1.0-0.3", "t", "1.0", "0.3", 0, None, n, "x", None, "multiple_choice", {},
                       tuple(values), Items([], {}), {"device": "cpu"}, {}, clusters)
    return EarlyStop(entry, base, record, GateSettings(family_size=2)), record


def _drive(stop, values: dict, clusters: list | None = None) -> None:
    for size in stop.sizes[:-1]:
        if stop(_Run(values, size, clusters)):
            return
    stop.finish(_Run(values, stop.n, clusters))


def test_an_identical_copy_stops_early_on_a_corpus_metric_and_its_binary_neighbour():
    rows = _rows()
    values = {"acc": [float(g == p) for g, p in rows], "mcc": rows}
    stop, record = _early(values)
    _drive(stop, values)
    report = stop.report()
    assert report["stopped_early"] and not report["full_metrics"]
    assert {m: r["test"] for m, r in report["metrics"].items()} == {"acc": "paired sums", "mcc": "paired bootstrap"}
    assert {r["decision"] for r in report["metrics"].values()} == {"pass"}


def test_a_task_stopped_by_one_failing_metric_marks_the_undecided_one_not_tested():
    from kensa.gate.early import NOT_TESTED
    from kensa.gate.thresholds import Items

    rows = _rows()
    base = {"acc": [float(g == p) for g, p in rows], "mcc": rows}
    stop, record = _early(base)
    cand_rows = [[g, p] for g, p in rows]
    cand = {"acc": [0.0] * len(rows), "mcc": cand_rows}  # every answer wrong, the labels (mcc) untouched
    _drive(stop, cand)
    assert stop.stopped_early and stop.results["acc"].decision == "fail"
    statuses = {c.metric: c.status for c in stop.rows(record.__class__(**{**record.__dict__,
                                                                          "items": Items([], cand)}), [])}
    assert statuses == {"acc": "fail", "mcc": NOT_TESTED}  # mcc is undecided at look 1 (z_pass 1.3 < 2.15)


def test_documents_that_share_a_context_are_decided_on_the_cluster_robust_se():
    n = 400
    values = {"exact_match": [100.0 * (i % 3 != 0) for i in range(n)]}
    clusters = [i // 4 for i in range(n)]
    stop, _ = _early(values, clusters)
    _drive(stop, values, clusters)
    report = stop.report()
    assert report["stopped_early"] and report["metrics"]["exact_match"]["test"] == "cluster-robust"
    assert "cluster-robust SE" in report["metrics"]["exact_match"]["reason"]


def test_a_metric_whose_docs_may_lack_a_value_leaves_those_docs_out():
    # hallucination: None where an output was empty (no rate); such docs are left out as the fixed gate does
    n = 300
    values = {"hallucination": [None if i % 10 == 0 else float(i % 7) for i in range(n)]}
    stop, record = _early(values)
    _drive(stop, values)
    report = stop.report()
    assert report["stopped_early"] and report["metrics"]["hallucination"]["decision"] == "pass"
    assert report["metrics"]["hallucination"]["test"] == "wald, docs without a value left out"
    from kensa.gate.thresholds import Items

    rows = stop.rows(record.__class__(**{**record.__dict__, "items": Items([], values)}), [])
    assert rows[0].status == "pass" and rows[0].drop == 0.0


def test_kish_count_equals_the_changed_documents_when_their_effects_are_equal_and_falls_with_one_outlier():
    def mean_pred(golds, preds, w):
        p = np.asarray(preds, dtype=float)
        return (w @ p) / w.sum(axis=1)

    gold = np.zeros(20, dtype=object)
    base = np.zeros(20, dtype=object)
    cand = base.copy()
    cand[:4] = -1.0
    cols = (gold, base, gold, cand)
    assert sequential_wald._effective_changes(mean_pred, cols, np.ones(20)) == pytest.approx(4.0)
    cand[3] = -30.0
    assert sequential_wald._effective_changes(mean_pred, cols, np.ones(20)) < 1.5


def test_a_pearson_drop_carried_by_one_far_off_prediction_has_few_degrees_of_freedom_to_pass():
    rng = np.random.default_rng(3)
    gold = np.round(rng.uniform(0, 5, 300) * 5) / 5
    base = np.round(gold + rng.normal(0, 1, 300), 1)
    cand = base.copy()
    cand[:60] += 0.1  # many small changes
    cand[7] = base[7] + 5.0 if gold[7] < 2.5 else base[7] - 5.0  # one far-off prediction
    b, c = [[g, p] for g, p in zip(gold, base)], [[g, p] for g, p in zip(gold, cand)]
    look = sequential_wald.corpus_look("pearson", b, c, direction="higher", scale=1.0, unit_se=0.02, n_total=300)
    assert look.changed == 60 and look.df_pass < look.df / 3
