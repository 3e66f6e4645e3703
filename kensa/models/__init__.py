"""Model specs (what ``--model`` named) and loading them into a backend.

Resolving a spec touches only the file system, so option errors surface at session start
without importing torch; loading imports the backend.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from kensa.backends.args import ModelArgs, ModelSpec
from kensa.errors import OptionError
from kensa.tiny import build as tiny

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


def _looks_like_path(text: str) -> bool:
    """``./x``, ``/x``, ``~/x`` and ``a/b/c`` are paths; ``org/name`` may be a Hub id."""
    return text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text


def _check_dir(option: str, text: str, marker: str) -> str:
    path = Path(os.path.expanduser(text))
    if not path.is_dir():
        raise OptionError(option, f"{text!r}: no such directory")
    if not (path / marker).is_file():
        raise OptionError(option, f"{text!r}: not a model directory (no {marker})")
    return str(path.resolve())


BACKENDS = ("hf", "vllm")
HF_ONLY_KEYS = ("load_in_8bit", "load_in_4bit", "device_map", "use_accelerate", "max_memory_per_gpu", "max_cpu_memory",
                "subfolder", "low_cpu_mem_usage", "batch_size")
"""``--backend``: transformers in this process, or a vLLM engine (served models are ``openai://``)."""


def resolve_model(name: str, args: ModelArgs, backend: str = "hf") -> ModelSpec:
    """Decide what ``name`` (or ``pretrained=``) refers to; a path that does not exist is an error."""
    from kensa.backends.args import ENGINE_KEYS, SERVED_KEYS
    from kensa.backends.served import is_served, parse_served

    if backend not in BACKENDS:
        raise OptionError("--backend", f"{backend!r}: expected one of {', '.join(BACKENDS)}")
    source = args.pretrained or name
    option = "--model-args pretrained" if args.pretrained else "--model"
    if is_served(source):
        parse_served(source)
        if backend != "hf":
            raise OptionError("--backend", f"{backend!r} does not apply to the served model {source!r}: the server "
                                           "runs it")
        _refuse_unread(args, ENGINE_KEYS, f"a served model ({source})")
        return ModelSpec(name, "served", source, args, backend="openai")
    _refuse_unread(args, SERVED_KEYS, "a model that is not served")
    if backend == "hf":
        _refuse_unread(args, ENGINE_KEYS, "the HF backend (they are --backend vllm's)")
    else:
        _refuse_unread(args, HF_ONLY_KEYS, "--backend vllm (the engine loads and batches the model itself)")
    spec = _resolve_local(name, source, option, args)
    return ModelSpec(spec.name, spec.kind, spec.source, args, backend=backend)


def _refuse_unread(args: ModelArgs, keys: tuple[str, ...], what: str) -> None:
    """A model argument the chosen backend would not read is an error, never silently ignored."""
    default = ModelArgs()
    unread = [k for k in keys if getattr(args, k) != getattr(default, k)]
    if unread:
        raise OptionError("--model-args", f"{', '.join(unread)} mean nothing for {what}")


def _resolve_local(name: str, source: str, option: str, args: ModelArgs) -> ModelSpec:
    if tiny.is_tiny(source):
        spec = ModelSpec(name, "tiny", source, args)
    elif Path(os.path.expanduser(source)).is_dir() or _looks_like_path(source):
        spec = ModelSpec(name, "local", _check_dir(option, source, "config.json"), args)
    elif _HUB_ID.match(source):
        spec = ModelSpec(name, "hub", source, args)
    else:
        raise OptionError(option, f"{source!r} is neither a directory, a Hub id nor a tiny model "
                                  f"({', '.join(sorted(tiny.MODELS) + sorted(tiny.ALIASES))})")
    if args.peft and not tiny.is_tiny_adapter(args.peft):
        peft_path = Path(os.path.expanduser(args.peft))
        if peft_path.exists() or _looks_like_path(args.peft):
            _check_dir("--model-args peft", args.peft, "adapter_config.json")
    if args.tokenizer and _looks_like_path(args.tokenizer) and not Path(os.path.expanduser(args.tokenizer)).is_dir():
        raise OptionError("--model-args tokenizer", f"{args.tokenizer!r}: no such directory")
    return spec


def share_cpu_threads(workers: int) -> int | None:
    """Give each of ``workers`` processes (pytest-xdist workers) an equal share of the cores for torch's
    intra-op threads. torch's default, every core in every process, makes workers fight over the cores:
    CPU generation ran up to 30 times slower with 2 workers on 2 busy cores. An explicit
    ``OMP_NUM_THREADS`` is left alone. Returns the count set, or None when nothing was changed."""
    if workers <= 1 or os.environ.get("OMP_NUM_THREADS"):
        return None
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // workers)
    torch.set_num_threads(threads)
    return threads


MODEL_KINDS = ("causal", "seq2seq")


def _kind_of_config(config: dict) -> str:
    return "seq2seq" if config.get("is_encoder_decoder") else "causal"


def model_kind(spec: ModelSpec) -> str | None:
    """``causal`` or ``seq2seq`` (the config's ``is_encoder_decoder``), read from files only: a tiny
    model's recipe, a local ``config.json``, or a Hub model's config in the local cache. None when
    a Hub config is not cached yet (loading then reads it)."""
    import json

    if spec.kind == "tiny":
        return tiny.kind_of(spec.source)
    if spec.kind == "served":  # an OpenAI-compatible completions endpoint: text in, text out
        return "causal"
    if spec.kind == "local":
        root = Path(spec.source)
        path = root / spec.args.subfolder / "config.json" if spec.args.subfolder else root / "config.json"
        if not path.is_file():
            path = root / "config.json"
        return _kind_of_config(json.loads(path.read_text(encoding="utf-8")))
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(spec.source, "config.json", revision=spec.args.revision,
                                        subfolder=spec.args.subfolder)
    except (ImportError, ValueError, OSError):  # an unusual cache layout: loading will tell
        return None
    if isinstance(cached, str) and Path(cached).is_file():
        return _kind_of_config(json.loads(Path(cached).read_text(encoding="utf-8")))
    return None


def load_model(spec: ModelSpec, device: str = "auto"):
    """Load a spec into its backend: the seq2seq backend for an encoder-decoder config
    (``is_encoder_decoder``), else the causal one. A built-in tiny model or adapter is built (or found in
    the cache) first, so the backend only ever sees directories and Hub ids. ``--backend vllm`` runs causal
    models in a vLLM engine; ``openai://`` models are served ones."""
    if spec.kind == "served":
        from kensa.backends.served import ServedLM

        return ServedLM.load(spec)
    source = str(tiny.build_model(spec.source)) if spec.kind == "tiny" else spec.source
    peft = spec.args.peft
    adapter = (str(tiny.build_adapter(peft)) if tiny.is_tiny_adapter(peft) else os.path.expanduser(peft)) if peft else None
    kind = model_kind(spec)
    if kind is None:
        from transformers import AutoConfig

        from kensa.errors import ModelLoadError

        try:
            config = AutoConfig.from_pretrained(source, revision=spec.args.revision,
                                                trust_remote_code=spec.args.trust_remote_code)
        except Exception as exc:
            raise ModelLoadError(f"model {spec.name!r}: its config cannot be read: {type(exc).__name__}: {exc}") \
                from exc
        kind = "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal"
    if spec.backend == "vllm":
        if kind == "seq2seq":
            from kensa.errors import OptionError

            raise OptionError("--backend", f"vllm: model {spec.name!r} is an encoder-decoder (seq2seq) model; "
                                           "kensa runs those on the hf backend only")
        from kensa.backends.vllm import VLLMLM

        return VLLMLM.load(spec, device, source=source, adapter=adapter)
    if kind == "seq2seq":
        from kensa.backends.hf_seq2seq import HFSeq2SeqLM

        return HFSeq2SeqLM.load(spec, device, source=source, adapter=adapter)
    from kensa.backends.hf_causal import HFCausalLM

    return HFCausalLM.load(spec, device, source=source, adapter=adapter)
