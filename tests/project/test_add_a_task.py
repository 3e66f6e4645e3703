"""docs/adding-a-task.md, followed word for word in a scratch copy of the repository.

The guide's ``file=`` blocks are written as they stand and its ``sh`` blocks run in order. Before each command
step, the guide's last command (the check) must fail: a reader who skips that step is told. At the end the check
passes, the files that changed are only the task file, its fixtures, the generated snapshots and thresholds (no
engine module), and no existing thresholds entry moved.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.helpers import REPO, apply, git, guide_steps, run_in_copy

pytestmark = [pytest.mark.slow, pytest.mark.ci]

GUIDE = REPO / "docs" / "adding-a-task.md"


def test_the_guide_has_files_and_commands():
    kinds = [k for k, _, _ in guide_steps(GUIDE)]
    assert kinds.count("file") >= 3 and kinds.count("sh") >= 3, kinds


def test_adding_a_task_as_the_guide_says_touches_only_its_own_files(scratch: Path):
    steps = guide_steps(GUIDE)
    check = steps[-1][2]
    for kind, path, text in steps:
        if kind != "sh":
            apply(scratch, kind, path, text)
            continue
        if text != check:  # skipping this step must leave the check failing
            done = run_in_copy(scratch, check)
            assert done.returncode != 0, f"the check passed without the step {text!r}:\n{done.stdout[-2000:]}"
        done = run_in_copy(scratch, text)
        # A thresholds update ends with exit 1 ("review and commit"); every other step must pass.
        expected = (0, 1) if "--thresholds-update" in text else (0,)
        assert done.returncode in expected, f"{text}\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"

    changed = [line[3:] for line in git(scratch, "status", "--porcelain", "--untracked-files=all").splitlines()]
    changed = [p for p in changed if not p.startswith(("results/", ".pytest_cache/"))]
    allowed = re.compile(r"^(kensa/tasks/jglue/jexample\.py|fixtures/jexample/.*|suites/jglue/__snapshots__/.*jexample.*"
                         r"|thresholds/[\w.-]+\.toml|thresholds/[\w.-]+/jexample-[\w.-]+\.jsonl)$")
    assert [p for p in changed if not allowed.match(p)] == [], changed
    assert [p for p in changed if p.startswith("kensa/")] == ["kensa/tasks/jglue/jexample.py"]
    assert any(p.startswith("suites/jglue/__snapshots__/") for p in changed), changed

    for path in (p for p in changed if p.endswith(".toml")):
        before = tomllib.loads(git(scratch, "show", f"HEAD:{path}"))
        after = tomllib.loads((scratch / path).read_text(encoding="utf-8"))
        moved = [k for k, v in before.get("entries", {}).items() if after["entries"].get(k) != v]
        assert moved == [], f"{path}: existing entries changed: {moved}"
        added = set(after["entries"]) - set(before.get("entries", {}))
        assert added and all("jexample" in k for k in added), (path, added)
