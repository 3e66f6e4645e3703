"""Snapshots of the QA suite's rendered prompts (one text file per task variant under
``__snapshots__/test_qa_prompt_snapshots/``), rendered as every suite renders its own: the first two
fixture docs, with their shots, and the first doc 0-shot. Update after an intended change with
``pytest suites -m snapshot --snapshot-update``.
"""

import pytest

from kensa.report.prompt_snapshot import render_prompts
from kensa_pytest.snapshots import check

pytestmark = [pytest.mark.snapshot, pytest.mark.kensa_suite("qa")]


def test_prompt(task_variant, prompt_snapshot):
    check(prompt_snapshot, render_prompts(task_variant), f"the prompts of {task_variant.task_id}")
