"""Snapshots of the quiz prompts: the first two fixture questions of every registered quiz task and prompt
version, with the continuations a log-likelihood test scores or the stop strings and budget a generation test
uses, one text file per task variant (``__snapshots__/test_quiz_prompt_snapshots/test_prompt[<task id>].prompt.txt``).

Update after an intended change with ``pytest suites -m snapshot --snapshot-update``.
"""

import pytest

from kensa.data import DataSource
from kensa.report.snapshot_text import HEADER_NOTE, quote, quote_lines, quote_list
from kensa.tasks.render import NoModel, prepare, prepare_generation
from kensa_pytest.snapshots import check

KENSA_SUITE = "quiz"
DOCS = 2

pytestmark = pytest.mark.snapshot


def render(task_variant) -> str:
    task = task_variant.task
    eval_split, pool = task.load(DataSource.fixtures())
    kind = "generation" if task.kind == "generation" else "multiple choice"
    title = (f"# kensa prompt snapshot: {task_variant.task_id} ({kind}); the first {DOCS} fixture questions in the "
             "harness's order, 0-shot")
    lines = [title, HEADER_NOTE]
    if task.kind == "generation":
        docs = prepare_generation(task_variant, eval_split, pool, 0, DOCS, NoModel())
    else:
        docs = prepare(task_variant, eval_split, pool, 0, limit=DOCS)
    for n, d in enumerate(docs, 1):
        lines += ["", f"== doc {n} of {len(docs)} =="]
        if task.kind == "generation":
            lines += [f"until: {quote_list(d.until)}", f"max_new_tokens: {d.max_new_tokens}",
                      f"golds: {quote_list(d.golds)}"]
        else:
            lines += [f"gold: {d.gold}", "continuations:"]
            lines += [f"  [{i}] {quote(c)}" for i, c in enumerate(d.continuations)]
        lines += ["prompt:", *quote_lines(d.prompt)]
    return "\n".join(lines) + "\n"


def test_prompt(task_variant, prompt_snapshot):
    check(prompt_snapshot, render(task_variant), f"the prompts of {task_variant.task_id}")
