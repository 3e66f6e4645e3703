"""Checks every registered task must pass, with no model: a new task file is covered by adding it.

(lm-eval's ``BaseTasks`` idea: schema, splits, prompts render, ids usable as pytest ids.)
"""

from __future__ import annotations

import pytest

from kensa.data import DataSource
from kensa.metrics.core import METRICS
from kensa.tasks import all_tasks
from kensa.tasks.base import validate_templates

TASKS = all_tasks()
IDS = [f"{t.name}-{t.version}" for t in TASKS]


@pytest.mark.parametrize("task", TASKS, ids=IDS)
class TestTaskContract:
    def test_fixtures_load_and_pass_the_row_checks(self, task):
        eval_split, pool = task.load(DataSource.fixtures())
        assert eval_split.rows and (task.num_fewshot == 0 or len(pool.rows) >= task.num_fewshot)

    def test_every_template_renders_from_the_view(self, task):
        eval_split, _ = task.load(DataSource.fixtures())
        validate_templates(task, eval_split.rows[0])
        for variant in task.variants():
            view = task.view(eval_split.rows[0])
            assert variant.template.context([view], view).startswith(variant.template.description)

    def test_task_ids_are_unique_ascii_pytest_ids(self, task):
        ids = [v.task_id for v in task.variants()]
        assert len(set(ids)) == len(ids)
        assert all(i.isascii() and " " not in i and "[" not in i for i in ids)

    def test_answers_are_non_empty_strings(self, task):
        eval_split, _ = task.load(DataSource.fixtures())
        if task.kind == "generation":
            for row in eval_split.rows:
                golds = task.golds(row)
                assert golds and all(isinstance(g, str) and g for g in golds)
                assert task.view(row)["answer"]  # what a shot's target shows
            assert task.metrics and all(m in METRICS for m in (*task.metrics, *task.reported))
            return
        for row in eval_split.rows:
            choices = task.choices(row)
            assert all(isinstance(c, str) and c for c in choices)
            assert 0 <= task.gold(row) < len(choices)


def test_a_template_field_missing_from_the_view_is_reported():
    import dataclasses

    from kensa.errors import KensaError
    from kensa.tasks.prompts import PromptTemplate

    task = next(t for t in TASKS if t.name == "jcommonsenseqa")
    broken = dataclasses.replace(task, templates=(PromptTemplate("9.9", "", "{no_such_field}", "{answer}"),))
    row = task.load(DataSource.fixtures())[0].rows[0]
    with pytest.raises(KensaError, match="no_such_field"):
        validate_templates(broken, row)
