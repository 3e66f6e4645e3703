"""The example CI workflow cannot rot: every command it runs exists with the options it passes."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import yaml

from tests.helpers import REPO

WORKFLOW = REPO / "examples" / "ci" / "gate-release-candidate.yml"


def commands() -> list[list[str]]:
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    out = []
    for step in doc["jobs"]["gate"]["steps"]:
        for line in step.get("run", "").splitlines():
            if line.strip():
                out.append(shlex.split(line.split(">>")[0]))
    return out


def test_the_workflow_is_github_actions_shaped():
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    job = doc["jobs"]["gate"]
    assert "self-hosted" in job["runs-on"] and "gpu" in job["runs-on"]
    uses = [s.get("uses", "") for s in job["steps"]]
    assert any(u.startswith("actions/upload-artifact") for u in uses)
    assert any("junit" in u for u in uses)
    assert "$GITHUB_STEP_SUMMARY" in WORKFLOW.read_text()
    # inputs reach the shell only through env, never pasted into a script
    assert not any("${{ inputs." in s.get("run", "") for s in job["steps"])


def test_the_gate_command_parses_with_every_option(tmp_path):
    """The workflow's pytest command, with the inputs filled in, collects the suite (an unknown option or a bad
    value would stop it with a usage error)."""
    pytest_lines = [c for c in commands() if "pytest" in c]
    assert len(pytest_lines) == 1
    inputs = {"$CANDIDATE": "tiny", "$BASELINE": "tiny-neox", "$BACKEND": "hf", "results": str(tmp_path / "results"),
              "results/junit.xml": str(tmp_path / "results" / "junit.xml")}
    command = [inputs.get(a, a) for a in pytest_lines[0][1:]]
    assert command[:3] == ["-m", "pytest", "suites/jglue"]
    done = subprocess.run([sys.executable, *command, "--collect-only", "-q", "-p", "no:cacheprovider"], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\d+/\d+ tests collected", done.stdout)


def test_every_make_target_pip_file_and_extra_exists():
    makefile = (REPO / "Makefile").read_text()
    seen = set()
    for command in commands():
        if command[0] == "make":
            target = command[1]
            assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), target
            for assignment in command[2:]:
                assert re.search(rf"^{assignment.split('=')[0]} \?=", makefile, re.MULTILINE), assignment
            seen.add("make")
        if "pip" in command and "-c" in command:
            assert (REPO / command[command.index("-c") + 1]).is_file()
            extras = re.findall(r"\[(.*?)\]", command[-1])[0].split(",")
            pyproject = (REPO / "pyproject.toml").read_text()
            assert all(re.search(rf"^{e} = \[", pyproject, re.MULTILINE) for e in extras), extras
            seen.add("pip")
        if command[0] == "cat":
            assert command[1] == "results/summary.md"
            seen.add("summary")
    assert seen == {"make", "pip", "summary"}
    assert "summary.md" in (REPO / "plugins" / "reporting.py").read_text()
