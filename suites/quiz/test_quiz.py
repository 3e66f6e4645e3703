"""The quiz suite: one test per (set, category, mode, prompt version), e.g.
``test_quiz[quiz_fixtures_anime_gen-1.0-0.2]``; select with ``-k anime``, ``-k _gen-``, ``-k jmmlu``.

The sets come from the data: the project's fixtures (five QMA genres) by default, JMMLU and AI王 dev1/dev2
under ``--data-dir``, or the files of ``--quiz-data``. Each test warms the model up once (untimed), scores
the category, records score and latency, is gated like every other test (paired McNemar on per-question
correctness against ``thresholds/<baseline>.toml``) and, with ``--gate-latency PCT``, fails when its seconds
per question rose by more than PCT percent against the baseline measured in the same environment.
"""

import pytest

from kensa.run.records import integrity_problems
from kensa.tasks.sampling import resolve_limit

KENSA_SUITE = "quiz"

pytestmark = pytest.mark.gpu


def kensa_tasks(config):
    """This session's quiz tasks (they depend on --data-dir and --quiz-data)."""
    from kensa_pytest.quiz import session_tasks

    return session_tasks(config)


def test_quiz(task_variant, kensa_model, kensa_gate, kensa_quiz, kensa_evaluate, kensa_datasets, kensa_config):
    eval_split, _ = kensa_datasets(task_variant.task)
    kensa_quiz.warm_up(eval_split)
    run = kensa_evaluate(task_variant, kensa_model)
    problems = integrity_problems(run, resolve_limit(kensa_config.limit, len(eval_split.rows)))
    assert not problems, "\n".join(problems)
    kensa_quiz.record(run)
    kensa_gate.check(run)
    kensa_quiz.check_latency(run)
