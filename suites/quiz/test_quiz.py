"""The quiz suite: one test per (set, category, mode, prompt version), e.g.
``test_quiz[quiz_fixtures_anime_gen-1.0-0.2]``; select with ``-k anime``, ``-k _gen-``, ``-k jmmlu``.

The sets come from the data: the project's fixtures (five QMA genres) by default, JMMLU and AI王 dev1/dev2
under ``--data-dir``, or the files of ``--quiz-data``. Each test warms the model up once (untimed), scores
the category, records score and latency, is gated like every other test (paired McNemar on per-question
correctness against ``thresholds/<baseline>.toml``) and, with ``--gate-latency PCT``, fails when its seconds
per question rose by more than PCT percent against the baseline measured in the same environment.
"""

import pytest

pytestmark = [pytest.mark.gpu, pytest.mark.kensa_suite("quiz")]


def test_quiz(task_variant, kensa_check):
    kensa_check(task_variant)
