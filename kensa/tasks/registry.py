"""The task registry. A task file calls :func:`register`; :func:`all_tasks` imports them all: the built-in
modules of :data:`TASK_MODULES` first, then every other module of a family package (:data:`FAMILIES`), so a new
task is one new file in its family's folder and no edit here."""

from __future__ import annotations

import difflib
import importlib
import pkgutil

from kensa.errors import KensaError

# Task modules, in the order tests are collected (xdist needs one stable order everywhere).
TASK_MODULES = (
    "kensa.tasks.jglue.jcommonsenseqa",
    "kensa.tasks.jglue.jnli",
    "kensa.tasks.jglue.marc_ja",
    "kensa.tasks.jglue.jcola",
    "kensa.tasks.jglue.xwinograd_ja",
    "kensa.tasks.jglue.jsquad",
    "kensa.tasks.jglue.jaqket_v2",
    "kensa.tasks.jglue.xlsum_ja",
    "kensa.tasks.jglue.mgsm",
    "kensa.tasks.jglue.jsts",
    "kensa.tasks.quiz.registered",
    "kensa.tasks.qa.jsquad_qa",
    "kensa.tasks.qa.tsv",
)

FAMILIES = ("kensa.tasks.jglue", "kensa.tasks.qa", "kensa.tasks.quiz")
"""Packages whose modules are task files; a module that registers nothing (a helper) is imported harmlessly."""


def task_modules() -> tuple[str, ...]:
    """The built-in task modules in their fixed order, then any other family module by name (xdist needs one
    stable order everywhere)."""
    found = []
    for family in FAMILIES:
        package = importlib.import_module(family)
        found += sorted(f"{family}.{m.name}" for m in pkgutil.iter_modules(package.__path__) if not m.ispkg)
    return TASK_MODULES + tuple(m for m in found if m not in TASK_MODULES)


# The harness's plain names: each module's first class (spec 1.3). ``xlsum_ja`` in a published command is
# ``xlsum_ja-1.0-0.0``; results keep the name the command used.
PLAIN_NAMES = {
    "jcommonsenseqa": "jcommonsenseqa-1.1-0.1",
    "jnli": "jnli-1.3-0.2",
    "marc_ja": "marc_ja-1.1-0.2",
    "jsquad": "jsquad-1.1-0.1",
    "jaqket_v2": "jaqket_v2-0.2-0.1",
    "xlsum_ja": "xlsum_ja-1.0-0.0",
    "mgsm": "mgsm-1.0-0.0",
    "jcola": "jcola-0.2-0.0",
}

_TASKS: dict = {}
"""(name, task version) -> task: a name may be registered at several versions (JNLI 1.1 and 1.3),
which share the name's options (``--num-fewshot jnli=K``) and data."""


def register(task):
    key = (task.name, task.version)
    if key in _TASKS and _TASKS[key] is not task:
        raise KensaError(f"task {task.name!r} version {task.version} is registered twice")
    _TASKS[key] = task
    return task


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def all_tasks() -> list:
    for module in task_modules():
        importlib.import_module(module)
    return [_TASKS[k] for k in sorted(_TASKS, key=lambda k: (k[0], _version_key(k[1])))]


def get_task(name: str, version: str | None = None):
    """The task registered as ``name`` at ``version``; without a version, its newest one."""
    tasks = [t for t in all_tasks() if t.name == name]
    if not tasks:
        names = list(dict.fromkeys(t.name for t in all_tasks()))
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KensaError(f"unknown task {name!r} (known: {', '.join(names)}){hint}")
    if version is None:
        return tasks[-1]
    for t in tasks:
        if t.version == version:
            return t
    raise KensaError(f"task {name!r} has no version {version!r} (known: {', '.join(t.version for t in tasks)})")


def tasks_in_suite(suite: str) -> list:
    return [t for t in all_tasks() if t.suite == suite]
