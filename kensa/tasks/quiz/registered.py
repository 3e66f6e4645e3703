"""The quiz tasks of the project's fixtures, registered like every other task: the suite's fixture run,
``tiny-trained``'s training text and the prompt snapshots read them from the registry. Sets that depend on
the session's data (JMMLU, AI王, ``--quiz-data``) are built by :func:`kensa.tasks.quiz.tasks.tasks_for`."""

from __future__ import annotations

from kensa.data import DataSource
from kensa.tasks.quiz.sets import FIXTURE_SET
from kensa.tasks.quiz.tasks import tasks_for
from kensa.tasks.registry import register

TASKS = [register(t) for t in tasks_for([FIXTURE_SET], DataSource.fixtures())]
