"""The documentation cannot rot: every "spec N.N" the code cites is a section of docs/harness-spec.md, no internal
issue number is cited, links between pages resolve, the README stays short, and every command in a code block is
run here (pytest commands to collection, which checks every option and selection; kensa's own commands for real)
unless its comment says it needs a GPU or the network.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

SPEC = REPO / "docs" / "harness-spec.md"
CODE = [p for folder in ("kensa", "plugins", "suites", "tests", "bench") for p in (REPO / folder).rglob("*.py")
        if p.name != "test_docs.py"]  # this file's own examples are bad on purpose
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
         *[REPO / d / "README.md" for d in ("suites", "tests", "kensa/backends", "kensa/tasks", "thresholds", "bench")]]
# Pages written elsewhere in the project: their links and commands are their owners' (checked once merged).
OWNED_ELSEWHERE: set[str] = set()
RUN_BY = {"docs/adding-a-task.md": "tests/project/test_add_a_task.py",
          "docs/adding-a-backend.md": "tests/project/test_add_a_backend.py", "docs/quiz.md": "tests/project/test_quiz_docs.py",
          "bench/README.md": "tests/peer/test_bench.py"}
"""Pages whose commands another test runs for real (so this one does not run them to collection)."""
NEEDS_MORE = re.compile(r"#.*\b(needs? (a |the )?(GPU|GPUs|network|model|results of earlier runs|minutes of training)|network)\b")
CITATION = re.compile(r"\bspec §?(\d+(?:\.\d+)*(?:(?:, | and )\d+(?:\.\d+)*)*)")


def spec_sections() -> set[str]:
    text = SPEC.read_text(encoding="utf-8")
    return {m.group(1).rstrip(".") for m in re.finditer(r"(?m)^#{2,3} (\d+(?:\.\d+)*)\.? ", text)}


def citations() -> list[tuple[str, str]]:
    out = []
    for path in CODE + [p for p in PAGES if p.exists() and p != SPEC]:
        for match in CITATION.finditer(path.read_text(encoding="utf-8")):
            out += [(str(path.relative_to(REPO)), n) for n in re.split(r", | and ", match.group(1))]
    return out


def test_every_spec_citation_names_a_section_of_the_harness_spec():
    found = citations()
    assert len(found) > 30  # the task modules and their tests cite it throughout
    sections = spec_sections()
    assert [f"{path}: spec {n}" for path, n in found if n not in sections] == []


def test_no_citation_of_documents_outside_the_repository_or_of_internal_issues():
    pattern = re.compile(r"(?i)gating notes|shared/research|\bissues? #?\d+")
    texts = [*CODE, *(p for p in PAGES if p.exists()), REPO / "pyproject.toml", REPO / "Makefile"]
    hits = [f"{p.relative_to(REPO)}:{n}: {line.strip()}" for p in texts
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert hits == []


def test_the_readme_is_short_and_starts_with_the_set_up():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200
    first_screen = "\n".join(lines[:25])
    assert "make jglue" in first_screen and "make test" in first_screen


def test_links_between_pages_resolve():
    broken = []
    for page in PAGES:
        if not page.exists():
            continue
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.exists() and str(resolved.relative_to(REPO)) not in OWNED_ELSEWHERE:
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert broken == []


# --- the commands -----------------------------------------------------------------------------------------------


def blocks(page: Path) -> list[list[str]]:
    """The logical lines (backslash continuations joined) of each ```sh block."""
    out = []
    for body in re.findall(r"```sh\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL):
        lines, current = [], ""
        for line in body.splitlines():
            current += line.rstrip("\\").rstrip() + " " if line.rstrip().endswith("\\") else line
            if not line.rstrip().endswith("\\"):
                lines.append(current.strip())
                current = ""
        out.append([line for line in lines if line and not line.startswith("#")])
    return out


def checked_pages() -> list[Path]:
    return [p for p in PAGES if p.exists() and str(p.relative_to(REPO)) not in OWNED_ELSEWHERE | set(RUN_BY)]


def test_every_documented_command_is_run_or_marked(tmp_path):
    ran, marked = [], []
    for page in checked_pages():
        tmp = tmp_path / str(page.relative_to(REPO)).replace("/", "_")  # each page's /tmp/ of its own
        tmp.mkdir()
        for block in blocks(page):
            # a block that makes a team repository runs outside the checkout, as its reader would
            cwd = tmp if any("kensa init" in line for line in block) else REPO
            for line in block:
                if NEEDS_MORE.search(line):
                    marked.append(line)
                    continue
                for command in line.split("#")[0].split("&&"):
                    words = shlex.split(command.replace("/tmp/", f"{tmp}/"))
                    if not words:
                        continue
                    cwd = run_documented(words, cwd, f"{page.relative_to(REPO)}: {line}")
                    ran.append(line)
    assert len(ran) > 15 and marked  # the README's set-up, the gate's example, options, snapshots, init ...


def run_documented(words: list[str], cwd: Path, where: str) -> Path:
    """Run one documented command (pytest commands to collection) and return the folder the next one runs in."""
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # KENSA_SOAK=20 .venv/bin/pytest ...
        words = words[1:]
    head = words[0]
    if head == "cd":
        target = Path(words[1])
        return target if target.is_absolute() else cwd / target
    if head in ("git", "export"):
        return cwd
    if head == "make":
        assert re.search(rf"^{re.escape(words[1])}:", (REPO / "Makefile").read_text(), re.MULTILINE), where
        return cwd
    if head == "tox":
        assert f"[testenv:{words[words.index('-e') + 1]}]" in (REPO / "tox.ini").read_text(), where
        return cwd
    if head in ("pytest", ".venv/bin/pytest"):
        args = [sys.executable, "-m", "pytest", *words[1:]]
    elif head in ("python", ".venv/bin/python") and words[1:3] == ["-m", "pytest"]:
        args = [sys.executable, *words[1:]]
    elif head in ("python", ".venv/bin/python") and words[1:3] == ["-m", "kensa"]:
        args = [sys.executable, *words[1:]]
    else:
        raise AssertionError(f"{where}: no rule runs {head!r}; run it here or mark it as needing a GPU or network")
    if "pytest" in args[2]:
        args += ["--collect-only", "-q", "-p", "no:cacheprovider"]
        if cwd != REPO:  # a team repository: the plugin by name too (a no-op where its entry point loaded it)
            args += ["-p", "kensa_pytest"]
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{where}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return cwd


@pytest.mark.parametrize("bad", ["spec 9.9", "spec 3.4, 7.1"])
def test_the_citation_check_catches_a_missing_section(bad):
    numbers = re.split(r", | and ", CITATION.search(bad).group(1))
    assert not set(numbers) <= spec_sections()
