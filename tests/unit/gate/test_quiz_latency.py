"""Latency accounting (a fake backend with known times), the warm-up, and the latency gate: a backend slowed
on purpose fails it, the same backend passes. No real timing is asserted anywhere."""

from __future__ import annotations

import math
import random

import pytest

from kensa.data import DataSource
from kensa.gate.latency import latency_incomparable, slower_p, timing_units, unit_seconds
from kensa.gate.thresholds import Entry, Items, MetricBaseline, load_items, write_items
from kensa.run import evaluate_variant
from kensa.run.cache import CachedLM, ResponseCache
from kensa.run.latency import latency_of, percentile, warm_up
from kensa.tasks import all_tasks
from tests.helpers import LATENCY_ENV, TimedLM, latency_gate

TASKS = {t.name: t for t in all_tasks()}
ENV = LATENCY_ENV
BATCHED = {**ENV, "batch_size": "4"}


def run(name: str, lm, version: str = "0.2"):
    task = TASKS[name]
    variant = next(v for v in task.variants() if v.template.version == version)
    eval_split, pool = task.load(DataSource.fixtures())
    return evaluate_variant(variant, lm, eval_split, pool, 0)


def test_percentiles_match_the_linear_rule():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert percentile([0, 10], 95) == pytest.approx(9.5)


def test_multiple_choice_latency_is_the_sum_over_a_questions_choices():
    result = run("quiz_fixtures_anime_loglik", TimedLM())
    lat = latency_of(result.samples, "multiple_choice")
    # five choices per question, times 0.01 .. 0.05 in order: 0.15 s per question
    assert (lat.n, lat.timed, lat.cached) == (16, 16, 0)
    assert lat.mean_seconds == pytest.approx(0.15) and lat.p50_seconds == pytest.approx(0.15)
    assert lat.total_seconds == pytest.approx(16 * 0.15) and lat.tokens_per_second is None


def test_generation_latency_reports_tokens_chars_and_first_token():
    result = run("quiz_fixtures_anime_gen", TimedLM())
    lat = latency_of(result.samples, "generation")
    times = [(k % 5 + 1) / 100 for k in range(16)]
    assert lat.mean_seconds == pytest.approx(sum(times) / 16)
    assert lat.p95_seconds == pytest.approx(percentile(times, 95))
    assert lat.generated_tokens == 64 and lat.generated_chars == 16 * len("2: 答え")
    assert lat.tokens_per_second == pytest.approx(64 / sum(times))
    assert lat.chars_per_second == pytest.approx(16 * 5 / sum(times))
    assert lat.first_token_seconds == pytest.approx(sum(times) / 32)


def test_cached_answers_have_no_latency(tmp_path):
    cache = ResponseCache(tmp_path / "r.sqlite")
    fake = TimedLM()
    fake.info = {**fake.info, "identity": {"weights_sha256": "f" * 64}}
    first = latency_of(run("quiz_fixtures_anime_gen", CachedLM(fake, cache)).samples, "generation")
    again = latency_of(run("quiz_fixtures_anime_gen", CachedLM(fake, cache)).samples, "generation")
    assert first.timed == 16 and (again.timed, again.cached, again.mean_seconds) == (0, 16, None)
    cache.close()


def test_warm_up_runs_one_batch_on_the_backend_not_the_cache(tmp_path):
    fake = TimedLM()
    fake.info = {**fake.info, "identity": {"weights_sha256": "f" * 64}}
    cache = ResponseCache(tmp_path / "r.sqlite")
    wrapped = CachedLM(fake, cache)
    task = TASKS["quiz_fixtures_anime_gen"]
    warm_up(wrapped, task.variants()[1], task.load(DataSource.fixtures())[0])
    assert fake.calls == 1 and wrapped.computed == 0 and cache.count() == 0
    cache.close()


def _seconds(lm, name="quiz_fixtures_anime_loglik"):
    return [s["seconds"] for s in run(name, lm).samples]


@pytest.mark.parametrize("name", ["quiz_fixtures_anime_loglik", "quiz_fixtures_anime_gen"])
def test_a_backend_slowed_on_purpose_fails_the_latency_gate_and_the_same_backend_passes(name):
    base = _seconds(TimedLM(), name)
    same = latency_gate(base, _seconds(TimedLM(), name))
    assert same.status == "pass" and same.ratio == pytest.approx(1.0) and same.p > 0.5
    slow = latency_gate(base, _seconds(TimedLM(factor=3.0), name))
    assert slow.status == "fail" and slow.ratio == pytest.approx(3.0) and slow.p < 0.001
    assert slow.ci_low - 1e-9 <= 3.0 <= slow.ci_high + 1e-9 and (slow.unit, slow.units) == ("question", 16)
    # within the tolerance: 30 % slower with 50 % allowed passes
    assert latency_gate(base, _seconds(TimedLM(factor=1.3), name)).status == "pass"
    # the same slowdown over 60 gated tests still fails (16 paired questions, exact p = 2**-16)
    assert latency_gate(base, _seconds(TimedLM(factor=3.0), name), family=60).status == "fail"


def test_the_latency_gate_refuses_what_it_cannot_compare():
    base = [0.1] * 5
    other = latency_gate(base, base, run_env={**ENV, "hardware": "Other GPU", "batch_size": "8"})
    assert other.status == "incomparable" and "hardware Test CPU -> Other GPU" in other.message and other.failed
    assert latency_incomparable(ENV, {**ENV, "threads": "2"}) == ["threads 1 -> 2"]
    cached = latency_gate(base, [0.1, None, 0.1, 0.1, 0.1])
    assert cached.status == "untimed" and "--response-cache off" in cached.message and cached.failed
    assert latency_gate(None, base).status == "missing" and latency_gate([0.1, None, 0.1, 0.1, 0.1], base).status == "missing"


def test_per_question_seconds_are_stored_with_the_items(tmp_path):
    entry = Entry(task_id="quiz_fixtures_anime_loglik-1.0-0.2", task="t", task_version="1.0", prompt_version="0.2",
                  num_fewshot=0, n=3, data_sha256="a" * 64, kind="multiple_choice", updated="now",
                  metrics={"acc": MetricBaseline(1.0, 3)}, items="b/x.jsonl")
    items = Items(["q1", "q2", "q3"], {"acc": [1.0, 0.0, 1.0]}, [0.25, None, 1.5], [[0], None, [0, 1]])
    write_items(tmp_path, "b/x.jsonl", entry, items)
    back = load_items(tmp_path, entry, tmp_path / "b.toml")
    assert back.seconds == [0.25, None, 1.5] and back.values == items.values
    assert back.batches == [[0], None, [0, 1]]  # which answers were timed together: the latency gate's units
    untimed = Items(["q1", "q2", "q3"], {"acc": [1.0, 0.0, 1.0]})
    write_items(tmp_path, "b/x.jsonl", entry, untimed)
    assert load_items(tmp_path, entry, tmp_path / "b.toml").seconds is None
    assert "seconds" not in (tmp_path / "b/x.jsonl").read_text()


# -- the unit of the paired test is what was timed: a batch --------------------------------------------------

def _batched(rng, n_batches, size=4, factor=1.0, noise=0.3):
    """Per-question seconds as a batched backend reports them: each batch's time (with batch-wide noise) shared
    equally among its questions."""
    out = []
    for _ in range(n_batches):
        t = factor * 0.4 * math.exp(rng.gauss(0, noise))
        out += [t / size] * size
    return out, [[q // size] for q in range(n_batches * size)]


def test_a_batched_run_is_paired_by_batch_and_says_so():
    rng = random.Random(1)
    base, batches = _batched(rng, 12)
    slow, _ = _batched(rng, 12, factor=3.0)
    check = latency_gate(base, slow, base_env=BATCHED, run_env=BATCHED, base_batches=batches, run_batches=batches)
    assert (check.status, check.unit, check.units, check.n) == ("fail", "batch", 12, 48)
    assert check.p >= 2 ** -12 and "12 batches" in check.message
    # 16 questions in batches of 4: 4 measurements, whose smallest one-sided p is 1/16 > 0.05: it says so and fails
    base16, b16 = _batched(rng, 4)
    few = latency_gate(base16, [3 * t for t in base16], base_env=BATCHED, run_env=BATCHED, base_batches=b16, run_batches=b16)
    assert few.status == "underpowered" and few.failed and "it needs 5" in few.message and few.units == 4


def test_batches_must_hold_the_same_questions_and_be_known():
    base = [0.1] * 8
    by_four = [[q // 4] for q in range(8)]
    by_two = [[q // 2] for q in range(8)]
    assert latency_gate(base, base, base_env=BATCHED, run_env=BATCHED, base_batches=by_four, run_batches=by_two).status \
        == "incomparable"
    unknown = latency_gate(base, base, base_env=BATCHED, run_env=BATCHED, base_batches=None, run_batches=by_four)
    assert unknown.status == "incomparable" and "which questions shared a batch" in unknown.message
    # a question whose choices span two batches joins them into one unit
    assert timing_units([[0], [0, 1], [1], [2]], 4, "4") == [frozenset({0, 1, 2}), frozenset({3})]
    assert timing_units(None, 3, "1") == [frozenset({0}), frozenset({1}), frozenset({2})]


@pytest.mark.parametrize("seed", range(3))
def test_the_interval_agrees_with_the_verdict(seed):
    rng = random.Random(seed)
    base, batches = _batched(rng, 10, noise=0.2)
    run, _ = _batched(rng, 10, factor=rng.choice([1.0, 1.4, 1.6, 2.0]), noise=0.2)
    check = latency_gate(base, run, base_env=BATCHED, run_env=BATCHED, base_batches=batches, run_batches=batches)
    assert check.ci_low <= check.ratio <= check.ci_high
    assert (check.status == "fail") == (check.ci_low > 1.5), (check.status, check.ci_low)


def test_simulated_false_alarms_stay_at_alpha_and_a_twice_slower_model_is_caught():
    """Identical models with batch-correlated noise (48 questions, batches of 4): the gate's test on its units at
    tolerance 0 rejects at most alpha of the time (on the 48 shares as independent pairs it rejects far more
    often); a model 2x slower is caught at a 50 % tolerance nearly always. (The gate's own p, without its interval.)"""
    rng = random.Random(20261206)
    sims, alarms, caught = 200, 0, 0
    for _ in range(sims):
        base, batches = _batched(rng, 12)
        same, _ = _batched(rng, 12)
        slow, _ = _batched(rng, 12, factor=2.0, noise=0.1)
        units = timing_units(batches, len(base), "4")
        alarms += slower_p(unit_seconds(base, units), unit_seconds(same, units), 0.0) < 0.05
        caught += slower_p(unit_seconds(base, units), unit_seconds(slow, units), 0.5) < 0.05
    assert alarms / sims <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / sims)  # alpha plus two binomial standard errors
    assert caught / sims >= 0.8
