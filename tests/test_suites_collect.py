"""``pytest suites`` (every suite at once, as the README's quick check runs it) collects without an error.

Suites' test files share one rootdir without packages, so two files with the same basename in different
suites collide at import ("import file mismatch"); this catches that before a user does.
"""
from __future__ import annotations

import subprocess
import sys
from collections import Counter

from kensa.paths import REPO_ROOT


def test_suite_test_files_have_unique_basenames():
    names = Counter(p.name for p in (REPO_ROOT / "suites").rglob("test_*.py"))
    assert [n for n, c in names.items() if c > 1] == []


def test_all_suites_collect_together():
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "suites", "-p", "no:cacheprovider"],
                          check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
