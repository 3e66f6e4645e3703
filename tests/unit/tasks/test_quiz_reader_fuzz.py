"""The quiz suite's own readers, fed damaged files: the seed's evaluation and training formats, JAQKET v1
(AI王 第1回), the AI王 TSV and JMMLU CSV. The registered quiz tasks' loading is fuzzed with the other task
loaders (tests/unit/tasks/test_loader_fuzz.py); these readers also serve ``--quiz-data``, ``--data-dir`` and
``python -m kensa quiz convert``. The only exception that may come out is kensa's DataError naming the file.
"""

from __future__ import annotations

import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kensa.errors import DataError
from kensa.tasks.quiz.formats import read_aio_tsv, read_jaqket_v1, read_jmmlu, read_seed
from tests.helpers import REPO, damage

QUIZ = REPO / "fixtures" / "quiz"
READERS = {
    "seed-eval": (read_seed, QUIZ / "quiz_eval.json"),
    "seed-train": (read_seed, QUIZ / "quiz_train.jsonl"),
    "jaqket-v1": (read_jaqket_v1, QUIZ / "jaqket_v1_dev.json"),
    "aio-tsv": (read_aio_tsv, QUIZ / "data" / "aio" / "aio_01_dev1.txt"),
    "jmmlu-bom": (read_jmmlu, QUIZ / "data" / "jmmlu" / "miscellaneous.csv"),
    "jmmlu": (read_jmmlu, QUIZ / "data" / "jmmlu" / "high_school_physics.csv"),
}
HOW = st.sampled_from(["cut", "flip", "invalid-utf8", "shift_jis", "utf-16", "type", "dup-line", "drop-field",
                       "bom", "nul"])


def test_the_fixtures_read_cleanly():
    for reader, path in READERS.values():
        assert reader(path)[0], path


@pytest.mark.parametrize("name", sorted(READERS))
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(how=HOW, where=st.floats(0.0, 1.0), junk=st.binary(min_size=1, max_size=8))
def test_a_damaged_quiz_file_gives_a_data_error_naming_it(name, how, where, junk, tmp_path_factory):
    reader, src = READERS[name]
    target = tmp_path_factory.mktemp("quiz") / src.name
    shutil.copyfile(src, target)
    raw = target.read_bytes()
    try:
        damaged = damage(raw, how, where, junk)
    except UnicodeDecodeError:
        return  # the damage itself needs text it did not get (a flip already inside a character)
    target.write_bytes(damaged)
    try:
        reader(target)
    except DataError as exc:
        assert str(target) in str(exc), str(exc)
    # Anything else (UnicodeDecodeError, KeyError, ValueError, csv.Error, ...) fails the test by propagating.
