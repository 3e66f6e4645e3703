"""The run loops in looks (--gate-sequential): each look scores the next docs of the same shuffled order, with the
same prompts and shots as a full run, and a stop after a look ends the task there."""

from __future__ import annotations

import pytest

from kensa.data import DataSource
from kensa.gate.sequential import look_sizes
from kensa.run import evaluate_variant
from kensa.tasks import all_tasks
from tests.helpers import LATENCY_ENV, TimedLM, latency_gate

BATCHED = {**LATENCY_ENV, "batch_size": "4"}

TASKS = {t.name: t for t in all_tasks()}


def _variant(name):
    task = TASKS[name]
    variant = next(v for v in task.variants() if v.template.version in ("0.3", ""))
    eval_split, pool = task.load(DataSource.fixtures())
    return variant, eval_split, pool


def _strip(samples):
    # timing and its provenance: a look is a call of its own, so its times and batches group only its own docs
    return [{k: v for k, v in s.items() if k not in ("seconds", "first_token_seconds", "batches")} for s in samples]


@pytest.mark.parametrize("name", ["jcommonsenseqa", "mgsm"])
def test_looks_are_prefixes_of_the_full_run_and_stop_ends_the_task(name):
    variant, eval_split, pool = _variant(name)
    k = TASKS[name].num_fewshot
    full = evaluate_variant(variant, TimedLM(), eval_split, pool, k)
    sizes = look_sizes(full.n)
    seen = []
    lm = TimedLM()
    whole = evaluate_variant(variant, lm, eval_split, pool, k, stop=lambda run: seen.append(run) or False,
                             looks=sizes)
    assert [r.n for r in seen] == sizes[:-1] and lm.calls == len(sizes)  # one batch of requests per look
    assert _strip(whole.samples) == _strip(full.samples) and whole.metrics == full.metrics
    for prefix in seen:
        assert _strip(prefix.samples) == _strip(full.samples[: prefix.n])
        assert prefix.item_keys == full.item_keys[: prefix.n]
    stopped = evaluate_variant(variant, TimedLM(), eval_split, pool, k, stop=lambda run: run.n >= sizes[2],
                               looks=sizes)
    assert stopped.n == sizes[2] and _strip(stopped.samples) == _strip(full.samples[: sizes[2]])


def test_the_latency_gate_pairs_a_stopped_task_with_the_same_prefix_of_the_baseline():
    base = [0.1] * 10 + [5.0] * 10  # slow questions late in the order: a prefix must not be compared with them
    assert latency_gate(base, [0.1] * 10).status == "pass"
    assert latency_gate(base, [0.3] * 10).status == "fail"
    assert latency_gate([0.1] * 5, [0.1] * 6).status == "missing"  # a run longer than the baseline is not a prefix


def _quiz(name):
    task = TASKS[name]
    variant = next(v for v in task.variants() if v.template.version == "0.2")
    eval_split, pool = task.load(DataSource.fixtures())
    return variant, eval_split, pool


@pytest.mark.parametrize("name", ["quiz_fixtures_anime_loglik", "quiz_fixtures_anime_gen"])
def test_a_quiz_in_looks_numbers_its_batches_per_task_so_no_timing_unit_spans_two_looks(name):
    import bisect

    from kensa.gate.latency import looks_split_batches, timing_units

    variant, eval_split, pool = _quiz(name)
    full = evaluate_variant(variant, TimedLM(), eval_split, pool, 0)
    sizes = look_sizes(full.n)
    looked = evaluate_variant(variant, TimedLM(), eval_split, pool, 0, stop=lambda run: False, looks=sizes)
    batches = [s["batches"] for s in looked.samples]
    look_of = [bisect.bisect_right(sizes, i) for i in range(looked.n)]
    owner: dict[int, int] = {}
    for i, numbers in enumerate(batches):  # a batch number belongs to one look (the backend restarts at 0 per call)
        assert all(owner.setdefault(b, look_of[i]) == look_of[i] for b in numbers), (i, numbers)
    units = timing_units(batches, looked.n, "4")
    assert units is not None and all(len({look_of[i] for i in u}) == 1 for u in units)
    # The baseline, measured in one call, batched other questions together: the batched latency gate cannot pair
    # them, so under --gate-sequential a latency-gated quiz on a batched backend scores in one call.
    split = latency_gate([s["seconds"] for s in full.samples], [s["seconds"] for s in looked.samples],
                         base_env=BATCHED, run_env=BATCHED, base_batches=[s["batches"] for s in full.samples],
                         run_batches=batches)
    assert split.status == "incomparable" and "batched different questions" in split.message
    assert looks_split_batches("4") and looks_split_batches(1) is None
    # At batch size 1 each question is its own unit: a run stopped at look 3 pairs with the baseline's prefix.
    stopped = evaluate_variant(variant, TimedLM(), eval_split, pool, 0, stop=lambda run: run.n >= sizes[2],
                               looks=sizes)
    check = latency_gate([s["seconds"] for s in full.samples], [s["seconds"] for s in stopped.samples])
    assert stopped.n == sizes[2] and check.status in ("pass", "fail") and (check.unit, check.units) == (
        "question", sizes[2])
