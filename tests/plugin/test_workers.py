"""xdist across GPUs: each worker is pinned to its slice of the caller's CUDA_VISIBLE_DEVICES (fake GPU lists
through the environment: the pinning only edits the mask), ``-n auto`` counts GPUs, and the two ways to
spread a run (tests over workers, or one model per worker with ``--dist loadgroup``) give the same report,
verdicts, Holm family and response cache as a serial run."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import sys
import textwrap
import types
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kensa.cli.workers import (
    auto_workers,
    gpus_per_worker,
    model_group,
    pin_worker,
    strip_group,
    visible_gpus,
    worker_devices,
)
from kensa.errors import OptionError
from kensa.tiny import build as tiny
from tests.helpers import REPO

# -- the engine's arithmetic -------------------------------------------------------------------


def test_the_callers_mask_is_indexed_never_physical_ids():
    env = {"CUDA_VISIBLE_DEVICES": "4,6"}
    assert visible_gpus(env) == ["4", "6"]
    assert pin_worker(env, "gw1", 2) == ["6"]
    assert env["CUDA_VISIBLE_DEVICES"] == "6" and env["KENSA_CALLER_GPUS"] == "4,6"


def test_uuids_and_tensor_parallel_slices():
    gpus = ["GPU-aa", "GPU-bb", "GPU-cc", "GPU-dd"]
    assert [worker_devices(i, 2, gpus, 2) for i in range(2)] == [["GPU-aa", "GPU-bb"], ["GPU-cc", "GPU-dd"]]
    assert auto_workers({"CUDA_VISIBLE_DEVICES": ",".join(gpus)}, 2) == 2
    with pytest.raises(OptionError, match="3 GPUs per worker, but only 2 are visible"):
        worker_devices(0, 1, ["0", "1"], 3)


def test_no_gpu_means_no_pin_and_xdists_own_worker_count(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)  # no nvidia-smi here
    assert visible_gpus({}) == [] and auto_workers({}) is None
    env = {"CUDA_VISIBLE_DEVICES": ""}
    assert pin_worker(env, "gw0", 2) is None and env == {"CUDA_VISIBLE_DEVICES": ""}
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == []


def test_a_worker_that_already_started_cuda_is_refused(monkeypatch):
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(is_initialized=lambda: True))
    monkeypatch.setitem(sys.modules, "torch", fake)
    with pytest.raises(OptionError, match="CUDA was initialised in this worker before kensa could pin it"):
        pin_worker({"CUDA_VISIBLE_DEVICES": "0,1"}, "gw0", 2)


def test_gpus_per_worker_follows_tensor_parallel_size():
    assert gpus_per_worker(None, []) == 1
    assert gpus_per_worker(None, ["tensor_parallel_size=2", "dtype=bfloat16"]) == 2
    assert gpus_per_worker("4", ["tensor_parallel_size=2"]) == 4
    with pytest.raises(OptionError, match="--gpus-per-worker"):
        gpus_per_worker("0", [])


def test_strip_group_and_model_group_read_node_ids():
    assert strip_group("suites/jglue/test_jglue.py::test_task[jnli-1.3-0.3]@tiny-llama") == \
        "suites/jglue/test_jglue.py::test_task[jnli-1.3-0.3]"
    assert strip_group("t.py::test_task[a@b]") == "t.py::test_task[a@b]"
    slugs = ["tiny", "tiny-llama"]
    assert model_group("suites/jglue/test_jglue.py::test_task[jnli-1.3-0.3-tiny-llama]", slugs) == "tiny-llama"
    assert model_group("suites/jglue/test_jglue.py::test_task[jnli-1.3-0.3-tiny]", slugs) == "tiny"
    assert model_group("suites/tokenizers/test_tokenizer_snapshots.py::test_tokenizer[tiny]", slugs) == "tiny"
    assert model_group("suites/jglue/test_prompt_snapshots.py::test_prompt[jnli-1.3-0.3]", slugs) is None
    assert model_group("t.py::test_task[a]@grp", slugs) == "grp"


@given(gpus=st.lists(st.integers(0, 15).map(str), min_size=1, max_size=8, unique=True),
       count=st.integers(1, 16), per=st.integers(1, 4))
def test_every_worker_stays_inside_the_mask(gpus, count, per):
    if per > len(gpus):
        return
    slices = [worker_devices(i, count, gpus, per) for i in range(count)]
    assert all(len(s) == per and set(s) <= set(gpus) for s in slices)
    if count * per <= len(gpus):  # enough GPUs: no two workers share one
        assert len({d for s in slices for d in s}) == count * per


# -- through pytest-xdist ------------------------------------------------------------------------

PIN_CONFTEST = textwrap.dedent('''
    import json, os

    def pytest_configure(config):
        if hasattr(config, "workerinput"):  # runs after kensa's tryfirst pinning
            with open(os.environ["PIN_LOG"], "a") as f:
                f.write(json.dumps([config.workerinput["workerid"], os.environ.get("CUDA_VISIBLE_DEVICES"),
                                    os.environ.get("VLLM_WORKER_MULTIPROC_METHOD")]) + "\\n")
''')


@pytest.fixture
def pins(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("PIN_LOG", str(pytester.path / "pins.jsonl"))
    pytester.makeconftest(PIN_CONFTEST)
    pytester.makepyfile(test_x="def test_a():\n    pass\n\ndef test_b():\n    pass\n")

    def run(mask: str | None, *args: str) -> dict[str, str | None]:
        if mask is None:
            monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        else:
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", mask)
        (pytester.path / "pins.jsonl").unlink(missing_ok=True)
        result = pytester.runpytest_subprocess("-p", "kensa_pytest", "-p", "no:cacheprovider", *args)
        assert result.ret == 0, result.stdout.str()
        rows = [json.loads(x) for x in (pytester.path / "pins.jsonl").read_text().splitlines()]
        assert {r[2] for r in rows if r[1]} <= {"spawn"}
        return {r[0]: r[1] for r in rows}

    return run


def test_xdist_workers_get_one_gpu_each_from_an_outer_mask(pins):
    assert pins("5,7,9", "-n", "3") == {"gw0": "5", "gw1": "7", "gw2": "9"}
    # -n auto: one worker per visible GPU, whatever the cores
    assert pins("4,6", "-n", "auto") == {"gw0": "4", "gw1": "6"}
    assert pins("1,3,5,7", "-n", "auto", "--gpus-per-worker", "2") == {"gw0": "1,3", "gw1": "5,7"}


def test_on_cpu_workers_are_not_pinned(pins, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no nvidia-smi
    assert pins("", "-n", "2") == {"gw0": "", "gw1": ""}
    assert pins(None, "-n", "2") == {"gw0": None, "gw1": None}


# -- the two modes give one report ---------------------------------------------------------------

SUITE = (REPO / "suites" / "jglue" / "test_jglue.py").read_text(encoding="utf-8")
MODELS = ("--model", "tiny", "--model", "tiny-llama", "--baseline", "tiny-neox", "--baseline", "tiny-llama")
ARGS = (*MODELS, "--limit", "20", "--prompt-version", "0.3,0.6", "-k", "jcommonsenseqa")
TINY_CACHE = tiny.cache_root()


@pytest.fixture
def modes(pytester, monkeypatch, tiny_neox, tiny_llama):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("KENSA_CACHE_DIR", str(TINY_CACHE))
    pytester.makepyfile(test_jglue=SUITE)

    def run(name: str, *args: str):
        out = pytester.path / "out"  # one place for every mode: paths in the report are then the same
        shutil.rmtree(out, ignore_errors=True)
        cache = pytester.path / f"{name}.sqlite"
        result = pytester.runpytest_subprocess(
            "-p", "kensa_pytest", "-p", "no:cacheprovider", "-v", "--thresholds-dir", str(pytester.path / "th"),
            "--results-dir", str(out), "--response-cache", str(cache), "--junitxml", str(out / "junit.xml"), *ARGS, *args)
        props = {p.get("name"): p.get("value") for p in ET.parse(out / "junit.xml").iter("property")}
        gate = {slug: json.loads((out / slug / "results.json").read_text())["kensa"]["gate"]
                for slug in ("tiny", "tiny-llama")}
        with sqlite3.connect(cache) as db:
            cache = sorted(db.execute("SELECT key, value FROM responses").fetchall())
        lines = result.stdout.lines
        start = next(i for i, line in enumerate(lines) if "kensa scores" in line)
        table = lines[start: next(i for i, line in enumerate(lines) if line.startswith("results: "))]
        return result, (out / "summary.md").read_text(), props, gate, cache, table

    return pytester, run


def test_both_xdist_modes_report_exactly_what_a_serial_run_reports(modes):
    pytester, run = modes
    pytester.runpytest_subprocess("-p", "kensa_pytest", "-p", "no:cacheprovider", "--thresholds-dir",
                                  str(pytester.path / "th"), "--results-dir", str(pytester.path / "upd"),
                                  "--response-cache", "off", *ARGS, "--thresholds-update")
    # A baseline the models cannot match on one task, so the verdicts include failures and Holm's steps.
    items = pytester.path / "th" / "tiny-neox" / "jcommonsenseqa-1.1-0.3.jsonl"
    lines = items.read_text().splitlines()
    rows = [dict(json.loads(x), acc=1.0, acc_norm=1.0) for x in lines[1:]]
    items.write_text("\n".join([lines[0], *map(json.dumps, rows)]) + "\n")
    toml = pytester.path / "th" / "tiny-neox.toml"
    toml.write_text(re.sub(r'(\[entries\."jcommonsenseqa-1\.1-0\.3"\.metrics\.acc(?:_norm)?\]\nvalue = )[0-9.]+',
                           r"\g<1>1.0", toml.read_text()))

    serial = run("serial", "-n", "0")
    spread = run("spread", "-n", "2")
    grouped = run("grouped", "-n", "2", "--dist", "loadgroup")
    serial[0].assert_outcomes(failed=1, passed=3)
    for other in (spread, grouped):
        other[0].assert_outcomes(failed=1, passed=3)
        assert other[1] == serial[1]  # summary.md
        assert other[2] == serial[2]  # JUnit global properties: headline, Holm family, one per row
        assert other[3] == serial[3]  # results.json gate rows, both models
        # the response cache, row by row: the same keys and answers; a log-likelihood may differ in its last
        # bits, since a worker's torch has fewer threads than the serial run's (reductions in another order)
        assert [k for k, _ in other[4]] == [k for k, _ in serial[4]] and len(serial[4]) == 2 * 2 * 20 * 5
        for (_, ours), (_, theirs) in zip(other[4], serial[4], strict=True):
            (ll_a, greedy_a, n_a), (ll_b, greedy_b, n_b) = json.loads(ours), json.loads(theirs)
            assert (greedy_a, n_a) == (greedy_b, n_b)
            assert float.fromhex(ll_a) == pytest.approx(float.fromhex(ll_b), rel=1e-6, abs=1e-6)
        assert other[5] == serial[5]  # the terminal table
    assert "Holm over 8" in serial[1]  # 2 models x 2 prompt versions x 2 metrics
    # loadgroup kept each model on one worker.
    placed = re.findall(r"\[(gw\d)\] \[ *\d+%\] (?:PASSED|FAILED) test_jglue.py::test_task\[jcommonsenseqa-1\.1-0\.\d-"
                        r"(tiny(?:-llama)?)\]", grouped[0].stdout.str())
    assert len(placed) == 4 and all(len({w for w, g in placed if g == group}) == 1 for group in ("tiny", "tiny-llama"))
