"""What every Hugging Face backend shares: device choice, the ``from_pretrained`` arguments that
``--model-args`` set (dtype, device map, accelerate's memory limits, 8-/4-bit quantization), peft
adapters, the tokenizer's location, the ``info`` block for results and the response cache, and
batching with ``batch_size=auto`` halving on out-of-memory errors.

The causal backend (:mod:`kensa.backends.hf_causal`) and the seq2seq backend
(:mod:`kensa.backends.hf_seq2seq`) differ only in the model class and in how a request becomes
model inputs; everything here is the same for both. Torch and transformers are imported inside
the functions.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from typing import Any, TypeVar

from kensa.backends.args import ModelSpec
from kensa.backends.identity import describe_environment, model_identity
from kensa.errors import ModelLoadError, ModelRunError, OptionError

T = TypeVar("T")

DEFAULT_MAX_LENGTH = 2048
AUTO_BATCH_START = 64
"""``batch_size=auto`` starts here and halves on out-of-memory errors."""


def pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise OptionError("--device", "cuda was asked for but torch sees no CUDA device")
    return requested


def _max_memory(per_gpu: str | None, cpu: str | None) -> dict[Any, str]:
    """The harness's ``max_memory_per_gpu`` / ``max_cpu_memory`` as accelerate's ``max_memory``."""
    import torch

    memory: dict[Any, str] = {}
    if per_gpu:
        memory.update({i: per_gpu for i in range(torch.cuda.device_count())})
    if cpu:
        memory["cpu"] = cpu
    return memory


def context_length(config: Any, tokenizer: Any, override: int | None) -> int:
    """``max_length=`` if given, else the config's positions, else the tokenizer's limit."""
    if override:
        return override
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return limit
    return DEFAULT_MAX_LENGTH


def load_pretrained(model_class: Any, spec: ModelSpec, device: str, source: str,
                    adapter_dir: str | None) -> tuple[Any, str, str | None]:
    """``model_class.from_pretrained(source)`` as ``spec.args`` say (revision, dtype, device map or
    accelerate's placement, 8-/4-bit, peft adapter), in eval mode. Returns (model, device, device_map)."""
    import torch

    quiet_transformers()
    args = spec.args
    device = pick_device(args.device or device)
    kwargs: dict[str, Any] = {"revision": args.revision, "trust_remote_code": args.trust_remote_code}
    if args.subfolder:
        kwargs["subfolder"] = args.subfolder
    if args.low_cpu_mem_usage:
        kwargs["low_cpu_mem_usage"] = True
    device_map = args.device_map
    if args.use_accelerate:  # hf-causal-experimental: accelerate places the weights
        device_map = args.device_map_option
        kwargs["offload_folder"] = args.offload_folder
        memory = _max_memory(args.max_memory_per_gpu, args.max_cpu_memory)
        if memory:
            kwargs["max_memory"] = memory
    dtype = None
    if args.dtype:
        dtype = "auto" if args.dtype == "auto" else getattr(torch, args.dtype)
        kwargs["dtype"] = dtype
    quantized = args.load_in_8bit or args.load_in_4bit
    if quantized:
        from transformers import BitsAndBytesConfig

        if args.load_in_8bit:
            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        else:
            compute = dtype if isinstance(dtype, torch.dtype) else torch.float32
            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=compute)
    if device_map:
        kwargs["device_map"] = device_map
    elif quantized:
        kwargs["device_map"] = device  # bitsandbytes places weights while loading
    model = model_class.from_pretrained(source, **kwargs)
    if not device_map and not quantized:
        model.to(device)
    if adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir)
    model.eval()
    return model, device, device_map


def loading(spec: ModelSpec, load: Callable[[], T]) -> T:
    """``load()``; any error but kensa's own option and load errors becomes a :class:`ModelLoadError` naming
    the model (and its source where that is not its name)."""
    try:
        return load()
    except (OptionError, ModelLoadError):
        raise
    except Exception as exc:
        where = f"model {spec.name!r}" + (f" ({spec.source})" if spec.source != spec.name else "")
        raise ModelLoadError(f"{where}: {type(exc).__name__}: {exc}") from exc


def tokenizer_source(spec: ModelSpec, source: str) -> str:
    """Where the tokenizer comes from: ``tokenizer=``, else the model's own (sub)folder."""
    args = spec.args
    if args.tokenizer:
        return os.path.expanduser(args.tokenizer)
    if args.subfolder and os.path.isdir(os.path.join(source, args.subfolder)):
        return os.path.join(source, args.subfolder)  # the model's own files live there
    return source


def model_info(model: Any, tokenizer: Any, *, spec: ModelSpec, backend: str, source: str, tok_source: str,
               adapter_dir: str | None, device: str, device_map: str | None, max_length: int) -> dict[str, Any]:
    """The ``info`` block of a loaded model: what results, the response cache and the gate record."""
    import torch

    args = spec.args
    identity = model_identity(name=spec.name, source=source, revision=args.revision,
                              commit=getattr(model.config, "_commit_hash", None),
                              tokenizer_source=tok_source, adapter=adapter_dir)
    return {
        "backend": backend, "identity": identity, "source": source, "model_class": type(model).__name__,
        "architecture": model.config.model_type,
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."), "device": device,
        "device_map": device_map, "quantization": "8bit" if args.load_in_8bit else
        "4bit" if args.load_in_4bit else None, "peft": args.peft,
        "parameters": sum(p.numel() for p in model.parameters()),
        "tokenizer_class": type(tokenizer).__name__, "tokenizer_is_fast": bool(tokenizer.is_fast),
        "vocab_size": len(tokenizer), "max_length": max_length, "batch_size": args.batch_size,
        "eos_token_id": tokenizer.eos_token_id, "libraries": describe_environment(),
        "torch_threads": torch.get_num_threads(), "hardware": hardware_name(device),
    }


def hardware_name(device: str) -> str:
    """What the model runs on, for latency's Environment column: the GPU's name, else the CPU's model name
    (``/proc/cpuinfo``, else ``platform``)."""
    import platform

    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name") and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


class Batching:
    """Batches with ``batch_size=auto`` halving: mixed into a backend that has ``name`` and ``batch_size``."""

    name: str
    batch_size: int | str
    _auto_size: int = AUTO_BATCH_START

    def _batches(self, items: Any, run) -> None:
        """Call ``run`` on consecutive batches of ``items``. With ``batch_size=auto`` a batch that runs
        out of memory is halved and retried, and the smaller size is kept for the rest."""
        auto = self.batch_size == "auto"
        size = self._auto_size if auto else int(self.batch_size)
        start = 0
        while start < len(items):
            batch = items[start: start + size]
            try:
                run(batch)
            except Exception as exc:
                if not (auto and is_out_of_memory(exc) and len(batch) > 1):
                    if is_out_of_memory(exc):
                        raise ModelRunError(f"model {self.name!r} ran out of memory on a batch of {len(batch)} "
                                             "(use a smaller batch_size= or batch_size=auto)") from exc
                    raise
                size = self._auto_size = max(1, len(batch) // 2)
                free_memory()
                continue
            start += len(batch)


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA or CPU allocation failure (torch raises both as RuntimeError subclasses or MemoryError)."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def quiet_transformers() -> None:
    """No per-file progress bars: they are noise in test output."""
    from transformers.utils import logging

    logging.disable_progress_bar()
