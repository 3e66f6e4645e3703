"""Snapshots of the rendered prompts: a changed template, shot draw or separator shows up as a
snapshot diff in review. No model is needed; the fixtures' first two docs are rendered in the
harness's order, with their shots, for every task and prompt version, into one readable text file
per task variant (``__snapshots__/test_prompt_snapshots/test_prompt[<task id>].prompt.txt``).

Update after an intended change with ``pytest suites -m snapshot --snapshot-update``.
"""

import pytest

from kensa.report.prompt_snapshot import render_prompts
from kensa_pytest.snapshots import check

pytestmark = [pytest.mark.snapshot, pytest.mark.kensa_suite("jglue")]


def test_prompt(task_variant, prompt_snapshot):
    check(prompt_snapshot, render_prompts(task_variant), f"the prompts of {task_variant.task_id}")
