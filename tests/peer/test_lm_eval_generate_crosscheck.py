"""Cross-check of the generation path against a peer: lm-eval 0.4's HF wrapper generates from kensa's prompts.

Every registered generation variant (8 fixture docs) is run through kensa's ``evaluate_generation``;
its exact prompts, stop strings and per-doc ``max_new_tokens`` then go to lm-eval's
``HFLM.generate_until`` on the same model object. The generations must be identical string for
string, with kensa at batch size 1 and 4 (left padding) against lm-eval at 1, and the final metrics
of ``task.score`` over lm-eval's generations must equal kensa's ``run.metrics``. ``tiny-llama`` is
random: gibberish, cut by the budget or ended by EOS (MGSM, XL-Sum); ``tiny-trained`` answers, so
its stop strings fire (about a third of its docs).

lm-eval 0.4's semantics, and how they are lined up with kensa's:

* Encoding: lm-eval's ``tok_batch_encode`` uses the tokenizer's default special tokens (BOS for most
  Llama tokenizers) unless ``add_bos_token`` is given; the harness never adds BOS, so the peer gets
  ``add_bos_token=False``, and every prompt's ids are compared (the tiny tokenizer adds none anyway).
* Truncation: both keep the last ``max_length - max_new_tokens`` context tokens (the short-context
  test makes it bite).
* EOS: lm-eval adds the EOS string to ``until``, stops at the model's ``eos_token_id`` and decodes with
  ``skip_special_tokens=True``; kensa stops at EOS and decodes the ids before it. Same text unless the
  model emits another special token (``<unk>``, ``<s>``, ``<pad>``), which kensa keeps as text; none does.
* Stop detection: lm-eval's ``MultiTokenEOSCriteria`` decodes only the last ``len(encode(stop)) + 2``
  generated tokens, kensa the whole generation. Byte-fallback tokens make a stop string visible in one
  decode and not the other (:func:`test_lm_eval_stop_window_misses_a_newline_after_bytes`; at the tasks'
  own budgets stock lm-eval already gives nine U+FFFD where kensa gives ``'琶湖'``), so the peer's
  window is widened to the whole generation: the one change made to lm-eval itself. The text is then cut
  at the first stop string on both sides.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import pytest

from kensa.data import DataSource
from kensa.metrics.core import aggregate
from kensa.run.generation import evaluate_generation
from tests.helpers import crosscheck_tasks, load_tiny, tiered

lm_eval = pytest.importorskip("lm_eval", reason="lm-eval is the peer oracle; `make install` installs it (extra 'peer')")

# Every generation variant is checked; a new task is covered without a new test.
# lm-eval's HFLM here is a causal model: the prompts written for seq2seq models (suites/qa 0.1, 0.2) are not its.
VARIANTS = [v for t in crosscheck_tasks() if t.kind == "generation" for v in t.variants() if v.applies_to("causal")]
TIERED = tiered(VARIANTS)  # one version per task in the default tier, the rest slow
LIMIT = 8
SHORT_CONTEXT = 300
"""A context length that forces left truncation (the prompts are 300-900 tokens) and still exceeds
every budget, as lm-eval requires."""
RANDOM_GEN_TOKS = 64


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: the tiny models gain nothing from more, and two threads on two busy cores
    (xdist, other jobs) run generation some 30 times slower. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_trained():
    """Built on first use (training takes minutes; the gate's end-to-end test shares the cache)."""
    lm = load_tiny("tiny-trained")
    yield lm
    lm.close()


@pytest.fixture(scope="module")
def model(request):
    """The model a test is parametrized with (indirectly), by name."""
    return request.getfixturevalue(request.param.replace("-", "_"))


@pytest.fixture(scope="module")
def whole_generation_stops():
    """lm-eval's stop criteria look back over every generated token, as kensa's do."""
    import lm_eval.models.huggingface as hf

    original = hf.stop_sequences_criteria

    def whole(tokenizer, stops, width, batch_size):
        criteria = original(tokenizer, stops, width, batch_size)
        for c in criteria:
            c.sequence_id_len = 1 << 30
        return criteria

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hf, "stop_sequences_criteria", whole)
        yield


def make_peer(lm, max_length: int):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, device="cpu", batch_size=1, max_length=max_length,
                add_bos_token=False)


@pytest.fixture(scope="module")
def peer_generate(whole_generation_stops):
    """``peer_generate(lm, samples) -> [text]``: lm-eval at batch size 1 on kensa's requests, cached by
    request, so kensa's batch sizes share one peer run."""
    from lm_eval.api.instance import Instance

    peers, cache = {}, {}

    def generate(lm, samples):
        key = (lm.name, lm.max_length)
        if key not in peers:
            peers[key] = make_peer(lm, lm.max_length)
        peer = peers[key]
        requests = [(s["prompt"], tuple(s["until"]), s["max_new_tokens"]) for s in samples]
        todo = [r for r in dict.fromkeys(requests) if (key, r) not in cache]
        for prompt, until, n in todo:
            # What each side feeds the model: no BOS, the same left truncation.
            ids, _ = peer.tok_batch_encode([prompt], left_truncate_len=peer.max_length - n)
            assert ids[0].tolist() == lm.tok_encode(prompt)[-(lm.max_length - n):], \
                f"lm-eval encodes this prompt differently from kensa: ...{prompt[-80:]!r}"
        instances = [Instance(request_type="generate_until", doc={}, idx=0,
                              arguments=(prompt, {"until": list(until), "max_gen_toks": n, "do_sample": False}))
                     for prompt, until, n in todo]
        for r, text in zip(todo, peer.generate_until(instances, disable_tqdm=True), strict=True):
            cache[(key, r)] = text
        return [cache[(key, r)] for r in requests]

    return generate


def with_settings(lm, batch_size: int, max_length: int | None = None):
    """The same model object, batched (and, if asked, context-limited) differently. The random model
    never stops early, so its default budget (MGSM's) is cut to ``RANDOM_GEN_TOKS`` to save time."""
    out = copy.copy(lm)
    out.batch_size = batch_size
    if max_length is not None:
        out.max_length = max_length
    if lm.name == "tiny-llama":
        out.spec = replace(lm.spec, args=replace(lm.spec.args, max_gen_toks=RANDOM_GEN_TOKS))
    return out


LOOP_METRICS = ("unterminated", "copies", "roundtrip_f1", "roundtrip_em", "bad_word_violations")


def metrics_from(task, samples, generations, lm) -> dict[str, float]:
    """The final metrics of ``generations``, aggregated as ``evaluate_generation`` aggregates kensa's."""
    per_doc = []
    for s, text in zip(samples, generations, strict=True):
        scores = dict(task.score(text, s["doc"], lm))
        per_doc.append({**scores, "gold": scores.get("gold_value")} if "gold_value" in scores else scores)
    # The loop's own checks (termination, copies, the round trip) are not the task's scores of a text.
    return aggregate(per_doc, [m for m in (*task.metrics, *task.reported) if m not in LOOP_METRICS])


def same_metrics(a: dict[str, float], b: dict[str, float]) -> bool:
    """Equal keys and values, NaN equal to NaN (a correlation over constant predictions)."""
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def check_against_peer(variant, lm, peer_generate):
    task = variant.task
    eval_split, pool = task.load(DataSource.fixtures())
    run = evaluate_generation(variant, lm, eval_split, pool, task.num_fewshot, limit=LIMIT)
    assert run.n == len(run.samples) > 0
    theirs = peer_generate(lm, run.samples)
    diffs = [(s["doc_id"], s["generation"], t) for s, t in zip(run.samples, theirs, strict=True)
             if s["generation"] != t]
    assert not diffs, (f"{variant.task_id} on {lm.name} (kensa batch {lm.batch_size}, max_length {lm.max_length}): "
                       + "; ".join(f"doc {d}: kensa {a!r} lm-eval {b!r}" for d, a, b in diffs))
    peer_metrics = metrics_from(task, run.samples, theirs, lm)
    ours = {k: v for k, v in run.metrics.items() if k in peer_metrics}
    assert same_metrics(peer_metrics, ours), f"{variant.task_id}: lm-eval's {peer_metrics}, kensa's {run.metrics}"
    return run


# (model, kensa's batch size); lm-eval runs at batch size 1, so "b4" checks that kensa's left padding
# changes no greedy token. The random model's flat logits are the more sensitive detector of padding
# noise; tiny-trained's stop strings fire.
CASES = [(m, b) for m in ("tiny-llama", "tiny-trained") for b in (1, 4)]


@pytest.mark.parametrize("variant", TIERED)
@pytest.mark.parametrize(("model", "batch_size"), CASES, ids=[f"{m}-b{b}" for m, b in CASES], indirect=["model"])
def test_lm_eval_generates_what_kensa_generates(variant, batch_size, model, peer_generate):
    check_against_peer(variant, with_settings(model, batch_size), peer_generate)


# One variant per task is enough to exercise the truncation; the random model keeps it fast.
# (The JGLUE tasks: their few-shot prompts outgrow the short context; the QA suite's 0-shot ones need not.)
FIRST_VARIANTS = [t.variants()[0] for t in crosscheck_tasks() if t.kind == "generation" and t.suite == "jglue"]


@pytest.mark.parametrize("variant", FIRST_VARIANTS, ids=[v.task_id for v in FIRST_VARIANTS])
def test_lm_eval_agrees_when_the_context_is_truncated(variant, tiny_llama, peer_generate):
    lm = with_settings(tiny_llama, 4, max_length=SHORT_CONTEXT)
    run = check_against_peer(variant, lm, peer_generate)
    if variant.task.fit is None:  # a task that fits its own prompts (fewer shots, cut articles) may not need it
        assert any(len(lm.tok_encode(s["prompt"])) > SHORT_CONTEXT - s["max_new_tokens"] for s in run.samples)


def test_lm_eval_stop_window_misses_a_newline_after_bytes(tiny_llama):
    """Why the peer's stop window is widened: stock lm-eval decodes only the last ``len(encode(stop)) + 2``
    tokens, and the tokenizer's byte-fallback decoder turns a byte run that is not valid UTF-8 as a whole
    into one U+FFFD per byte. A newline byte right after a kanji's bytes is then invisible to it, while
    the whole generation, decoded as kensa decodes it, shows the newline (tiny-trained, JAQKET v2, a
    32-token budget: kensa ``'琵琶湖'``, lm-eval 32 replacement characters)."""
    import torch
    from lm_eval.models.utils_hf import stop_sequences_criteria

    tok = tiny_llama.tokenizer
    generated = tok.convert_tokens_to_ids([f"<0x{b:02X}>" for b in "琵琶湖\n".encode()])
    assert tok.unk_token_id not in generated
    prompt = tiny_llama.tok_encode("答え:")
    ids = torch.tensor([prompt + generated])
    assert "\n" in tok.decode(generated)  # kensa's criterion: the whole generation
    (stock,) = stop_sequences_criteria(tok, ["\n"], len(prompt), 1)
    assert stock.sequence_id_len < len(generated)
    assert not stock(ids, None)  # the window's bytes are not valid UTF-8 by themselves
    stock.sequence_id_len = len(generated)
    assert stock(ids, None)
