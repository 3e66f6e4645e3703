"""Snapshots of the QA suite's rendered prompts (one text file per task variant under
``__snapshots__/test_qa_prompt_snapshots/``), rendered as the JGLUE suite renders its own: the first two
fixture docs, with their shots, and the first doc 0-shot. Update after an intended change with
``pytest suites -m snapshot --snapshot-update``.
"""

import pytest

from kensa_pytest.snapshots import check
from ..jglue.test_prompt_snapshots import render  # one renderer for every suite's prompt snapshots

KENSA_SUITE = "qa"

pytestmark = pytest.mark.snapshot


def test_prompt(task_variant, prompt_snapshot):
    check(prompt_snapshot, render(task_variant), f"the prompts of {task_variant.task_id}")
