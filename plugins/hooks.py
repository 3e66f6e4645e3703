"""The hooks a suite's plugin implements to take part in ``kensa_check`` (quiz: its tasks from the data, a
warm-up before scoring, its record and its latency gate), so the one test body serves every suite."""

from __future__ import annotations

from typing import Any

import pluggy
import pytest

hookspec = pluggy.HookspecMarker("pytest")


@hookspec(firstresult=True)
def pytest_kensa_tasks(metafunc: pytest.Metafunc, suite: str) -> list[Any] | None:
    """The tasks that parametrize ``metafunc``'s ``task_variant`` when they come from this session's data rather
    than the task registry; None: the registry's (``kensa.tasks.tasks_in_suite``)."""


def pytest_kensa_before_run(request: pytest.FixtureRequest, suite: str, variant: Any, lm: Any,
                            eval_split: Any) -> None:
    """Before a test scores ``variant`` on ``lm`` (quiz: warm the model up once, untimed)."""


def pytest_kensa_after_run(request: pytest.FixtureRequest, suite: str, variant: Any, lm: Any, run: Any) -> None:
    """After the run passed its integrity check, before the gate (quiz: record the category)."""


def pytest_kensa_after_gate(request: pytest.FixtureRequest, suite: str, variant: Any, lm: Any, run: Any) -> None:
    """After the score gate passed (quiz: the latency gate)."""
