"""JGLUE: one test per task and prompt version, e.g. ``test_task[jcommonsenseqa-1.1-0.3]``.

Each test scores the model on the task, writes the per-sample JSONL, fails if any doc was
lost or any number is not a valid score, and then gates the scores against the baseline's
thresholds (``thresholds/<baseline>.toml``): a missing or stale entry is an error before
anything is scored, and a significant drop fails the test (see docs/gate.md).
"""

import pytest

from kensa.run.records import integrity_problems
from kensa.tasks.sampling import resolve_limit

KENSA_SUITE = "jglue"

pytestmark = pytest.mark.gpu


def test_task(task_variant, kensa_model, kensa_gate, kensa_evaluate, kensa_datasets, kensa_config):
    run = kensa_evaluate(task_variant, kensa_model)
    eval_split, _ = kensa_datasets(task_variant.task)
    expected = resolve_limit(kensa_config.limit, len(eval_split.rows))
    problems = integrity_problems(run, expected)
    assert not problems, "\n".join(problems)
    kensa_gate.check(run)
