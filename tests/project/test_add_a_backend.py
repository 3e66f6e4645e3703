"""docs/adding-a-backend.md's worked example, followed word for word in a scratch copy of the repository: the
backend module and its registration line are the only files that change, the guide's command runs the suite on
it, and without the registration line the same command is an option error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import REPO, apply, git, guide_steps, run_in_copy

pytestmark = [pytest.mark.slow, pytest.mark.ci]

GUIDE = REPO / "docs" / "adding-a-backend.md"


def test_adding_a_backend_as_the_guide_says(scratch: Path):
    steps = guide_steps(GUIDE)
    assert [k for k, _, _ in steps] == ["file", "edit", "sh"], steps
    (module, registration, (_, _, command)) = steps
    apply(scratch, *module)
    skipped = run_in_copy(scratch, command)  # the registration step skipped
    assert skipped.returncode != 0 and "--backend" in skipped.stderr + skipped.stdout, skipped.stdout[-2000:]
    apply(scratch, *registration)
    done = run_in_copy(scratch, command)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    assert re.search(r"\b\d+ passed\b", done.stdout), done.stdout[-2000:]

    changed = [line[3:] for line in git(scratch, "status", "--porcelain", "--untracked-files=all").splitlines()]
    changed = sorted(p for p in changed if not p.startswith(("results/", ".pytest_cache/")))
    assert changed == ["kensa/backends/registry.py", "kensa/backends/shortest.py"], changed
    diff = git(scratch, "diff", "--unified=0", "kensa/backends/registry.py")
    assert [line for line in diff.splitlines() if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))] \
        == ['-BACKEND_MODULES = ("kensa.backends.hf", "kensa.backends.vllm", "kensa.backends.served")',
            '+BACKEND_MODULES = ("kensa.backends.hf", "kensa.backends.vllm", "kensa.backends.served", '
            '"kensa.backends.shortest")'], diff
