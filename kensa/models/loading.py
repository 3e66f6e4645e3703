"""``--model`` resolved to a :class:`~kensa.backends.args.ModelSpec`, and a spec loaded into its backend.

Resolving a spec touches only the file system, so option errors surface at session start without importing
torch; loading looks the backend up in :mod:`kensa.backends.registry` and imports it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from kensa.backends.args import ModelArgs, ModelSpec
from kensa.backends.registry import check_args, check_kind, get_backend
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


def resolve_model(name: str, args: ModelArgs, backend: str = "hf") -> ModelSpec:
    """Decide what ``name`` (or ``pretrained=``) refers to; a path that does not exist is an error, and so is a
    model argument the backend would not read."""
    from kensa.backends.served import is_served, parse_served

    entry = get_backend(backend)
    source = args.pretrained or name
    option = "--model-args pretrained" if args.pretrained else "--model"
    if is_served(source):
        parse_served(source)
        if backend != "hf":
            raise OptionError("--backend", f"{backend!r} does not apply to the served model {source!r}: the server "
                                           "runs it")
        served = get_backend("openai", option="--model")
        check_args(served, args, f"a served model ({source})")
        return ModelSpec(name, "served", source, args, backend=served.name)
    check_args(entry, args)
    spec = _resolve_local(name, source, option, args)
    return ModelSpec(spec.name, spec.kind, spec.source, args, backend=backend)


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

        # (no subfolder argument: the subfolder is part of the file name in the cache)
        filename = f"{spec.args.subfolder}/config.json" if spec.args.subfolder else "config.json"
        cached = try_to_load_from_cache(spec.source, filename, revision=spec.args.revision)
    except (ImportError, ValueError, OSError):  # an unusual cache layout: loading will tell
        return None
    if isinstance(cached, str) and Path(cached).is_file():
        return _kind_of_config(json.loads(Path(cached).read_text(encoding="utf-8")))
    return None


def load_model(spec: ModelSpec, device: str = "auto"):
    """Load a spec into its registered backend, as the model's kind (``causal``, or ``seq2seq`` for an
    encoder-decoder config) asks. A built-in tiny model or adapter is built (or found in the cache) first, so a
    backend only ever sees directories and Hub ids; a served model is the server's."""
    entry = get_backend(spec.backend, option="--model")
    if spec.kind == "served":
        return entry.load(spec, device, kind="causal", source=spec.source, adapter=None)
    source = str(tiny.build_model(spec.source)) if spec.kind == "tiny" else spec.source
    peft = spec.args.peft
    adapter = (str(tiny.build_adapter(peft)) if tiny.is_tiny_adapter(peft) else os.path.expanduser(peft)) if peft else None
    kind = model_kind(spec) or _read_kind(spec, source)
    check_kind(entry, kind, spec.name)
    return entry.load(spec, device, kind=kind, source=source, adapter=adapter)


def _read_kind(spec: ModelSpec, source: str) -> str:
    """The kind from the config itself, through transformers (a Hub config not in the local cache yet)."""
    from transformers import AutoConfig

    from kensa.errors import ModelLoadError

    try:
        config = AutoConfig.from_pretrained(source, revision=spec.args.revision,
                                            trust_remote_code=spec.args.trust_remote_code)
    except Exception as exc:
        raise ModelLoadError(f"model {spec.name!r}: its config cannot be read: {type(exc).__name__}: {exc}") from exc
    return "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal"
