"""Thresholds lowered by hand are caught against git history (kensa.gate.history, --thresholds-base)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace

import pytest

from kensa.gate.history import HAND_LOWERED, UPDATE_LOWERED, hand_lowered_rows, lowerings
from kensa.gate.thresholds import load_thresholds, write_thresholds
from kensa.gate.verdicts import BaselineStore
from kensa.tasks import all_tasks
from tests.helpers import REPO

KNOWN = {v.task_id: t.metrics for t in all_tasks() for v in t.variants()}
TID = "jcommonsenseqa-1.1-0.3"


def git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(repo), "PATH": "/usr/bin:/bin"})


@pytest.fixture
def repo(tmp_path):
    """A git repository on ``main`` holding a copy of the committed tiny-neox thresholds, and a branch."""
    repo = tmp_path / "repo"
    (repo / "thresholds").mkdir(parents=True)
    shutil.copy(REPO / "thresholds" / "tiny-neox.toml", repo / "thresholds" / "tiny-neox.toml")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "baseline")
    git(repo, "checkout", "-q", "-b", "candidate")
    return repo


def edit(repo, *, value_delta: float, stamp: str | None = None):
    """Change one entry's acc by ``value_delta``; with ``stamp``, also its ``updated`` (as the update flow does)."""
    path = repo / "thresholds" / "tiny-neox.toml"
    th = load_thresholds(path, "tiny-neox", KNOWN)
    entry = th.entries[TID]
    acc = replace(entry.metrics["acc"], value=entry.metrics["acc"].value + value_delta)
    entry = replace(entry, metrics={**entry.metrics, "acc": acc}, updated=stamp or entry.updated)
    write_thresholds(replace(th, entries={**th.entries, TID: entry}))
    return load_thresholds(path, "tiny-neox", KNOWN)


def test_a_hand_lowered_value_fails_the_gate_naming_the_file_and_the_ref(repo):
    edit(repo, value_delta=-0.1)
    store = BaselineStore(repo / "thresholds", KNOWN)
    rows, notes = hand_lowered_rows(store, {"tiny-neox": ["tiny"]}, "auto")
    assert [(r.task_id, r.metric, r.status, r.failed) for r in rows] == [(TID, "acc", HAND_LOWERED, True)]
    assert "tiny-neox.toml entry jcommonsenseqa-1.1-0.3 acc:" in rows[0].message and notes == []
    # Explicit refs work too, and "none" turns the check off.
    assert len(hand_lowered_rows(store, {"tiny-neox": ["tiny"]}, "main")[0]) == 1
    assert hand_lowered_rows(store, {"tiny-neox": ["tiny"]}, "none") == ([], [])


def test_lowering_through_the_update_flow_is_listed_for_review_not_failed(repo):
    edit(repo, value_delta=-0.1, stamp="2099-01-01T00:00:00Z")
    rows, notes = hand_lowered_rows(BaselineStore(repo / "thresholds", KNOWN), {"tiny-neox": ["tiny"]}, "auto")
    assert rows == [] and len(notes) == 1 and UPDATE_LOWERED in notes[0] and "(review it)" in notes[0]


def test_a_raised_value_and_an_unchanged_file_say_nothing(repo):
    edit(repo, value_delta=+0.1)
    assert hand_lowered_rows(BaselineStore(repo / "thresholds", KNOWN), {"tiny-neox": ["tiny"]}, "auto") == ([], [])


def test_lower_is_better_metrics_are_compared_by_direction(repo):
    th = edit(repo, value_delta=+0.1)
    before = (repo / "thresholds" / "tiny-neox.toml").read_text()
    flipped = {k: replace(e, metrics={m: replace(b, direction="lower") for m, b in e.metrics.items()})
               for k, e in th.entries.items()}
    raised = [low for low in lowerings(before.replace("0.", "0.", 1), replace(th, entries=flipped))]
    assert raised == []  # the same values: nothing moved
    worse = edit(repo, value_delta=+0.2)
    worse = replace(worse, entries={k: replace(e, metrics={m: replace(b, direction="lower") for m, b in e.metrics.items()})
                                    for k, e in worse.entries.items()})
    assert [(x.task_id, x.how) for x in lowerings(before, worse)] == [(TID, HAND_LOWERED)]


def test_outside_git_there_is_nothing_to_compare(tmp_path):
    shutil.copytree(REPO / "thresholds", tmp_path / "thresholds", ignore=shutil.ignore_patterns("tiny-*"))
    shutil.copy(REPO / "thresholds" / "tiny-neox.toml", tmp_path / "thresholds")
    assert hand_lowered_rows(BaselineStore(tmp_path / "thresholds", KNOWN), {"tiny-neox": ["tiny"]}, "auto") == ([], [])


@pytest.mark.parametrize("bad", ["-x", "a b", "", "--exec=rm"])
def test_a_bad_base_ref_names_the_option(bad):
    from kensa.cli.options import parse_gate
    from kensa.errors import OptionError

    with pytest.raises(OptionError, match="--thresholds-base"):
        parse_gate([], baselines=(), mode="on", directory="th", update=False, allow_lower=False, alpha=0.05,
                   accept_env_change=False, base=bad)
