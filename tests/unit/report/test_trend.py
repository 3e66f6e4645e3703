"""``python -m kensa trend``: the model line across results folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kensa.cli.main import main
from kensa.report.trend import Z95, TrendError, read_releases, trend_rows
from tests.helpers import REPO


def _results(path, acc, se, status, delta, *, partial=False):
    doc = {"results": {"jcommonsenseqa-1.1-0.3": {"acc": acc, "acc_stderr": se}},
           "kensa": {"model": path.name, "model_info": {}, "tasks": {}, "partial": partial,
                     "gate": [{"task_id": "jcommonsenseqa-1.1-0.3", "metric": "acc", "status": status,
                               "delta": delta, "base": 0.8, "mde": 0.05, "score": acc}]}}
    path.mkdir(parents=True)
    (path / "results.json").write_text(json.dumps(doc))
    return path


def test_rows_give_interval_verdict_and_change_from_the_first_release(tmp_path):
    dirs = [_results(tmp_path / "rc1", 0.80, 0.01, "pass", 0.0),
            _results(tmp_path / "rc2", 0.78, 0.02, "pass", -0.02),
            _results(tmp_path / "rc3", 0.70, 0.01, "fail", -0.10)]
    rows = trend_rows(read_releases(dirs))
    assert [r.release for r in rows] == ["rc1", "rc2", "rc3"]
    assert rows[1].low == pytest.approx(0.78 - Z95 * 0.02) and rows[1].high == pytest.approx(0.78 + Z95 * 0.02)
    assert [r.verdict for r in rows] == ["pass", "pass", "fail"]
    assert [round(r.cumulative, 4) for r in rows] == [0.0, -0.02, -0.1]
    # Reversed order on the command line: the first release is now rc3.
    assert trend_rows(read_releases(dirs[::-1]))[-1].cumulative == pytest.approx(0.10)


def test_a_partial_run_or_a_folder_without_results_is_an_error_naming_it(tmp_path, capsys):
    _results(tmp_path / "cut", 0.8, 0.01, "pass", 0.0, partial={"reason": "interrupted (Ctrl-C)"})
    with pytest.raises(TrendError, match=r"cut/results.json: a partial run \(interrupted"):
        read_releases([tmp_path / "cut"])
    (tmp_path / "empty").mkdir()
    assert main(["trend", str(tmp_path / "empty")]) == 2
    assert "empty: no results.json" in capsys.readouterr().err


def test_three_result_folders_from_tiny_models(tmp_path):
    """One session scores tiny-trained, a copy and a damaged copy, all gated against tiny-trained's baseline."""
    pytest.importorskip("transformers")
    from kensa.tiny import build as tiny

    copy = tiny.write_tiny("tiny-trained", tmp_path / "m" / "tt-copy")
    damaged = tiny.perturb_weights(copy, tmp_path / "m" / "tt-damaged", scale=tiny.DAMAGE_SCALE, seed=0)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "pytest", "suites/jglue", "-p", "no:cacheprovider", "--results-dir",
           str(tmp_path / "results"), "--model", "tiny-trained", "--model", str(copy), "--model", str(damaged),
           "--baseline", "tiny-trained", "--prompt-version", "0.3", "-k", "jcommonsenseqa"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 1, done.stdout[-3000:]  # the damaged copy fails its gate
    folders = sorted((tmp_path / "results").glob("*/results.json"))
    by_name = {f.parent.name: f.parent for f in folders}
    order = [by_name["tiny-trained"], *(by_name[n] for n in sorted(by_name) if n != "tiny-trained")]
    assert [p.name.endswith(s) for p, s in zip(order, ("tiny-trained", "tt-copy", "tt-damaged"))] == [True] * 3
    plot = tmp_path / "trend.png"
    assert main(["trend", *map(str, order), "--out", str(tmp_path / "trend.md"), "--plot", str(plot)]) == 0
    table = (tmp_path / "trend.md").read_text()
    acc = [line.split(" | ") for line in table.splitlines() if line.startswith("| jcommonsenseqa-1.1-0.3 | acc |")]
    assert [row[2] for row in acc] == [p.name for p in order]
    assert [row[5] for row in acc][:2] == ["underpowered", "underpowered"] and acc[2][5] == "fail"
    assert acc[0][7] == "+0.0000" and acc[1][7] == "+0.0000" and float(acc[2][7]) < 0  # change from the first
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
