"""Snapshots of the rendered prompts: a changed template, shot draw or separator shows up as a
snapshot diff in review. No model is needed; the fixtures' first two docs are rendered in the
harness's order, with their shots, for every task and prompt version, into one readable text file
per task variant (``__snapshots__/test_prompt_snapshots/test_prompt[<task id>].prompt.txt``).

Update after an intended change with ``pytest suites -m snapshot --snapshot-update``.
"""

import pytest

from kensa.data import DataSource
from kensa.report.snapshot_text import HEADER_NOTE, quote, quote_lines, quote_list
from kensa.tasks.render import NoModel, prepare, prepare_generation
from kensa_pytest.snapshots import check

KENSA_SUITE = "jglue"
DOCS = 2

pytestmark = pytest.mark.snapshot


def render(task_variant) -> str:
    task = task_variant.task
    eval_split, pool = task.load(DataSource.fixtures())
    kind = "generation" if task.kind == "generation" else "multiple choice"
    lines = [(f"# kensa prompt snapshot: {task_variant.task_id} ({kind}); the first {DOCS} fixture docs in the "
             f"harness's order, {task.num_fewshot}-shot"), HEADER_NOTE]
    if task.kind == "generation":
        docs = prepare_generation(task_variant, eval_split, pool, task.num_fewshot, DOCS, NoModel())
    else:
        docs = prepare(task_variant, eval_split, pool, task.num_fewshot, limit=DOCS)
    for n, d in enumerate(docs, 1):
        lines += ["", f"== doc {n} of {len(docs)} ==", f"fewshot_ids: {quote_list(str(x) for x in d.shot_ids)}"]
        if task.kind == "generation":
            lines += [f"until: {quote_list(d.until)}",
                      # NoModel counts a token per UTF-8 byte: a real model's budget differs, a changed rule shows.
                      f"max_new_tokens (no-model, 1 token per UTF-8 byte): {d.max_new_tokens}",
                      f"golds: {quote_list(d.golds)}"]
        else:
            lines += [f"gold: {d.gold}", "continuations:"]
            lines += [f"  [{i}] {quote(c)}" for i, c in enumerate(d.continuations)]
        lines += ["prompt:", *quote_lines(d.prompt)]
    if task.num_fewshot:
        # The first doc again with no shots: the description and query template alone.
        if task.kind == "generation":
            zero = prepare_generation(task_variant, eval_split, pool, 0, 1, NoModel())[0]
        else:
            zero = prepare(task_variant, eval_split, pool, 0, limit=1)[0]
        lines += ["", "== doc 1, 0-shot ==", "prompt:", *quote_lines(zero.prompt)]
    return "\n".join(lines) + "\n"


def test_prompt(task_variant, prompt_snapshot):
    check(prompt_snapshot, render(task_variant), f"the prompts of {task_variant.task_id}")
