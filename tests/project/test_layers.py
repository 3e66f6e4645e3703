"""The architecture as a test: the import contracts in pyproject.toml (import-linter), module sizes, and the tests'
own rule that a test module imports no other test module.

The layers, top to bottom: ``kensa_pytest`` (the pytest layer, the ``plugins/`` folder), ``kensa.cli``, ``kensa.report``,
``kensa.gate``, ``kensa.run``, ``kensa.models`` beside ``kensa.tasks``, ``kensa.tiny``, ``kensa.metrics`` beside
``kensa.backends``, ``kensa.data``, ``kensa.paths``, then ``kensa.errors``. A module may import
only from layers below its own; the backend contract imports nothing else of kensa; the engine
never imports pytest; the plugin imports no metrics, statistics, backends or file formats.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

LINT = Path(sys.executable).with_name("lint-imports")
needs_lint = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (pip install -e '.[dev]')")


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


@needs_lint
def test_the_import_contracts_hold():
    result = lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


@needs_lint
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



def imported_test_modules(source: str, package: str) -> list[tuple[int, str]]:
    """``(line, module)`` for every test module (``test_*`` under ``tests``) that ``source``, a module of the
    package ``package`` (``tests.unit.tasks``), imports: in an import statement anywhere in it (a relative one
    resolved) or through ``importlib.import_module("...")``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names = [node.args[0].value]
        for name in names:
            parts = name.split(".")
            if parts[0] == "tests" and any(part.startswith("test_") for part in parts[1:]):
                found.append((node.lineno, name))
                break
    return found


def test_no_test_module_imports_another():
    """Fakes, factories and helpers that several test modules share live in tests/helpers.py, fixtures in a
    conftest.py: a test module imported by another would run its imports (and, under a name pytest does not know,
    its module-level code) there, and moving or renaming it would break a file in another folder."""
    found = {}
    for path in sorted(REPO.glob("tests/**/*.py")):
        package = ".".join(path.relative_to(REPO).parent.parts)
        for line, name in imported_test_modules(path.read_text(encoding="utf-8"), package):
            found[f"{path.relative_to(REPO).as_posix()}:{line}"] = name
    assert found == {}, "import these from tests/helpers.py instead: " + str(found)


@pytest.mark.parametrize(("source", "caught"), [
    ("from tests.unit.tasks.test_qa_tasks import FakeLM", True),
    ("import tests.unit.gate.test_gate", True),
    ("from tests.unit.cli import test_input_fuzz", True),
    ("from .test_loader_fuzz import damage", True),
    ("from ..cli.test_input_fuzz import damage", True),
    ("def f():\n    from tests.project.test_add_a_task import scratch", True),
    ("importlib.import_module('tests.unit.gate.test_quiz_latency')", True),
    ("from tests.helpers import REPO", False),
    ("from tests.loopback import LoopbackServer", False),
    ("from . import conftest", False),
    ("from kensa.tasks.jglue import jcola", False),
])
def test_the_rule_sees_every_form_of_import(source, caught):
    assert bool(imported_test_modules(source, "tests.unit.tasks")) is caught, source
