"""Every built-in tiny model can run every suite on a fresh clone (``pytest suites --model <any built-in>``):
it has a committed tokenizer snapshot, and its baseline has a thresholds entry for every test the suites
collect for it (a missing entry is an error, never a pass). Checked from the files, without running a model.
"""

from __future__ import annotations

import pytest

from kensa.backends.args import parse_model_args
from kensa.cli.options import default_baseline
from kensa.gate.thresholds import load_thresholds
from kensa.models import model_kind, resolve_model
from kensa.tiny import build as tiny
from kensa.tasks import all_tasks
from tests.helpers import REPO

BUILT_IN = sorted([*tiny.MODELS, *tiny.ALIASES])
SUITES = ("jglue", "quiz", "qa")
TOKENIZER_SNAPSHOTS = REPO / "suites" / "tokenizers" / "__snapshots__" / "test_tokenizer_snapshots"


@pytest.mark.parametrize("name", BUILT_IN)
def test_a_built_in_model_has_its_tokenizer_snapshot(name):
    assert (TOKENIZER_SNAPSHOTS / f"test_tokenizer[{name}].tokens.txt").is_file(), \
        f"run `pytest suites/tokenizers --model {name} --snapshot-update` and commit the snapshot"


@pytest.mark.parametrize("name", BUILT_IN)
def test_a_built_in_model_has_a_thresholds_entry_for_every_test_it_runs(name):
    spec = resolve_model(name, parse_model_args(None))
    kind = model_kind(spec)
    assert kind in ("causal", "seq2seq")
    tasks = [t for t in all_tasks() if t.suite in SUITES]
    known = {v.task_id: t.metrics for t in all_tasks() for v in t.variants()}
    baseline = default_baseline(spec)
    entries = load_thresholds(REPO / "thresholds" / f"{baseline}.toml", baseline, known).entries
    runs = {v.task_id for t in tasks for v in t.variants() if v.applies_to(kind)}
    assert sorted(runs - set(entries)) == [], f"thresholds/{baseline}.toml lacks entries"
