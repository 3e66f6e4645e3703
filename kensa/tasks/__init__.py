"""Tasks as data. One file per task; see ``kensa.tasks.jcommonsenseqa`` for the pattern."""

from kensa.tasks.registry import all_tasks, get_task, tasks_in_suite

__all__ = ["all_tasks", "get_task", "tasks_in_suite"]
