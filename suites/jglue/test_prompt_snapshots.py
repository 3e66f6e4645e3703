"""Snapshots of the rendered prompts: a changed template, shot draw or separator shows up as a
snapshot diff in review. No model is needed; the fixtures' first two docs are rendered in the
harness's order, with their shots, for every task and prompt version.

Update after an intended change with ``pytest suites -m snapshot --snapshot-update``.
"""

import pytest

from kensa.data import DataSource
from kensa.evaluate import prepare
from kensa.generation import NoModel, prepare_generation

KENSA_SUITE = "jglue"

pytestmark = pytest.mark.snapshot


def test_prompt(task_variant, snapshot):
    task = task_variant.task
    eval_split, pool = task.load(DataSource.fixtures())
    if task.kind == "generation":
        # Stop strings and gold answers too; the token budget depends on the model, so it is left out.
        docs = prepare_generation(task_variant, eval_split, pool, task.num_fewshot, 2, NoModel())
        rendered = [{"prompt": d.prompt, "until": list(d.until), "golds": d.golds, "fewshot_ids": d.shot_ids}
                    for d in docs]
        assert rendered == snapshot
        return
    docs = prepare(task_variant, eval_split, pool, task.num_fewshot, limit=2)
    rendered = [{"prompt": d.prompt, "continuations": d.continuations, "gold": d.gold, "fewshot_ids": d.shot_ids}
                for d in docs]
    assert rendered == snapshot
