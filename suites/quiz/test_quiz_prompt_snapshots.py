"""Snapshots of the quiz prompts: the first two fixture questions of every registered quiz task and prompt
version, with the continuations a log-likelihood test scores or the stop strings and budget a generation test
uses, one text file per task variant (``__snapshots__/test_quiz_prompt_snapshots/test_prompt[<task id>].prompt.txt``).

Update after an intended change with ``pytest suites -m snapshot --snapshot-update``.
"""

import pytest

from kensa.report.prompt_snapshot import render_prompts
from plugins.snapshots import check

pytestmark = [pytest.mark.snapshot, pytest.mark.kensa_suite("quiz")]


def test_prompt(task_variant, prompt_snapshot):
    check(prompt_snapshot, render_prompts(task_variant, quiz=True), f"the prompts of {task_variant.task_id}")
