"""Run loops: a task variant against a loaded backend, producing a :class:`~kensa.run.records.TaskRun`.

:mod:`.multiple_choice` and :mod:`.generation` are the loops, :mod:`.records` what a test produced and its
integrity checks, :mod:`.latency` the per-request model time and the warm-up, :mod:`.cache` the on-disk
response cache (it wraps a backend with the same contract) and :mod:`.chunks` how it cuts a call into
committed chunks. The loops know a backend only through :class:`kensa.backends.contract.Backend`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kensa.backends.contract import Progress
from kensa.data import Split
from kensa.run.generation import evaluate_generation
from kensa.run.multiple_choice import evaluate_multiple_choice
from kensa.run.records import TaskRun
from kensa.run.training_coverage import record_coverage
from kensa.tasks.base import TaskVariant


def evaluate_variant(variant: TaskVariant, lm: Any, eval_split: Split, pool: Split | None, k: int,
                     limit: float | None = None, progress: Progress | None = None, qa_lm: Any = None,
                     stop: Callable[[TaskRun], bool] | None = None, looks: Sequence[int] = ()) -> TaskRun:
    """Score one task variant, whatever its kind (``qa_lm``: the model that answers round-trip questions,
    default the evaluated one). ``stop`` and ``looks``: score in looks (cumulative doc counts of the shuffled
    order) and end the task after the first look at which ``stop(run so far)`` is True (the sequential gate)."""
    if variant.task.kind == "generation":
        run = evaluate_generation(variant, lm, eval_split, pool, k, limit, progress, qa_lm=qa_lm, stop=stop,
                                  looks=looks)
    else:
        run = evaluate_multiple_choice(variant, lm, eval_split, pool, k, limit, progress, stop=stop, looks=looks)
    record_coverage(variant, lm, eval_split, pool, k, limit, run.data)  # a trained tiny model's unseen prompts
    return run
