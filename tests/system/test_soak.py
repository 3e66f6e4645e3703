"""A soak: the tiny suites (JGLUE, quiz, QA) run again and again under ``-n 2`` give the same samples and
results JSON, byte for byte once timings are left out, and the run-to-run spread of every timing is reported.

``KENSA_SOAK`` is the number of runs (default 2, what CI runs; 20 for the full soak) and
``KENSA_SOAK_SELECT`` a ``-k`` expression (default a few tests of each kind and suite; ``all`` for every test).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

pytest.importorskip("transformers")
pytest.importorskip("xdist")
pytestmark = [pytest.mark.slow, pytest.mark.sweep]

RUNS = int(os.environ.get("KENSA_SOAK", "2"))
SELECT = os.environ.get("KENSA_SOAK_SELECT", "jcommonsenseqa-1.1-0.3 or jnli-1.3-0.3 or mgsm-1.0-0.3 or jsts-1.0-0.3 "
                        "or quiz_fixtures_anime_loglik-1.0-0.2 or quiz_fixtures_anime_gen-1.0-0.2 "
                        "or qa-1.0-0.3 or aqg_hl-1.0-0.3")


def timings(doc, path: str = "") -> dict[str, float]:
    """Every number whose key names a time, by its path in the document."""
    out = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            where = f"{path}/{k}"
            if "seconds" in k and isinstance(v, (int, float)):
                out[where] = float(v)
            else:
                out.update(timings(v, where))
    return out


def without_timings(doc):
    if isinstance(doc, dict):
        return {k: without_timings(v) for k, v in doc.items() if "seconds" not in k and k not in ("date", "torch_threads")}
    if isinstance(doc, list):
        return [without_timings(v) for v in doc]
    return doc


def test_runs_in_a_row_give_identical_results(tmp_path, tiny_neox, capsys):
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "pytest", "suites/jglue", "suites/quiz", "suites/qa", "-p", "no:cacheprovider", "-n", "2",
           "--model", "tiny",
           "--response-cache", "off", "--results-dir", str(results), "-q"]
    if SELECT != "all":
        cmd += ["-k", SELECT]
    first_samples: dict[str, list[str]] = {}
    first_doc = None
    spread: dict[str, list[float]] = {}
    for i in range(RUNS):
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800, check=False)
        assert done.returncode == 0, done.stdout[-3000:]
        # Samples carry each answer's model seconds (the quiz's latency): compared with those left out.
        samples = {p.name: [json.dumps(without_timings(json.loads(line)), ensure_ascii=False)
                            for line in p.read_text(encoding="utf-8").splitlines()]
                   for p in (results / "tiny").glob("samples_*.jsonl")}
        doc = json.loads((results / "tiny" / "results.json").read_text(encoding="utf-8"))
        for key, value in timings(doc).items():
            spread.setdefault(key, []).append(value)
        if i == 0:
            first_samples, first_doc = samples, without_timings(doc)
            assert samples
            continue
        assert samples == first_samples, f"run {i + 1}: samples differ from run 1"
        assert without_timings(doc) == first_doc, f"run {i + 1}: results.json differs from run 1 (timings aside)"
    with capsys.disabled():
        print(f"\nsoak: {RUNS} runs of `{' '.join(cmd[3:])}`: samples and results identical; timings (s):")
        for key, values in sorted(spread.items()):
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            print(f"  {key:60} min {min(values):8.3f}  median {statistics.median(values):8.3f}  "
                  f"max {max(values):8.3f}  sd {sd:7.3f}")
    Path(tmp_path / "soak-timings.json").write_text(json.dumps(spread, indent=1))
