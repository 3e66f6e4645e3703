"""The seq2seq backend on tiny-t5: scoring, generation, stop reasons, bad words, model arguments, peft."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kensa.backends.contract import GenerationRequest
from kensa.errors import OptionError
from tests.helpers import load_tiny

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def t5():
    lm = load_tiny("tiny-t5")
    yield lm
    lm.close()


def test_load_model_picks_the_backend_from_the_config(t5):
    from kensa.backends.args import parse_model_args
    from kensa.models import model_kind, resolve_model

    assert type(t5).__name__ == "HFSeq2SeqLM" and t5.kind == "seq2seq" and t5.info["backend"] == "hf-seq2seq"
    assert model_kind(resolve_model("tiny-t5", parse_model_args(None))) == "seq2seq"
    assert model_kind(resolve_model("tiny", parse_model_args(None))) == "causal"


def test_loglikelihood_is_the_sum_of_the_targets_log_probabilities(t5):
    source, target = "question: 町の名物は何か。 context: 名物はりんご", "りんご"
    got = t5.loglikelihood([(source, target), ("x", "y")])[0]
    ids = torch.tensor([t5.source_ids(source)])
    labels = torch.tensor([t5.tok_encode(target)])
    with torch.no_grad():
        logits = t5.model(input_ids=ids, labels=labels).logits[0]
    want = torch.log_softmax(logits.float(), -1).gather(1, labels[0][:, None]).sum().item()
    assert got.logprob == pytest.approx(want, abs=1e-4) and got.num_tokens == labels.shape[1]
    assert t5.source_ids(source)[-1] == t5.tokenizer.eos_token_id  # T5 closes the source with </s>


def test_batched_generation_equals_one_at_a_time_and_says_why_it_stopped(t5):
    requests = [GenerationRequest("answer: 甲府市 context: 山梨県の県庁所在地は甲府市です。", (), 7),
                GenerationRequest("question: 何？ context: みどり町", (), 3),
                GenerationRequest("generate question: a <hl> b <hl>", ("の",), 12)]
    together = t5.generate_until(requests)
    alone = [t5.generate_until([r])[0] for r in requests]
    assert [r.text for r in together] == [r.text for r in alone]
    for r, req in zip(together, requests):
        assert r.stop_reason in ("eos", "length", "stop") and r.seconds is not None and r.seconds >= 0
        assert r.generated_tokens <= req.max_new_tokens
        if r.stop_reason == "length":
            assert r.generated_tokens == req.max_new_tokens


@pytest.mark.parametrize("args, message", [
    ("num_beams=0", "num_beams='0': must be at least 1"),
    ("repetition_penalty=-1", "repetition_penalty='-1': must be above 0"),
    ("no_repeat_ngram_size=x", "no_repeat_ngram_size='x': expected an integer"),
    ("bad_words=山梨||山梨県", "entry 2 is empty"),
    ("bad_words=山梨|山梨", "given twice"),
])
def test_bad_decoding_arguments_name_the_option_and_value(args, message):
    from kensa.backends.args import parse_model_args

    with pytest.raises(OptionError, match="--model-args") as exc:
        parse_model_args(args)
    assert message in str(exc.value)


def test_a_causal_model_refuses_seq2seq_decoding_arguments():
    with pytest.raises(OptionError, match="num_beams.*only seq2seq models"):
        load_tiny("tiny", "num_beams=2")


def test_a_bad_word_that_tokenizes_to_nothing_is_an_error(t5):
    from kensa.backends.bad_words import bad_words_ids, spelling_sequences

    with pytest.raises(OptionError, match="--model-args bad_words: '' tokenizes to nothing"):
        bad_words_ids(t5.tokenizer, [""])
    # A vocabulary without byte fallback cannot spell a character it lacks.
    with pytest.raises(OptionError, match="'梨' tokenizes to nothing"):
        from kensa.backends import bad_words

        original = bad_words.token_bytes
        bad_words.token_bytes = lambda tok: {1: "山".encode(), 2: b" "}
        try:
            bad_words_ids(t5.tokenizer, ["山", "梨"])
        finally:
            bad_words.token_bytes = original
    assert spelling_sequences("山", {1: "山".encode(), 2: "火山".encode(), 3: b"x"}) == [[1], [2]]


def test_every_spelling_of_a_word_is_listed(t5):
    from kensa.backends.bad_words import spelling_sequences, token_bytes

    pieces = token_bytes(t5.tokenizer)
    seqs = spelling_sequences("山梨", pieces)
    spelled = {b"".join(pieces[i] for i in s) for s in seqs}
    assert all("山梨".encode() in b for b in spelled)
    # the byte-fallback spelling: 山 and 梨 as their UTF-8 bytes
    as_bytes = [t5.tokenizer.convert_tokens_to_ids(f"<0x{b:02X}>") for b in "山梨".encode()]
    assert as_bytes in seqs
    # every token that ends with 山 may start it: each is followed by 梨 spelled in bytes in some sequence
    nashi = [t5.tokenizer.convert_tokens_to_ids(f"<0x{b:02X}>") for b in "梨".encode()]
    yama_enders = [i for i, b in pieces.items() if b.endswith("山".encode())]
    assert len(yama_enders) > 1 and all([i, *nashi] in seqs for i in yama_enders)


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["山梨", "県", "の", "甲府", "町", "は", "か", "。", "ある"]))
def test_a_blocked_word_is_never_generated(word):
    lm = load_tiny("tiny-t5-trained", f"bad_words={word}")
    try:
        prompts = ["answer: 甲府市 context: 山梨県の県庁所在地は甲府市です。", "question: 名物は何ですか？ context: みどり町の名物はりんご",
                   "answer: 十二人 context: 黒潮丸 [SEP] 黒潮丸はカツオを獲る漁船である。船員は十二人で、漁は主に春から秋にかけて行われる。"]
        for r in lm.generate_until([GenerationRequest(p, (), 24) for p in prompts]):
            assert word not in r.text
    finally:
        lm.close()


def test_without_bad_words_the_trained_model_writes_the_word_it_is_then_denied():
    prompt = ("answer: 十二人 context: 黒潮丸 [SEP] 黒潮丸はカツオを獲る漁船である。船員は十二人で、漁は主に春から秋に"
              "かけて行われる。")
    free = load_tiny("tiny-t5-trained")
    blocked = load_tiny("tiny-t5-trained", "bad_words=船員|何人")
    try:
        a = free.generate_until([GenerationRequest(prompt, (), 24)])[0].text
        b = blocked.generate_until([GenerationRequest(prompt, (), 24)])[0].text
    finally:
        free.close()
        blocked.close()
    assert "船員" in a and "何人" in a
    assert "船員" not in b and "何人" not in b


def test_beam_search_and_penalties_are_passed_and_change_the_cache_key():
    from kensa.run.cache import fingerprint_digest, model_fingerprint

    greedy, beams = load_tiny("tiny-t5"), load_tiny("tiny-t5", "num_beams=3,no_repeat_ngram_size=2")
    try:
        r = beams.generate_until([GenerationRequest("answer: a context: b", (), 6)])[0]
        assert r.stop_reason in ("eos", "length")
        assert fingerprint_digest(model_fingerprint(greedy.info)) != fingerprint_digest(model_fingerprint(beams.info))
    finally:
        greedy.close()
        beams.close()


def test_a_peft_adapter_loads_on_a_seq2seq_model(tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSeq2SeqLM

    from kensa.tiny import build as tiny

    base = tiny.build_model("tiny-t5")
    model = get_peft_model(AutoModelForSeq2SeqLM.from_pretrained(base),
                           LoraConfig(r=2, target_modules=["q", "v"], task_type="SEQ_2_SEQ_LM"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.full(p.shape, 0.5))
    model.save_pretrained(tmp_path / "adapter")
    plain, adapted = load_tiny("tiny-t5"), load_tiny("tiny-t5", f"peft={tmp_path / 'adapter'}")
    try:
        req = [("answer: a context: b", "c")]
        assert adapted.info["identity"]["adapter_sha256"]
        assert plain.loglikelihood(req)[0].logprob != pytest.approx(adapted.loglikelihood(req)[0].logprob)
    finally:
        plain.close()
        adapted.close()
