"""Tiny models: built offline, deterministic, cached by recipe, loadable by plain transformers."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from kensa.tiny import build as tiny

pytest.importorskip("transformers")


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
@pytest.mark.ci
def test_two_builds_are_byte_identical(tmp_path):
    a = tiny.build_model("tiny-llama", root=tmp_path / "a")
    b = tiny.build_model("tiny-llama", root=tmp_path / "b")
    assert a.name == b.name  # same recipe, same hash
    for name in ("model.safetensors", "tokenizer.model", "tokenizer.json", "config.json"):
        assert sha(a / name) == sha(b / name), name


def test_two_adapter_builds_are_byte_identical(tmp_path):
    """peft initialises lora_A from torch's global RNG; the build must not depend on it. (The base
    is built first: a base build seeds that RNG itself, which hid the dependence on a fresh cache.)"""
    import torch

    built = []
    for seed, root in ((1, tmp_path / "a"), (2, tmp_path / "b")):
        tiny.build_model(tiny.ADAPTERS["tiny-lora"].base, root=root)
        torch.manual_seed(seed)
        built.append(tiny.build_adapter("tiny-lora", root=root))
    a, b = built
    assert a.name == b.name
    assert sha(a / "adapter_model.safetensors") == sha(b / "adapter_model.safetensors")


def test_a_second_builder_waits_for_the_first_instead_of_building_again(tmp_path, monkeypatch, capfd):
    """CI starts the tests while `make models` still trains: a test that needs the same model must
    wait for that build, not train a second copy."""
    import fcntl
    import threading

    name = tiny.build_spm(root=tmp_path / "a").name
    final = tmp_path / "b" / "tiny" / name
    calls = []
    monkeypatch.setattr(tiny, "write_spm", lambda *a: calls.append(a))  # a build would call it
    blocking = threading.Event()
    real_flock = fcntl.flock

    def flock(handle, operation):
        if not operation & fcntl.LOCK_NB:  # the waiter found the lock held and now blocks on it
            blocking.set()
        return real_flock(handle, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    got = []
    with tiny._build_lock(final):  # "another process" is building
        waiter = threading.Thread(target=lambda: got.append(tiny.build_spm(root=tmp_path / "b")))
        waiter.start()
        assert blocking.wait(timeout=60), "the second builder never waited for the lock"
        assert waiter.is_alive() and not calls
        final.mkdir(parents=True)
        (final / "tokenizer.json").write_text("{}")  # what the other process published
    waiter.join(timeout=60)
    assert got == [final] and not calls
    assert f"waiting for another process that is building {name}" in capfd.readouterr().err


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


# --- tiny-trained and damaged copies ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_training_examples_cover_every_task_variant(kind):
    from kensa.data import DataSource
    from kensa.tasks import all_tasks
    from kensa.tasks.render import NoModel, prepare, prepare_generation
    from kensa.tasks.training_text import training_examples

    examples = training_examples(kind=kind)
    expected = 0
    for task in all_tasks():
        variants = [v for v in task.variants() if v.trained_for(kind)]
        if not variants:
            continue
        eval_split, pool = task.load(DataSource.fixtures())
        expected += len(variants) * len(eval_split.rows)
        for variant in variants:
            mine = [(e.context, e.continuation, e.eos) for e in examples if e.task_id == variant.task_id]
            if task.kind == "generation":  # the prompt, then the target as a shot shows it, then the stop string
                docs = prepare_generation(variant, eval_split, pool, task.num_fewshot, None, NoModel())
                want = [(d.prompt, variant.template.render_target(variant.view(d.row)) + (d.until[0] if d.until else ""),
                         not d.until) for d in docs]  # or EOS where the prompt has no stop string
                assert mine == want, variant.task_id
                continue
            docs = prepare(variant, eval_split, pool, task.num_fewshot, None)
            assert mine == [(d.prompt, d.continuations[d.gold], False) for d in docs], variant.task_id
    assert len(examples) == expected
    # the seq2seq model learns only the prompts written for seq2seq models, the causal one every other
    assert {e.task_id.split("-")[0] for e in examples} >= ({"qa", "aqg", "aqg_hl"} | ({"qa_tsv"} if kind == "seq2seq"
                                                                                    else {"jsquad"}))


def test_training_examples_refuse_a_task_kind_they_do_not_know(monkeypatch):
    import kensa.tasks.training_text
    from kensa.errors import KensaError
    from kensa.tasks.training_text import training_examples

    class RankingTask:
        name, kind = "ranker", "ranking"

        def load(self, source):
            return None, None

    monkeypatch.setattr(kensa.tasks.training_text, "all_tasks", lambda: [RankingTask()])
    with pytest.raises(KensaError, match="ranker.*ranking.*training_examples"):
        training_examples()


def test_cache_key_follows_the_training_text(monkeypatch):
    from kensa.tiny import training_corpus as training_text

    recipe, spm_dir = tiny.MODELS["tiny-trained"], tiny.build_spm()
    key, examples = tiny._model_key(recipe, spm_dir)
    edited = [training_text.TrainingExample(examples[0].task_id, examples[0].context + "。", examples[0].continuation),
              *examples[1:]]
    monkeypatch.setattr(training_text, "training_examples", lambda **kwargs: edited)
    assert tiny._digest(tiny._model_key(recipe, spm_dir)[0]) != tiny._digest(key)
    # The untrained models' keys carry no training fields.
    assert "train" not in tiny._model_key(tiny.MODELS["tiny-llama"], spm_dir)[0]["model"]


def test_training_is_deterministic_and_restores_torch_settings(tmp_path):
    """Two builds of a 3-step recipe in separate caches give the same bytes (the full recipe does
    too, but two builds of it would cost half a minute)."""
    import dataclasses
    import shutil

    import torch

    spm_dir = tiny.build_spm()
    full = tiny.MODELS["tiny-trained"]
    short = dataclasses.replace(full, train=dataclasses.replace(full.train, steps=3))
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    built = []
    for name in ("a", "b"):
        shutil.copytree(spm_dir, tmp_path / name / "tiny" / spm_dir.name)  # no tokenizer retraining
        built.append(tiny._build_model(short, root=tmp_path / name))
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before
    assert built[0].name == built[1].name
    assert sha(built[0] / "model.safetensors") == sha(built[1] / "model.safetensors")


def test_tiny_trained_loads_and_scores_far_above_chance():
    from kensa.data import DataSource
    from kensa.run.multiple_choice import evaluate_multiple_choice
    from kensa.tasks import get_task
    from tests.helpers import load_tiny

    path = tiny.build_model("tiny-trained")
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer.model"} <= {p.name for p in path.iterdir()}
    lm = load_tiny("tiny-trained")
    try:
        task = get_task("jcommonsenseqa")
        eval_split, pool = task.load(DataSource.fixtures())
        variant = task.variants()[0]
        run = evaluate_multiple_choice(variant, lm, eval_split, pool, task.num_fewshot)
    finally:
        lm.close()
    assert run.metrics["acc"] >= 0.8, run.metrics


def test_perturb_weights_is_seeded_and_leaves_the_source_alone(tmp_path):
    from safetensors.torch import load_file

    src = tiny.build_model("tiny-trained")
    before = {p.name: sha(p) for p in src.iterdir() if p.is_file()}
    a = tiny.perturb_weights(src, tmp_path / "a", scale=0.5, seed=0)
    b = tiny.perturb_weights(src, tmp_path / "b", scale=0.5, seed=0)
    c = tiny.perturb_weights(src, tmp_path / "c", scale=0.5, seed=1)
    assert {p.name: sha(p) for p in src.iterdir() if p.is_file()} == before
    assert sha(a / "model.safetensors") == sha(b / "model.safetensors") != sha(c / "model.safetensors")
    for name in ("config.json", "tokenizer.json", "tokenizer.model"):
        assert sha(a / name) == before[name]
    original, damaged = load_file(src / "model.safetensors"), load_file(a / "model.safetensors")
    assert original.keys() == damaged.keys()
    for name, t in original.items():
        assert not t.equal(damaged[name]) and damaged[name].isfinite().all(), name
    with pytest.raises(FileExistsError):
        tiny.perturb_weights(src, a, scale=0.5, seed=0)
