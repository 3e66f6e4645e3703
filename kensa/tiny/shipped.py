"""The trained tiny models' weights, shipped as package data instead of trained on each machine.

Training is deterministic on one kind of CPU, but torch's AVX2 and AVX-512 kernels round differently, so
``tiny-trained`` trained on another CPU is another model (other bytes, slightly other scores), and every
baseline measured on it would belong to weights a user does not get. So ``data/models/<name>/`` holds the
weights, config and tokenizer files as their recipe built them, and ``kensa_build.json`` beside them says
how: the recipe and training-corpus digests, the weights digest, the CPU, the kernels and library versions,
the date and the command that rebuilds them. Loading a trained tiny model loads these files; nothing trains.

``python -m kensa tiny --rebuild NAME`` trains the model again by its recipe (in a child process with torch's
CPU kernels pinned to :data:`KERNEL_ENV`, as the shipped build was) and compares the result with the shipped
one by scores (:mod:`kensa.tiny.compare`), never by bytes; ``--ship`` replaces the shipped files (after a
recipe or corpus change, and then the thresholds measured on the model are regenerated).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from kensa.errors import KensaError

BUILD_FILE = "kensa_build.json"
SHIPPED_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                 "tokenizer.model", "tokenizer_config.json", "kensa_recipe.json")
"""What a trained tiny model's directory holds (``kensa_recipe.json``: its full cache key, as built)."""
KERNEL_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
"""The CPU kernels a rebuild trains with. The shipped weights were trained with these on an AVX-512 machine
and are byte-identical to the ones trained on the AVX2 machine where the committed baselines were first
measured; any x86 CPU with AVX2 runs them, so a rebuild there may well give the same bytes (not assumed)."""
REBUILD_COMMAND = "python -m kensa tiny --rebuild --name {name} --ship"


def _models_root() -> Any:
    return resources.files("kensa.tiny") / "data" / "models"


def shipped_dir(name: str) -> Path:
    """The shipped directory of the trained tiny model ``name`` (package data). An installation whose
    package data is not on the file system (a zip) gets a copy in the cache."""
    from kensa.tiny.build import MODELS

    if name not in MODELS or MODELS[name].train is None:
        raise KensaError(f"{name!r} is not a trained tiny model")
    node = _models_root() / name
    if isinstance(node, Path):
        path = node
    else:  # importlib.resources from a zip: copy the files out once, named by their content
        path = _extract(name, node)
    if not (path / "model.safetensors").is_file() or not (path / BUILD_FILE).is_file():
        raise KensaError(f"the shipped weights of {name} are missing ({path}): the installation is incomplete, "
                         f"or rebuild and ship them with `{REBUILD_COMMAND.format(name=name)}`")
    return path


def _extract(name: str, node: Any) -> Path:
    from kensa.paths import cache_root, write_atomic

    build = json.loads((node / BUILD_FILE).read_text(encoding="utf-8"))
    final = cache_root() / "tiny" / f"shipped-{name}-{build['weights_sha256'][:16]}"
    if not (final / BUILD_FILE).is_file():
        for item in node.iterdir():
            write_atomic(final / item.name, item.read_bytes())
    return final


def read_build(path: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(path) / BUILD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KensaError(f"{Path(path) / BUILD_FILE}: cannot be read ({exc})") from exc


def recipe_digest(name: str) -> str:
    """A digest of what the recipe trains from, independent of the machine and library versions: the model
    and training recipe, the tokenizer's recipe and the training corpus's version."""
    from dataclasses import asdict

    from kensa.tiny.build import MODELS, SPM_RECIPE, _digest
    from kensa.tiny.training_corpus import TRAINING_CORPUS_VERSION

    return _digest({"model": asdict(MODELS[name]), "spm": SPM_RECIPE, "corpus": TRAINING_CORPUS_VERSION})


def shipped_model(name: str) -> Path:
    """The shipped directory of ``name``, refused when the code's recipe is not the one it was built by
    (the weights would be stale: rebuild and ship them)."""
    path = shipped_dir(name)
    build = read_build(path)
    if build.get("recipe_sha256") != recipe_digest(name):
        raise KensaError(f"the shipped weights of {name} ({path}) were built by another recipe or training corpus "
                         f"than this kensa's (recipe digest {build.get('recipe_sha256')} != {recipe_digest(name)}); "
                         f"rebuild and ship them: `{REBUILD_COMMAND.format(name=name)}`, then regenerate its "
                         "thresholds")
    return path


def shipped_name_of(weights_sha256: str) -> str | None:
    """The trained tiny model whose shipped weights have this digest (a copy at another path), or None."""
    if not weights_sha256:
        return None
    return _shipped_digests().get(weights_sha256)


@lru_cache(maxsize=1)
def _shipped_digests() -> dict[str, str]:
    from kensa.tiny.build import MODELS

    out = {}
    for name, recipe in MODELS.items():
        node = _models_root() / name / BUILD_FILE
        if recipe.train is not None and node.is_file():
            out[json.loads(node.read_text(encoding="utf-8"))["weights_sha256"]] = name
    return out


def cpu_summary() -> dict[str, str]:
    """The CPU a build ran on: model name, vector extensions, the best kernels torch has for it (a pinned
    build uses :data:`KERNEL_ENV`'s instead)."""
    model, flags = "", ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not model:
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = value
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    vector = sorted(f for f in flags.split() if f.startswith(("avx", "fma", "amx", "sse4")))
    import torch

    return {"model": model, "machine": platform.machine(), "vector_flags": " ".join(vector),
            "torch_max_cpu_capability": str(torch.backends.cpu.get_cpu_capability())}


def train_pinned(name: str, root: Path) -> Path:
    """Train ``name`` by its recipe into ``root`` in a child process whose torch uses :data:`KERNEL_ENV`'s
    kernels (they must be set before torch is imported); return the built directory."""
    code = ("import sys; from pathlib import Path; from kensa.tiny.build import train_model; "
            "print(train_model(sys.argv[1], Path(sys.argv[2])))")
    env = {**os.environ, **KERNEL_ENV}
    done = subprocess.run([sys.executable, "-c", code, name, str(root)], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise KensaError(f"training {name} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def describe_build(name: str, built: Path) -> dict[str, Any]:
    """``kensa_build.json`` for a directory :func:`train_pinned` built on this machine."""
    import torch

    from kensa.backends.identity import files_sha256, tokenizer_sha256, weights_sha256

    key = json.loads((built / "kensa_recipe.json").read_text(encoding="utf-8"))
    return {
        "name": name, "recipe_sha256": recipe_digest(name), "training_data": key.get("data"),
        "cache_key": built.name, "weights_sha256": weights_sha256(built),
        "config_sha256": files_sha256(built / n for n in ("config.json", "generation_config.json")
                                      if (built / n).is_file()),
        "tokenizer_sha256": tokenizer_sha256(built), "versions": key.get("versions"),
        "built_on": {**cpu_summary(), "kernels": dict(KERNEL_ENV), "torch_threads": key["model"]["train"]["threads"],
                     "torch": torch.__version__, "python": platform.python_version()},
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": REBUILD_COMMAND.format(name=name),
    }


def ship(name: str, built: Path) -> Path:
    """Replace the shipped files of ``name`` with ``built`` (a source checkout's package data)."""
    target = _models_root() / name
    if isinstance(target, Path):
        with contextlib.suppress(OSError):
            target.parent.mkdir(parents=True, exist_ok=True)
    if not isinstance(target, Path) or not os.access(target.parent, os.W_OK):
        raise KensaError(f"cannot ship {name}: the package data ({target}) is not a writable source checkout")
    build = describe_build(name, built)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    for file in SHIPPED_FILES:
        if (built / file).is_file():
            shutil.copyfile(built / file, tmp / file)
    (tmp / BUILD_FILE).write_text(json.dumps(build, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o755)
    for file in tmp.iterdir():
        os.chmod(file, 0o644)
    old = target.with_name(f".{name}.old")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target
