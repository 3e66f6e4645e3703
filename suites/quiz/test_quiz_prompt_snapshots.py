"""Snapshots of the quiz prompts: the first two fixture questions of every registered quiz task and prompt
version, with the continuations a log-likelihood test scores or the stop strings and budget a generation test
uses, one text file per task variant (``__snapshots__/test_quiz_prompt_snapshots/test_prompt[<task id>].prompt.txt``).

Update after an intended change with ``pytest suites -m snapshot --snapshot-update``.
"""

import pytest

from kensa.report.prompt_snapshot import render_prompts, render_record_prompts
from kensa_pytest.snapshots import check

pytestmark = [pytest.mark.snapshot, pytest.mark.kensa_suite("quiz")]


def test_prompt(task_variant, prompt_snapshot):
    check(prompt_snapshot, render_prompts(task_variant, quiz=True), f"the prompts of {task_variant.task_id}")


# Both kinds of prompt 0.1 / 0.2: a training-format record (its own instruction, byte for byte) and a source with no
# instruction (a JMMLU row: the canonical one).
RECORD_SOURCES = {"training_record": "quiz/quiz_train.jsonl", "jmmlu": "quiz/data/jmmlu/miscellaneous.csv"}


@pytest.mark.parametrize("version", ["0.1", "0.2"])
@pytest.mark.parametrize("source", sorted(RECORD_SOURCES))
def test_record_prompt(source, version, prompt_snapshot):
    check(prompt_snapshot, render_record_prompts(RECORD_SOURCES[source], version),
          f"quiz prompt {version} of {RECORD_SOURCES[source]}")
