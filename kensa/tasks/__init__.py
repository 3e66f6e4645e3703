"""Tasks as data, by family: :mod:`kensa.tasks.jglue` (JGLUE and the leaderboard's tasks), :mod:`kensa.tasks.qa`
(QA and question generation) and :mod:`kensa.tasks.quiz` (quiz sets from the data).

The shared parts: :mod:`.base` (the task classes and their variants), :mod:`.prompts` (prompt templates and the
headers several tasks share), :mod:`.registry` (registration and look-up), :mod:`.render` (prompts with their shots,
as a run loop sends them), :mod:`.sampling` (shot draws and ``--limit``) and :mod:`.training_text` (the text a
trained tiny model learns from).
"""

from kensa.tasks.registry import all_tasks, get_task, tasks_in_suite

__all__ = ["all_tasks", "get_task", "tasks_in_suite"]
