"""``python -m kensa init DIR``: a team's own evaluation repository that runs kensa's installed suites.

These run the suites from this checkout's kensa (installed editable); tests/system/test_wheel.py runs the same flow
from a wheel in a fresh venv, outside the checkout.
"""

from __future__ import annotations

import configparser
import hashlib
import shlex
import subprocess
import sys

import pytest
import yaml

from kensa import __version__
from kensa.cli.main import main
from kensa.paths import suites_dir


SHIPPED_TOKENIZERS = suites_dir() / "tokenizers" / "__snapshots__" / "test_tokenizer_snapshots"


def pytest_in(root, *args, timeout=600):
    """pytest in the team repository, as its user types it (the plugin named too: the entry point in an
    editable install may be the main checkout's; naming it again is a no-op)."""
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "kensa_pytest", "-p", "no:cacheprovider", *args],
                          cwd=root, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def team(tmp_path):
    root = tmp_path / "team"
    assert main(["init", str(root)]) == 0
    return root


def test_init_writes_the_repository(team, capsys):
    ini = configparser.ConfigParser()
    ini.read(team / "pytest.ini")
    assert ini["pytest"]["testpaths"].split() == ["kensa_suites"]
    assert "--pyargs" in ini["pytest"]["addopts"].split()
    assert (team / "requirements.txt").read_text().splitlines()[-1] == f"kensa=={__version__}"
    assert len((team / "README.md").read_text().splitlines()) == 5
    assert sorted(p.name for p in (team / "thresholds").iterdir()) == ["README.md"]  # no baseline yet
    assert (team / "quiz" / "README.md").is_file() and (team / ".gitignore").read_text().startswith("results/")
    copied = sorted(p.name for p in (team / "snapshots" / "tokenizers" / "test_tokenizer_snapshots").iterdir())
    assert copied == sorted(p.name for p in SHIPPED_TOKENIZERS.glob("*.tokens.txt")) and copied
    assert "{version}" not in (team / "README.md").read_text() and team.name in (team / "README.md").read_text()


def test_init_refuses_to_overwrite_without_force(team, capsys):
    (team / "pytest.ini").write_text("[pytest]\n# ours\n")
    assert main(["init", str(team)]) == 2
    err = capsys.readouterr().err
    assert f"{team / 'pytest.ini'}" in err and "--force" in err
    assert (team / "pytest.ini").read_text() == "[pytest]\n# ours\n"
    assert main(["init", str(team), "--force"]) == 0
    assert "testpaths = kensa_suites" in (team / "pytest.ini").read_text()


def workflow_pytest_command(team):
    doc = yaml.safe_load((team / ".github" / "workflows" / "gate-release-candidate.yml").read_text())
    lines = [line for step in doc["jobs"]["gate"]["steps"] for line in [step.get("run", "")] if "pytest" in line]
    assert len(lines) == 1
    return shlex.split(lines[0])


def test_the_ci_workflow_gates_the_installed_suite(team, tmp_path):
    """The team's workflow installs from requirements.txt (no checkout, no make) and its pytest command, with
    the inputs filled in, collects the installed JGLUE suite in the team repository."""
    text = (team / ".github" / "workflows" / "gate-release-candidate.yml").read_text()
    assert "-r requirements.txt" in text and "make " not in text and "-e '." not in text
    command = workflow_pytest_command(team)
    assert command[:4] == [".venv/bin/python", "-m", "pytest", "kensa_suites.jglue"]
    fill = {"$CANDIDATE": "tiny", "$BASELINE": "tiny-neox", "$BACKEND": "hf", "results": str(tmp_path / "results"),
            "results/junit.xml": str(tmp_path / "results" / "junit.xml")}
    done = pytest_in(team, *[fill.get(a, a) for a in command[3:]], "--collect-only", "-q")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "test_jglue.py" in done.stdout


def test_suites_are_selected_by_name_keyword_and_prompt_version(team):
    done = pytest_in(team, "kensa_suites.jglue", "--collect-only", "-q", "-k", "jnli", "--prompt-version", "0.3")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    assert ids and all("jnli" in i and "0.3" in i for i in ids), ids
    everything = pytest_in(team, "--collect-only", "-q")  # testpaths: every suite
    assert everything.returncode == 0, everything.stdout[-3000:] + everything.stderr[-2000:]
    assert {"jglue", "quiz", "qa", "tokenizers"} <= {line.split("/")[0] for line in everything.stdout.splitlines()
                                                     if "::" in line}


def test_a_model_path_outside_the_repository_is_a_clear_error(team, tmp_path):
    """pytest takes ``--model /elsewhere`` for a test path before kensa's options exist, and then does not read
    the team's pytest.ini (rootdir above both): an error that says so, never a run with other settings."""
    outside = tmp_path / "models" / "m"
    outside.mkdir(parents=True)
    done = pytest_in(team, "--model", str(outside), "--collect-only", "-q")
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"pytest did not read {team / 'pytest.ini'}" in done.stderr and f"--model=" in done.stderr


def digest(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.txt"))}


def test_tokenizer_snapshots_are_the_projects_files(team):
    """With the suites installed, a model's tokenizer snapshot is written to the team's snapshots/, and kensa's
    own snapshot folders are never written or cleaned up."""
    mine = team / "snapshots" / "tokenizers" / "test_tokenizer_snapshots" / "test_tokenizer[tiny].tokens.txt"
    mine.unlink()
    before = digest(suites_dir())
    first = pytest_in(team, "kensa_suites.tokenizers", "-k", "test_tokenizer", "--model", "tiny")
    assert first.returncode == 1 and "no snapshot yet" in first.stdout, first.stdout[-3000:]
    update = pytest_in(team, "kensa_suites.tokenizers", "-k", "test_tokenizer", "--model", "tiny", "--snapshot-update")
    assert update.returncode == 0, update.stdout[-3000:]
    shipped = SHIPPED_TOKENIZERS / "test_tokenizer[tiny].tokens.txt"
    assert mine.read_text() == shipped.read_text()
    assert digest(suites_dir()) == before
