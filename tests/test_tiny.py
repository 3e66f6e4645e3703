"""Tiny models: built offline, deterministic, cached by recipe, loadable by plain transformers."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from kensa.models import tiny

pytest.importorskip("transformers")


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_two_builds_are_byte_identical(tmp_path):
    a = tiny.build_model("tiny-llama", root=tmp_path / "a")
    b = tiny.build_model("tiny-llama", root=tmp_path / "b")
    assert a.name == b.name  # same recipe, same hash
    for name in ("model.safetensors", "tokenizer.model", "tokenizer.json", "config.json"):
        assert sha(a / name) == sha(b / name), name


def test_cache_is_reused(tmp_path):
    first = tiny.build_model("tiny", root=tmp_path)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    again = tiny.build_model("tiny-neox", root=tmp_path)  # "tiny" is an alias of tiny-neox
    assert again == first and (again / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in (tmp_path / "tiny").iterdir() if p.name.startswith(".")]  # no leftovers


def test_tokenizer_has_the_rinna_like_recipe(tmp_path):
    spm = pytest.importorskip("sentencepiece")
    from sentencepiece import sentencepiece_model_pb2 as pb

    path = tiny.build_spm(root=tmp_path)
    proto = pb.ModelProto.FromString((path / "tokenizer.model").read_bytes())
    assert proto.trainer_spec.model_type == pb.TrainerSpec.UNIGRAM
    assert proto.trainer_spec.byte_fallback
    assert not proto.normalizer_spec.add_dummy_prefix
    assert proto.normalizer_spec.name == "identity"
    assert spm.SentencePieceProcessor(model_file=str(path / "tokenizer.model")).get_piece_size() > 1000


def test_tiny_models_load_with_plain_transformers():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for name, arch in (("tiny-neox", "gpt_neox"), ("tiny-llama", "llama")):
        path = tiny.build_model(name)
        model = AutoModelForCausalLM.from_pretrained(path)
        assert model.config.model_type == arch
        assert (path / "model.safetensors").is_file()
        assert AutoTokenizer.from_pretrained(path).is_fast


def test_cli_writes_a_model_directory_and_refuses_a_full_one(tmp_path):
    out = tmp_path / "model"
    cmd = [sys.executable, "-m", "kensa", "tiny", "--out", str(out), "--name", "tiny-llama"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer.model"} <= {p.name for p in out.iterdir()}
    again = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert again.returncode == 2 and "not empty" in again.stderr
