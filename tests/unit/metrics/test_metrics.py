"""kensa.metrics against hand-computed values and the harness's definitions (spec 2.4, 2.6).

The expected numbers are literals worked out by hand, not recomputed with the code under
test, so a change of formula (ddof=0, byte lengths, last-index ties) shows up as a failure.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kensa.metrics.core import aggregate, argmax, mean, mean_stderr, multiple_choice_scores

# --- mean and mean_stderr -------------------------------------------------------------------


def test_mean_stderr_small_binary_sample():
    """[1,0,1,1]: mean 0.75, squared deviations sum to 0.75, var(ddof=1) = 0.25, /4 -> sqrt = 0.25."""
    assert mean_stderr([1, 0, 1, 1]) == pytest.approx(0.25, rel=1e-12)


def test_mean_stderr_binary_p018_n100():
    """18 ones in 100: sqrt(0.18 * 0.82 / 99) = sqrt(0.0014909...) = 0.0386122919665..."""
    xs = [1.0] * 18 + [0.0] * 82
    assert mean_stderr(xs) == pytest.approx(0.0386122919665369, rel=1e-12)


def test_mean_stderr_real_values():
    """[2, 4, 9]: mean 5, deviations -3, -1, 4 -> 26 / 2 = 13, 13 / 3 -> sqrt = 2.0816659994661..."""
    assert mean_stderr([2.0, 4.0, 9.0]) == pytest.approx(2.0816659994661326, rel=1e-12)


def test_mean_stderr_uses_ddof_1_not_0():
    """[0, 1]: ddof=1 gives sqrt(0.5 / 2) = 0.5; ddof=0 would give sqrt(0.25 / 2) = 0.3535..."""
    assert mean_stderr([0, 1]) == pytest.approx(0.5, rel=1e-12)


@pytest.mark.parametrize("xs", [[], [1.0], [0.0]])
def test_mean_stderr_undefined_below_two_values_is_nan(xs):
    assert math.isnan(mean_stderr(xs))


def test_mean_stderr_constant_values_is_zero():
    assert mean_stderr([1.0, 1.0, 1.0]) == 0.0


def test_mean_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        mean([])


def test_mean_value():
    assert mean([1, 0, 1, 1]) == 0.75


@given(st.lists(st.sampled_from([0.0, 1.0]), min_size=2, max_size=300))
def test_binary_mean_stderr_equals_closed_form(xs):
    """For 0/1 data, std(ddof=1)/sqrt(n) == sqrt(p(1-p)/(n-1)) (the identity quoted in spec 2.6)."""
    n = len(xs)
    p = sum(xs) / n
    assert math.isclose(mean_stderr(xs), math.sqrt(p * (1 - p) / (n - 1)), rel_tol=1e-9, abs_tol=1e-12)


# --- argmax ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, 3.0, 3.0, 2.0], 1),        # tie between 1 and 2: first wins (np.argmax)
        ([-2.0, -2.0, -2.0], 0),
        ([-5.0, -1.0, -3.0], 1),
        ([0.0], 0),
        ([-1e-9, -1e-10], 1),
        ([float("-inf"), -100.0], 1),
    ],
)
def test_argmax_first_index_on_ties(values, expected):
    assert argmax(values) == expected


def test_argmax_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        argmax([])


@given(st.lists(st.floats(allow_nan=False), min_size=1, max_size=20))
def test_argmax_is_the_first_maximum(values):
    i = argmax(values)
    assert values[i] == max(values)
    assert all(v < values[i] for v in values[:i])


# --- multiple_choice_scores -----------------------------------------------------------------


def test_acc_and_acc_norm_differ_when_lengths_differ():
    """lls -4 ("ab", 2 chars) and -9 ("abcdef", 6 chars): raw argmax 0; per char -2 vs -1.5 -> 1."""
    s = multiple_choice_scores([-4.0, -9.0], ["ab", "abcdef"], gold=1)
    assert (s["pred"], s["pred_norm"]) == (0, 1)
    assert (s["acc"], s["acc_norm"]) == (0.0, 1.0)
    s = multiple_choice_scores([-4.0, -9.0], ["ab", "abcdef"], gold=0)
    assert (s["acc"], s["acc_norm"]) == (1.0, 0.0)


def test_acc_norm_divides_by_characters_not_bytes():
    """"東京" is 2 characters (6 UTF-8 bytes), "abc" 3: -3/2 = -1.5 < -4/3 = -1.33 -> choice 1.

    By bytes it would be -3/6 = -0.5 > -4/3 -> choice 0.
    """
    s = multiple_choice_scores([-3.0, -4.0], ["東京", "abc"], gold=1)
    assert s["pred"] == 0
    assert s["pred_norm"] == 1
    assert s["acc_norm"] == 1.0


def test_five_way_scores():
    """A JCommonsenseQA-like doc: best raw ll is choice 3, best per character is choice 4."""
    lls = [-12.0, -10.0, -9.0, -6.0, -7.0]
    choices = ["弁当", "自転車", "靴", "鍵", "折り畳み傘"]  # per char: -6, -3.33, -9, -6, -1.4
    s = multiple_choice_scores(lls, choices, gold=4)
    assert (s["pred"], s["pred_norm"], s["acc"], s["acc_norm"]) == (3, 4, 0.0, 1.0)


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError):
        multiple_choice_scores([-1.0, -2.0], ["a", "b", "c"], gold=0)


@given(
    length=st.integers(1, 12),
    lls=st.lists(st.integers(-4000, 0), min_size=2, max_size=6),
    data=st.data(),
)
def test_acc_norm_equals_acc_for_equal_length_choices(length, lls, data):
    """Dividing every ll by the same length keeps the order, so acc_norm == acc.

    Log-likelihoods are multiples of 1/8 so that the division cannot merge two distinct values
    into one float (with arbitrary floats, a/L == b/L can happen for a != b).
    """
    lls = [x / 8 for x in lls]
    choices = [chr(ord("a") + i) * length for i in range(len(lls))]
    gold = data.draw(st.integers(0, len(lls) - 1))
    s = multiple_choice_scores(lls, choices, gold)
    assert s["pred_norm"] == s["pred"]
    assert s["acc_norm"] == s["acc"]


# --- aggregate ------------------------------------------------------------------------------


def test_aggregate_values_and_key_order():
    """acc [1,0,1,1] -> 0.75 +- 0.25; acc_norm [0,0,1,1] -> 0.5 +- sqrt((1/3)/4) = 0.288675..."""
    per_doc = [
        {"acc": 1.0, "acc_norm": 0.0},
        {"acc": 0.0, "acc_norm": 0.0},
        {"acc": 1.0, "acc_norm": 1.0},
        {"acc": 1.0, "acc_norm": 1.0},
    ]
    out = aggregate(per_doc, ("acc", "acc_norm"))
    assert list(out) == ["acc", "acc_stderr", "acc_norm", "acc_norm_stderr"]
    assert out["acc"] == 0.75
    assert out["acc_stderr"] == pytest.approx(0.25, rel=1e-12)
    assert out["acc_norm"] == 0.5
    assert out["acc_norm_stderr"] == pytest.approx(0.28867513459481287, rel=1e-12)


def test_aggregate_single_doc_stderr_is_nan():
    out = aggregate([{"acc": 1.0, "acc_norm": 0.0}], ("acc", "acc_norm"))
    assert out["acc"] == 1.0 and out["acc_norm"] == 0.0
    assert math.isnan(out["acc_stderr"]) and math.isnan(out["acc_norm_stderr"])


def test_aggregate_ignores_extra_keys_and_follows_names_order():
    per_doc = [{"pred": 3, "acc": 1.0, "acc_norm": 0.0}, {"pred": 1, "acc": 0.0, "acc_norm": 0.0}]
    out = aggregate(per_doc, ("acc_norm", "acc"))
    assert list(out) == ["acc_norm", "acc_norm_stderr", "acc", "acc_stderr"]


def _run(task, version, pv, **metrics):
    return {"task": task, "version": version, "prompt_version": pv, "metrics": metrics}


def test_averages_use_the_leaderboard_headline_and_name_what_is_missing():
    from kensa.report.results import averages

    runs = [_run("jcommonsenseqa", "1.1", "0.3", acc=0.80), _run("jnli", "1.1", "0.3", acc=0.50),
            _run("marc_ja", "1.1", "0.3", acc=0.90), _run("jsquad", "1.1", "0.3", exact_match=70.0),
            _run("jnli", "1.3", "0.3", acc=0.1)]  # 1.3 is the leaderboard's JNLI, not the model cards'
    lines = averages(runs)
    # (80 + 50 + 90 + 70) / 4 = 72.50
    assert "4-task average at prompt 0.3: 72.50" in lines
    assert any(line.startswith("6-task average: not computed; it also needs jaqket_v2 0.1, xwinograd_ja")
               for line in lines)
    assert any("8-task leaderboard average: not computed" in line and "mgsm 1.0" in line for line in lines)
    # XWinograd has no prompt version and counts at every one: (80 + 50 + 90 + 70 + 60 + 40) / 6 = 65.00
    runs += [_run("xwinograd_ja", "1.0", "", acc=0.60), _run("jaqket_v2", "0.1", "0.3", exact_match=40.0)]
    assert "6-task average at prompt 0.3: 65.00" in averages(runs)
    assert averages([_run("jcola", "0.2", "0.3", mcc=0.1)]) == []
