"""Every loader, fed damaged files: the only error that may come out is kensa's own DataError,
naming the file (and, where a line is at fault, the line).

Each registered task's fixture files are copied to a data dir, one of them is damaged by
hypothesis (cut short, bytes flipped, invalid UTF-8, another encoding, a value of the wrong
type, a line duplicated or dropped), and the task is loaded from there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kensa.data import FIXTURES_DIR, DataSource, find_local_file
from kensa.errors import DataError
from kensa.tasks import all_tasks
from tests.helpers import damage

TASKS = {f"{t.name}-{t.version}": t for t in all_tasks()}


def _files(task) -> list[tuple[str, Path]]:
    """(pattern, fixture file) for each local split the task reads."""
    out = []
    for pattern in task.dataset.local.values():
        try:
            out.append((pattern, find_local_file(FIXTURES_DIR, pattern)))
        except DataError:
            continue  # a split with no fixture (e.g. test) is not read from fixtures
    return out


DAMAGE = st.sampled_from(["cut", "flip", "invalid-utf8", "shift_jis", "utf-16", "type", "dup-line", "drop-field"])


@pytest.mark.parametrize("key", sorted(TASKS))
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(how=DAMAGE, where=st.floats(0.0, 1.0), junk=st.binary(min_size=1, max_size=8), which=st.integers(0, 5))
def test_a_damaged_file_gives_a_data_error_naming_the_file(key, how, where, junk, which, tmp_path_factory):
    task = TASKS[key]
    files = _files(task)
    if not files:
        pytest.skip(f"{key} has no local fixture files")
    root = tmp_path_factory.mktemp("data")
    for _, src in files:
        dst = root / src.relative_to(FIXTURES_DIR)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    target = root / files[which % len(files)][1].relative_to(FIXTURES_DIR)
    target.write_bytes(damage(target.read_bytes(), how, where, junk))
    try:
        task.load(DataSource.local(root))
    except DataError as exc:
        assert str(target) in str(exc) or str(root) in str(exc), str(exc)
    # Anything else (UnicodeDecodeError, KeyError, ValueError, ...) fails the test by propagating.
