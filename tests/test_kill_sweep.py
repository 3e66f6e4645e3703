"""Killed anywhere, nothing is lost or half-written.

The suite runs in a subprocess (its own process group) and gets SIGKILL after a random delay, so the
kills land in model loading, scoring, writing samples and results, ``--thresholds-update`` and
``--snapshot-update``. After each kill every file is either the one before the run or a whole new one
(writes are atomic: a temporary file, fsync, rename); then an uninterrupted rerun computes only what
the response cache lacks and ends with the scores of a run that was never killed.

``KENSA_KILL_SWEEP`` sets how many kills each scenario gets (default 2; CI runs 1 through `make sweep`).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO

pytest.importorskip("transformers")
pytestmark = [pytest.mark.slow, pytest.mark.sweep]

KILLS = int(os.environ.get("KENSA_KILL_SWEEP", "2"))
SELECT = ("--model", "tiny", "--limit", "6", "--prompt-version", "0.3", "-k", "jcommonsenseqa or jnli-1.3")
RESPONSES = re.compile(r"kensa: responses: (\d+) computed, (\d+) from cache")


def command(results: Path, cache: Path | str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", *SELECT, "--results-dir",
            str(results), "--response-cache", str(cache), *extra]


def run(cmd: list[str], env: dict[str, str], kill_after: float | None = None) -> subprocess.CompletedProcess | None:
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    if kill_after is None:
        out, _ = proc.communicate(timeout=900)
        return subprocess.CompletedProcess(cmd, proc.returncode, out)
    try:
        proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    return None


def snapshot_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_whole(path: str, data: bytes) -> None:
    """A file kensa writes is complete: JSON parses, every JSON line parses, TOML parses, text ends a line."""
    name = path.rsplit("/", 1)[-1]
    if name.startswith(".") and name.endswith(".tmp"):
        return  # a temporary file a killed write left behind: never read, replaced by the next write
    text = data.decode("utf-8")
    if name.endswith(".json"):
        json.loads(text)
    elif name.endswith(".jsonl"):
        for line in text.splitlines():
            json.loads(line)
    elif name.endswith(".toml"):
        import tomllib

        tomllib.loads(text)
    assert text.endswith("\n"), path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_neox):
    """A copy of the repository's suites, thresholds and fixtures paths (the tiny model is built), and an
    uninterrupted reference run's scores."""
    root = tmp_path_factory.mktemp("sweep")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    reference = run(command(root / "reference", "off", "--gate", "off"), env)
    assert reference.returncode == 0, reference.stdout[-3000:]
    scores = json.loads((root / "reference" / "tiny" / "results.json").read_text())["results"]
    return root, env, scores, reference.stdout


def test_a_killed_run_leaves_whole_files_and_its_rerun_computes_only_what_is_missing(workspace):
    from kensa.run.cache import ResponseCache

    root, env, scores, _ = workspace
    rnd = random.Random(0)
    old = root / "old"
    first = run(command(old, "off", "--gate", "off"), env)  # an earlier run's files, for "old or new"
    assert first.returncode == 0, first.stdout[-3000:]
    for i in range(KILLS):
        results, cache = root / f"run{i}", root / f"cache{i}.sqlite"
        shutil.copytree(old, results)
        before = snapshot_of(results)
        run(command(results, cache, "--gate", "off"), env, kill_after=rnd.uniform(1.0, 25.0))
        after = snapshot_of(results)
        for path, data in after.items():
            assert data == before.get(path) or assert_whole(path, data) is None, path
        saved = 0
        if cache.exists():
            store = ResponseCache(cache)
            saved = store.count()
            store.close()
        rerun = run(command(results, cache, "--gate", "off"), env)
        assert rerun.returncode == 0, rerun.stdout[-3000:]
        computed, cached = map(int, RESPONSES.search(rerun.stdout).groups())
        assert (computed, cached) == (6 * 5 + 6 * 3 - saved, saved)  # 6 JCQA docs x 5 choices, 6 JNLI docs x 3
        assert json.loads((results / "tiny" / "results.json").read_text())["results"] == scores


@pytest.mark.parametrize("flag", ["--thresholds-update", "--snapshot-update"])
def test_an_update_killed_anywhere_leaves_the_old_or_the_new_files(workspace, flag):
    root, env, _, _ = workspace
    rnd = random.Random(flag)
    for i in range(KILLS):
        work = root / f"{flag.strip('-')}{i}"
        shutil.copytree(REPO / "suites", work / "suites", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(REPO / "thresholds", work / "thresholds")
        shutil.copy(REPO / "pyproject.toml", work / "pyproject.toml")
        shutil.copy(REPO / "conftest.py", work / "conftest.py")
        if flag == "--thresholds-update":  # an entry to rewrite: the run raises it back
            th = work / "thresholds" / "tiny-neox.toml"
            th.write_text(th.read_text().replace("value = 0.", "value = 0.0", 3))
        else:  # a snapshot to rewrite
            snap = next((work / "suites" / "jglue" / "__snapshots__").rglob("*jcommonsenseqa-1.1-0.3*.txt"))
            snap.write_text(snap.read_text() + "stale line\n")
        before = {**snapshot_of(work / "thresholds"), **snapshot_of(work / "suites")}
        cmd = [sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", "--model", "tiny", "-k",
               "jcommonsenseqa-1.1-0.3", "--results-dir", str(work / "results"), "--response-cache", "off", flag]
        env_here = {**env, "PYTHONPATH": f"{work}{os.pathsep}{REPO}"}
        proc = subprocess.Popen(cmd, cwd=work, env=env_here, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(rnd.uniform(0.5, 15.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        after = {**snapshot_of(work / "thresholds"), **snapshot_of(work / "suites")}
        for path, data in after.items():
            if path.endswith(".py") or "__pycache__" in path:
                continue
            assert data == before.get(path) or assert_whole(path, data) is None, path
