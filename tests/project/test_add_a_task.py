"""docs/adding-a-task.md, followed word for word in a scratch copy of the repository.

The guide's ``file=`` blocks are written as they stand and its ``sh`` blocks run in order. Before each command
step, the guide's last command (the check) must fail: a reader who skips that step is told. At the end the check
passes, the files that changed are only the task file, its fixtures, the generated snapshots and thresholds (no
engine module), and no existing thresholds entry moved.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = [pytest.mark.slow, pytest.mark.ci]

GUIDE = REPO / "docs" / "adding-a-task.md"
BLOCK = re.compile(r"^ *```(\w+)(?: (file|edit)=(\S+))?\n(.*?)^ *```", re.M | re.S)


def guide_steps(guide: Path = GUIDE) -> list[tuple[str, str, str]]:
    """``(kind, path, text)`` per block: ``("file", path, content)``, ``("edit", path, "old|new")`` or
    ``("sh", "", command)``."""
    steps = []
    for lang, kind, path, body in BLOCK.findall(guide.read_text(encoding="utf-8")):
        indent = min(len(line) - len(line.lstrip()) for line in body.splitlines() if line.strip())
        text = "\n".join(line[indent:] for line in body.splitlines()) + "\n"
        if kind:
            steps.append((kind, path, text if kind == "file" else text.strip()))
        elif lang == "sh":
            steps.append(("sh", "", text.strip()))
    return steps


def apply(root: Path, kind: str, path: str, text: str) -> None:
    """Write a ``file=`` block, or make an ``edit=`` block's one replacement (``old|new``) in an existing file."""
    target = root / path
    if kind == "file":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return
    old, new = text.split("|")
    before = target.read_text(encoding="utf-8")
    assert before.count(old) == 1, f"{path}: the guide's edit expects {old!r} once"
    target.write_text(before.replace(old, new), encoding="utf-8")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


def run(cwd: Path, command: str) -> subprocess.CompletedProcess:
    """``command`` in the scratch copy, whose data packages stand in for the checkout's editable install."""
    argv = shlex.split(command)
    assert argv[0] == "python", command
    shim = cwd.parent / "packages"
    env = dict(os.environ, PYTHONPATH=f"{cwd}{os.pathsep}{shim}", KENSA_RESPONSE_CACHE="off")
    return subprocess.run([sys.executable, *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """The repository's files (tracked and new, not ignored) in a fresh git repository."""
    files = git(REPO, "ls-files", "--cached", "--others", "--exclude-standard").splitlines()
    root = tmp_path / "repo"
    for name in files:
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    # The checkout's editable install maps these packages to its own folders; the scratch copy's come first.
    (tmp_path / "packages").mkdir()
    for package, folder in (("kensa_fixtures", "fixtures"), ("kensa_suites", "suites"), ("kensa_pytest", "plugins")):
        (tmp_path / "packages" / package).symlink_to(root / folder, target_is_directory=True)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "before")
    return root


def test_the_guide_has_files_and_commands():
    kinds = [k for k, _, _ in guide_steps()]
    assert kinds.count("file") >= 3 and kinds.count("sh") >= 3, kinds


def test_adding_a_task_as_the_guide_says_touches_only_its_own_files(scratch: Path):
    steps = guide_steps()
    check = steps[-1][2]
    for kind, path, text in steps:
        if kind != "sh":
            apply(scratch, kind, path, text)
            continue
        if text != check:  # skipping this step must leave the check failing
            done = run(scratch, check)
            assert done.returncode != 0, f"the check passed without the step {text!r}:\n{done.stdout[-2000:]}"
        done = run(scratch, text)
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
