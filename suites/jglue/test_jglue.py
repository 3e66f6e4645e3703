"""JGLUE: one test per task and prompt version, e.g. ``test_task[jcommonsenseqa-1.1-0.3]``.

Each test scores the model on the task, writes the per-sample JSONL and its line of the
summary table, and fails if any doc was lost or any number is not a valid score.
"""

import pytest

from kensa.evaluate import integrity_problems
from kensa.sampling import resolve_limit

KENSA_SUITE = "jglue"

pytestmark = pytest.mark.gpu


def test_task(task_variant, kensa_model, kensa_evaluate, kensa_datasets, kensa_config):
    run = kensa_evaluate(task_variant, kensa_model)
    eval_split, _ = kensa_datasets(task_variant.task)
    expected = resolve_limit(kensa_config.limit, len(eval_split.rows))
    problems = integrity_problems(run, expected)
    assert not problems, "\n".join(problems)
