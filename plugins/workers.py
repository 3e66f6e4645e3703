"""pytest-xdist across GPUs, in the pytest layer: ``-n auto`` counts GPUs, each worker is pinned to its
GPU(s) before anything starts CUDA, and every test of a model carries ``xdist_group(<model slug>)`` so
that ``--dist loadgroup`` runs one model per worker. The logic lives in :mod:`kensa.cli.workers`.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from kensa.cli.workers import auto_workers, gpus_per_worker, model_group, pin_worker
from kensa.errors import KensaError


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("kensa").addoption(
        "--gpus-per-worker", dest="kensa_gpus_per_worker", metavar="N",
        help="GPUs each xdist worker gets from CUDA_VISIBLE_DEVICES (default: the largest tensor_parallel_size "
             "in --model-args, else 1); -n auto starts one worker per N visible GPUs")


def _per_worker(config: pytest.Config) -> int:
    try:
        return gpus_per_worker(config.getoption("kensa_gpus_per_worker", None),
                               config.getoption("kensa_model_args", None) or [])
    except KensaError as exc:
        raise pytest.UsageError(f"kensa: {exc}") from None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    return auto_workers(os.environ, _per_worker(config))


@pytest.hookimpl(tryfirst=True)  # before any other plugin's configure can import torch and start CUDA
def pytest_configure(config: pytest.Config) -> None:
    worker = getattr(config, "workerinput", None)
    if worker is None:
        return
    try:
        pin_worker(os.environ, worker["workerid"], int(worker["workercount"]), _per_worker(config))
    except KensaError as exc:
        raise pytest.UsageError(f"kensa: {exc}") from None


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup``: every test of a model on one worker. xdist 3.8 groups by rewriting node ids
    in the workers (``item._nodeid``), which pytest 9.2's structured node ids no longer read, so the
    controller groups by the model named in each test id instead (and by xdist's suffix where it works)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    from .kensa_plugin import CONFIG_KEY

    slugs = [m.slug for m in config.stash[CONFIG_KEY].models]

    class ModelGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return model_group(nodeid, slugs) or nodeid

    return ModelGroupScheduling(config, log)


@pytest.hookimpl(tryfirst=True)  # before xdist's worker appends the group to the node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist"):
        return
    from .kensa_plugin import CONFIG_KEY

    models = config.stash[CONFIG_KEY].models
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        spec = params.get("kensa_model") or params.get("model_spec")
        if spec is None and "kensa_model" in getattr(item, "fixturenames", ()) and models:
            spec = models[0]
        if spec is not None:
            item.add_marker(pytest.mark.xdist_group(spec.slug))
