"""What a backend is asked to load: the model arguments in the harness's ``k=v,k=v`` form (parsed and
checked before anything loads) and the :class:`ModelSpec` that ``--model`` resolves to."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from kensa.errors import OptionError

# dtype spellings accepted by the harness and by transformers, mapped to one canonical name.
DTYPES = {
    "auto": "auto",
    "float32": "float32", "fp32": "float32", "float": "float32",
    "float16": "float16", "fp16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
}
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class ModelArgs:
    """What ``--model-args`` may set. Names follow the jp-stable harness (``hf-causal``). Which backend reads
    which key is each registered backend's own args class (:mod:`kensa.backends.registry`): a key one backend
    reads is refused on another."""

    pretrained: str | None = None
    revision: str | None = None
    tokenizer: str | None = None
    use_fast: bool = True
    dtype: str | None = None
    device_map: str | None = None
    load_in_8bit: bool = False
    load_in_4bit: bool = False
    peft: str | None = None
    trust_remote_code: bool = False
    max_length: int | None = None
    batch_size: int | str = 4
    """Rows per forward pass, or ``auto``: start large and halve on out-of-memory errors."""
    # The rest of the harness's hf-causal / hf-causal-experimental keys, with the harness's meaning.
    use_accelerate: bool = False
    """experimental: load with ``device_map=device_map_option``, ``max_memory`` and ``offload_folder``."""
    device_map_option: str = "auto"
    max_memory_per_gpu: str | None = None
    max_cpu_memory: str | None = None
    offload_folder: str = "./offload"
    subfolder: str | None = None
    low_cpu_mem_usage: bool = False
    add_special_tokens: bool = False
    max_gen_toks: int = 256
    """The cap on generated tokens (the harness's default 256)."""
    device: str | None = None
    """hf-causal's per-model device; overrides ``--device`` for this model."""
    # Decoding of seq2seq models (kensa.backends.hf_seq2seq); a causal model refuses them.
    num_beams: int = 1
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    bad_words: tuple[str, ...] = ()
    """Words the output must not contain, given as ``bad_words=山梨|山梨県`` (``|`` between words)."""
    # --backend vllm: the engine's own settings (ignored by the HF backend, refused there when set).
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float | None = None
    """The share of each GPU's memory this engine may take (vLLM's default 0.9)."""
    max_model_len: int | None = None
    enforce_eager: bool | None = None
    """No CUDA graphs / torch.compile; default: on for CPU, off for CUDA."""
    # Served models (--model openai://...): the client's limits and where the API key is.
    max_concurrency: int = 8
    timeout: float = 300.0
    """Seconds one request may take (read timeout) before it is retried."""
    max_retries: int = 5
    api_key_env: str = "OPENAI_API_KEY"
    """The environment variable holding the API key (never the key itself on the command line)."""
    # Set only through the alias ``torch_dtype``; kept so the echo shows what the user wrote.
    _aliases: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)

    def as_harness_string(self, model: str) -> str:
        """The ``model_args`` string the harness would have been given, for results JSON."""
        parts = [f"pretrained={self.pretrained or model}"]
        for f in dataclasses.fields(self):
            if f.name in ("pretrained", "_aliases"):
                continue
            value = getattr(self, f.name)
            if value != f.default:
                if f.name == "bad_words":
                    value = BAD_WORDS_SEP.join(value)
                parts.append(f"{f.name}={value}")
        return ",".join(parts)


ALIASES = {"torch_dtype": "dtype"}
# Harness keys kensa cannot honour: refused with the reason, never silently ignored.
REFUSED = {
    "quantized": "GPTQ checkpoints through auto-gptq are not supported; transformers loads a GPTQ or AWQ "
                 "checkpoint's own quantization_config without it (drop quantized=)",
    "gptq_use_triton": "belongs to auto-gptq's quantized=, which kensa does not support",
    "api_key": "an API key on the command line ends up in shell history and results; put it in an environment "
               "variable and name that with api_key_env= (default OPENAI_API_KEY)",
}
KEYS = tuple(f.name for f in dataclasses.fields(ModelArgs) if not f.name.startswith("_"))
_BOOL_KEYS = {f.name for f in dataclasses.fields(ModelArgs) if f.type in ("bool", "bool | None")}
_INT_KEYS = {"max_length", "batch_size", "max_gen_toks", "num_beams", "tensor_parallel_size", "max_model_len",
             "max_concurrency"}
_FLOAT_KEYS = {"gpu_memory_utilization": (0.0, 1.0), "timeout": (0.0, None), "repetition_penalty": (0.0, None)}
BAD_WORDS_SEP = "|"
"""Between the words of ``bad_words=`` (a comma already separates model arguments)."""


def parse_bad_words(option: str, raw: str, sep: str = BAD_WORDS_SEP) -> tuple[str, ...]:
    """``山梨|山梨県`` -> ("山梨", "山梨県"). An empty or blank entry is an error naming the option and value:
    it would block nothing (or everything)."""
    words = raw.split(sep)
    for i, word in enumerate(words):
        if not word.strip():
            raise OptionError(option, f"{raw!r}: entry {i + 1} is empty; give words separated by {sep!r}")
        if any(c.isspace() for c in word):  # "山梨 山梨県" as one word would block only that exact string
            raise OptionError(option, f"{word!r} holds whitespace; give each word on its own ({sep!r} between "
                                      "words, or as separate values)")
    if len(set(words)) != len(words):
        raise OptionError(option, f"{raw!r}: a word is given twice")
    return tuple(words)




def _parse_bool(key: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise OptionError("--model-args", f"{key}={raw!r}: expected true or false")


def _parse_int(key: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        expected = "an integer or auto" if key == "batch_size" else "an integer"
        raise OptionError("--model-args", f"{key}={raw!r}: expected {expected}") from None
    if value < 1:
        raise OptionError("--model-args", f"{key}={raw!r}: must be at least 1")
    return value


def _parse_float(key: str, raw: str, low: float, high: float | None) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise OptionError("--model-args", f"{key}={raw!r}: expected a number") from None
    if not (value > low and math.isfinite(value) and (high is None or value <= high)):
        bound = f"in ({low:g}, {high:g}]" if high is not None else f"above {low:g}"
        raise OptionError("--model-args", f"{key}={raw!r}: must be {bound}")
    return value


def parse_model_args(text: str | None) -> ModelArgs:
    """Parse ``k=v,k=v``. An unknown key, a repeated key or a bad value is an :class:`OptionError`."""
    if text is None or not text.strip():
        return ModelArgs()
    values: dict[str, Any] = {}
    aliases: list[tuple[str, str]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise OptionError("--model-args", f"{item!r} is not of the form key=value")
        if key in ALIASES:
            aliases.append((key, ALIASES[key]))
            key = ALIASES[key]
        if key in REFUSED:
            raise OptionError("--model-args", f"{key}={raw.strip()!r} is not supported: {REFUSED[key]}")
        if key not in KEYS:
            known = ", ".join(sorted(KEYS + tuple(ALIASES)))
            raise OptionError("--model-args", f"unknown key {key!r} (known keys: {known})")
        if key in values:
            raise OptionError("--model-args", f"key {key!r} is given twice")
        raw = raw.strip()
        if key in _BOOL_KEYS:
            values[key] = _parse_bool(key, raw)
        elif key == "batch_size" and raw.lower() == "auto":
            values[key] = "auto"
        elif key in _INT_KEYS:
            values[key] = _parse_int(key, raw)
        elif key == "no_repeat_ngram_size":
            values[key] = 0 if raw == "0" else _parse_int(key, raw)
        elif key == "bad_words":
            values[key] = parse_bad_words("--model-args bad_words", raw)
        elif key == "max_retries":
            values[key] = _parse_int(key, raw) if raw != "0" else 0
        elif key in _FLOAT_KEYS:
            values[key] = _parse_float(key, raw, *_FLOAT_KEYS[key])
        elif key == "dtype":
            if raw.lower() not in DTYPES:
                raise OptionError("--model-args", f"dtype={raw!r}: expected one of {', '.join(sorted(DTYPES))}")
            values[key] = DTYPES[raw.lower()]
        else:
            if not raw:
                raise OptionError("--model-args", f"{key} has an empty value")
            values[key] = raw
    if values.get("load_in_8bit") and values.get("load_in_4bit"):
        raise OptionError("--model-args", "load_in_8bit and load_in_4bit cannot both be true")
    if values.get("add_special_tokens"):
        # The harness asserts this is falsy for causal models; scores depend on no BOS being added.
        raise OptionError("--model-args", "add_special_tokens=True is not supported: causal models are scored "
                                          "without special tokens, as in the harness (which refuses it too)")
    if values.get("device_map") and values.get("use_accelerate"):
        raise OptionError("--model-args", "give device_map or use_accelerate (with device_map_option), not both")
    if "device" in values and values["device"] not in DEVICES and not values["device"].startswith("cuda:"):
        raise OptionError("--model-args", f"device={values['device']!r}: expected cpu, cuda or cuda:N")
    return ModelArgs(**values, _aliases=tuple(aliases))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    """As given to ``--model``; names the results."""
    kind: str
    """``tiny``, ``local``, ``hub`` or ``served``."""
    source: str
    """What ``from_pretrained`` gets: a tiny name, a directory or a Hub id."""
    args: ModelArgs
    backend: str = "hf"
    """The registered backend that runs it (:mod:`kensa.backends.registry`): ``hf`` (transformers in this
    process), ``vllm`` (a vLLM engine) or ``openai`` (a server)."""

    @property
    def slug(self) -> str:
        """A file-name-safe form of the name, for the results directory."""
        return re.sub(r"[^\w.\-]+", "__", self.name).strip("_") or "model"
