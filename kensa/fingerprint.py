"""What a score depends on besides the model's quality: the environment and the model's identity.

* :func:`environment` is the fingerprint a threshold entry records (backend, torch and
  transformers versions, dtype, device class, quantization). Scores move when any of them
  changes (gating notes §3: a backend, CUDA or transformers change has no upper bound), so
  :func:`incomparable` names the differences that make a comparison meaningless.
* :func:`model_identity` says which weights and tokenizer were scored: a Hub revision, or a
  SHA-256 over the weight files, cached by file size and mtime so a large model is hashed once.

No torch import here: the backend passes in what it knows.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

BACKEND = "hf"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt")
CONFIG_FILES = ("config.json", "generation_config.json")
# The fields whose difference makes two runs incomparable; versions are compared at minor level.
COMPARED = ("backend", "device", "dtype", "quantization", "torch", "transformers")


def minor(version: str) -> str:
    """``2.13.0+cpu`` -> ``2.13``: patch releases are assumed not to move scores."""
    parts = version.split("+")[0].split(".")
    return ".".join(parts[:2])


def environment(info: Mapping[str, Any]) -> dict[str, str]:
    """The fingerprint of a loaded model's run, from the backend's ``info``."""
    libs = info.get("libraries", {})
    device = str(info.get("device") or "unknown")
    return {
        "backend": str(info.get("backend", BACKEND)),
        "device": "cuda" if device.startswith("cuda") else device,
        "dtype": str(info.get("dtype") or "unknown"),
        "quantization": str(info.get("quantization") or "none"),
        "torch": str(libs.get("torch", "unknown")),
        "transformers": str(libs.get("transformers", "unknown")),
        "batch_size": str(info.get("batch_size", "")),
    }


def incomparable(baseline: Mapping[str, str], run: Mapping[str, str]) -> list[str]:
    """Human-readable differences that make a run incomparable with a baseline (empty: comparable)."""
    out = []
    for key in COMPARED:
        a, b = str(baseline.get(key, "unknown")), str(run.get(key, "unknown"))
        if key in ("torch", "transformers"):
            if minor(a) != minor(b):
                out.append(f"{key} {a} -> {b}")
        elif a != b:
            out.append(f"{key} {a} -> {b}")
    return out


# -- hashing files -------------------------------------------------------------------------------

def _cache_file() -> Path:
    from kensa.models.tiny import cache_root

    return cache_root() / "file-hashes.json"


def file_sha256(path: Path, cache: dict[str, Any] | None = None) -> str:
    """SHA-256 of a file; ``cache`` maps ``path`` to a previous (size, mtime_ns, digest)."""
    stat = path.stat()
    key = str(path.resolve())
    if cache is not None:
        hit = cache.get(key)
        if hit and hit[0] == stat.st_size and hit[1] == stat.st_mtime_ns:
            return hit[2]
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    if cache is not None:
        cache[key] = [stat.st_size, stat.st_mtime_ns, digest]
    return digest


def files_sha256(paths: Iterable[Path]) -> str | None:
    """One digest over several files (names and contents, in sorted order); None when there are none."""
    paths = sorted(paths, key=lambda p: p.name)
    if not paths:
        return None
    cache_path = _cache_file()
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}  # a missing or damaged cache only costs a re-hash
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0" + file_sha256(p, cache).encode() + b"\n")
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_path.parent, prefix=".hashes-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(cache, f)
        os.replace(tmp, cache_path)  # atomic: concurrent workers never read half a file
    except OSError:
        pass
    return h.hexdigest()


def weights_sha256(directory: str | os.PathLike) -> str | None:
    root = Path(directory)
    if not root.is_dir():
        return None
    return files_sha256(p for p in root.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))


def tokenizer_sha256(directory: str | os.PathLike) -> str | None:
    root = Path(directory)
    if not root.is_dir():
        return None
    return files_sha256(root / name for name in TOKENIZER_FILES if (root / name).is_file())


def model_identity(*, name: str, source: str, revision: str | None, commit: str | None,
                   tokenizer_source: str, adapter: str | None) -> dict[str, str]:
    """Which weights, tokenizer and adapter were scored. Hub models are named by their commit."""
    out = {"name": name, "source": source, "revision": revision or commit or "", "commit": commit or ""}
    out["weights_sha256"] = weights_sha256(source) or ""
    # A local directory's config can be edited without touching the weights (rope scaling, max positions).
    root = Path(source)
    out["config_sha256"] = (files_sha256(root / n for n in CONFIG_FILES if (root / n).is_file())
                            if root.is_dir() else None) or ""
    out["tokenizer_sha256"] = tokenizer_sha256(tokenizer_source) or ""
    if adapter:
        out["adapter_sha256"] = weights_sha256(adapter) or ""
    return out
