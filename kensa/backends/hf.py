"""The ``hf`` backend's registration: transformers in this process, the causal backend
(:mod:`kensa.backends.hf_causal`) for a causal model and the seq2seq one (:mod:`kensa.backends.hf_seq2seq`)
for an encoder-decoder. Torch and transformers are imported when a model loads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kensa.backends.args import ModelSpec
from kensa.backends.registry import BackendEntry, register


@dataclass(frozen=True)
class HFArgs:
    """The model arguments only an in-process transformers model reads: how it is loaded and batched."""

    load_in_8bit: bool = False
    load_in_4bit: bool = False
    device_map: str | None = None
    use_accelerate: bool = False
    max_memory_per_gpu: str | None = None
    max_cpu_memory: str | None = None
    subfolder: str | None = None
    low_cpu_mem_usage: bool = False
    batch_size: int | str = 4


def load(spec: ModelSpec, device: str, *, kind: str, source: str, adapter: str | None) -> Any:
    if kind == "seq2seq":
        from kensa.backends.hf_seq2seq import HFSeq2SeqLM

        return HFSeq2SeqLM.load(spec, device, source=source, adapter=adapter)
    from kensa.backends.hf_causal import HFCausalLM

    return HFCausalLM.load(spec, device, source=source, adapter=adapter)


HF = register(BackendEntry(
    name="hf", requests=("loglikelihood", "generation"), model_kinds=("causal", "seq2seq"), args=HFArgs, load=load,
    what="the HF backend", whose="the HF backend's, which loads and batches the model in this process"))
