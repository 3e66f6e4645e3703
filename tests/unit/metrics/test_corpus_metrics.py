"""Corpus metrics (balanced accuracy, MCC, macro-F1), the stratified sampler and XWinograd's strict acc."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kensa.metrics.core import (
    METRICS,
    aggregate,
    balanced_accuracy,
    bootstrap_stderr,
    macro_f1,
    matthews_corrcoef,
    multiple_choice_scores,
)
from kensa.tasks.sampling import StratifiedSampler

GOLDS = [0, 0, 0, 1, 1, 2]
PREDS = [0, 1, 0, 1, 2, 2]


def test_balanced_accuracy_by_hand():
    # class 0: 2/3, class 1: 1/2, class 2: 1/1 -> (2/3 + 1/2 + 1) / 3
    assert balanced_accuracy(GOLDS, PREDS) == pytest.approx((2 / 3 + 0.5 + 1) / 3)


def test_mcc_by_hand():
    # binary: tp=2 tn=1 fp=1 fn=1 -> (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6
    assert matthews_corrcoef([1, 1, 1, 0, 0], [1, 1, 0, 1, 0]) == pytest.approx(1 / 6)
    # multiclass (sklearn's R_K): c=4 s=6 t=(3,2,1) p=(2,2,2): (24-12)/sqrt((36-12)*(36-14))
    assert matthews_corrcoef(GOLDS, PREDS) == pytest.approx(12 / math.sqrt(22 * 24))
    assert matthews_corrcoef([0, 1, 0], [1, 1, 1]) == 0.0  # a constant prediction: undefined -> 0
    assert matthews_corrcoef([0, 1], [1, 0]) == pytest.approx(-1.0)


def test_macro_f1_by_hand():
    # class 0: tp=2 fp=0 fn=1 -> 4/5; class 1: tp=1 fp=1 fn=1 -> 1/2; class 2: tp=1 fp=1 fn=0 -> 2/3
    assert macro_f1(GOLDS, PREDS) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    # a label only predicted counts, with F1 0 (sklearn's labels = union of gold and pred)
    assert macro_f1([0, 0], [0, 1]) == pytest.approx((2 / 3 + 0) / 2)


def test_against_sklearn_when_installed():
    sklearn = pytest.importorskip("sklearn.metrics")
    rnd = random.Random(0)
    for _ in range(50):
        n = rnd.randint(2, 60)
        g = [rnd.randrange(3) for _ in range(n)]
        p = [rnd.randrange(3) for _ in range(n)]
        assert matthews_corrcoef(g, p) == pytest.approx(sklearn.matthews_corrcoef(g, p), abs=1e-12)
        assert macro_f1(g, p) == pytest.approx(sklearn.f1_score(g, p, average="macro"), abs=1e-12)


def test_aggregate_mixes_means_and_corpus_metrics():
    per_doc = [{"acc": float(g == p), "gold": g, "pred": p} for g, p in zip(GOLDS, PREDS, strict=True)]
    out = aggregate(per_doc, ("acc", "balanced_acc", "mcc", "macro_f1"))
    assert list(out) == ["acc", "acc_stderr", "balanced_acc", "mcc", "mcc_stderr", "macro_f1"]
    assert out["balanced_acc"] == balanced_accuracy(GOLDS, PREDS)
    assert out["mcc"] == matthews_corrcoef(GOLDS, PREDS)
    assert METRICS["mcc"].items == "corpus" and METRICS["mcc"].compute is matthews_corrcoef


def test_mcc_bootstrap_is_seeded_and_batched():
    # (Its speed is not asserted here: timed assertions belong in bench/, not in tests.)
    rnd = random.Random(1)
    g = [rnd.randrange(3) for _ in range(1000)]
    p = [x if rnd.random() < 0.6 else rnd.randrange(3) for x in g]
    se = bootstrap_stderr(matthews_corrcoef, g, p)
    assert se == bootstrap_stderr(matthews_corrcoef, g, p)
    assert 0.005 < se < 0.05
    # the batched MCC equals the one-at-a-time one
    assert se == pytest.approx(bootstrap_stderr(lambda a, b: matthews_corrcoef(a, b), g, p), rel=1e-9)


# --- stratified sampler (spec 2.2) ------------------------------------------------------------------


def test_stratified_sampler_hand_computed():
    # pool: A x5, B x3, C x2 (first-seen order A, B, C); k=3: floors int(.5*3)=1, int(.3*3)=0, int(.2*3)=0;
    # sum 1 < 3 -> +1 to the smallest, first in insertion order (B), then +1 to C -> A1 B1 C1.
    pool = [("A", i) for i in range(5)] + [("B", i) for i in range(3)] + [("C", i) for i in range(2)]
    pool = [pool[i] for i in (0, 5, 1, 8, 2, 6, 3, 9, 4, 7)]  # interleaved; first seen still A, B, C
    sampler = StratifiedSampler(pool, key=lambda d: d[0])
    assert list(sampler.groups) == ["A", "B", "C"]
    assert sampler.counts(3) == {"A": 1, "B": 1, "C": 1}
    assert sampler.counts(4) == {"A": 2, "B": 1, "C": 1}  # floors 2, 1, 0 -> +1 to C
    # the draw: rnd.sample per stratum in insertion order, then one shuffle
    rnd, ref = random.Random(42), random.Random(42)
    got = sampler.draw(rnd, 3)
    want = ref.sample(sampler.groups["A"], 1) + ref.sample(sampler.groups["B"], 1) + ref.sample(sampler.groups["C"], 1)
    ref.shuffle(want)
    assert got == want
    assert rnd.random() == ref.random()  # the same calls were made
    assert sampler.draw(random.Random(0), 0) == []


@settings(max_examples=200)
@given(sizes=st.lists(st.integers(1, 9), min_size=1, max_size=5), k=st.integers(0, 12))
def test_stratified_counts_property(sizes, k):
    pool = [(t, i) for t, n in enumerate(sizes) for i in range(n)]
    sampler = StratifiedSampler(pool, key=lambda d: d[0])
    counts = sampler.counts(k)
    assert sum(counts.values()) == k
    floors = {t: int(len(g) / len(pool) * k) for t, g in sampler.groups.items()}
    assert all(n >= floors[t] for t, n in counts.items())
    # The extra shots go one at a time to the currently smallest count (water-filling): a stratum that
    # got any ends at most one above the smallest final count ...
    low = min(counts.values())
    assert all(n <= low + 1 for t, n in counts.items() if n > floors[t])
    # ... so with level floors and fewer extras than strata, each gets floor(ratio*k) or one more,
    # the first strata in insertion order first.
    extra = k - sum(floors.values())
    if len(set(floors.values())) == 1 and extra < len(floors):
        assert [counts[t] - floors[t] for t in sampler.groups] == [1] * extra + [0] * (len(floors) - extra)


def test_stratified_counts_can_exceed_floor_plus_one():
    """The harness's rule is "+1 to the smallest count", not largest remainder: pool sizes 1, 2, 2 and
    k=7 give floors 1, 2, 2, then +1 to the first (2, 2, 2), then +1 to the first again (3, 2, 2)."""
    sampler = StratifiedSampler([0, 1, 1, 2, 2], key=lambda d: d)
    assert sampler.counts(7) == {0: 3, 1: 2, 2: 2}


# --- strict acc (XWinograd) ----------------------------------------------------------------------


def test_strict_acc_tie_scores_zero():
    assert multiple_choice_scores([-5.0, -5.0], ["ab", "cd"], 0, strict=True)["acc"] == 0.0
    assert multiple_choice_scores([-5.0, -5.0], ["ab", "cd"], 0)["acc"] == 1.0  # argmax-first
    assert multiple_choice_scores([-4.0, -5.0], ["ab", "cd"], 0, strict=True)["acc"] == 1.0
    assert multiple_choice_scores([-6.0, -5.0], ["ab", "cd"], 1, strict=True)["acc"] == 1.0
