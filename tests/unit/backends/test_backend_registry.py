"""The backend registry (kensa.backends.registry): a backend registers its name, request kinds, model kinds and
its own args class; ``--backend`` choices, model-argument refusals and ``load_model`` are look-ups there."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from kensa.backends import registry
from kensa.backends.args import ModelArgs, parse_model_args
from kensa.backends.registry import BackendEntry, backends, check_args, get_backend, register
from kensa.errors import KensaError, OptionError
from kensa.models import load_model, resolve_model


@dataclass(frozen=True)
class EchoArgs:
    max_concurrency: int = 8  # a published key (served models read it too)


class EchoLM:
    """A trivial backend: every generation echoes the prompt's last character."""

    kind, bad_words = "causal", ()

    def __init__(self, spec, source):
        self.spec, self.name, self.source, self.info = spec, spec.name, source, {"backend": "echo"}


@pytest.fixture
def echo(monkeypatch):
    monkeypatch.setattr(registry, "_BACKENDS", dict(registry._BACKENDS))
    backends()  # the built-in ones first, as a session has them
    return register(BackendEntry(
        name="echo", requests=("generation",), model_kinds=("causal",), args=EchoArgs,
        load=lambda spec, device, *, kind, source, adapter: EchoLM(spec, source),
        what="the echo backend", whose="the echo backend's"))


def test_the_built_in_backends_and_what_they_serve():
    entries = {b.name: b for b in backends()}
    assert list(entries) == ["hf", "vllm", "openai"]
    assert registry.option_names() == ("hf", "vllm")
    assert entries["hf"].model_kinds == ("causal", "seq2seq")
    assert entries["vllm"].model_kinds == ("causal",)
    assert all(set(b.requests) == {"loglikelihood", "generation"} for b in entries.values())


def test_every_args_class_names_published_keys_with_their_defaults():
    published = {f.name: f.default for f in dataclasses.fields(ModelArgs)}
    for b in backends():
        for f in dataclasses.fields(b.args):
            assert published[f.name] == f.default, (b.name, f.name)
    owned = [k for b in backends() for k in b.keys]
    assert len(owned) == len(set(owned)), "a key belongs to one backend"


def test_an_args_field_that_is_not_a_published_key_is_refused(monkeypatch):
    monkeypatch.setattr(registry, "_BACKENDS", dict(registry._BACKENDS))

    @dataclass(frozen=True)
    class Wrong:
        batch_size: int = 8  # ModelArgs's default is 4

    with pytest.raises(KensaError, match="args field 'batch_size' is not a ModelArgs field with the same default"):
        register(BackendEntry(name="wrong", requests=("generation",), model_kinds=("causal",), args=Wrong,
                              load=lambda *a, **k: None, what="", whose=""))

    @dataclass(frozen=True)
    class Unknown:
        beam_width: int = 1

    with pytest.raises(KensaError, match="beam_width"):
        register(BackendEntry(name="wrong", requests=("generation",), model_kinds=("causal",), args=Unknown,
                              load=lambda *a, **k: None, what="", whose=""))


def test_a_key_of_another_backend_is_refused_with_both_names():
    with pytest.raises(OptionError, match=r"tensor_parallel_size mean nothing for the HF backend \(they are "
                                          r"--backend vllm's\)"):
        check_args(get_backend("hf"), parse_model_args("tensor_parallel_size=2"))
    with pytest.raises(OptionError, match="load_in_8bit mean nothing for --backend vllm"):
        check_args(get_backend("vllm"), parse_model_args("load_in_8bit=true"))
    with pytest.raises(OptionError, match="max_retries mean nothing for the HF backend"):
        check_args(get_backend("hf"), parse_model_args("max_retries=2"))
    check_args(get_backend("hf"), parse_model_args("batch_size=8,dtype=float16"))  # its own and common keys


def test_unknown_backend_names_the_choices():
    with pytest.raises(OptionError, match=r"--backend: 'tgi': expected one of hf, vllm"):
        resolve_model("tiny", ModelArgs(), "tgi")
    with pytest.raises(OptionError, match="expected one of hf, vllm"):
        resolve_model("tiny", ModelArgs(), "openai")  # chosen by an openai:// name, not --backend


def test_a_registered_backend_is_chosen_and_loaded_by_look_up(echo):
    assert "echo" in registry.option_names()
    spec = resolve_model("tiny", parse_model_args("max_concurrency=2"), "echo")
    assert spec.backend == "echo"
    with pytest.raises(OptionError, match="batch_size mean nothing for the echo backend"):
        resolve_model("tiny", parse_model_args("batch_size=2"), "echo")



def test_load_model_hands_the_registered_loader_the_source(echo, tmp_path):
    (tmp_path / "config.json").write_text('{"is_encoder_decoder": false}', encoding="utf-8")
    lm = load_model(resolve_model(str(tmp_path), ModelArgs(), "echo"))
    assert isinstance(lm, EchoLM) and lm.source == str(tmp_path.resolve())


@pytest.mark.parametrize("subfolder", [None, "t5"])
def test_the_kind_of_a_hub_model_is_read_from_the_local_hub_cache(monkeypatch, tmp_path, subfolder):
    """Nothing is fetched: the config in the Hub cache's layout, or None when the cache has none."""
    import huggingface_hub.constants

    from kensa.models import model_kind

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    args = parse_model_args(f"subfolder={subfolder}" if subfolder else None)
    assert model_kind(resolve_model("org/uncached", args)) is None
    repo = tmp_path / "models--org--t5"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc", encoding="utf-8")
    snap = repo / "snapshots" / "abc" / (subfolder or "")
    snap.mkdir(parents=True)
    (snap / "config.json").write_text('{"is_encoder_decoder": true}', encoding="utf-8")
    assert model_kind(resolve_model("org/t5", args)) == "seq2seq"


def test_a_model_of_a_kind_the_backend_does_not_run_is_an_option_error(echo, tmp_path):
    (tmp_path / "config.json").write_text('{"is_encoder_decoder": true}', encoding="utf-8")
    spec = resolve_model(str(tmp_path), ModelArgs(), "echo")
    with pytest.raises(OptionError, match=r"echo: model .* is an encoder-decoder \(seq2seq\) model; kensa runs "
                                          r"those on the hf backend only"):
        load_model(spec)


def test_every_backend_class_has_what_the_contract_names():
    from kensa.backends.contract import Backend
    from kensa.backends.hf_causal import HFCausalLM
    from kensa.backends.hf_seq2seq import HFSeq2SeqLM
    from kensa.backends.served import ServedLM
    from kensa.backends.vllm import VLLMLM

    names = [n for n in Backend.__annotations__ if n not in ("name", "max_length", "max_gen_toks", "spec", "info")]
    assert {"kind", "bad_words"} <= set(names)
    for cls in (HFCausalLM, HFSeq2SeqLM, ServedLM, VLLMLM):
        assert all(hasattr(cls, n) for n in names), cls
    assert HFSeq2SeqLM.kind == "seq2seq" and HFCausalLM.kind == VLLMLM.kind == ServedLM.kind == "causal"
