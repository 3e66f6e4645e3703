"""Tokenizer properties on the tiny SentencePiece model, checked with hypothesis.

The fast wrapper (``TokenizersBackend``), the slow :class:`JaSpmTokenizer` and SentencePiece
itself must give the same ids for any text, and both wrappers must decode back to the input.
Literal special-token text (``<s>``, ``</s>``, ``<pad>``, ``<unk>``) is excluded: transformers
maps it to the special ids by design, SentencePiece encodes its characters.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

pytest.importorskip("transformers")
spm = pytest.importorskip("sentencepiece")

JAPANESE = st.sampled_from(list(
    "あいうえおかきくけこんアイウエオカキクケコン日本語東京大阪漢字学習試験、。「」（）：！？ー・"
    "ｱｲｳｴｵｶﾞﾊﾟ０１２３ＡＢＣａｂｃ　😀👍🏽🇯🇵\n\t\r "
))
TEXT = st.one_of(st.text(max_size=40), st.lists(JAPANESE, max_size=40).map("".join))
SPECIAL_TEXT = ("<s>", "</s>", "<pad>", "<unk>")
PROPERTY = settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def tokenizers():
    from kensa.backends.tokenizers import load_tokenizer
    from kensa.tiny.build import build_model

    path = str(build_model("tiny"))
    fast = load_tokenizer(path)
    slow = load_tokenizer(path, use_fast=False)
    sp = spm.SentencePieceProcessor(model_file=f"{path}/tokenizer.model")
    return fast, slow, sp


@PROPERTY
@given(text=TEXT)
def test_fast_slow_and_sentencepiece_agree(tokenizers, text):
    assume(not any(s in text for s in SPECIAL_TEXT))
    fast, slow, sp = tokenizers
    ids = sp.encode(text)
    assert fast.encode(text, add_special_tokens=False) == ids
    assert slow.encode(text, add_special_tokens=False) == ids


@PROPERTY
@given(text=TEXT)
def test_decode_inverts_encode(tokenizers, text):
    assume(not any(s in text for s in SPECIAL_TEXT))
    fast, slow, _ = tokenizers
    for tok in (fast, slow):
        assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_no_special_tokens_are_added(tokenizers):
    fast, slow, _ = tokenizers
    for tok in (fast, slow):
        ids = tok.encode("質問：", add_special_tokens=False)
        assert tok.bos_token_id not in ids and tok.eos_token_id not in ids


def test_literal_special_tokens_map_to_their_ids(tokenizers):
    """Llama-2 prompts (0.6) write <s> and </s> as text; the harness relied on them becoming ids."""
    fast, slow, _ = tokenizers
    for tok in (fast, slow):
        ids = tok.encode("<s>[INST] 質問 [/INST] 答え </s>", add_special_tokens=False)
        assert ids[0] == tok.bos_token_id and tok.eos_token_id in ids


@pytest.fixture(scope="module")
def rinna_style_dir(tmp_path_factory):
    """A tokenizer directory laid out like rinna's: ``spiece.model`` and ``tokenizer_class: T5Tokenizer``."""
    import json
    import shutil

    from kensa.tiny.build import build_spm

    d = tmp_path_factory.mktemp("rinna-style")
    shutil.copyfile(build_spm() / "tokenizer.model", d / "spiece.model")
    (d / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "T5Tokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "pad_token": "<pad>", "extra_ids": 0, "do_lower_case": False}))
    return d


def test_use_fast_false_is_exact_where_the_fast_conversion_is_lossy(rinna_style_dir):
    """Why the slow path exists: transformers 5 always builds the fast T5Tokenizer, whose conversion
    of a byte-fallback unigram model loses newlines and characters. The harness scored rinna models
    with use_fast=False, i.e. with SentencePiece's own ids."""
    from kensa.backends.tokenizers import load_tokenizer

    fast = load_tokenizer(str(rinna_style_dir))
    slow = load_tokenizer(str(rinna_style_dir), use_fast=False)
    sp = spm.SentencePieceProcessor(model_file=str(rinna_style_dir / "spiece.model"))
    texts = ["一行目\n二行目", "絵文字😀テスト", "東京でＡＩとAIを学ぶ。"]
    assert type(slow).__name__ == "JaSpmTokenizer"
    for text in texts:
        assert slow.encode(text, add_special_tokens=False) == sp.encode(text)
        assert slow.decode(slow.encode(text, add_special_tokens=False)) == text
    # If this starts failing, transformers fixed its conversion: good news, but re-check use_fast.
    assert any(fast.encode(t, add_special_tokens=False) != sp.encode(t) for t in texts)
