"""The HF causal-LM backend against direct transformers computations.

The harness's semantics are the contract: context and continuation tokenized separately with
no special tokens, ``[eos]`` for an empty context, left truncation, summed log-probabilities,
greedy generation cut at stop strings.
"""

from __future__ import annotations

import shutil

import pytest

from kensa.backends.contract import GenerationRequest
from kensa.errors import ModelLoadError
from tests.helpers import load_tiny

torch = pytest.importorskip("torch")

PAIRS = [
    ("質問：冬に池の水が固まったものを何という？\n回答：", "氷"),
    ("以下は、タスクを説明する指示です。\n\n### 応答:\n", "マザーボード"),
    ("ユーザー: 質問：Q<NL>システム: ", "ハードディスク"),
    ("", "今日は良い天気です。"),  # empty context: scored after [eos], as XWinograd needs
    ("東京で", "ＡＩとAIを学ぶ😀"),
    ("短い", "とても長い継続の文章で、複数のトークンに分かれるはずのもの"),
]


def direct_loglikelihood(lm, context: str, continuation: str, max_length: int | None = None) -> float:
    """Reference: one unpadded forward pass over ctx+cont, summing the continuation's log-probs."""
    tok = lm.tokenizer
    ctx = tok.encode(context, add_special_tokens=False) if context else [tok.eos_token_id]
    cont = tok.encode(continuation, add_special_tokens=False)
    whole = ctx + cont
    if max_length is not None:
        whole = whole[-(max_length + 1):]
    ids = torch.tensor([whole[:-1]])
    with torch.no_grad():
        logprobs = torch.log_softmax(lm.model(ids).logits[0].double(), dim=-1)
    positions = range(len(whole) - 1 - len(cont), len(whole) - 1)
    return float(sum(logprobs[p, t] for p, t in zip(positions, cont, strict=True)))


@pytest.mark.parametrize("fixture", ["tiny_neox", "tiny_llama"])
def test_loglikelihood_matches_direct_transformers(fixture, request):
    lm = request.getfixturevalue(fixture)
    lm.batch_size = 3  # padded batches of different lengths
    results = lm.loglikelihood(PAIRS)
    for (ctx, cont), got in zip(PAIRS, results, strict=True):
        want = direct_loglikelihood(lm, ctx, cont)
        assert abs(got.logprob - want) <= 1e-4, (ctx, cont, got.logprob, want)
        assert got.num_tokens == len(lm.tok_encode(cont))
        assert got.logprob < 0


def test_batch_size_does_not_change_scores(tiny_neox):
    tiny_neox.batch_size = 1
    one = [r.logprob for r in tiny_neox.loglikelihood(PAIRS)]
    tiny_neox.batch_size = 6
    six = [r.logprob for r in tiny_neox.loglikelihood(PAIRS)]
    assert max(abs(a - b) for a, b in zip(one, six, strict=True)) <= 1e-4


def test_duplicate_requests_get_the_same_result(tiny_neox):
    pairs = [PAIRS[0], PAIRS[1], PAIRS[0]]
    results = tiny_neox.loglikelihood(pairs)
    assert results[0] == results[2] and results[0] != results[1]


def test_context_is_left_truncated_to_max_length(tiny_neox):
    saved = tiny_neox.max_length
    tiny_neox.max_length = 12
    try:
        ctx, cont = "これはとても長い文脈です。" * 5, "答え"
        got = tiny_neox.loglikelihood([(ctx, cont)])[0].logprob
        assert abs(got - direct_loglikelihood(tiny_neox, ctx, cont, max_length=12)) <= 1e-4
        assert abs(got - direct_loglikelihood(tiny_neox, ctx, cont)) > 1e-3  # truncation changed it
    finally:
        tiny_neox.max_length = saved


def test_is_greedy_is_true_for_the_models_own_argmax(tiny_neox):
    ctx = "昨日、私は"
    ids = torch.tensor([tiny_neox.tok_encode(ctx)])
    with torch.no_grad():
        nxt = int(tiny_neox.model(ids).logits[0, -1].argmax())
    cont = tiny_neox.tokenizer.decode([nxt])
    if tiny_neox.tok_encode(cont) != [nxt]:
        pytest.skip("argmax token does not round-trip through text")
    assert tiny_neox.loglikelihood([(ctx, cont)])[0].is_greedy


def manual_greedy(lm, context: str, max_new: int, stops: tuple[str, ...]) -> str:
    ids = lm.tok_encode(context)
    new: list[int] = []
    with torch.no_grad():
        for _ in range(max_new):
            nxt = int(lm.model(torch.tensor([ids + new])).logits[0, -1].argmax())
            if nxt == lm.tokenizer.eos_token_id:
                break
            new.append(nxt)
            if any(s in lm.tokenizer.decode(new) for s in stops):
                break
    text = lm.tokenizer.decode(new)
    for s in stops:
        text = text.split(s)[0]
    return text


@pytest.mark.parametrize("fixture", ["tiny_neox", "tiny_llama"])
def test_greedy_generation_matches_a_manual_argmax_loop(fixture, request):
    lm = request.getfixturevalue(fixture)
    lm.batch_size = 2
    contexts = ["質問：日本の首都は？\n回答：", "ユーザー: こんにちは<NL>システム: ", "東京"]
    for stops in [(), ("の",), ("\n", "<NL>")]:
        reqs = [GenerationRequest(c, stops, 12) for c in contexts]
        got = [r.text for r in lm.generate_until(reqs)]
        want = [manual_greedy(lm, c, 12, stops) for c in contexts]
        assert got == want, stops
        for text in got:
            assert not any(s in text for s in stops)


class CountPrefills:
    """Records the size of every batch the decoding loop starts (one prefill, without a cache, each)."""

    def __init__(self, model):
        self.model, self.batches = model, []

    def __call__(self, **kwargs):
        if kwargs.get("past_key_values") is None:
            self.batches.append(kwargs["input_ids"].shape[0])
        return self.model(**kwargs)

    def __getattr__(self, name):
        return getattr(self.model, name)


def outputs(results):
    """What a generation is, model time aside."""
    return [(r.text, r.stop_reason, r.prompt_tokens, r.generated_tokens) for r in results]


@pytest.mark.parametrize("max_length", [None, 24])
def test_rows_with_different_budgets_share_a_batch_and_stop_on_their_own(tiny_llama, max_length):
    """Budgets 3..20 in one batch give each row what it gets alone; near the context length (24
    positions) a shared budget would overrun a row, so the batch splits by budget instead."""
    contexts = ["質問：日本の首都は？\n回答：", "ユーザー: こんにちは<NL>システム: ", "東京", "以下は、タスクを説明する指示です。"]
    reqs = [GenerationRequest(c, stops, budget) for c in contexts
            for stops, budget in [(("の",), 3), (("の",), 20), (("の",), 9), ((), 14)]]
    saved = tiny_llama.max_length, tiny_llama.batch_size, tiny_llama.model
    try:
        if max_length:
            tiny_llama.max_length = max_length
        tiny_llama.batch_size = 1
        alone = tiny_llama.generate_until(reqs)
        tiny_llama.batch_size = 16
        tiny_llama.model = counter = CountPrefills(tiny_llama.model)
        together = tiny_llama.generate_until(reqs)
    finally:
        tiny_llama.max_length, tiny_llama.batch_size, tiny_llama.model = saved
    assert outputs(together) == outputs(alone)
    assert counter.batches == ([12, 4] if max_length is None else [4, 4, 4, 4])
    if max_length is None:
        assert [r.text for r in alone] == [manual_greedy(tiny_llama, r.context, r.max_new_tokens, r.until)
                                           for r in reqs]


def test_slow_tokenizer_is_sentencepiece_exact():
    spm = pytest.importorskip("sentencepiece")
    lm = load_tiny("tiny", "use_fast=False")
    try:
        assert type(lm.tokenizer).__name__ == "JaSpmTokenizer" and not lm.tokenizer.is_fast
        sp = spm.SentencePieceProcessor(model_file=f"{lm.info['source']}/tokenizer.model")
        for text in ["東京でＡＩとAIを学ぶ。", "半角ｶﾀｶﾅ と 123", "一行目\n二行目", "絵文字😀テスト"]:
            assert lm.tok_encode(text) == sp.encode(text)
    finally:
        lm.close()


def test_use_fast_false_without_a_sentencepiece_file_is_an_error(tmp_path):
    from kensa.tiny.build import build_model

    model_dir = tmp_path / "no-spm"
    shutil.copytree(build_model("tiny"), model_dir)
    (model_dir / "tokenizer.model").unlink()
    with pytest.raises(ModelLoadError, match="use_fast=False needs a SentencePiece model file"):
        load_tiny(str(model_dir), "use_fast=False")


def test_peft_adapter_is_applied():
    base = load_tiny("tiny")
    base_ll = base.loglikelihood(PAIRS[:2])
    base.close()
    lm = load_tiny("tiny", "peft=tiny-lora")
    try:
        assert lm.info["model_class"].startswith("PeftModel")
        adapted = lm.loglikelihood(PAIRS[:2])
        assert all(abs(a.logprob - b.logprob) > 1e-3 for a, b in zip(adapted, base_ll, strict=True))
        for (ctx, cont), got in zip(PAIRS[:2], adapted, strict=True):
            assert abs(got.logprob - direct_loglikelihood(lm, ctx, cont)) <= 1e-4
    finally:
        lm.close()


# bitsandbytes >= 0.45 runs on CPU (its torch backend; 8-bit is LLM.int8 with float16 inputs, 4-bit is FP4 with
# float32 compute here). Against the float model on PAIRS, per continuation token, this machine measured at most
# 0.0009 nats for 8-bit and 0.0072 for 4-bit; the bounds leave about 5x room for other CPUs' rounding and still
# catch 4-bit weights where 8-bit was asked for, or weights the quantizer lost (several nats a token).
QUANTIZED = {"load_in_8bit=True": ("8bit", "Linear8bitLt", 0.005), "load_in_4bit=True": ("4bit", "Linear4bit", 0.05)}


@pytest.mark.slow
@pytest.mark.ci
@pytest.mark.parametrize("arg", list(QUANTIZED))
def test_bitsandbytes_quantized_load_on_cpu_scores_as_the_float_model_does(arg, tiny_neox):
    pytest.importorskip("bitsandbytes")
    quantization, layer, per_token = QUANTIZED[arg]
    full = tiny_neox.loglikelihood(PAIRS)
    lm = load_tiny("tiny", arg)
    try:
        assert lm.info["quantization"] == quantization
        modules = {type(m).__name__ for m in lm.model.modules()}
        other = {"Linear8bitLt", "Linear4bit"} - {layer}
        assert layer in modules and not other & modules, modules
        quantized = lm.loglikelihood(PAIRS)
        gaps = [abs(q.logprob - f.logprob) / f.num_tokens for q, f in zip(quantized, full, strict=True)]
        assert max(gaps) <= per_token, gaps
        assert max(gaps) > 1e-6  # the quantized weights did the scoring
    finally:
        lm.close()


def test_dtype_argument_sets_the_weights_dtype():
    lm = load_tiny("tiny-llama", "dtype=bfloat16")
    try:
        assert lm.info["dtype"] == "bfloat16"
        assert all(r.logprob < 0 for r in lm.loglikelihood(PAIRS[:2]))
    finally:
        lm.close()


def test_trust_remote_code_is_passed_only_when_set(monkeypatch):
    import transformers

    seen = []
    real = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs.get("trust_remote_code"))
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    load_tiny("tiny").close()
    load_tiny("tiny", "trust_remote_code=True").close()
    assert seen == [False, True]


def test_max_length_and_batch_size_arguments():
    lm = load_tiny("tiny", "max_length=64,batch_size=7,device_map=cpu")
    try:
        assert lm.max_length == 64 and lm.batch_size == 7 and lm.info["device_map"] == "cpu"
    finally:
        lm.close()


def test_a_model_that_cannot_load_is_a_model_load_error(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "gpt_neox"}')
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelLoadError, match="broken"):
        load_tiny(str(broken))


class CountRows:
    def __init__(self, model):
        self.model, self.rows = model, 0

    def __call__(self, **kwargs):
        self.rows += kwargs["input_ids"].shape[0]
        return self.model(**kwargs)

    def __getattr__(self, name):
        return getattr(self.model, name)


def test_one_token_choices_of_a_prompt_read_one_row(tiny_llama):
    """The one-row path runs each distinct input once: choices one token long all read the row of
    the bare context (lm-eval's one-token grouping), so 3 one-token choices cost 1 row, not 3."""
    ctx = "質問：1から3のうち最も大きい数は？\n回答："
    choices = ["1", "2", "3", "3と2"]
    assert [len(tiny_llama.tok_encode(c)) for c in choices[:3]] == [1, 1, 1]
    requests = [(ctx, c) for c in choices]
    want = [direct_loglikelihood(tiny_llama, ctx, c) for c in choices]
    saved = tiny_llama.model
    tiny_llama.model = counter = CountRows(saved)
    try:
        got = tiny_llama.loglikelihood_simple(requests)
    finally:
        tiny_llama.model = saved
    assert counter.rows == 2
    assert max(abs(g.logprob - w) for g, w in zip(got, want, strict=True)) <= 1e-4


def test_workers_share_the_cores_unless_omp_num_threads_is_set(monkeypatch):
    import os

    from kensa.models import share_cpu_threads

    before = torch.get_num_threads()
    cores = len(os.sched_getaffinity(0))
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert share_cpu_threads(1) is None and torch.get_num_threads() == before
        assert share_cpu_threads(2) == max(1, cores // 2) == torch.get_num_threads()
        assert share_cpu_threads(64) == 1
        torch.set_num_threads(before)
        monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's explicit choice wins
        assert share_cpu_threads(2) is None and torch.get_num_threads() == before
    finally:
        torch.set_num_threads(before)


def test_finished_rows_leave_the_batch_and_only_running_rows_are_charged(tiny_llama, monkeypatch):
    """One row with a budget of 40 and seven of 2: after the short rows finish, the long one runs
    alone (the cache is compacted), its text is what it gets alone, and the model time of each
    step is charged to the rows still running. A clock that moves one second per reading makes
    the prefill and every step cost exactly 1 s, so each row's charge is known exactly."""
    from kensa.backends import decoding
    from kensa.backends.decoding import DecodeStats

    class OneSecondPerReading:
        now = 0.0

        def perf_counter(self) -> float:
            self.now += 1.0
            return self.now

    contexts = ["質問：日本の首都は？\n回答：", "東京", "ユーザー: こんにちは<NL>システム: ", "以下は指示です。"] * 2
    reqs = [GenerationRequest(c, (), 40 if i == 0 else 2) for i, c in enumerate(contexts)]
    saved = tiny_llama.batch_size, tiny_llama.decode_stats
    try:
        tiny_llama.batch_size = 1
        alone = tiny_llama.generate_until(reqs)
        tiny_llama.batch_size, tiny_llama.decode_stats = 8, DecodeStats()
        monkeypatch.setattr(decoding, "time", OneSecondPerReading())
        together = tiny_llama.generate_until(reqs)
        stats = tiny_llama.decode_stats
    finally:
        tiny_llama.batch_size, tiny_llama.decode_stats = saved
    assert outputs(together) == outputs(alone)
    assert [r.generated_tokens for r in together] == [40] + [2] * 7
    assert stats.steps == 39 and stats.compactions == 1
    assert stats.row_steps == 8 + 38  # all eight rows for one step, then the long row alone (generate: 8 x 39)
    assert all(r.stop_reason == "length" and r.first_token_seconds == 1.0 for r in together)
    # the prefill second is shared by prompt length, the first step's second by all eight rows, and
    # the 38 steps after the compaction go to the long row alone
    prompt_total = sum(r.prompt_tokens for r in together)
    for i, r in enumerate(together):
        assert r.seconds == pytest.approx(r.prompt_tokens / prompt_total + 1 / 8 + (38 if i == 0 else 0))


def test_rows_stop_on_eos_stop_strings_and_budget(tiny_llama):
    """greedy_decode directly, with EOS set to the token a row's greedy path starts with."""
    from kensa.backends.decoding import greedy_decode
    from kensa.backends.stopping import StopChecker

    tok = tiny_llama.tokenizer
    prompts = [tiny_llama.tok_encode(c) for c in ["東京", "質問：日本の首都は？\n回答：", "以下は指示です。"]]
    first = tiny_llama.generate_until([GenerationRequest("東京", (), 1)])[0].text
    eos = tok.encode(first, add_special_tokens=False)[0]
    free = tiny_llama.generate_until([GenerationRequest("質問：日本の首都は？\n回答：", (), 12)])[0].text
    stop = free[2:4]
    assert stop and stop not in free[:3]
    with torch.inference_mode():
        out = greedy_decode(tiny_llama.model, prompts, [12, 12, 5],
                            [StopChecker((), tok.decode), StopChecker((stop,), tok.decode), StopChecker((), tok.decode)],
                            eos_id=eos, pad_id=tok.pad_token_id, device="cpu")
    assert (out[0].stop_reason, out[0].tokens) == ("eos", [])
    assert out[1].stop_reason == "stop" and stop in tok.decode(out[1].tokens) and stop not in tok.decode(out[1].tokens[:-1])
    assert (out[2].stop_reason, len(out[2].tokens)) == ("length", 5)


def test_transformers_generate_gives_the_same_generations_as_kensas_loop(tiny_neox):
    """The path for models kensa's loop cannot drive (no position_ids) agrees with the loop."""
    contexts = ["質問：日本の首都は？\n回答：", "ユーザー: こんにちは<NL>システム: ", "東京", "以下は指示です。"]
    reqs = [GenerationRequest(c, stops, budget) for c in contexts for stops, budget in [(("の",), 9), ((), 6)]]
    ours = tiny_neox.generate_until(reqs)
    tiny_neox._decodes_itself = lambda: False
    try:
        theirs = tiny_neox.generate_until(reqs)
    finally:
        del tiny_neox._decodes_itself
    assert outputs(ours) == outputs(theirs)
    assert {r.stop_reason for r in ours} <= {"stop", "length"}
