"""ROUGE-2 as the harness computes it for XL-Sum (spec 4.2): rouge_score's per-doc F on a given
tokenizer, MeCab tokens as the harness's MecabTokenizer makes them, and the BootstrapAggregator
median with numpy seeded as ``simple_evaluate`` seeds it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kensa.metrics.core import METRICS, aggregate
from kensa.metrics.rouge import bootstrap_mid, mecab_tokens, rouge2_f


@pytest.mark.parametrize(("target", "prediction", "expected"), [
    ("a b c d", "a b c x", 2 / 3),  # bigrams ab bc cd / ab bc cx: 2 common, P = R = 2/3
    ("a b c d", "a b", 0.5),  # 1 common: P = 1, R = 1/3, F = 2PR/(P+R) = 0.5
    ("a a a", "a a", 2 / 3),  # aa twice / once: clipped count 1, P = 1, R = 1/2
    ("a b c", "c b a", 0.0),  # no bigram in common
    ("a b c", "a", 0.0),  # the prediction has no bigram
    ("a", "a", 0.0),  # neither side has a bigram: rouge_score gives 0, not 1
    ("a b c", "", 0.0),
])
def test_rouge2_f_whitespace_tokens(target, prediction, expected):
    assert rouge2_f(target, prediction, str.split) == pytest.approx(expected)


def test_rouge2_f_is_over_the_given_tokenizers_pieces():
    # Characters as tokens: 今日/日は/は晴/晴れ vs 今日/日は/は雨: 2 common, P = 2/3, R = 2/4.
    assert rouge2_f("今日は晴れ", "今日は雨", list) == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))
    # Whitespace tokens of the same strings: one token each, no bigram.
    assert rouge2_f("今日は晴れ", "今日は晴れ", str.split) == 0.0


def test_mecab_tokens_are_the_harness_mecab_tokenizer():
    assert mecab_tokens("今日は晴れです。") == ["今日", "は", "晴れ", "です", "。"]  # punctuation is kept
    assert mecab_tokens("ＡＢＣ社が発表した") == ["ABC", "社", "が", "発表", "し", "た"]  # neologdn: full width
    assert mecab_tokens("晴れです😀") == ["晴れ", "です"]  # emoji removed
    assert mecab_tokens("  晴れ   です ") == ["晴れ", "です"]


def test_rouge2_f_on_mecab_tokens():
    # 今日-は, は-晴れ, 晴れ-です, です-。 vs 今日-は, は-雨, 雨-です, です-。: 2 of 4 each way.
    assert rouge2_f("今日は晴れです。", "今日は雨です。", mecab_tokens) == pytest.approx(0.5)
    # Normalisation makes full-width and half-width letters the same tokens; characters differ.
    assert rouge2_f("ＡＢＣ社が発表した", "ABC社が発表した", mecab_tokens) == 1.0
    assert rouge2_f("ＡＢＣ社が発表した", "ABC社が発表した", list) < 1.0


def _harness_rouge2(per_doc: list[tuple[float, float, float]]) -> float:
    """``lm_eval.utils.rouge2_mecab``'s aggregation right after ``simple_evaluate``'s seeding."""
    from rouge_score import scoring

    np.random.seed(1234)
    aggregator = scoring.BootstrapAggregator()
    for p, r, f in per_doc:
        aggregator.add_scores({"rouge2": scoring.Score(precision=p, recall=r, fmeasure=f)})
    return aggregator.aggregate()["rouge2"].mid.fmeasure * 100


PER_DOC = [(0.5, 0.25, 1 / 3), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (0.2, 0.4, 0.4 / 1.5), (0.75, 0.6, 0.9 / 1.35),
           (0.1, 0.05, 0.01 / 0.15), (0.0, 0.0, 0.0), (0.3, 0.9, 0.54 / 1.2)]


def test_bootstrap_mid_is_the_harness_mid_times_100():
    state = np.random.get_state()
    try:
        want = _harness_rouge2(PER_DOC)
    finally:
        np.random.set_state(state)
    got = bootstrap_mid([100 * f for _, _, f in PER_DOC])
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)
    mean = 100 * np.mean([f for _, _, f in PER_DOC])
    assert got != mean and abs(got - mean) < 5  # a bootstrap median, near but not at the mean


def test_bootstrap_mid_of_simple_lists():
    assert bootstrap_mid([42.0]) == 42.0
    assert bootstrap_mid([7.5] * 10) == pytest.approx(7.5)
    with pytest.raises(ValueError, match="no values"):
        bootstrap_mid([])


def test_bootstrap_mid_leaves_numpy_global_state_alone():
    np.random.seed(99)
    before = np.random.get_state()
    bootstrap_mid([1.0, 2.0, 30.0, 4.0])
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    drawn = np.random.random(3)
    np.random.seed(99)
    assert np.array_equal(drawn, np.random.random(3))


def test_bootstrap_mid_does_not_depend_on_earlier_draws():
    values = [100 * f for _, _, f in PER_DOC]
    first = bootstrap_mid(values)
    np.random.random(1000)
    assert bootstrap_mid(values) == first


@pytest.mark.parametrize("name", ["rouge2", "rouge2_mecab"])
def test_metrics_reduce_rouge_by_the_bootstrap_mid(name):
    per_doc = [{name: 100 * f} for _, _, f in PER_DOC]
    out = aggregate(per_doc, [name])
    assert out[name] == bootstrap_mid([d[name] for d in per_doc])
    assert METRICS[name].scale == 100.0


WORDS = st.lists(st.sampled_from(["東京", "雨", "は", "が", "降っ", "た", "。", "a", "b"]), min_size=0, max_size=12)


@settings(max_examples=200)
@given(WORDS)
def test_identical_texts_score_one(words):
    text = " ".join(words)
    f = rouge2_f(text, text, str.split)
    assert f == (1.0 if len(words) >= 2 else 0.0)


@settings(max_examples=200)
@given(WORDS, WORDS)
def test_rouge2_f_is_in_unit_interval_and_symmetric(a, b):
    x, y = " ".join(a), " ".join(b)
    f = rouge2_f(x, y, str.split)
    assert 0.0 <= f <= 1.0
    assert f == pytest.approx(rouge2_f(y, x, str.split))  # F swaps P and R
