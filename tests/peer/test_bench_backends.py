"""Smoke tests of ``bench/backends.py`` (not a benchmark): the command runs end to end on kensa's tiny model and
the fixtures, writes its JSON, and every backend agrees with the HF backend on these few requests.

The HF-only run needs nothing beyond the default install; the run with vLLM and the served model skips where vLLM
is not installed, through the vLLM tests' own skip (which CI turns into a failure where vLLM is promised).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import REPO

pytest.importorskip("transformers")

SMOKE = ("--size", "tiny", "--limit-mc", "3", "--limit-gen", "2", "--rounds", "1", "--threads", "1")


def bench_backends(tmp_path, *backends: str) -> dict:
    out = tmp_path / "bench-backends.json"
    cmd = [sys.executable, "-m", "bench.backends", *(a for b in backends for a in ("--backend", b)), *SMOKE,
           "--json", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| backend | start s |" in done.stdout and "faster: multiple choice" in done.stdout
    return json.loads(out.read_text(encoding="utf-8"))


def check(doc: dict, backends: list[str]) -> None:
    assert doc["size"] == "tiny" and doc["docs"] == {"mc": 3, "generation": 2} and doc["rounds"] == 1
    assert doc["date"].endswith("UTC") and doc["git"]  # when and at which commit it was measured
    rows = {r["backend"]: r for r in doc["backends"]}
    assert sorted(rows) == sorted(backends)
    for row in rows.values():
        assert row["mc"]["requests"] == 15 and len(row["mc"]["seconds"]) == 1 and row["mc"]["tokens"] > 0
        assert row["mc"]["same_prediction_as_hf"] == 3 and row["generation"]["identical_to_hf"] == 2
        assert row["mc"]["max_abs_loglikelihood_diff_vs_hf"] <= 1e-3


def test_bench_backends_runs_on_the_hf_backend(tmp_path):
    check(bench_backends(tmp_path, "hf"), ["hf"])


def test_bench_backends_runs_on_all_three_backends(tmp_path):
    from tests.helpers import vllm_or_skip

    vllm_or_skip()
    check(bench_backends(tmp_path), ["hf", "vllm", "served"])
