"""Killed anywhere, nothing is lost or half-written.

The suite runs in a subprocess (its own process group) and is killed with SIGKILL in two ways:

* **at a random moment inside the run**: each scenario's command is first run uninterrupted and timed; its killed
  runs are then killed at a moment drawn uniformly from 10-80 % of that measured length, so the kills land in
  model loading, scoring, writing samples and results, ``--thresholds-update`` and ``--snapshot-update``. A
  killed run does not exit when pytest is done but holds (and says so) until its kill: a run faster than its
  measurement (the machine's load changed) is seen to have ended before the kill, and the kill is redrawn inside
  that run's own length on a fresh copy, up to three times;
* **at a named point** (the test-only fault hook ``KENSA_FAULT``, kensa/faults.py): half-way through the bytes of
  a file ``write_atomic`` writes, between a thresholds update's items files and its TOML, between two snapshot
  files, inside a response-cache transaction and just after its commit.

Every killed process must have died of the signal (returncode -9): a run that finished before its kill proves
nothing. After each kill every file is either the one before the run or a whole new one (writes are atomic: a
temporary file, fsync, rename); snapshots, whose new text is known, must be exactly the old or the new file. An
uninterrupted rerun then computes only what the response cache lacks and ends with the scores of a run that was
never killed.

``KENSA_KILL_SWEEP`` sets how many random kills each scenario gets (default 2; CI runs 1 through `make sweep`).
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
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import REPO

pytest.importorskip("transformers")
pytestmark = [pytest.mark.slow, pytest.mark.sweep]

KILLS = int(os.environ.get("KENSA_KILL_SWEEP", "2"))
KILL_WINDOW = (0.1, 0.8)
"""The fraction of the measured run length a random kill is drawn from: late enough to pass the interpreter's
start, early enough that a run a fifth faster than its measurement is still running."""
SELECT = ("--model", "tiny", "--limit", "6", "--prompt-version", "0.3", "-k", "jcommonsenseqa or jnli-1.3")
REQUESTS = 6 * 5 + 6 * 3  # 6 JCQA docs x 5 choices, 6 JNLI docs x 3
RESPONSES = re.compile(r"kensa: responses: (\d+) computed, (\d+) from cache")
UPDATE_FLAGS = ("--thresholds-update", "--snapshot-update")


def command(results: Path, cache: Path | str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", *SELECT, "--results-dir",
            str(results), "--response-cache", str(cache), *extra]


def run(cmd: list[str], env: dict[str, str], cwd: Path = REPO) -> tuple[subprocess.CompletedProcess, float]:
    """Run to the end; the result and its wall time."""
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=900, check=False)
    return done, time.monotonic() - start


HOLD = "kensa-sweep: pytest returned"
HOLDING = ("import sys, time, pytest\ncode = pytest.main(sys.argv[1:])\n"
           f"print('{HOLD}', int(code), flush=True)\ntime.sleep(900)")
"""pytest, then a wait for the kill instead of an exit: the kill always finds the process, and the line says
whether it found it inside the run or after it."""


def killed_at(cmd: list[str], env: dict[str, str], after: float, cwd: Path = REPO) -> float | None:
    """Start ``cmd`` (``python -m pytest ...``) holding at its end, SIGKILL its process group ``after`` seconds
    later and assert it died of that signal. None if the kill landed inside the run, else the run's length."""
    assert cmd[1:3] == ["-m", "pytest"], cmd
    proc = subprocess.Popen([cmd[0], "-c", HOLDING, *cmd[3:]], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    start, ended = time.monotonic(), []

    def read() -> None:
        for line in proc.stdout:
            if line.startswith(HOLD):
                ended.append(time.monotonic() - start)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(max(0.0, after - (time.monotonic() - start)))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    reader.join(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the run was not killed by the signal (returncode {proc.returncode})"
    return ended[0] if ended else None


def kill_inside(prepare: Callable[[int], tuple[list[str], Path, dict[str, str]]], length: float,
                rnd: random.Random) -> int:
    """Kill a run at a moment drawn inside ``length`` (its command's measured length); if that run ended before
    the kill, redraw inside the length it took, on a fresh copy (``prepare(attempt)`` -> command, working folder,
    environment). Returns the attempt whose kill landed inside its run."""
    lengths = []
    for attempt in range(3):
        cmd, cwd, env = prepare(attempt)
        ended = killed_at(cmd, env, rnd.uniform(*KILL_WINDOW) * length, cwd)
        if ended is None:
            return attempt
        lengths.append(round(ended, 1))
        length = ended
    raise AssertionError(f"three kills in a row came after the run had ended (runs of {lengths} s): none landed")


def killed_by_fault(cmd: list[str], env: dict[str, str], point: str, cwd: Path = REPO) -> str:
    """Run ``cmd`` with ``KENSA_FAULT=point``; assert the process killed itself (nothing else sends it a signal;
    the hook's own line on stderr may be swallowed by pytest's capture when the point is reached inside a test)."""
    done = subprocess.run(cmd, cwd=cwd, env={**env, "KENSA_FAULT": point}, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=900, check=False)
    assert done.returncode == -signal.SIGKILL, (
        f"KENSA_FAULT={point}: the run was not killed at that point (returncode {done.returncode})\n"
        f"{done.stdout[-2000:]}")
    return done.stdout


def snapshot_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".py"}


def temporary(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.startswith(".") and name.endswith(".tmp")


def assert_whole(path: str, data: bytes) -> None:
    """A file kensa writes is complete: JSON parses, every JSON line parses, TOML parses, text ends a line."""
    text = data.decode("utf-8")
    if path.endswith(".json"):
        json.loads(text)
    elif path.endswith(".jsonl"):
        for line in text.splitlines():
            json.loads(line)
    elif path.endswith(".toml"):
        import tomllib

        tomllib.loads(text)
    assert text.endswith("\n"), path


def assert_old_or_new(before: dict[str, bytes], after: dict[str, bytes], new: dict[str, bytes]) -> None:
    """Every file is the old one, the new one, or (results, whose timings differ run to run) a whole file. A
    snapshot's new text is known: it must be exactly old or new. Temporary files a killed write left behind are
    never read and are replaced by the next write."""
    for path, data in after.items():
        if temporary(path) or data == before.get(path) or data == new.get(path):
            continue
        assert not path.endswith(".txt"), f"{path}: neither the old nor the new snapshot (half-written?)"
        assert_whole(path, data)


def saved_responses(cache: Path) -> int:
    from kensa.run.cache import ResponseCache

    if not cache.exists():
        return 0
    store = ResponseCache(cache)
    try:
        return store.count()
    finally:
        store.close()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_neox):
    """An uninterrupted reference run's scores and results (the "old" files each killed run starts over), and
    the measured length of the killed runs' command (a fresh cache over those results).

    The runs keep kensa's file-hash cache in a folder of their own (the tiny models linked from the real cache):
    a run killed while writing it never touches the user's."""
    from kensa.paths import cache_root

    root = tmp_path_factory.mktemp("sweep")
    (root / "cache").mkdir()
    (root / "cache" / "tiny").symlink_to(cache_root() / "tiny", target_is_directory=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
           "KENSA_CACHE_DIR": str(root / "cache")}
    env.pop("KENSA_FAULT", None)
    reference, _ = run(command(root / "old", "off", "--gate", "off"), env)
    assert reference.returncode == 0, reference.stdout[-3000:]
    scores = json.loads((root / "old" / "tiny" / "results.json").read_text())["results"]
    shutil.copytree(root / "old", root / "measured")
    measured, seconds = run(command(root / "measured", root / "measured.sqlite", "--gate", "off"), env)
    assert measured.returncode == 0, measured.stdout[-3000:]
    return root, env, scores, seconds


def check_rerun(root: Path, results: Path, cache: Path, env: dict[str, str], scores: dict) -> int:
    """An uninterrupted rerun computes only what the cache lacks and ends with the reference scores."""
    saved = saved_responses(cache)
    rerun, _ = run(command(results, cache, "--gate", "off"), env)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    computed, cached = map(int, RESPONSES.search(rerun.stdout).groups())
    assert (computed, cached) == (REQUESTS - saved, saved)
    assert json.loads((results / "tiny" / "results.json").read_text())["results"] == scores
    return saved


def test_a_killed_run_leaves_whole_files_and_its_rerun_computes_only_what_is_missing(workspace):
    root, env, scores, seconds = workspace
    rnd = random.Random(0)
    new = snapshot_of(root / "measured")
    before = snapshot_of(root / "old")

    for i in range(KILLS):
        def prepare(attempt: int, i: int = i) -> tuple[list[str], Path, dict[str, str]]:
            shutil.copytree(root / "old", root / f"run{i}-{attempt}")
            return command(root / f"run{i}-{attempt}", root / f"cache{i}-{attempt}.sqlite", "--gate", "off"), REPO, env

        attempt = kill_inside(prepare, seconds, rnd)
        results, cache = root / f"run{i}-{attempt}", root / f"cache{i}-{attempt}.sqlite"
        assert_old_or_new(before, snapshot_of(results), new)
        check_rerun(root, results, cache, env, scores)


@pytest.mark.parametrize("point", ["write_atomic:results.json", "cache-commit", "cache-committed"])
def test_a_run_killed_at_a_fault_point_leaves_whole_files_and_the_cache_consistent(workspace, point):
    """Killed half-way through writing results.json; inside and just after the first chunk's cache transaction:
    none of that chunk is saved, or all of it."""
    root, env, scores, _ = workspace
    results, cache = root / f"fault-{point.replace(':', '-')}", root / f"fault-{point.replace(':', '-')}.sqlite"
    shutil.copytree(root / "old", results)
    before = snapshot_of(results)
    killed_by_fault(command(results, cache, "--gate", "off"), env, point)
    after = snapshot_of(results)
    assert_old_or_new(before, after, snapshot_of(root / "measured"))
    if point.startswith("write_atomic"):  # the kill fell inside a write to the results: its temporary file is left
        assert any(temporary(p) for p in after), sorted(after)
    saved = check_rerun(root, results, cache, env, scores)
    if point == "cache-commit":
        assert saved == 0  # the killed transaction never happened
    elif point == "cache-committed":
        assert 0 < saved < REQUESTS  # the first chunk, whole


def update_workspace(work: Path, flag: str) -> list[str]:
    """A copy of the suites, thresholds and configuration with something for ``flag`` to rewrite; the command."""
    shutil.copytree(REPO / "suites", work / "suites", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "thresholds", work / "thresholds")
    shutil.copy(REPO / "pyproject.toml", work / "pyproject.toml")
    shutil.copy(REPO / "conftest.py", work / "conftest.py")
    # --thresholds-update: the run's 8 docs replace the entries' n (new items files, a new TOML)
    if flag == "--snapshot-update":  # snapshots to rewrite
        for task in ("jcommonsenseqa-1.1-0.3", "jnli-1.3-0.3"):
            snap = next((work / "suites" / "jglue" / "__snapshots__").rglob(f"*[[]{task}].prompt.txt"))
            snap.write_text(snap.read_text() + "stale line\n")
    gate = ("--gate", "off") if flag == "--snapshot-update" else ()  # the 8 docs would fail it as stale
    return [sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", "--model", "tiny", "--limit", "8",
            "-k", "jcommonsenseqa-1.1-0.3 or jnli-1.3-0.3", "--results-dir", str(work / "results"),
            "--response-cache", "off", *gate, flag]


def files_of(work: Path) -> dict[str, bytes]:
    """What an update run writes: thresholds, snapshots and its results."""
    return {f"{part}/{path}": data for part in ("thresholds", "suites", "results")
            for path, data in snapshot_of(work / part).items()}


@pytest.fixture(scope="module")
def measured_updates(workspace):
    """Each update run uninterrupted: its length and the files it writes."""
    root, env, _, _ = workspace
    out = {}
    for flag in UPDATE_FLAGS:
        work = root / f"measured{flag.strip('-')}"
        cmd = update_workspace(work, flag)
        done, seconds = run(cmd, {**env, "PYTHONPATH": f"{work}{os.pathsep}{REPO}"}, cwd=work)
        assert done.returncode in (0, 1), done.stdout[-3000:]  # 1: the update's "review the changes" exit
        out[flag] = (seconds, files_of(work))
    return out


@pytest.mark.parametrize("flag", UPDATE_FLAGS)
def test_an_update_killed_anywhere_leaves_the_old_or_the_new_files(workspace, measured_updates, flag):
    root, env, _, _ = workspace
    seconds, new = measured_updates[flag]
    rnd = random.Random(flag)
    for i in range(KILLS):
        befores = {}

        def prepare(attempt: int, i: int = i) -> tuple[list[str], Path, dict[str, str]]:
            work = root / f"{flag.strip('-')}{i}-{attempt}"
            cmd = update_workspace(work, flag)
            befores[attempt] = files_of(work)
            return cmd, work, {**env, "PYTHONPATH": f"{work}{os.pathsep}{REPO}"}

        attempt = kill_inside(prepare, seconds, rnd)
        assert_old_or_new(befores[attempt], files_of(root / f"{flag.strip('-')}{i}-{attempt}"), new)


@pytest.mark.parametrize("flag, point", [("--thresholds-update", "thresholds-items"),
                                         ("--thresholds-update", "write_atomic:.toml"),
                                         ("--snapshot-update", "write_atomic:.prompt.txt"),
                                         ("--snapshot-update", "snapshot-written")])
def test_an_update_killed_at_a_fault_point_leaves_the_old_or_the_new_files(workspace, measured_updates, flag,
                                                                            point):
    """Killed after the items files before the TOML naming them (the TOML is the old one), half-way through the
    TOML, half-way through the first snapshot, after the first of two snapshots (the second is the old one)."""
    root, env, _, _ = workspace
    _, new = measured_updates[flag]
    work = root / f"fault-{flag.strip('-')}-{point.replace(':', '-')}"
    cmd = update_workspace(work, flag)
    before = files_of(work)
    killed_by_fault(cmd, {**env, "PYTHONPATH": f"{work}{os.pathsep}{REPO}"}, point, cwd=work)
    after = files_of(work)
    assert_old_or_new(before, after, new)
    # what the update changed (the results are written at the end, after the thresholds and snapshots)
    changed = sorted(p for p in after
                     if not temporary(p) and after[p] != before.get(p) and not p.startswith("results/"))
    if point == "write_atomic:.toml":  # the items files are new, the TOML old, its new text half in a temporary file
        assert any(temporary(p) for p in after) and after["thresholds/tiny-neox.toml"] == \
            before["thresholds/tiny-neox.toml"], changed
    elif point.startswith("write_atomic"):
        assert any(temporary(p) for p in after) and not changed, changed  # killed inside the first write
    elif point == "thresholds-items":
        toml = "thresholds/tiny-neox.toml"
        assert after[toml] == before[toml] and changed, changed  # new items files, the old TOML naming the old ones
        assert all(p.startswith("thresholds/tiny-neox/") for p in changed), changed
    else:
        assert len(changed) == 1 and changed[0].endswith(".txt"), changed  # one snapshot new, the other old
