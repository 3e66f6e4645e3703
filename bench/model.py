"""The benchmark's models, built offline and deterministically, cached by a digest of their recipe.

* An 8000-piece SentencePiece unigram tokenizer: the options of :data:`kensa.tiny.build.SPM_RECIPE`
  (byte fallback, no dummy prefix, identity normalisation, one thread, no shuffling) with
  ``vocab_size=8000``, trained on a fixed number of lines of real JGLUE text read from the shared data
  dir in a fixed order (see :func:`training_lines`).
* Random-initialised Llama models (``LlamaConfig``, untied embeddings, seed 0) saved with
  ``save_pretrained``, so they load through :meth:`kensa.backends.hf_causal.HFCausalLM.load` like any local model:
  ``small`` (about 27.5M parameters, float32, for CPU) and ``1b`` (about 1B parameters, saved in
  bfloat16, for a GPU).

Everything lands under ``kensa.paths.cache_root() / "bench"``; the directory name carries a digest
of the recipe, the training text and the library versions, so a changed recipe never reuses a stale build.

``python -m bench.model [--size small|1b] [--data-dir DIR]`` builds one and prints its directory and
parameter count.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from kensa.tiny import build as tiny

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"

SPM_VOCAB = 8000
CORPUS_LINES = 40000
"""Lines of JGLUE text the tokenizer is trained on (round-robin over the sources below, in file order)."""
CORPUS_VERSION = 1
"""Bump when :func:`training_lines` changes what it reads, so the cache key changes with it."""
SPM_OPTIONS = {**{k: v for k, v in tiny.SPM_RECIPE.items() if k not in ("corpus_lines", "corpus_version")},
               "vocab_size": SPM_VOCAB}

# The files the tokenizer reads, relative to the data dir. Only train splits and JSQuAD's test split:
# the benchmark scores JCommonsenseQA, JNLI and JSQuAD *valid*, and shared/data has no JNLI or JSQuAD train.
SOURCES = {
    "jcommonsenseqa": "jglue/jcommonsenseqa/train-v1.3.json",
    "jsts": "jglue/jsts/train-v1.3.json",
    "jsquad": "jglue/jsquad/test-v1.3.json",
}
JSQUAD_SEP = " [SEP] "


@dataclass(frozen=True)
class BenchModel:
    name: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    dtype: str
    """What the weights are saved in (and what the benchmark runs them in by default)."""
    max_position_embeddings: int = 2048
    seed: int = 0


SIZES = {
    # 27.47M parameters with the 8000-piece vocabulary: 2 x 8000 x 512 embeddings + 6 x 3.21M per layer.
    "small": BenchModel("bench-small", hidden_size=512, num_hidden_layers=6, num_attention_heads=8,
                        intermediate_size=1408, dtype="float32"),
    # 1.06B parameters: 2 x 8000 x 2048 embeddings + 20 x 51.4M per layer (TinyLlama's widths, MHA).
    "1b": BenchModel("bench-1b", hidden_size=2048, num_hidden_layers=20, num_attention_heads=16,
                     intermediate_size=5632, dtype="bfloat16"),
}


class MissingDataError(FileNotFoundError):
    """The shared JGLUE data the tokenizer is trained on is not where it was looked for."""


def expected_parameters(recipe: BenchModel, vocab_size: int) -> int:
    """Llama's parameter count for ``recipe`` (untied embeddings, full multi-head attention, RMSNorm)."""
    h, i = recipe.hidden_size, recipe.intermediate_size
    per_layer = 4 * h * h + 3 * h * i + 2 * h
    return 2 * vocab_size * h + recipe.num_hidden_layers * per_layer + h


def _source_path(data_dir: Path, rel: str) -> Path:
    path = data_dir / rel
    if not path.is_file():
        raise MissingDataError(f"bench tokenizer: {path} not found; the benchmark trains its tokenizer on the shared "
                               f"JGLUE data (pass --data-dir DIR, laid out like shared/data: {rel})")
    return path


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _jcqa_lines(path: Path) -> list[str]:
    out = []
    for row in _jsonl(path):
        out.append(row["question"])
        out.append("、".join(row[f"choice{i}"] for i in range(5)))
    return out


def _jsts_lines(path: Path) -> list[str]:
    return list(dict.fromkeys(s for row in _jsonl(path) for s in (row["sentence1"], row["sentence2"])))


def _jsquad_lines(path: Path) -> list[str]:
    out = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for para in article["paragraphs"]:
            text = para["context"].split(JSQUAD_SEP)[-1]
            out.extend(s + "。" for s in text.split("。") if s.strip())
            out.extend(qa["question"] for qa in para["qas"])
    return out


def training_lines(data_dir: Path, n: int = CORPUS_LINES) -> list[str]:
    """``n`` lines of JGLUE text: JCommonsenseQA train (questions, choices), JSTS train (sentences) and
    JSQuAD test (paragraph sentences, questions), taken round-robin in file order. Always the same list."""
    data_dir = Path(data_dir)
    readers = {"jcommonsenseqa": _jcqa_lines, "jsts": _jsts_lines, "jsquad": _jsquad_lines}
    streams = [readers[name](_source_path(data_dir, rel)) for name, rel in SOURCES.items()]
    lines: list[str] = []
    for i in range(max(len(s) for s in streams)):
        lines.extend(s[i] for s in streams if i < len(s))
        if len(lines) >= n:
            break
    if len(lines) < n:
        raise MissingDataError(f"bench tokenizer: only {len(lines)} lines of text under {data_dir}, {n} needed")
    return lines[:n]


def _lines_digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def bench_root(root: Path | None = None) -> Path:
    return (root or tiny.cache_root()) / "bench"


def build_spm(data_dir: Path = DEFAULT_DATA_DIR, root: Path | None = None) -> Path:
    """Train (or find in the cache) the 8000-piece tokenizer; return its directory."""
    lines = training_lines(Path(data_dir))
    key = {"spm": SPM_OPTIONS, "corpus": {"lines": len(lines), "sha256": _lines_digest(lines),
                                          "version": CORPUS_VERSION}, "versions": tiny._library_versions()}
    final = bench_root(root) / f"spm{SPM_VOCAB}-{tiny._digest(key)}"
    if (final / "tokenizer.json").is_file():
        return final
    tiny.quiet_transformers()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".spm-", dir=final.parent))
    tiny.write_spm(tmp, lines, SPM_OPTIONS)
    (tmp / "kensa_recipe.json").write_text(json.dumps(key, indent=2, sort_keys=True))
    return tiny._publish(tmp, final)


def build_model(size: str = "small", data_dir: Path = DEFAULT_DATA_DIR, root: Path | None = None,
                device: str = "cpu") -> Path:
    """Build (or find) the benchmark model ``size``; return a directory ``from_pretrained`` loads.
    ``device`` is where the random weights are drawn: ``cpu`` (the default) gives the same weights on every
    machine; another device is faster for ``1b`` and is part of the cache key."""
    if size not in SIZES:
        raise ValueError(f"--size {size!r}: expected one of {', '.join(SIZES)}")
    recipe = SIZES[size]
    spm_dir = build_spm(data_dir, root)
    key = {"model": asdict(recipe), "spm": spm_dir.name, "init_device": device, "versions": tiny._library_versions()}
    final = bench_root(root) / f"{recipe.name}-{tiny._digest(key)}"
    if (final / "config.json").is_file():
        return final
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    tiny.quiet_transformers()
    tok = AutoTokenizer.from_pretrained(spm_dir)
    config = LlamaConfig(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=False,
                         hidden_size=recipe.hidden_size, num_hidden_layers=recipe.num_hidden_layers,
                         num_attention_heads=recipe.num_attention_heads,
                         num_key_value_heads=recipe.num_attention_heads,
                         intermediate_size=recipe.intermediate_size,
                         max_position_embeddings=recipe.max_position_embeddings)
    torch.manual_seed(recipe.seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config)
    model = model.to(device="cpu", dtype=getattr(torch, recipe.dtype))
    params = sum(p.numel() for p in model.parameters())
    expected = expected_parameters(recipe, len(tok))
    if params != expected:
        raise RuntimeError(f"{recipe.name}: {params} parameters, the recipe's count is {expected}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{recipe.name}-", dir=final.parent))
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    shutil.copyfile(spm_dir / "tokenizer.model", tmp / "tokenizer.model")
    (tmp / "kensa_recipe.json").write_text(json.dumps({**key, "parameters": params}, indent=2, sort_keys=True))
    return tiny._publish(tmp, final)


def recipe_of(model_dir: Path) -> dict:
    """The recipe a built model directory was made from (its ``kensa_recipe.json``)."""
    path = Path(model_dir) / "kensa_recipe.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.model", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--init-device", default="cpu", help="where the random weights are drawn (default cpu)")
    args = parser.parse_args(argv)
    try:
        path = build_model(args.size, args.data_dir, device=args.init_device)
    except MissingDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    print(f"parameters: {recipe_of(path).get('parameters')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
