"""The run loops in looks (--gate-sequential): each look scores the next docs of the same shuffled order, with the
same prompts and shots as a full run, and a stop after a look ends the task there."""

from __future__ import annotations

import pytest

from kensa.data import DataSource
from kensa.gate.sequential import look_sizes
from kensa.run import evaluate_variant
from kensa.tasks import all_tasks
from tests.helpers import TimedLM, latency_gate

TASKS = {t.name: t for t in all_tasks()}


def _variant(name):
    task = TASKS[name]
    variant = next(v for v in task.variants() if v.template.version in ("0.3", ""))
    eval_split, pool = task.load(DataSource.fixtures())
    return variant, eval_split, pool


def _strip(samples):
    # timing and its provenance: a look is a call of its own, so its batches are numbered from 0 again
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
