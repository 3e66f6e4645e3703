"""The packed scorer (each shared prompt runs once) against the one-row-per-request path.

The acceptance rule: log-likelihoods within 1e-4 in float32, identical predictions and
is-greedy flags, on every task. ``loglikelihood_simple`` is the harness's way (one row per
request); ``loglikelihood`` packs a doc's choices behind one copy of its prompt.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kensa.backends.packing import Pack, build_packs, collate
from kensa.data import DataSource
from kensa.metrics.core import multiple_choice_scores
from kensa.tasks.render import prepare
from tests.helpers import crosscheck_tasks, load_tiny, tiered

torch = pytest.importorskip("torch")

# Every multiple-choice variant (a new task is covered without a new test): one version per task in the
# default tier, the rest marked slow (tests.helpers.tiered).
ALL_MC = [v for t in crosscheck_tasks() if t.kind == "multiple_choice" for v in t.variants()]
VARIANTS = tiered(ALL_MC)


def requests_for(variant, limit=None):
    task = variant.task
    eval_split, pool = task.load(DataSource.fixtures())
    docs = prepare(variant, eval_split, pool, task.num_fewshot, limit)
    return docs, [(d.prompt, c) for d in docs for c in d.continuations]


def assert_equivalent(lm, docs, requests, strict=False):
    simple = lm.loglikelihood_simple(requests)
    packed = lm.loglikelihood(requests)
    assert len(packed) == len(simple) == len(requests)
    for (ctx, cont), a, b in zip(requests, simple, packed, strict=True):
        assert abs(a.logprob - b.logprob) <= 1e-4, (cont, a.logprob, b.logprob)
        assert a.is_greedy == b.is_greedy, cont
        assert a.num_tokens == b.num_tokens
    pos = 0
    for d in docs:
        n = len(d.continuations)
        mine = multiple_choice_scores([r.logprob for r in simple[pos: pos + n]], d.continuations, d.gold, strict)
        theirs = multiple_choice_scores([r.logprob for r in packed[pos: pos + n]], d.continuations, d.gold, strict)
        assert (mine["pred"], mine["pred_norm"]) == (theirs["pred"], theirs["pred_norm"]), d.doc_id
        pos += n


@pytest.mark.parametrize("fixture", ["tiny_neox", "tiny_llama"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_packed_equals_simple_on_every_task(variant, fixture, request):
    lm = request.getfixturevalue(fixture)
    assert lm._mask_format() == "bool"  # SDPA: the packed path is the one under test
    # the default tier scores 16 docs (the unpacked reference path is slow); the slow tier every fixture doc
    docs, requests = requests_for(variant, limit=None if request.node.get_closest_marker("slow") else 16)
    assert_equivalent(lm, docs, requests, strict=variant.task.strict_acc)


@pytest.fixture(scope="module")
def tiny_with_adapter():
    lm = load_tiny("tiny", "peft=tiny-lora,batch_size=3")
    yield lm
    lm.close()


def test_packed_equals_simple_through_a_peft_adapter(tiny_with_adapter):
    docs, requests = requests_for(ALL_MC[0])
    assert_equivalent(tiny_with_adapter, docs, requests)


def test_packed_equals_simple_with_eager_attention():
    lm = load_tiny("tiny-llama", "batch_size=5")
    lm.model.set_attn_implementation("eager")
    assert lm._mask_format() == "additive"
    docs, requests = requests_for(ALL_MC[0], limit=10)
    assert_equivalent(lm, docs, requests)
    lm.close()


LONG_PROMPTS = [ALL_MC[0], next(v for v in ALL_MC if v.task.name == "jnli")]


@pytest.mark.parametrize("variant", LONG_PROMPTS, ids=lambda v: v.task_id)
def test_packed_equals_simple_when_prompts_are_truncated(variant):
    lm = load_tiny("tiny-llama", "max_length=40,batch_size=4")  # every prompt is cut from the left
    docs, requests = requests_for(variant, limit=10)
    assert any(len(lm.tok_encode(ctx)) > 40 for ctx, _ in requests)
    assert_equivalent(lm, docs, requests)
    lm.close()


def test_packing_runs_each_shared_prompt_once(tiny_llama):
    docs, requests = requests_for(ALL_MC[0], limit=6)
    encoded = [tiny_llama.encode_pair(c, x) for c, x in requests]
    packs = build_packs(encoded, max_row=10_000)
    assert len(packs) == len(docs)
    simple_tokens = sum(len(ids) - 1 for ids, _ in encoded)
    packed_tokens = sum(p.length for p in packs)
    # Each prompt once, plus every choice but its last token: 5 choices cost about one prompt.
    want = sum(len(tiny_llama.tok_encode(d.prompt)) + sum(len(tiny_llama.tok_encode(c)) - 1 for c in d.continuations)
               for d in docs)
    assert packed_tokens == want
    assert packed_tokens < 0.55 * simple_tokens


def test_identical_requests_are_scored_once_and_answered_everywhere(tiny_llama):
    requests = [("質問：A\n答え：", "はい"), ("質問：A\n答え：", "いいえ"), ("質問：A\n答え：", "はい")]
    encoded = [tiny_llama.encode_pair(c, x) for c, x in requests]
    (pack,) = build_packs(encoded, max_row=10_000)
    assert pack.owners == [[0, 2], [1]]
    results = tiny_llama.loglikelihood(requests)
    assert results[0] == results[2]


def test_a_long_group_is_split_over_rows():
    encoded = [([1, 2, 3, 10 + i, 20 + i, 30 + i], 3) for i in range(5)]  # 3 context tokens, 5 choices of 3
    packs = build_packs(encoded, max_row=3 + 2 * 2)
    assert [len(p.continuations) for p in packs] == [2, 2, 1]
    assert sorted(i for p in packs for owners in p.owners for i in owners) == list(range(5))


def test_a_request_without_context_is_refused():
    with pytest.raises(ValueError, match="request 0"):
        build_packs([([5, 6], 2)], max_row=100)


# -- the mask and positions, without a model ----------------------------------------------------

token = st.integers(min_value=4, max_value=50)
pack_strategy = st.builds(
    lambda ctx, conts: (tuple(ctx), [tuple(c) for c in conts]),
    st.lists(token, min_size=1, max_size=6),
    st.lists(st.lists(token, min_size=1, max_size=4), min_size=1, max_size=4, unique_by=tuple),
)


@settings(max_examples=200)
@given(st.lists(pack_strategy, min_size=1, max_size=4))
def test_every_scored_token_sees_exactly_its_own_row(specs):
    """Each scored query sees the keys, in the positions, that it would see in a row of its own
    (the context, then its own continuation), and reads the target that row would read."""
    packs = [Pack(ctx, list(conts), [[k] for k in range(len(conts))]) for ctx, conts in specs]
    batch = collate(packs, pad_id=0)
    width = batch.input_ids.shape[1]
    scored = 0
    for r, pack in enumerate(packs):
        for j, cont in enumerate(pack.continuations):
            first, n, _ = next(s for s in batch.spans if batch.rows[s[0]] == r and s[2] == [j])
            assert n == len(cont)
            alone = list(pack.context) + list(cont[:-1])
            for t in range(n):
                k = first + t
                col = int(batch.columns[k]) + width - batch.keep
                assert int(batch.rows[k]) == r
                assert int(batch.targets[k]) == cont[t]
                query_position = len(pack.context) - 1 + t
                assert int(batch.position_ids[r, col]) == query_position
                visible = batch.attention_mask[r, 0, col].nonzero().flatten().tolist()
                seen = sorted((int(batch.position_ids[r, c]), int(batch.input_ids[r, c])) for c in visible)
                assert seen == [(p, alone[p]) for p in range(query_position + 1)]
                scored += 1
    assert scored == len(batch.targets)


def test_pads_see_no_real_token_and_no_real_token_sees_a_pad():
    packs = [Pack((5, 6, 7, 8), [(9, 10)], [[0]]), Pack((5,), [(9,)], [[1]])]
    batch = collate(packs, pad_id=0)
    mask = batch.attention_mask[1, 0]
    pads = [c for c in range(batch.input_ids.shape[1]) if c < batch.input_ids.shape[1] - packs[1].length]
    assert pads
    for c in range(mask.shape[0]):
        for key in range(mask.shape[1]):
            if mask[c, key]:
                assert (c in pads) == (key in pads)
    assert bool(mask.any(dim=-1).all())  # no query row is empty (an all-masked row gives NaN)


# -- batch_size=auto --------------------------------------------------------------------------

class OutOfMemoryAbove:
    """Wraps a model; a forward pass over more than ``rows`` rows raises as CUDA does."""

    def __init__(self, model, rows: int):
        self.model, self.rows, self.calls = model, rows, []

    def __call__(self, **kwargs):
        size = kwargs["input_ids"].shape[0]
        self.calls.append(size)
        if size > self.rows:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.model(**kwargs)

    def __getattr__(self, name):
        return getattr(self.model, name)


def test_auto_batch_size_halves_on_out_of_memory_and_keeps_the_results():
    lm = load_tiny("tiny-llama", "batch_size=auto")
    _, requests = requests_for(ALL_MC[0], limit=20)
    want = lm.loglikelihood_simple(requests)
    lm._mask_format()
    real = lm.model
    lm.model = OutOfMemoryAbove(real, rows=5)
    got = lm.loglikelihood(requests)
    assert lm.model.calls[:4] == [20, 10, 5, 5]  # 20 packs: 64 -> all 20, then halved twice
    assert max(abs(a.logprob - b.logprob) for a, b in zip(want, got, strict=True)) <= 1e-4
    lm.model = real
    lm.close()


def test_a_fixed_batch_size_that_runs_out_of_memory_says_what_to_do():
    from kensa.errors import ModelRunError

    lm = load_tiny("tiny-llama", "batch_size=8")
    _, requests = requests_for(ALL_MC[0], limit=10)
    lm._mask_format()
    lm.model = OutOfMemoryAbove(lm.model, rows=2)
    with pytest.raises(ModelRunError, match="batch of 8.*batch_size=auto"):
        lm.loglikelihood(requests)
