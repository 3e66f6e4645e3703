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
from kensa.models import tiny

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


def resolve_model(name: str, args: ModelArgs) -> ModelSpec:
    """Decide what ``name`` (or ``pretrained=``) refers to; a path that does not exist is an error."""
    source = args.pretrained or name
    option = "--model-args pretrained" if args.pretrained else "--model"
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


def load_model(spec: ModelSpec, device: str = "auto"):
    """Load a spec into its backend. A built-in tiny model or adapter is built (or found in the
    cache) first, so the backend only ever sees directories and Hub ids."""
    from kensa.backends.hf_causal import HFCausalLM

    source = str(tiny.build_model(spec.source)) if spec.kind == "tiny" else spec.source
    peft = spec.args.peft
    adapter = (str(tiny.build_adapter(peft)) if tiny.is_tiny_adapter(peft) else os.path.expanduser(peft)) if peft else None
    return HFCausalLM.load(spec, device, source=source, adapter=adapter)
