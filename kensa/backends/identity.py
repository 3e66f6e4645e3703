"""Which model was scored: :func:`model_identity` names the weights, tokenizer and adapter (a Hub
commit, or a SHA-256 over the files, cached by file size and mtime so a large model is hashed
once), and :func:`describe_environment` the library versions. The response cache keys on both;
the gate (:mod:`kensa.gate.fingerprint`) compares environments.

No torch import here: the backend passes in what it knows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kensa.errors import WriteError
from kensa.paths import cache_root, write_atomic

BACKEND = "hf"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt")
CONFIG_FILES = ("config.json", "generation_config.json")


def minor(version: str) -> str:
    """``2.13.0+cpu`` -> ``2.13``: patch releases are assumed not to move scores."""
    parts = version.split("+")[0].split(".")
    return ".".join(parts[:2])


# -- hashing files -------------------------------------------------------------------------------

def _cache_file() -> Path:
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
    with contextlib.suppress(WriteError):  # a cache that cannot be written only costs a re-hash
        write_atomic(cache_path, json.dumps(cache))  # concurrent workers never read half a file
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
