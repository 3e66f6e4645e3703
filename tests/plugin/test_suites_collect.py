"""``pytest suites`` (every suite at once, as the README's quick check runs it) collects without an error.

The suites are packages (``kensa_suites`` when installed, run with ``--pyargs``): a suite folder without an
``__init__.py`` would collect in the checkout but not from the wheel ("missing __init__.py?").
"""
from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO


def test_every_suite_folder_is_a_package():
    folders = {p.parent for p in (REPO / "suites").rglob("test_*.py")}
    assert folders and [str(f) for f in sorted(folders | {REPO / "suites"}) if not (f / "__init__.py").is_file()] == []


def test_all_suites_collect_together():
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "suites", "-p", "no:cacheprovider"],
                          check=False, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
