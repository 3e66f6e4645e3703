"""``--gate-sequential`` on the fixtures: an identical copy of tiny-trained stops early with pass, a damaged copy fails,
and results.json says how many documents each task scored."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kensa.gate.early import parse_margins
from tests.helpers import REPO

# Every task of the suite, each dataset version at prompt 0.3, so every kind of gated metric: 0/1 per document
# (JCommonsenseQA, XWinograd, MGSM), corpus metrics decided on a paired bootstrap (JSTS Pearson and Spearman, JCoLA
# MCC, balanced accuracy and macro-F1, JNLI 1.3 and MARC-ja beside their accuracies, XL-Sum ROUGE), graded values
# on documents that share a paragraph (JSQuAD, cluster-robust SE) and graded values per question (JAQKET v2).
TASKS = ("jcommonsenseqa-1.1-0.3", "jnli-1.1-0.3", "jnli-1.3-0.3", "marc_ja-1.1-0.3", "jsquad-1.1-0.3",
         "jsquad-1.2-0.3", "jsts-1.0-0.3", "jcola-0.2-0.3", "jaqket_v2-0.1-0.3", "jaqket_v2-0.2-0.3", "xwinograd_ja",
         "xlsum_ja-1.0-0.3", "mgsm-1.0-0.3")
SELECTION = "test_task and (" + " or ".join(TASKS) + ")"

def _run(tmp_path, model, *extra, selection=SELECTION):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "pytest", "suites/jglue", "-p", "no:cacheprovider", "--results-dir",
           str(tmp_path / "results"), "--model", str(model), "--baseline", "tiny-trained", "--gate-sequential",
           "-k", selection, *extra]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)


def _tasks(tmp_path, model):
    slug = next(p for p in (tmp_path / "results").iterdir() if p.is_dir() and p.name.endswith(model.name))
    doc = json.loads((slug / "results.json").read_text())
    return doc["kensa"]["tasks"], doc["kensa"]["gate"]


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    pytest.importorskip("transformers")
    from kensa.tiny import build as tiny

    root = tmp_path_factory.mktemp("models")
    copy = tiny.write_tiny("tiny-trained", root / "tt-copy")
    damaged = tiny.perturb_weights(copy, root / "tt-damaged", scale=tiny.DAMAGE_SCALE, seed=0)
    return copy, damaged


def test_an_identical_copy_stops_early_with_pass_on_every_task(tmp_path, copies):
    done = _run(tmp_path, copies[0])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    tasks, gate = _tasks(tmp_path, copies[0])
    assert sorted(tasks) == sorted(TASKS)
    for task_id, info in tasks.items():
        seq = info["data"]["sequential"]
        assert seq["stopped_early"] and info["n"] == seq["scored"] < seq["n"] and not seq["full_metrics"], \
            (task_id, seq)
    assert {r["status"] for r in gate} == {"pass"}
    assert all("docs scored" in r["message"] for r in gate)
    tests = {t: {m["test"] for m in info["data"]["sequential"]["metrics"].values()} for t, info in tasks.items()}
    assert tests["jsts-1.0-0.3"] == {"paired bootstrap"} and tests["jsquad-1.1-0.3"] == {"cluster-robust"}
    assert tests["jnli-1.3-0.3"] == {"paired sums", "paired bootstrap"}


def test_a_damaged_copy_fails(tmp_path, copies):
    done = _run(tmp_path, copies[1])
    assert done.returncode == 1, done.stdout[-4000:]
    tasks, gate = _tasks(tmp_path, copies[1])
    failed = {r["task_id"] for r in gate if r["status"] == "fail"}
    assert "jcommonsenseqa-1.1-0.3" in failed
    jcqa = tasks["jcommonsenseqa-1.1-0.3"]["data"]["sequential"]
    assert jcqa["stopped_early"] and jcqa["metrics"]["acc"]["decision"] == "fail"


def test_margins_are_checked_by_name_and_value():
    assert parse_margins("acc=0.02, exact_match=2") == {"acc": 0.02, "exact_match": 2.0}
    with pytest.raises(ValueError, match="'acc=-1': expected METRIC=VALUE"):
        parse_margins("acc=-1")
    with pytest.raises(KeyError, match="nosuch"):
        parse_margins("nosuch=1")


@pytest.mark.parametrize(("gate", "message"), [
    (dict(mode="off", sequential=True), "--gate-sequential: cannot be combined with --gate off"),
    (dict(margins="acc=0.02"), "--gate-margin: only means something with --gate-sequential"),
    (dict(sequential=True, margins="acc=x"), "--gate-margin: 'acc=x': expected METRIC=VALUE"),
])
def test_bad_sequential_options_name_the_option_and_value(gate, message):
    from kensa.cli.options import OptionError, build_run_config
    from kensa.tasks import all_tasks

    with pytest.raises(OptionError) as exc:
        build_run_config(models=["tiny"], model_args=[], prompt_version=None, num_fewshot=None, limit=None,
                         device="cpu", data_dir=None, data_from_hub=False, results_dir="r", tasks=all_tasks(),
                         gate=gate)
    assert message in str(exc.value)


def test_a_thresholds_update_always_runs_in_full():
    from kensa.cli.options import parse_gate, parse_models

    models = parse_models(["tiny"], [])
    assert parse_gate(models, baselines=(), mode="on", directory="t", update=False, allow_lower=False, alpha=0.05,
                      accept_env_change=False, base="none", sequential=True).sequential
    assert not parse_gate(models, baselines=(), mode="on", directory="t", update=True, allow_lower=False, alpha=0.05,
                          accept_env_change=False, base="none", sequential=True).sequential


def test_with_the_pooled_row_tasks_score_every_document_and_the_row_names_what_it_left_out(tmp_path, copies):
    from kensa.gate.early import EARLY_PASS_OFF

    FULL = "jsquad-1.1-0.3"  # graded answers on shared paragraphs: no 0/1 McNemar metric to pool
    done = _run(tmp_path, copies[0], "--gate-pooled",
                selection=f"test_task and (jcommonsenseqa-1.1-0.3 or xwinograd or {FULL})")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    tasks, gate = _tasks(tmp_path, copies[0])
    for task_id, info in tasks.items():
        seq = info["data"]["sequential"]
        assert not seq["stopped_early"] and seq["scored"] == seq["n"] and seq["early_pass"] is False, task_id
    assert all(EARLY_PASS_OFF in r["message"] for r in gate if r["method"] and r["method"].startswith("sequential"))
    (row,) = [r for r in gate if r["task_id"] == "pooled"]
    assert row["status"] == "pass" and row["p"] is not None
    assert set(row["details"]["pooled"]) == set(tasks) - {FULL} and len(row["details"]["pooled"]) == 2
    assert list(row["details"]["left_out"]) == [FULL] and f"left out: {FULL} (" in row["message"]
