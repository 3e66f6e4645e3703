"""Hugging Face causal-LM backend with the jp-stable harness's semantics.

* Context and continuation are tokenized separately, with no special tokens; an empty
  context becomes ``[eos]`` (XWinograd scores whole sentences that way).
* The input is left-truncated to the model's context length.
* A continuation's score is the sum of its tokens' log-probabilities.
* Generation is greedy, stops at stop strings or EOS, and is cut at the first stop string.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kensa.errors import ModelLoadError, OptionError
from kensa.evaluate import LoglikelihoodResult, Progress
from kensa.fingerprint import BACKEND, model_identity
from kensa.models import ModelSpec, tiny
from kensa.models.tokenizers import load_tokenizer

DEFAULT_MAX_LENGTH = 2048


@dataclass(frozen=True)
class GenerationRequest:
    context: str
    until: tuple[str, ...] = ()
    max_new_tokens: int = 256


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


class HFCausalLM:
    """One loaded model and tokenizer. Free it with :meth:`close` before loading the next."""

    def __init__(self, model: Any, tokenizer: Any, *, spec: ModelSpec, max_length: int, batch_size: int,
                 info: dict[str, Any]):
        self.spec = spec
        self.name = spec.name
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.info = info

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, spec: ModelSpec, device: str = "auto") -> HFCausalLM:
        try:
            return cls._load(spec, device)
        except (OptionError, ModelLoadError):
            raise
        except Exception as exc:
            where = f"model {spec.name!r}" + (f" ({spec.source})" if spec.source != spec.name else "")
            raise ModelLoadError(f"{where}: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def _load(cls, spec: ModelSpec, device: str) -> HFCausalLM:
        import torch
        from transformers import AutoModelForCausalLM

        tiny.quiet_transformers()
        args = spec.args
        source = str(tiny.build_model(spec.source)) if spec.kind == "tiny" else spec.source
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
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
        if not device_map and not quantized:
            model.to(device)
        adapter_dir = (str(tiny.build_adapter(args.peft)) if tiny.is_tiny_adapter(args.peft)
                       else os.path.expanduser(args.peft)) if args.peft else None
        if adapter_dir:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_dir)
        model.eval()
        tok_source = os.path.expanduser(args.tokenizer) if args.tokenizer else source
        if args.subfolder and not args.tokenizer and os.path.isdir(os.path.join(source, args.subfolder)):
            tok_source = os.path.join(source, args.subfolder)  # the model's own files live there
        tokenizer = load_tokenizer(tok_source, revision=args.revision, use_fast=args.use_fast,
                                   trust_remote_code=args.trust_remote_code)
        max_length = context_length(model.config, tokenizer, args.max_length)
        params = sum(p.numel() for p in model.parameters())
        identity = model_identity(name=spec.name, source=source, revision=args.revision,
                                  commit=getattr(model.config, "_commit_hash", None),
                                  tokenizer_source=tok_source, adapter=adapter_dir)
        info = {
            "backend": BACKEND, "identity": identity, "source": source, "model_class": type(model).__name__,
            "architecture": model.config.model_type,
            "dtype": str(next(model.parameters()).dtype).removeprefix("torch."), "device": device,
            "device_map": device_map, "quantization": "8bit" if args.load_in_8bit else
            "4bit" if args.load_in_4bit else None, "peft": args.peft, "parameters": params,
            "tokenizer_class": type(tokenizer).__name__, "tokenizer_is_fast": bool(tokenizer.is_fast),
            "vocab_size": len(tokenizer), "max_length": max_length, "batch_size": args.batch_size,
            "eos_token_id": tokenizer.eos_token_id, "libraries": describe_environment(),
        }
        return cls(model, tokenizer, spec=spec, max_length=max_length, batch_size=args.batch_size, info=info)

    def close(self) -> None:
        """Drop the weights and give the memory back, so the next model fits."""
        import torch

        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- scoring ---------------------------------------------------------------------------
    @property
    def input_device(self):
        return self.model.get_input_embeddings().weight.device

    def tok_encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def tok_decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def tokenize(self, text: str) -> list[str]:
        """The tokenizer's pieces (XL-Sum's published ROUGE-2 is computed on these)."""
        return self.tokenizer.tokenize(text)

    @property
    def max_gen_toks(self) -> int:
        """The generation budget of a request that names none (``max_gen_toks=``, default 256)."""
        return self.spec.args.max_gen_toks

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], int]:
        """(input ids, number of continuation tokens), left-truncated to the context length."""
        ctx = self.tok_encode(context) if context else [self.tokenizer.eos_token_id]
        cont = self.tok_encode(continuation)
        if not cont:
            raise ValueError(f"continuation {continuation!r} encodes to no tokens")
        if len(cont) > self.max_length:
            raise ValueError(f"continuation of {len(cont)} tokens exceeds the context length {self.max_length}")
        whole = (ctx + cont)[-(self.max_length + 1):]
        return whole, len(cont)

    def loglikelihood(self, requests: Sequence[tuple[str, str]],
                      progress: Progress | None = None) -> list[LoglikelihoodResult]:
        import torch

        encoded = [self._encode_pair(c, x) for c, x in requests]
        # Identical requests are scored once; the longest go first so padding stays small and
        # an out-of-memory error shows up at once, not at the end.
        unique: dict[tuple[int, ...], list[int]] = {}
        for i, (whole, n) in enumerate(encoded):
            unique.setdefault((*whole, -n), []).append(i)
        order = sorted(unique, key=lambda key: -len(key))
        results: list[LoglikelihoodResult | None] = [None] * len(requests)
        done = 0
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start: start + self.batch_size]
                inputs = [list(key[:-2]) for key in batch]  # drop the last token and the -n marker
                width = max(len(x) for x in inputs)
                ids = torch.zeros((len(batch), width), dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, x in enumerate(inputs):
                    ids[row, : len(x)] = torch.tensor(x)
                    mask[row, : len(x)] = 1
                logits = self.model(input_ids=ids.to(self.input_device),
                                    attention_mask=mask.to(self.input_device)).logits
                for row, key in enumerate(batch):
                    n = -key[-1]
                    length = len(inputs[row])
                    # Only the continuation's positions, in float32 for a stable log-softmax.
                    logprobs = torch.log_softmax(logits[row, length - n: length].float(), dim=-1)
                    targets = torch.tensor(key[-1 - n: -1], device=logprobs.device)
                    picked = logprobs.gather(1, targets[:, None]).squeeze(1)
                    result = LoglikelihoodResult(
                        logprob=float(picked.sum()), is_greedy=bool((logprobs.argmax(-1) == targets).all()),
                        num_tokens=n,
                    )
                    for i in unique[key]:
                        results[i] = result
                done += sum(len(unique[key]) for key in batch)
                if progress:
                    progress(done, len(requests))
        return results  # type: ignore[return-value]

    # -- generation ------------------------------------------------------------------------
    def generate_until(self, requests: Sequence[GenerationRequest],
                       progress: Progress | None = None) -> list[str]:
        """Greedy continuations, each cut at the first of its stop strings."""
        import torch
        from transformers import (
            GenerationConfig,
            StoppingCriteria,
            StoppingCriteriaList,
        )

        tok = self.tokenizer

        class StopOnStrings(StoppingCriteria):
            """Stop a sequence once its generated text contains any stop string."""

            def __init__(self, stops: tuple[str, ...], prompt_width: int):
                self.stops = stops
                self.prompt_width = prompt_width

            def __call__(self, input_ids, scores, **kwargs):
                texts = tok.batch_decode(input_ids[:, self.prompt_width:])
                return torch.tensor([any(s in t for s in self.stops) for t in texts], device=input_ids.device)

        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        outputs: list[str | None] = [None] * len(requests)
        groups: dict[tuple[tuple[str, ...], int], list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((tuple(r.until), r.max_new_tokens), []).append(i)
        done = 0
        with torch.inference_mode():
            for (until, max_new), members in groups.items():
                keep = max(1, self.max_length - max_new)
                encoded = {i: self.tok_encode(requests[i].context)[-keep:] for i in members}
                members = sorted(members, key=lambda i: -len(encoded[i]))
                for start in range(0, len(members), self.batch_size):
                    batch = members[start: start + self.batch_size]
                    width = max(len(encoded[i]) for i in batch)
                    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                    mask = torch.zeros((len(batch), width), dtype=torch.long)
                    for row, i in enumerate(batch):  # left padding: every prompt ends at the same column
                        x = encoded[i]
                        ids[row, width - len(x):] = torch.tensor(x)
                        mask[row, width - len(x):] = 1
                    config = GenerationConfig(max_new_tokens=max_new, do_sample=False, num_beams=1,
                                              pad_token_id=pad_id, eos_token_id=tok.eos_token_id)
                    criteria = StoppingCriteriaList([StopOnStrings(until, width)]) if until else None
                    out = self.model.generate(input_ids=ids.to(self.input_device),
                                              attention_mask=mask.to(self.input_device),
                                              generation_config=config, stopping_criteria=criteria)
                    for row, i in enumerate(batch):
                        new = out[row, width:].tolist()
                        if tok.eos_token_id in new:
                            new = new[: new.index(tok.eos_token_id)]
                        text = tok.decode(new)
                        for stop in until:
                            text = text.split(stop)[0]
                        outputs[i] = text
                    done += len(batch)
                    if progress:
                        progress(done, len(requests))
        return outputs  # type: ignore[return-value]


def describe_environment() -> dict[str, str]:
    """Library versions for the results' provenance."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "transformers", "tokenizers", "sentencepiece", "peft", "bitsandbytes", "datasets"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    out["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return out
