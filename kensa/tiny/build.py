"""Tiny models built offline and deterministically, cached by a hash of their recipe.

* a SentencePiece unigram tokenizer (byte fallback, no dummy prefix, identity normalisation,
  like rinna's) trained on :mod:`kensa.tiny.tokenizer_text`;
* random-initialised GPT-NeoX and Llama causal LMs saved as safetensors, so they load through
  the same ``from_pretrained`` path as real models;
* ``tiny-trained``, a Llama briefly trained on the suite's own fixture prompts as frozen in
  :mod:`kensa.tiny.training_corpus` (:mod:`kensa.tiny.train`), which scores far above chance, and
  :func:`perturb_weights` to make a damaged copy of it;
* a LoRA adapter for the NeoX model, to exercise ``peft=``;
* ``tiny-t5`` (random) and ``tiny-t5-trained`` (taught the QA suite's seq2seq fixture prompts, so
  a damaged copy fails the gate): T5 encoder-decoders on the same SentencePiece vocabulary plus the
  highlight marker ``<hl>`` as one special token (as lmqg registers it), with ``</s>`` appended to
  every source as T5's tokenizer does.

The trained models are not built on a user's machine: training rounds differently on another CPU (AVX2
against AVX-512 kernels), so kensa ships their weights (:mod:`kensa.tiny.shipped`) and
:func:`build_model` returns those; :func:`train_model` trains one by its recipe (to rebuild and compare).

A directory is written under a temporary name and renamed into place, so parallel builders
(xdist workers) never see half a model, and a build holds a lock file, so a second process that
asks for the same model waits for the first build instead of training it again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from kensa.backends.hf_common import quiet_transformers
from kensa.errors import KensaError
from kensa.paths import cache_root
from kensa.tiny.tokenizer_text import CORPUS_VERSION, corpus_lines
from kensa.tiny.train import TrainRecipe

SPM_RECIPE = {
    "model_type": "unigram", "vocab_size": 4000, "byte_fallback": True, "add_dummy_prefix": False,
    "normalization_rule_name": "identity", "remove_extra_whitespaces": False, "character_coverage": 1.0,
    "split_digits": True, "unk_id": 0, "bos_id": 1, "eos_id": 2, "pad_id": 3, "hard_vocab_limit": False,
    "num_threads": 1, "shuffle_input_sentence": False, "corpus_lines": 6000, "corpus_version": CORPUS_VERSION,
}
TOKENIZER_CONFIG = {"tokenizer_class": "TokenizersBackend", "bos_token": "<s>", "eos_token": "</s>",
                    "unk_token": "<unk>", "pad_token": "<pad>"}


HIGHLIGHT = "<hl>"
"""The answer-span marker of AQG-HL prompts: one special token in the T5 tokenizers (lmqg adds it so)."""
# One encoder and one decoder layer memorise the QA suite's seq2seq fixtures (every doc of every seq2seq
# prompt version); two of each took four times as long to build. One thread: on a busy shared machine
# two threads waiting for each other at every small op made the build several times slower.
T5_TRAIN = TrainRecipe(steps=500, batch_size=16, lr=5e-3, warmup_steps=20, threads=1)


@dataclass(frozen=True)
class TinyModelRecipe:
    name: str
    architecture: str  # "gpt_neox", "llama" or "t5"
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 256
    max_position_embeddings: int = 2048
    seed: int = 0
    train: TrainRecipe | None = None
    """None: random weights."""


@dataclass(frozen=True)
class TinyAdapterRecipe:
    name: str
    base: str
    r: int = 4
    lora_alpha: int = 8
    target_modules: tuple[str, ...] = ("query_key_value", "dense")
    scale: float = 0.5  # the LoRA B weights are random * scale, so the adapter changes the output
    seed: int = 1
    init: str = "A~N(0,1/r),B~N(0,scale^2)"  # in the cache key: earlier adapters drew A from the global RNG


MODELS = {r.name: r for r in (
    # Two heads of 32 (not four of 16): vLLM's CPU attention kernels take head sizes of 32 and up, and
    # `--model tiny --backend vllm` must run on this model as it is.
    TinyModelRecipe("tiny-neox", "gpt_neox", num_attention_heads=2),
    TinyModelRecipe("tiny-llama", "llama"),
    # One layer memorises the fixtures as well as two (acc 1.0 on every prompt version, three seeds
    # tried) in half the build time.
    TinyModelRecipe("tiny-trained", "llama", num_hidden_layers=1, train=TrainRecipe()),
    TinyModelRecipe("tiny-t5", "t5"),
    TinyModelRecipe("tiny-t5-trained", "t5", num_hidden_layers=1, train=T5_TRAIN),
)}
ADAPTERS = {a.name: a for a in (TinyAdapterRecipe("tiny-lora", "tiny-neox"),)}
ALIASES = {"tiny": "tiny-neox"}


def is_tiny(name: str) -> bool:
    return name in MODELS or name in ALIASES


def kind_of(name: str) -> str:
    """``seq2seq`` for the tiny T5 models, ``causal`` for the others."""
    return "seq2seq" if MODELS[ALIASES.get(name, name)].architecture == "t5" else "causal"


def is_tiny_adapter(name: str) -> bool:
    return name in ADAPTERS


def _library_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {pkg: version(pkg) for pkg in ("torch", "transformers", "sentencepiece", "tokenizers")}


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


@contextmanager
def _build_lock(final: Path) -> Iterator[None]:
    """Hold an exclusive lock for building ``final`` (released when the process dies, too)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: concurrent builders each build, and the rename keeps one
        yield
        return
    locks = final.parent.parent / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{final.name}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"kensa: waiting for another process that is building {final.name}", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _cached(final: Path, marker: str, build: Callable[[], Path]) -> Path:
    """``final`` if it holds ``marker``; else ``build()`` it under the lock, unless another
    process built it while this one waited."""
    if (final / marker).is_file():
        return final
    with _build_lock(final):
        if (final / marker).is_file():
            return final
        return build()


def _publish(tmp: Path, final: Path) -> Path:
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a shared cache should be readable
    try:
        os.replace(tmp, final)
    except OSError:  # another process finished first: theirs is identical, keep it
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def build_spm(root: Path | None = None) -> Path:
    """Train (or find in the cache) the tiny SentencePiece tokenizer; return its directory."""
    recipe = {"spm": SPM_RECIPE, "versions": _library_versions()}
    final = (root or cache_root()) / "tiny" / f"spm-{_digest(recipe)}"

    def build() -> Path:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".spm-", dir=final.parent))
        options = {k: v for k, v in SPM_RECIPE.items() if k not in ("corpus_lines", "corpus_version")}
        write_spm(tmp, corpus_lines(SPM_RECIPE["corpus_lines"]), options)
        return _publish(tmp, final)

    return _cached(final, "tokenizer.json", build)


def write_spm(directory: Path, lines: Iterable[str], options: dict) -> None:
    """Train a SentencePiece model on ``lines`` and save it in ``directory`` as a transformers tokenizer
    (``tokenizer.model`` for ``use_fast=False``, ``tokenizer.json`` for the fast one)."""
    import sentencepiece as spm
    from transformers import AutoTokenizer

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model, minloglevel=2, **options)
    (directory / "tokenizer.model").write_bytes(model.getvalue())
    (directory / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2))
    # Converting the .model needs protobuf; after save_pretrained the tokenizer.json is enough.
    AutoTokenizer.from_pretrained(directory).save_pretrained(directory)


def is_trained(name: str) -> bool:
    """A tiny model trained by its recipe (its weights are shipped, not built)."""
    return MODELS[ALIASES.get(name, name)].train is not None


def build_model(name: str, root: Path | None = None) -> Path:
    """A directory ``from_pretrained`` can load: a random tiny model built (or found) in the cache, or a
    trained one's shipped weights (never trained here: see :func:`train_model`)."""
    recipe = MODELS[ALIASES.get(name, name)]
    if recipe.train is not None:
        from kensa.tiny.shipped import shipped_model

        return shipped_model(recipe.name)
    return _build_model(recipe, root)


def train_model(name: str, root: Path | None = None) -> Path:
    """Train a trained tiny model by its recipe into the cache (or find it there): the weights this CPU
    makes, which another kind of CPU makes slightly differently. Loading uses the shipped ones."""
    recipe = MODELS[ALIASES.get(name, name)]
    if recipe.train is None:
        raise KensaError(f"{recipe.name} is not a trained tiny model (trained: "
                         f"{', '.join(n for n, r in MODELS.items() if r.train is not None)})")
    return _build_model(recipe, root)


def _model_key(recipe: TinyModelRecipe, spm_dir: Path) -> tuple[dict, list | None]:
    """The cache key (recipe, tokenizer, library versions and, when trained, a digest of the
    frozen training text) and the training examples, if any."""
    fields = asdict(recipe)
    key = {"model": fields, "spm": spm_dir.name, "versions": _library_versions()}
    if recipe.train is None:
        del fields["train"]  # keeps the cache keys of the untrained models as they were
        return key, None
    from kensa.tiny.training_corpus import examples_digest, training_examples

    examples = list(training_examples(kind=kind_of(recipe.name)))
    key["data"] = examples_digest(examples)
    return key, examples


def _build_model(recipe: TinyModelRecipe, root: Path | None = None) -> Path:
    spm_dir = build_spm(root)
    key, examples = _model_key(recipe, spm_dir)
    final = (root or cache_root()) / "tiny" / f"{recipe.name}-{_digest(key)}"
    return _cached(final, "model.safetensors", lambda: _train_and_save(recipe, spm_dir, key, examples, final))


def _train_and_save(recipe: TinyModelRecipe, spm_dir: Path, key: dict, examples, final: Path) -> Path:
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        GPTNeoXConfig,
        LlamaConfig,
    )

    quiet_transformers()
    tok = AutoTokenizer.from_pretrained(spm_dir)
    if recipe.architecture == "t5":
        return _build_t5(recipe, tok, spm_dir, key, examples, final)
    common = dict(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                  pad_token_id=tok.pad_token_id, tie_word_embeddings=False,
                  hidden_size=recipe.hidden_size, num_hidden_layers=recipe.num_hidden_layers,
                  num_attention_heads=recipe.num_attention_heads, intermediate_size=recipe.intermediate_size,
                  max_position_embeddings=recipe.max_position_embeddings)
    if recipe.architecture == "gpt_neox":
        config = GPTNeoXConfig(**common)
    else:
        config = LlamaConfig(num_key_value_heads=recipe.num_attention_heads, **common)
    torch.manual_seed(recipe.seed)
    model = AutoModelForCausalLM.from_config(config)
    if recipe.train is not None:
        from kensa.tiny.train import train

        train(model, tok, examples, recipe.train)
    return _save_model(recipe, model, tok, spm_dir, key, final)


def _save_model(recipe: TinyModelRecipe, model, tok, spm_dir: Path, key: dict, final: Path) -> Path:
    """Write the model, its tokenizer and its cache key under a temporary name, then rename it to ``final``."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{recipe.name}-", dir=final.parent))
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    shutil.copyfile(spm_dir / "tokenizer.model", tmp / "tokenizer.model")  # for use_fast=False
    (tmp / "kensa_recipe.json").write_text(json.dumps(key, indent=2, sort_keys=True))
    return _publish(tmp, final)


def t5_tokenizer(tok):
    """The tiny SentencePiece tokenizer as T5 uses one: ``</s>`` closes every encoded text, and the
    highlight marker is one special token."""
    from tokenizers import processors

    tok.add_special_tokens({"additional_special_tokens": [HIGHLIGHT]})
    eos = tok.eos_token
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", pair=f"$A {eos} $B {eos}", special_tokens=[(eos, tok.eos_token_id)])
    return tok


def _build_t5(recipe: TinyModelRecipe, tok, spm_dir: Path, key: dict, examples, final: Path) -> Path:
    import torch
    from transformers import AutoModelForSeq2SeqLM, T5Config

    tok = t5_tokenizer(tok)
    config = T5Config(vocab_size=len(tok), d_model=recipe.hidden_size, d_kv=recipe.hidden_size // recipe.num_attention_heads,
                      d_ff=recipe.intermediate_size, num_layers=recipe.num_hidden_layers,
                      num_decoder_layers=recipe.num_hidden_layers, num_heads=recipe.num_attention_heads,
                      dropout_rate=0.0, feed_forward_proj="relu", tie_word_embeddings=False,
                      n_positions=recipe.max_position_embeddings, pad_token_id=tok.pad_token_id,
                      eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id)
    torch.manual_seed(recipe.seed)
    model = AutoModelForSeq2SeqLM.from_config(config)
    if recipe.train is not None:
        from kensa.tiny.train import train_seq2seq

        train_seq2seq(model, tok, examples, recipe.train)
    return _save_model(recipe, model, tok, spm_dir, key, final)


def build_adapter(name: str, root: Path | None = None) -> Path:
    """Build (or find) a tiny LoRA adapter directory for ``peft=``."""
    recipe = ADAPTERS[name]
    base_dir = build_model(recipe.base, root)
    key = {"adapter": asdict(recipe), "base": base_dir.name, "versions": _library_versions()}
    final = (root or cache_root()) / "tiny" / f"{recipe.name}-{_digest(key)}"
    return _cached(final, "adapter_model.safetensors", lambda: _save_adapter(recipe, base_dir, key, final))


def _save_adapter(recipe: TinyAdapterRecipe, base_dir: Path, key: dict, final: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    quiet_transformers()
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(r=recipe.r, lora_alpha=recipe.lora_alpha, target_modules=list(recipe.target_modules),
                        task_type="CAUSAL_LM")
    model = get_peft_model(base, config)
    # peft draws A from the global RNG and sets B to zero: both come from the recipe's own generator
    # instead, so two builds are byte-identical and the adapter changes the output.
    gen = torch.Generator().manual_seed(recipe.seed)
    with torch.no_grad():
        for pname, param in sorted(model.named_parameters()):
            if "lora_A" in pname:
                param.copy_(torch.randn(param.shape, generator=gen) / param.shape[0] ** 0.5)
            elif "lora_B" in pname:
                param.copy_(torch.randn(param.shape, generator=gen) * recipe.scale)
    tmp = Path(tempfile.mkdtemp(prefix=f".{recipe.name}-", dir=final.parent))
    model.save_pretrained(tmp)
    (tmp / "kensa_recipe.json").write_text(json.dumps(key, indent=2, sort_keys=True))
    return _publish(tmp, final)


def write_tiny(name: str, out: Path) -> Path:
    """Copy a built tiny model or adapter to ``out`` (the ``python -m kensa tiny`` command)."""
    src = build_adapter(name) if is_tiny_adapter(name) else build_model(name)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    shutil.copytree(src, out, dirs_exist_ok=True)
    return out


# Noise for a damaged copy of tiny-trained: at 2.0 every JCommonsenseQA prompt version falls from
# 40/40 to 12-17/40 on the fixtures (seed 0) with finite log-likelihoods; at 1.0 it loses only 3-5 items.
DAMAGE_SCALE = 2.0


def perturb_weights(src: Path, out: Path, *, scale: float, seed: int) -> Path:
    """Copy the model directory ``src`` to ``out`` with seeded Gaussian noise added to every weight
    tensor (``scale`` times that tensor's standard deviation): a damaged copy, to show that a score
    gate catches the drop. ``src`` is left untouched; ``out`` must not exist or be empty."""
    import torch
    from safetensors.torch import load_file, save_file

    src, out = Path(src), Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    tensors = load_file(src / "model.safetensors")
    gen = torch.Generator().manual_seed(seed)
    for name in sorted(tensors):  # a fixed order, so the noise depends only on the seed
        t = tensors[name]
        if not t.is_floating_point():
            continue
        std = t.float().std() if t.numel() > 1 else t.float().abs().reshape(())
        noise = torch.randn(t.shape, generator=gen) * (scale * float(std))
        tensors[name] = (t.float() + noise).to(t.dtype).contiguous()
    # Not the shipped build record: it describes the undamaged weights.
    shutil.copytree(src, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("kensa_build.json"))
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    (out / "kensa_perturbation.json").write_text(json.dumps(
        {"source": str(src), "scale": scale, "seed": seed}, indent=2, sort_keys=True))
    return out
