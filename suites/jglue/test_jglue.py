"""JGLUE: one test per task and prompt version, e.g. ``test_task[jcommonsenseqa-1.1-0.3]``.

Each test scores the model on the task, writes the per-sample JSONL, fails if any doc was
lost or any number is not a valid score, and then gates the scores against the baseline's
thresholds (``thresholds/<baseline>.toml``): a missing or stale entry is an error before
anything is scored, and a significant drop fails the test (see docs/gate.md).
"""

import pytest

pytestmark = [pytest.mark.gpu, pytest.mark.kensa_suite("jglue")]


def test_task(task_variant, kensa_check):
    kensa_check(task_variant)
