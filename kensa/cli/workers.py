"""pytest-xdist workers on GPUs: which devices each worker sees, and how many workers ``-n auto`` starts.

A worker is pinned by narrowing ``CUDA_VISIBLE_DEVICES`` before anything in it imports torch or starts
CUDA (the plugin calls :func:`pin_worker` from a ``tryfirst`` ``pytest_configure``). The list indexed is
the *caller's* ``CUDA_VISIBLE_DEVICES`` when set, so an outer mask (a CI runner's, a colleague's share)
is respected: worker 1 of ``CUDA_VISIBLE_DEVICES=4,6`` gets ``6``, never physical GPU 1. Only without a
mask are ``nvidia-smi``'s devices listed. With no GPU at all nothing is pinned and the workers share the
CPU cores (:func:`kensa.models.share_cpu_threads`).

Two ways to use the workers, chosen per run:

* data parallel (``-n N``, xdist's default ``--dist load``): tests are spread over the workers and each
  loads the same model on its own GPU(s);
* one model per worker (``-n N --dist loadgroup``): every test of a model carries ``xdist_group(<slug>)``,
  so a model is loaded on one worker only, for comparing checkpoints side by side. xdist then appends
  ``@<group>`` to node ids; :func:`strip_group` removes it wherever a node id is a key.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, MutableMapping, Sequence

from kensa.backends.args import parse_model_args
from kensa.errors import OptionError

_GROUP_SUFFIX = re.compile(r"@[^\[\]/:]+$")


def strip_group(nodeid: str) -> str:
    """``suites/x.py::test[a]@tiny`` -> ``suites/x.py::test[a]`` (the suffix xdist's loadgroup adds)."""
    return _GROUP_SUFFIX.sub("", nodeid)


def model_group(nodeid: str, slugs: Sequence[str]) -> str | None:
    """The model a test belongs to, for ``--dist loadgroup``: xdist's own ``@group`` suffix when there is
    one, else the longest of ``slugs`` that ends the test's parameters (``test_task[jnli-1.3-0.3-tiny-llama]``
    -> ``tiny-llama``; ``test_tokenizer[tiny]`` -> ``tiny``); None for a test of no model."""
    if nodeid.rfind("@") > nodeid.rfind("]"):
        return nodeid.rsplit("@", 1)[1]
    if not nodeid.endswith("]"):
        return None
    for slug in sorted(slugs, key=len, reverse=True):
        if nodeid.endswith((f"-{slug}]", f"[{slug}]")):
            return slug
    return None


def visible_gpus(environ: Mapping[str, str]) -> list[str]:
    """The devices this process may use, as entries a child's ``CUDA_VISIBLE_DEVICES`` can name: the
    caller's mask when there is one (an empty mask means none), else what ``nvidia-smi -L`` lists."""
    mask = environ.get("CUDA_VISIBLE_DEVICES")
    if mask is not None:
        return [d.strip() for d in mask.split(",") if d.strip() and d.strip() != "-1"]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def auto_workers(environ: Mapping[str, str], gpus_per_worker: int = 1) -> int | None:
    """``-n auto``: one worker per ``gpus_per_worker`` visible GPUs; None without GPUs (xdist's own
    default, one per core, as before)."""
    gpus = visible_gpus(environ)
    return max(1, len(gpus) // gpus_per_worker) if gpus else None


def worker_devices(index: int, count: int, gpus: list[str], per_worker: int = 1) -> list[str]:
    """The slice of ``gpus`` worker ``index`` of ``count`` gets. With fewer GPUs than workers need, the
    slices wrap around and workers share GPUs (each then needs the memory to fit beside the others)."""
    if per_worker < 1:
        raise OptionError("--gpus-per-worker", f"{per_worker}: must be at least 1")
    if per_worker > len(gpus):
        raise OptionError("--gpus-per-worker", f"{per_worker} GPUs per worker, but only {len(gpus)} are visible "
                                               f"(CUDA_VISIBLE_DEVICES={','.join(gpus)})")
    start = (index * per_worker) % len(gpus)
    return [gpus[(start + k) % len(gpus)] for k in range(per_worker)]


def cuda_started() -> bool:
    """Whether this process already initialised CUDA (then a new mask would come too late)."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    return bool(cuda is not None and getattr(cuda, "is_initialized", lambda: False)())


def pin_worker(environ: MutableMapping[str, str], worker_id: str, worker_count: int,
               per_worker: int = 1) -> list[str] | None:
    """Narrow ``environ["CUDA_VISIBLE_DEVICES"]`` to this xdist worker's GPUs (``worker_id`` is ``gwN``);
    returns them, or None when there are no GPUs. Records the caller's mask in ``KENSA_CALLER_GPUS``."""
    gpus = visible_gpus({"CUDA_VISIBLE_DEVICES": environ["KENSA_CALLER_GPUS"]} if "KENSA_CALLER_GPUS" in environ
                        else environ)
    if not gpus:
        return None
    match = re.fullmatch(r"gw(\d+)", worker_id)
    if not match:
        raise OptionError("-n", f"unexpected xdist worker id {worker_id!r}")
    if cuda_started():
        raise OptionError("-n", "CUDA was initialised in this worker before kensa could pin it to its GPU "
                                "(a conftest or plugin imported torch and touched CUDA at import time)")
    mine = worker_devices(int(match[1]), worker_count, gpus, per_worker)
    environ["KENSA_CALLER_GPUS"] = ",".join(gpus)
    environ["CUDA_VISIBLE_DEVICES"] = ",".join(mine)
    # vLLM must not fork a process that may already hold CUDA state.
    environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
    return mine


def gpus_per_worker(option: str | None, model_args: list[str]) -> int:
    """``--gpus-per-worker``, else the largest ``tensor_parallel_size`` in the run's ``--model-args``, else 1."""
    if option is None:
        sizes = []
        for text in model_args:
            try:
                sizes.append(parse_model_args(text).tensor_parallel_size)
            except OptionError:
                pass  # the run configuration reports it, naming the option
        return max([1, *sizes])
    try:
        value = int(option)
    except ValueError:
        raise OptionError("--gpus-per-worker", f"{option!r}: expected an integer") from None
    if value < 1:
        raise OptionError("--gpus-per-worker", f"{option!r}: must be at least 1")
    return value


def describe(environ: Mapping[str, str] = os.environ) -> str:
    return f"CUDA_VISIBLE_DEVICES={environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}"
