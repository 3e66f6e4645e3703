"""Every command of docs/quiz.md's command block runs as printed, from the checkout's root.

What the test adds, and why: each suite run writes its results, and the own-file baseline its thresholds, into a
temporary folder (``--results-dir``, ``--thresholds-dir``; the files a command writes go there too), and selects the
generation tests of prompt 0.2 (``-k``), on 4 questions a category where nothing committed gates them (``--limit 4``),
to stay within minutes; the options of the command itself are untouched.
A run that updates thresholds ends with exit code 1 ("review and commit"); every other command must exit 0."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.helpers import REPO, SHARED_DATA

pytestmark = [pytest.mark.slow, pytest.mark.ci]  # minutes: CI runs it (make check), make test does not

DOC = REPO / "docs" / "quiz.md"
OUTPUT_FLAGS = ("--eval", "--train", "--out", "--plot")


def doc_commands() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert block, f"{DOC} has no ```sh block of commands"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def adapt(command: str, tmp) -> tuple[list[str], int]:
    argv = shlex.split(command)
    argv[0] = str(REPO / ".venv" / "bin" / os.path.basename(argv[0]))
    if not os.path.exists(argv[0]):  # a worktree uses the main checkout's venv: the same interpreter as this test
        argv[0] = sys.executable if argv[0].endswith("python") else argv[0]
        if argv[0].endswith("pytest"):
            argv[:1] = [sys.executable, "-m", "pytest"]
    out = []
    for i, arg in enumerate(argv):
        prev = argv[i - 1] if i else ""
        out.append(str(tmp / arg) if prev in OUTPUT_FLAGS else arg)
    if any(os.path.basename(arg) == "pytest" for arg in out[:3]):  # .venv/bin/pytest, or python -m pytest
        # generation at prompt 0.2 (the seed's headline mode); an ungated run or one against its own baseline on 4
        # questions a category (a later --limit overrides the command's own), a run against the committed
        # thresholds on all of them (a limit would make those entries stale): a check of the commands
        out += ["-p", "no:cacheprovider", "--results-dir", str(tmp / "results"), "-k", "_gen-1.0-0.2"]
        if "--gate" in out or "--baseline" in out:
            out += ["--limit", "4"]
        if "--baseline" in out:
            out += ["--thresholds-dir", str(tmp / "thresholds")]
    if out[-3:-1] == ["quiz", "report"] or "report" in out and out[out.index("report") + 1] == "results":
        out[out.index("report") + 1] = str(tmp / "results")
    return out, (1 if "--thresholds-update" in out else 0)


def test_the_command_block_is_the_quiz_commands():
    commands = doc_commands()
    assert sum("pytest suites/quiz" in c for c in commands) >= 4
    assert any("--quiz-data" in c and "--gate off" in c for c in commands)  # an own file runs on a fresh clone
    assert {c.split()[4] for c in commands if "-m kensa quiz" in c} == {"convert", "score", "report"}


def test_every_command_runs_as_printed(tmp_path):
    if not (SHARED_DATA / "jmmlu").is_dir():
        pytest.skip(f"the real data is not at {SHARED_DATA} (the --data-dir command needs it)")
    env = {**os.environ, "PYTHONPATH": str(REPO), "KENSA_RESPONSE_CACHE": "off"}
    for command in doc_commands():
        argv, expected = adapt(command, tmp_path)
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == expected, f"{command}\n-> exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    assert (tmp_path / "quiz.md").read_text(encoding="utf-8").count("| tiny |") >= 5
