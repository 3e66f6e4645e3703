"""The task registry. A task file calls :func:`register`; :func:`all_tasks` imports them all."""

from __future__ import annotations

import difflib
import importlib

from kensa.errors import KensaError

# Task modules, in the order tests are collected (xdist needs one stable order everywhere).
TASK_MODULES = ("kensa.tasks.jcommonsenseqa",)

_TASKS: dict = {}


def register(task):
    if task.name in _TASKS and _TASKS[task.name] is not task:
        raise KensaError(f"task {task.name!r} is registered twice")
    _TASKS[task.name] = task
    return task


def all_tasks() -> list:
    for module in TASK_MODULES:
        importlib.import_module(module)
    return [_TASKS[name] for name in sorted(_TASKS)]


def get_task(name: str):
    tasks = {t.name: t for t in all_tasks()}
    if name not in tasks:
        close = difflib.get_close_matches(name, tasks, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KensaError(f"unknown task {name!r} (known: {', '.join(tasks)}){hint}")
    return tasks[name]


def tasks_in_suite(suite: str) -> list:
    return [t for t in all_tasks() if t.suite == suite]
