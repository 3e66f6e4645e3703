"""The architecture as a test: the import contracts in pyproject.toml (import-linter), and module sizes.

The layers, top to bottom: ``kensa_pytest`` (the pytest layer, the ``plugins/`` folder), ``kensa.cli``, ``kensa.report``,
``kensa.gate``, ``kensa.run``, ``kensa.models`` beside ``kensa.tasks``, ``kensa.tiny``, ``kensa.metrics`` beside
``kensa.backends``, ``kensa.data``, ``kensa.paths``, then ``kensa.errors``. A module may import
only from layers below its own; the backend contract imports nothing else of kensa; the engine
never imports pytest; the plugin imports no metrics, statistics, backends or file formats.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

LINT = Path(sys.executable).with_name("lint-imports")
pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (pip install -e '.[dev]')")


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def copy_tree(tmp_path: Path) -> Path:
    """kensa and the pytest layer, the latter under its package name (``plugins/`` is installed as
    ``kensa_pytest``), so that the copy's modules shadow the installed ones on PYTHONPATH."""
    root = tmp_path / "repo"
    for name, package in (("kensa", "kensa"), ("plugins", "kensa_pytest")):
        shutil.copytree(REPO / name, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_import_contracts_hold():
    result = lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("kensa/backends/hf_causal.py", "from kensa.run import evaluate_variant", "Layers"),   # a backend imports a loop
    ("kensa/tasks/base.py", "import kensa.models", "Layers"),                            # tasks and models: independent
    ("kensa/tiny/build.py", "import kensa.tasks.training_text", "Layers"),               # tiny models never read tasks
    ("kensa/backends/contract.py", "from kensa.errors import KensaError", "backend contract"),
    ("kensa/metrics/core.py", "import pytest", "never imports pytest"),
    ("plugins/gate.py", "from kensa.gate.stats import holm", "plugin holds no scoring"),
    ("plugins/kensa_plugin.py", "import json", "plugin holds no scoring"),
])
def test_an_import_against_the_layers_is_caught(tmp_path, module, line, broken):
    root = copy_tree(tmp_path)
    path = root / module.replace("plugins/", "kensa_pytest/")
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}  # added by the test\n", encoding="utf-8")
    result = lint(root)
    assert result.returncode != 0
    assert broken in result.stdout.split("Broken contracts")[-1], result.stdout


def test_modules_stay_small():
    """Modules of at most about 500 lines; the plugin's modules under 400."""
    sizes = {p.relative_to(REPO).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
             for p in [*REPO.glob("kensa/**/*.py"), *REPO.glob("plugins/*.py")]}
    too_big = {p: n for p, n in sizes.items() if n > (400 if p.startswith("plugins/") else 520)}
    assert not too_big
