"""The fixture of the tests that follow a guide in ``docs/`` in a scratch copy of the repository."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO, git


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
