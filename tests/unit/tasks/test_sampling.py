"""Document order and few-shot draws, call for call as the jp-stable harness (spec 2.2).

The reference below is written from the spec, independently of kensa: one generator seeded
with 42 shuffles the eval docs, ``--limit`` keeps the first N, and the *same* generator then
draws ``rnd.sample(pool, k)`` for each kept doc in shuffled order.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kensa.data import DataSource, Split
from kensa.errors import OptionError
from kensa.tasks.jglue.jcommonsenseqa import TASK
from kensa.tasks.render import prepare
from kensa.tasks.sampling import draw_shots, resolve_limit, shuffled


def harness_reference(docs, pool, k, limit=None):
    """(docs in evaluation order, shots per doc) exactly as lm_eval/evaluator.py + base.py do it."""
    rnd = random.Random()
    rnd.seed(42)
    task_docs = list(docs)
    rnd.shuffle(task_docs)
    if limit is not None:
        n = int(len(task_docs) * limit) if limit < 1.0 else int(limit)
        task_docs = task_docs[:n]
    shots = [rnd.sample(pool, k) if k > 0 else [] for _ in task_docs]
    return task_docs, shots


def jcqa_row(q_id: int) -> dict:
    return {"q_id": q_id, "question": f"問{q_id}", **{f"choice{i}": f"選{q_id}-{i}" for i in range(5)},
            "label": q_id % 5}


EVAL_ROWS = [jcqa_row(1000 + i) for i in range(30)]
POOL_ROWS = [jcqa_row(i) for i in range(50)]
VARIANT = TASK.variants()[0]


def prepared_ids(k, limit=None, n_eval=30, n_pool=50, variant=VARIANT):
    docs = prepare(variant, Split(EVAL_ROWS[:n_eval], "mem:eval"), Split(POOL_ROWS[:n_pool], "mem:pool"), k, limit)
    return [d.row["q_id"] for d in docs], [d.shot_ids for d in docs], docs


def reference_ids(k, limit=None, n_eval=30, n_pool=50):
    docs, shots = harness_reference(EVAL_ROWS[:n_eval], POOL_ROWS[:n_pool], k, limit)
    return [d["q_id"] for d in docs], [[s["q_id"] for s in ss] for ss in shots]


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_prepare_matches_harness_order_and_shots(k):
    order, shots, docs = prepared_ids(k)
    ref_order, ref_shots = reference_ids(k)
    assert order == ref_order
    assert shots == ref_shots
    assert [d.doc_id for d in docs] == list(range(30))


def test_shuffle_is_not_identity_and_shots_depend_on_position():
    """Guards the reference itself: a no-op shuffle or one fixed shot list would hide bugs."""
    order, shots, _ = prepared_ids(3)
    assert order != [r["q_id"] for r in EVAL_ROWS]
    assert len({tuple(s) for s in shots}) > 1


def test_prompt_is_built_from_the_drawn_shots():
    _, _, docs = prepared_ids(2, limit=4)
    _, ref_shots = harness_reference(EVAL_ROWS, POOL_ROWS, 2, 4)
    template = VARIANT.template
    for d, shots in zip(docs, ref_shots, strict=True):
        assert d.prompt == template.context([TASK.view(s) for s in shots], TASK.view(d.row))
        assert d.continuations == [d.row[f"choice{i}"] for i in range(5)]
        assert d.gold == d.row["label"]


def test_prepare_matches_harness_on_shipped_fixture_data():
    eval_split, pool = TASK.load(DataSource.fixtures())
    docs = prepare(VARIANT, eval_split, pool, 3, None)
    ref_docs, ref_shots = harness_reference(eval_split.rows, pool.rows, 3)
    assert [d.row for d in docs] == ref_docs
    assert [d.shot_ids for d in docs] == [[s["q_id"] for s in ss] for ss in ref_shots]


def test_shuffled_uses_seed_42_and_returns_the_same_generator():
    rnd, order = shuffled(list(range(20)))
    ref = random.Random()
    ref.seed(42)
    expected = list(range(20))
    ref.shuffle(expected)
    assert order == expected
    assert rnd.random() == ref.random()  # the generator continues from the shuffle, not reseeded


def test_shuffled_does_not_mutate_input():
    docs = list(range(10))
    shuffled(docs)
    assert docs == list(range(10))


# --- k = 0 ----------------------------------------------------------------------------------


def test_k0_draws_nothing():
    rnd = random.Random(7)
    state = rnd.getstate()
    assert draw_shots(rnd, POOL_ROWS, 0) == []
    assert rnd.getstate() == state


def test_k0_with_no_pool_is_fine():
    assert draw_shots(random.Random(1), [], 0) == []
    docs = prepare(VARIANT, Split(EVAL_ROWS, "mem:eval"), None, 0, None)
    assert [d.shot_ids for d in docs] == [[]] * 30
    assert [d.row["q_id"] for d in docs] == reference_ids(0)[0]


def test_k0_prompt_has_no_shots():
    _, _, docs = prepared_ids(0, limit=3)
    for d in docs:
        assert d.prompt == VARIANT.template.description + VARIANT.template.render_text(TASK.view(d.row))


# --- --limit --------------------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "expected_n"), [(5, 5), (30, 30), (100, 30), (1, 1),
                                                   (0.25, 7), (0.5, 15), (0.999, 29), (0.01, 0)])
def test_limit_int_and_fraction(limit, expected_n):
    """An int keeps the first N shuffled docs; a float below 1 keeps int(n * limit) (0.25*30 = 7.5 -> 7)."""
    order, shots, _ = prepared_ids(3, limit=limit)
    ref_order, ref_shots = reference_ids(3, limit=limit)
    assert len(order) == expected_n
    assert order == ref_order
    assert shots == ref_shots


def test_limit_keeps_a_prefix_of_the_full_order():
    full, full_shots, _ = prepared_ids(3)
    cut, cut_shots, _ = prepared_ids(3, limit=6)
    assert cut == full[:6]
    assert cut_shots == full_shots[:6]


@pytest.mark.parametrize(("limit", "n", "expected"), [(None, 10, 10), (3, 10, 3), (3.0, 10, 3), (20, 10, 10),
                                                      (0.5, 7, 3), (0.3, 10, 3), (1.0, 10, 1)])
def test_resolve_limit(limit, n, expected):
    assert resolve_limit(limit, n) == expected


@pytest.mark.parametrize("limit", [0, -1, 0.0, -0.5])
def test_resolve_limit_rejects_non_positive(limit):
    with pytest.raises(OptionError) as exc:
        resolve_limit(limit, 10)
    assert exc.value.option == "--limit"
    assert repr(limit) in str(exc.value)


# --- k larger than the pool -----------------------------------------------------------------


def test_k_larger_than_pool_is_an_option_error():
    with pytest.raises(OptionError) as exc:
        prepared_ids(11, n_pool=10)
    assert exc.value.option == "--num-fewshot"
    assert "--num-fewshot" in str(exc.value)
    assert "11" in str(exc.value) and "10" in str(exc.value)


def test_k_larger_than_missing_pool_is_an_option_error():
    with pytest.raises(OptionError, match="--num-fewshot"):
        prepare(VARIANT, Split(EVAL_ROWS, "mem:eval"), None, 1, None)


def test_k_equal_to_pool_size_is_allowed():
    _order, shots, _ = prepared_ids(10, n_pool=10, limit=3)
    assert shots == reference_ids(10, limit=3, n_pool=10)[1]
    assert all(sorted(s) == list(range(10)) for s in shots)


@settings(max_examples=60)
@given(n_eval=st.integers(1, 30), n_pool=st.integers(1, 50), data=st.data())
def test_prepare_matches_reference_property(n_eval, n_pool, data):
    k = data.draw(st.integers(0, n_pool), label="k")
    limit = data.draw(st.none() | st.integers(1, 40) | st.floats(0.01, 0.99), label="limit")
    order, shots, _ = prepared_ids(k, limit=limit, n_eval=n_eval, n_pool=n_pool)
    assert (order, shots) == reference_ids(k, limit=limit, n_eval=n_eval, n_pool=n_pool)
