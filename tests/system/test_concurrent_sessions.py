"""Two sessions at once on the same results folder and the same response cache: both finish, every file
is whole, the cache serves a third run entirely, and the scores are those of a run alone."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import REPO

pytest.importorskip("transformers")
pytestmark = [pytest.mark.slow, pytest.mark.sweep]

SELECT = ("--model", "tiny", "--limit", "6", "--prompt-version", "0.3", "-k", "jcommonsenseqa or jnli-1.3",
          "--gate", "off")
RESPONSES = re.compile(r"kensa: responses: (\d+) computed, (\d+) from cache")


def command(results, cache, *extra):
    return [sys.executable, "-m", "pytest", "suites/jglue", "-p", "no:cacheprovider", *SELECT, "--results-dir",
            str(results), "--response-cache", str(cache), *extra]


def test_two_sessions_share_a_results_folder_and_a_cache(tmp_path, tiny_neox):
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    results, cache = tmp_path / "results", tmp_path / "responses.sqlite"
    procs = [subprocess.Popen(command(results, cache), cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-2000:] for o in outs)
    for path in results.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            if path.suffix == ".json":
                json.loads(text)
            elif path.suffix == ".jsonl":
                [json.loads(line) for line in text.splitlines()]
    assert not [p for p in results.rglob(".*.tmp")]  # no temporary file left behind
    total = 6 * 5 + 6 * 3
    for out in outs:
        computed, cached = map(int, RESPONSES.search(out).groups())
        assert computed + cached == total
    third = subprocess.run(command(results, cache), cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
                           check=False)
    assert third.returncode == 0 and RESPONSES.search(third.stdout).groups() == ("0", str(total))
    alone = subprocess.run(command(tmp_path / "alone", "off"), cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=900, check=False)
    assert alone.returncode == 0
    scores = json.loads((tmp_path / "alone" / "tiny" / "results.json").read_text())["results"]
    assert json.loads((results / "tiny" / "results.json").read_text())["results"] == scores
