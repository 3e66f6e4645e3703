"""The wheel, outside the checkout: built with ``pip wheel`` (no ``-e``), installed into a fresh venv (torch
first and alone, as ``make install`` does, then the wheel with ``constraints.txt``), and used the way a model
team uses it: ``python -m kensa init``, a baseline, a passing run and a damaged model that fails the gate.

Minutes (an install), so marked ``install`` (and ``slow``): ``make check`` runs it, ``make test`` does not;
``-m "not install"`` deselects it anywhere.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = [pytest.mark.slow, pytest.mark.install]

# The suite by name, two prompt versions of one task: the selection keeps three runs to a few minutes.
SELECTION = ("kensa_suites.jglue", "--prompt-version", "0.3,0.6", "-k", "jcommonsenseqa")
SKIP_IN_COPY = shutil.ignore_patterns(".git", ".venv*", ".tox", "build", "dist", "*.egg-info", "__pycache__",
                                      ".pytest_cache", ".hypothesis", ".cache", "results")


def torch_requirement() -> str:
    """``$TORCH``, else the Makefile's pin (the project's machines carry that CPU wheel)."""
    if os.environ.get("TORCH"):
        return os.environ["TORCH"]
    return re.search(r"^TORCH \?= (\S+)", (REPO / "Makefile").read_text(), re.MULTILINE).group(1)


def run(cmd, cwd, env, timeout=900):
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the venv's python, the wheel, an environment that cannot see the checkout)."""
    work = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS", "VIRTUAL_ENV")}
    env.update(PYTHONNOUSERSITE="1", KENSA_RESPONSE_CACHE=str(work / "responses.sqlite"))
    src = work / "src"  # a clean copy: a build/ left by an earlier build would go into the wheel
    shutil.copytree(REPO, src, ignore=SKIP_IN_COPY)
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", src], work, env)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (work / "dist").glob("kensa-*.whl")
    made = run([sys.executable, "-m", "venv", work / "venv"], work, env)
    assert made.returncode == 0, made.stderr
    py = work / "venv" / "bin" / "python"
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile"]
    for cmd in ([*pip, torch_requirement()], [*pip, "-c", REPO / "constraints.txt", wheel]):
        done = run(cmd, work, env, timeout=1800)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return py, wheel, env


def test_the_wheel_holds_engine_plugin_suites_fixtures_and_tiny_models(installed):
    _, wheel, _ = installed
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        entry_points = next(whl.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    for expected in ("kensa/gate/stats.py", "kensa/tiny/build.py", "kensa/tiny/data/models/tiny-trained/model.safetensors",
                     "kensa/tiny/data/corpus/training-v1-causal.jsonl", "kensa/cli/team_repo/pytest.ini",
                     "kensa_pytest/__init__.py", "kensa_pytest/kensa_plugin.py", "kensa_suites/jglue/test_jglue.py",
                     "kensa_suites/qa/__snapshots__/test_qa_prompt_snapshots/test_prompt[aqg-1.0-0.3].prompt.txt",
                     "kensa_fixtures/tokenizer_probes.jsonl", "kensa_fixtures/jglue/jnli/valid-v1.3.json"):
        assert expected in names, expected
    assert not [n for n in names if n.endswith(".pyc") or n.startswith(("plugins/", "suites/", "fixtures/", "tests/"))]
    assert "[pytest11]\nkensa_pytest = kensa_pytest" in entry_points


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def test_a_team_repository_gates_with_the_installed_wheel(installed, tmp_path):
    py, _, env = installed
    version = run([py, "-m", "kensa", "--version"], tmp_path, env)
    assert re.fullmatch(r"kensa \d+\.\d+\.\d+\S*\n", version.stdout), version.stdout + version.stderr
    site = Path(run([py, "-c", "import kensa_suites, os; print(os.path.dirname(kensa_suites.__file__))"],
                    tmp_path, env).stdout.strip()).parent
    assert str(site).startswith(str(py.parent.parent)) and not str(site).startswith(str(REPO))
    before = digest(site / "kensa_suites")

    init = run([py, "-m", "kensa", "init", "team"], tmp_path, env)
    assert init.returncode == 0, init.stderr
    team = tmp_path / "team"

    def pytest_(*args):
        return run([py, "-m", "pytest", "-p", "no:cacheprovider", *SELECTION, *args], team, env)

    update = pytest_("--model", "tiny-trained", "--baseline", "mine", "--thresholds-update")
    assert update.returncode == 1, update.stdout[-4000:] + update.stderr[-2000:]
    assert "review and commit" in update.stdout and (team / "thresholds" / "mine.toml").is_file()
    assert f"rootdir: {team}" in update.stdout and "configfile: pytest.ini" in update.stdout
    assert f"fixtures:{site / 'kensa_fixtures'}" in update.stdout  # the wheel's data, not a checkout's

    again = pytest_("--model", "tiny-trained", "--baseline", "mine")
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-2000:]

    for cmd in (["tiny", "--out", "M", "--name", "tiny-trained"], ["damage", "M", "D"]):
        done = run([py, "-m", "kensa", *cmd], team, env)
        assert done.returncode == 0, done.stdout + done.stderr
    damaged = pytest_("--model", "D", "--baseline", "mine")
    assert damaged.returncode == 1, damaged.stdout[-4000:] + damaged.stderr[-2000:]
    assert "kensa gate: FAIL" in damaged.stdout and "the score dropped against the baseline" in damaged.stdout

    # A project conftest that names the plugin too (as kensa's checkout does): the second load is a no-op.
    (team / "conftest.py").write_text('pytest_plugins = ("kensa_pytest",)\n')
    twice = run([py, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", *SELECTION], team, env)
    assert twice.returncode == 0, twice.stdout[-3000:] + twice.stderr[-2000:]
    assert digest(site / "kensa_suites") == before  # nothing was written into the installed package
