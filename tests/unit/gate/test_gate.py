"""kensa.gate.verdicts and kensa.gate.update: preconditions, the verdict, Holm over a session, flips, updates.

Runs, entries and items are built by hand (no model). Expected numbers are literals with their arithmetic beside
them (McNemar p = 0.5**b when c = 0, Holm by hand, the MDE from the normal quantiles), never recomputed through the
code under test. The hypothesis properties check the design's central claim: whatever a test fails on its own
(``fails_now``) the session's Holm step-down (``finalize``) fails too.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kensa.gate import verdicts as gate
from kensa.gate.thresholds import (
    Entry,
    Items,
    Thresholds,
    ThresholdsError,
    load_items,
    load_thresholds,
    write_items,
    write_thresholds,
)
from kensa.gate.update import Change, apply_update, write_update
from kensa.gate.verdicts import (
    FAILING,
    BaselineStore,
    Check,
    GateSettings,
    RunRecord,
    compare,
    compare_models,
    default_abs_floor,
    fails_now,
    finalize,
    flips,
    precheck,
    rows_for_changes,
    stale_reasons,
)
from tests.helpers import GATE_BASELINE as BASE
from tests.helpers import GATE_ENV as ENV
from tests.helpers import GATE_FEW as FEW
from tests.helpers import GATE_KNOWN as KNOWN
from tests.helpers import GATE_MODEL as MODEL
from tests.helpers import GATE_SHA as SHA
from tests.helpers import GATE_TID as TID
from tests.helpers import GATE_TID2 as TID2
from tests.helpers import by_metric, entry_for, gate_rows, run_record

HINT = f"pytest suites --model {MODEL} --baseline {BASE} --thresholds-update"
# Normal quantiles, written out: z(0.05) = 1.6448536, z(0.025) = 1.9599640, z(0.2) = 0.8416212.
Z_05, Z_025, Z_20 = 1.6448536269514722, 1.959963984540054, 0.8416212335729143
FAST = settings(max_examples=300)


# -- factories -----------------------------------------------------------------------------------

def ones(k: int, n: int) -> list[float]:
    """k ones then n - k zeros: a binary per-item outcome."""
    return [1.0] * k + [0.0] * (n - k)


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def store_with(tmp_path: Path, *entries: Entry, items: dict[str, Items] | None = None) -> BaselineStore:
    th = Thresholds(path=tmp_path / f"{BASE}.toml", baseline=BASE, entries={e.task_id: e for e in entries},
                    environment=dict(ENV))
    write_thresholds(th)
    for e in entries:
        if items and e.task_id in items:
            write_items(tmp_path, e.items, e, items[e.task_id])
    return BaselineStore(tmp_path, KNOWN)


# -- stale entries, missing entries, other environments --------------------------------------------

BASE_RUN = run_record(ones(15, 20))


@pytest.mark.parametrize(("over", "reason"), [
    (dict(task_version="1.2"), "task version 1.1 -> 1.2"),
    (dict(prompt_version="0.4"), "prompt version 0.3 -> 0.4"),
    (dict(num_fewshot=2), "num_fewshot 3 -> 2"),
    (dict(limit=10), "limit None -> 10"),
    (dict(n=19), "n 20 -> 19"),
    (dict(data_sha256="e" * 64), "eval data sha256 aaaaaaaaaaaa -> eeeeeeeeeeee"),
    (dict(fewshot_sha256="f" * 64), "few-shot pool sha256 bbbbbbbbbbbb -> ffffffffffff"),
    (dict(fewshot_sha256=None), "few-shot pool sha256 bbbbbbbbbbbb -> "),
])
def test_stale_reasons_name_each_difference(tmp_path, over, reason):
    entry = entry_for(BASE_RUN)
    run = replace(BASE_RUN, **over)
    assert stale_reasons(entry, BASE_RUN) == []
    assert stale_reasons(entry, run) == [reason]

    got, rows = precheck(store_with(tmp_path, entry), run, GateSettings())
    assert got == entry
    assert [r.metric for r in rows] == ["acc", "acc_norm"]
    for r in rows:
        assert r.status == "stale" and r.failed
        assert reason in r.message and f"entry {TID} is stale" in r.message
        assert f"`{HINT}`" in r.message and str(tmp_path / f"{BASE}.toml") in r.message
        assert r.p is None


def test_stale_reasons_list_every_difference():
    run = replace(BASE_RUN, task_version="2.0", num_fewshot=0, data_sha256="e" * 64)
    assert stale_reasons(entry_for(BASE_RUN), run) == [
        "task version 1.1 -> 2.0", "num_fewshot 3 -> 0", "eval data sha256 aaaaaaaaaaaa -> eeeeeeeeeeee"]


def test_a_gated_metric_without_baseline_is_stale(tmp_path):
    entry = entry_for(run_record(ones(15, 20), gated=("acc",)))
    assert stale_reasons(entry, BASE_RUN) == ["no baseline for metric(s) acc_norm"]
    _, rows = precheck(store_with(tmp_path, entry), BASE_RUN, GateSettings())
    assert {r.status for r in rows} == {"stale"}
    assert "no baseline for metric(s) acc_norm" in rows[0].message


def test_an_entry_that_matches_passes_the_precheck(tmp_path):
    entry = entry_for(BASE_RUN)
    assert precheck(store_with(tmp_path, entry), BASE_RUN, GateSettings()) == (entry, [])


def test_missing_file(tmp_path):
    entry, rows = precheck(BaselineStore(tmp_path, KNOWN), BASE_RUN, GateSettings())
    assert entry is None
    assert [(r.metric, r.status) for r in rows] == [("acc", "missing"), ("acc_norm", "missing")]
    assert f"no thresholds file {tmp_path / (BASE + '.toml')}" in rows[0].message
    assert f"`{HINT}`" in rows[0].message and all(r.failed for r in rows)


def test_missing_entry(tmp_path):
    other = entry_for(replace(BASE_RUN, task_id=TID2, prompt_version="0.2"))
    entry, rows = precheck(store_with(tmp_path, other), BASE_RUN, GateSettings())
    assert entry is None
    assert {r.status for r in rows} == {"missing"}
    assert f"has no entry for {TID}" in rows[0].message and f"`{HINT}`" in rows[0].message


def test_update_command_is_filled_in(tmp_path):
    s = GateSettings(update_command="make gate MODEL={model} BASELINE={baseline}")
    _, rows = precheck(BaselineStore(tmp_path, KNOWN), BASE_RUN, s)
    assert f"`make gate MODEL={MODEL} BASELINE={BASE}`" in rows[0].message


@pytest.mark.parametrize(("key", "value", "said"), [
    ("dtype", "bfloat16", "dtype float32 -> bfloat16"),
    ("device", "cuda", "device cpu -> cuda"),
    ("torch", "2.14.0+cpu", "torch 2.13.0+cpu -> 2.14.0+cpu"),
    ("transformers", "5.24.0", "transformers 5.23.0 -> 5.24.0"),
    ("backend", "vllm", "backend hf -> vllm"),
    ("quantization", "int8", "quantization none -> int8"),
])
def test_another_environment_is_incomparable(tmp_path, key, value, said):
    entry = entry_for(BASE_RUN)
    run = replace(BASE_RUN, environment={**ENV, key: value})
    store = store_with(tmp_path, entry)
    got, rows = precheck(store, run, GateSettings())
    assert got == entry
    assert {r.status for r in rows} == {"incomparable"}
    assert said in rows[0].message and "--accept-env-change" in rows[0].message and f"`{HINT}`" in rows[0].message
    assert "`python -m kensa doctor`" in rows[0].message

    # --accept-env-change: the precheck passes and every compared row says what changed.
    s = GateSettings(accept_env_change=True)
    got, rows = precheck(store, run, s)
    assert (got, rows) == (entry, [])
    compared = compare(entry, BASE_RUN.items, run, s, store.path(BASE))
    assert len(compared) == 2
    for r in compared:
        assert f"environment changed ({said}), compared under --accept-env-change" in r.message
        assert r.p == 1.0


@pytest.mark.parametrize(("key", "value"), [("torch", "2.13.1+cpu"), ("torch", "2.13.0"),
                                            ("transformers", "5.23.4"), ("batch_size", "8")])
def test_a_patch_release_or_batch_size_is_comparable(tmp_path, key, value):
    entry = entry_for(BASE_RUN)
    run = replace(BASE_RUN, environment={**ENV, key: value})
    assert precheck(store_with(tmp_path, entry), run, GateSettings()) == (entry, [])
    rows = compare(entry, BASE_RUN.items, run, GateSettings(), Path("t.toml"))
    assert all("environment" not in r.message for r in rows)


@pytest.mark.parametrize("text", ['schema_version = 1\nbaseline = "org-model"\n[entries\n',
                                  'schema_version = 2\nbaseline = "org-model"\n',
                                  'schema_version = 1\nbaseline = "org-model"\nvalue = 1\n'])
def test_a_malformed_thresholds_file_is_an_error_row_never_a_pass(tmp_path, text):
    (tmp_path / f"{BASE}.toml").write_text(text, encoding="utf-8")
    entry, rows = precheck(BaselineStore(tmp_path, KNOWN), BASE_RUN, GateSettings())
    assert entry is None
    assert [(r.metric, r.status) for r in rows] == [("acc", "error"), ("acc_norm", "error")]
    assert str(tmp_path / f"{BASE}.toml") in rows[0].message
    assert fails_now(rows, GateSettings()) == rows
    assert all(r.failed for r in finalize(rows, 0.05))


def test_bad_items_raise_when_the_store_reads_them(tmp_path):
    entry = entry_for(BASE_RUN)
    store = store_with(tmp_path, entry, items={TID: BASE_RUN.items})
    th = store.get(BASE)
    assert store.items(th, entry) == BASE_RUN.items
    wrong = replace(entry, data_sha256="e" * 64)
    with pytest.raises(ThresholdsError, match="line 1: data_sha256"):
        BaselineStore(tmp_path, KNOWN).items(th, wrong)
    assert store.items(th, replace(entry, items=None)) is None


# -- compare + finalize: hand-computed McNemar --------------------------------------------------------

def test_eight_docs_lost_of_twenty_fails_with_holm():
    base = run_record(ones(20, 20))
    cand = run_record([0.0] * 8 + [1.0] * 12, acc_norm=ones(20, 20))
    entry = entry_for(base)
    s = GateSettings(family_size=2)
    rows = compare(entry, base.items, cand, s, Path("t.toml"))
    acc = by_metric(rows)["acc"]
    assert acc.method == "mcnemar-exact"
    assert acc.details["b"] == 8 and acc.details["c"] == 0
    assert acc.p == 0.5 ** 8  # P(X >= 8), X ~ Bin(8, 1/2)
    assert acc.p_gain == 1.0  # P(X >= 0)
    assert acc.base == 1.0 and acc.score == 0.6
    assert acc.delta == pytest.approx(-0.4) and acc.drop == pytest.approx(0.4)
    assert acc.abs_floor == pytest.approx(1 / 20)  # CPU: one document
    assert acc.hard_limit == pytest.approx(0.05)
    assert acc.flips == 8 and acc.n == 20
    # MDE at alpha / m = 0.025 with psi = 8 / 20 discordant: (z(0.025) + z(0.2)) * sqrt(0.4 / 20)
    assert acc.mde == pytest.approx((Z_025 + Z_20) * math.sqrt(0.4 / 20), rel=1e-6)
    # The test fails on its own: p * m = 0.0078125 < 0.05.
    assert [(r.metric, r.status) for r in fails_now(rows, s)] == [("acc", "fail")]

    final = by_metric(finalize(rows, 0.05))
    assert final["acc"].p_holm == 2 * 0.5 ** 8  # Holm with m = 2: smallest p times 2
    assert final["acc"].status == "fail"
    assert final["acc_norm"].p == 1.0 and final["acc_norm"].p_holm == 1.0
    # Identical acc_norm on 20 docs: MDE (z(0.025) + z(0.2)) * sqrt(0.1 / 20) = 0.198 > 2 / 20: underpowered.
    assert final["acc_norm"].mde == pytest.approx(0.19810, abs=1e-4)
    assert final["acc_norm"].status == "underpowered" and not final["acc_norm"].failed


def test_a_drop_below_abs_floor_never_fails_however_small_p():
    base = run_record(ones(20, 20))
    cand = run_record([0.0] * 8 + [1.0] * 12, acc_norm=ones(20, 20))
    rows = gate_rows(base, cand, family_size=1, acc={"abs_floor": 0.5})
    acc = by_metric(rows)["acc"]
    assert acc.p == 0.5 ** 8 and acc.p_holm < 0.01 and acc.drop == pytest.approx(0.4) and acc.abs_floor == 0.5
    assert acc.status == "pass"  # MDE 0.40 < 2 * 0.5
    assert fails_now(compare(entry_for(base, acc={"abs_floor": 0.5}), base.items, cand, GateSettings(),
                             Path("t.toml")), GateSettings()) == []


def test_an_identical_candidate_passes_with_p_1():
    base = run_record([1.0, 0.0, 1.0, 1.0] * 5)
    rows = gate_rows(base, base, acc={"abs_floor": 0.25}, acc_norm={"abs_floor": 0.25})
    for r in rows:
        assert r.status == "pass"
        assert (r.p, r.p_gain, r.p_holm, r.delta, r.drop, r.flips) == (1.0, 1.0, 1.0, 0.0, 0.0, 0)
        assert r.details["b"] == r.details["c"] == 0


def test_an_improvement_asks_to_raise_the_baseline():
    base = run_record(ones(12, 20))
    cand = run_record(ones(20, 20))
    acc = by_metric(gate_rows(base, cand))["acc"]
    assert (acc.details["b"], acc.details["c"]) == (0, 8)
    assert acc.p == 1.0 and acc.p_gain == 0.5 ** 8
    assert acc.delta == pytest.approx(0.4) and acc.drop == pytest.approx(-0.4)
    assert acc.flips == 0
    assert acc.status == "raise baseline" and not acc.failed


def test_small_n_is_underpowered_when_nothing_else_applies():
    base = run_record(ones(7, 10))
    acc = by_metric(gate_rows(base, base, family_size=1))["acc"]
    # floor 1/10; MDE = (z(0.05) + z(0.2)) * sqrt(0.1 / 10) = 0.2486 > 2 * 0.1
    assert acc.abs_floor == pytest.approx(0.1)
    assert acc.mde == pytest.approx((Z_05 + Z_20) * math.sqrt(0.1 / 10), rel=1e-6)
    assert acc.status == "underpowered" and not acc.failed


def hard_case(both_right: int) -> tuple[RunRecord, RunRecord]:
    """b = 66 docs only the baseline got right, c = 50 only the candidate: a 16-doc drop, p = 0.081."""
    base = [1.0] * 66 + [0.0] * 50 + [1.0] * both_right + [0.0] * 84
    cand = [0.0] * 66 + [1.0] * 50 + [1.0] * both_right + [0.0] * 84
    return run_record(base, acc_norm=base), run_record(cand, acc_norm=base)


def binom_upper(k: int, n: int) -> float:
    """P(X >= k), X ~ Bin(n, 1/2), by exact integer arithmetic."""
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n


def test_hard_limit_fails_whatever_p_says_at_n_300():
    base, cand = hard_case(100)  # n = 300, drop 16 / 300 = 5.33 points
    rows = compare(entry_for(base), base.items, cand, GateSettings(family_size=2), Path("t.toml"))
    acc = by_metric(rows)["acc"]
    assert acc.n == 300 and acc.drop == pytest.approx(16 / 300)
    assert acc.p == pytest.approx(binom_upper(66, 116), rel=1e-9)
    assert acc.p > 0.05  # not significant, even before Holm
    assert acc.hard_limit == pytest.approx(0.05)
    assert [(r.metric, r.status) for r in fails_now(rows, GateSettings(family_size=2))] == \
        [("acc", "fail (hard limit)")]
    assert by_metric(finalize(rows, 0.05))["acc"].status == "fail (hard limit)"


def test_hard_limit_needs_n_300():
    base, cand = hard_case(99)  # n = 299: the same 16-doc drop is judged by p alone
    acc = by_metric(gate_rows(base, cand))["acc"]
    assert acc.n == 299 and acc.drop > 0.05 and acc.p > 0.05
    assert not acc.failed


def test_hard_limit_override_per_entry():
    base, cand = hard_case(100)
    acc = by_metric(gate_rows(base, cand, acc={"hard_limit": 0.06}))["acc"]
    assert acc.hard_limit == 0.06 and not acc.failed


def test_a_drop_of_exactly_five_points_hits_the_hard_limit():
    # 210 -> 195 of 300 docs is exactly 5 points; b = 65, c = 50, p = P(Bin(115, 1/2) >= 65) = 0.096.
    base_items = [1.0] * 65 + [0.0] * 50 + [1.0] * 145 + [0.0] * 40
    cand_items = [0.0] * 65 + [1.0] * 50 + [1.0] * 145 + [0.0] * 40
    base, cand = run_record(base_items, acc_norm=base_items), run_record(cand_items, acc_norm=base_items)
    assert (sum(base_items), sum(cand_items), len(base_items)) == (210, 195, 300)
    acc = by_metric(gate_rows(base, cand))["acc"]
    assert acc.p > 0.05
    assert acc.status == "fail (hard limit)"


def test_lower_is_better_flips_the_sign_of_the_drop():
    base = run_record(ones(2, 20))  # 0.1, say an error rate
    cand = run_record(ones(10, 20), acc_norm=ones(2, 20))  # 0.5: worse when lower is better
    rows = compare(entry_for(base, acc={"direction": "lower"}), base.items, cand, GateSettings(family_size=2),
                   Path("t.toml"))
    acc = by_metric(rows)["acc"]
    assert acc.delta == pytest.approx(0.4)  # the metric's own sign
    assert acc.drop == pytest.approx(0.4)  # positive = worse
    assert acc.details["b"] == 8 and acc.p == 0.5 ** 8 and acc.p_gain == 1.0
    assert acc.flips == 8
    assert by_metric(finalize(rows, 0.05))["acc"].status == "fail"

    # The same change read the other way round is an improvement.
    back = by_metric(gate_rows(cand, base, acc={"direction": "lower"}))["acc"]
    assert back.delta == pytest.approx(-0.4) and back.drop == pytest.approx(-0.4)
    assert back.p == 1.0 and back.p_gain == 0.5 ** 8 and back.flips == 0
    assert back.status == "raise baseline"


def test_default_abs_floor():
    assert default_abs_floor("multiple_choice", "cpu", 40, 1.0) == 1 / 40
    assert default_abs_floor("generation", "cpu", 200, 100.0) == 0.5
    assert default_abs_floor("multiple_choice", "cuda", 40, 1.0) == pytest.approx(0.005)
    assert default_abs_floor("generation", "cuda", 40, 1.0) == pytest.approx(0.01)
    assert default_abs_floor("generation", "cuda", 40, 100.0) == pytest.approx(1.0)
    assert default_abs_floor("something-new", "mps", 40, 1.0) == pytest.approx(0.01)


def test_gpu_runs_use_the_gpu_floor():
    base = run_record(ones(15, 20), env={**ENV, "device": "cuda"})
    acc = by_metric(gate_rows(base, base))["acc"]
    assert acc.abs_floor == pytest.approx(0.005)


# -- the unpaired fallback ------------------------------------------------------------------------------

def normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


@pytest.mark.parametrize("how", ["no items", "rule stderr"])
def test_unpaired_fallback(how):
    base = run_record(ones(16, 20), gated=("acc",))
    cand = run_record(ones(14, 20), gated=("acc",), metrics={"acc": 0.7, "acc_stderr": 0.03})
    mb = {"value": 0.8, "stderr": 0.04}
    if how == "no items":
        entry, items = entry_for(base, items=False, acc=mb), None
    else:
        entry, items = entry_for(base, acc={**mb, "rule": "stderr"}), base.items
    rows = compare(entry, items, cand, GateSettings(family_size=1), Path("t.toml"))
    acc = rows[0]
    assert acc.method == "z-unpaired"
    assert "no per-item outcomes stored: unpaired z fallback" in acc.message
    # drop 0.1, se = sqrt(0.04**2 + 0.03**2) = 0.05, z = 2
    assert acc.drop == pytest.approx(0.1)
    assert acc.p == pytest.approx(normal_sf(2.0), rel=1e-9)  # 0.02275
    assert acc.p_gain == pytest.approx(normal_sf(-2.0), rel=1e-9)  # 0.97725
    assert acc.mde == pytest.approx((Z_05 + Z_20) * 0.05, rel=1e-6)  # 0.1243
    assert acc.flips is None
    assert acc.status == "fail"  # p < 0.05 and drop >= 1/20
    # In a session of 3 metrics: Holm's first step 3 * 0.02275 = 0.068 is not < 0.05.
    assert fails_now(rows, GateSettings(family_size=3)) == []


def test_items_of_other_documents_are_an_error_naming_the_first_difference():
    keys = list(range(20))
    other = keys[:5] + ["x"] + keys[6:]
    base = run_record(ones(15, 20))
    cand = run_record(ones(15, 20), keys=other)
    rows = compare(entry_for(base), base.items, cand, GateSettings(), Path("th/org-model.toml"))
    assert [(r.metric, r.status) for r in rows] == [("acc", "error"), ("acc_norm", "error")]
    msg = rows[0].message
    assert "th/org-model.toml" in msg and "are not this run's documents" in msg
    assert "doc 5: 5 vs 'x'" in msg and f"`{HINT}`" in msg
    assert all(r.p is None for r in rows)
    assert fails_now(rows, GateSettings()) == rows
    assert [r.status for r in finalize(rows, 0.05)] == ["error", "error"]


def test_items_of_another_length_are_an_error():
    base = run_record(ones(15, 20))
    shorter = Items(list(range(19)), {m: v[:19] for m, v in base.items.values.items()})
    rows = compare(entry_for(base), shorter, base, GateSettings(), Path("t.toml"))
    assert {r.status for r in rows} == {"error"} and "19 vs 20 docs" in rows[0].message


# -- Holm over the session --------------------------------------------------------------------------

def row(metric: str, p: float | None, *, drop: float = 0.1, floor: float = 0.01, hard: float = 0.05, n: int = 100,
        status: str = "pass", p_gain: float = 1.0, mde: float | None = None, task_id: str = TID) -> Check:
    return Check(MODEL, BASE, task_id, metric, status, n=n, p=p, p_gain=None if p is None else p_gain, drop=drop,
                 abs_floor=None if p is None else floor, hard_limit=None if p is None else hard, mde=mde)


def test_holm_step_down_over_three_rows():
    rows = [row("a", 0.04), row("b", 0.01), row("c", 0.02)]
    final = finalize(rows, 0.05)
    # sorted 0.01, 0.02, 0.04 -> 3 * 0.01 = 0.03, 2 * 0.02 = 0.04, max(0.04, 1 * 0.04) = 0.04
    assert [r.p_holm for r in final] == pytest.approx([0.04, 0.03, 0.04])
    assert [r.status for r in final] == ["fail", "fail", "fail"]
    assert [r.metric for r in final] == ["a", "b", "c"]  # same rows, same order
    # At test time only Holm's first step is known: 3 * 0.01 < 0.05; 3 * 0.02 and 3 * 0.04 are not.
    assert [r.metric for r in fails_now(rows, GateSettings(family_size=3))] == ["b"]
    # finalize does not touch its input
    assert [r.p_holm for r in rows] == [None, None, None]


def test_holm_stops_at_the_first_non_rejection():
    rows = [row("a", 0.01), row("b", 0.03), row("c", 0.04)]
    final = finalize(rows, 0.05)
    # 3 * 0.01 = 0.03 rejects; 2 * 0.03 = 0.06 does not, so neither does c (max(0.06, 0.04) = 0.06).
    assert [r.p_holm for r in final] == pytest.approx([0.03, 0.06, 0.06])
    assert [r.status for r in final] == ["fail", "pass", "pass"]


def test_finalize_keeps_rows_without_p_and_leaves_them_out_of_the_family():
    rows = [row("a", None, status="missing"), row("b", 0.02), row("c", None, status="stale"), row("d", 0.03)]
    final = finalize(rows, 0.05)
    assert len(final) == len(rows)
    assert final[0] is rows[0] and final[2] is rows[2]
    assert [r.p_holm for r in final] == pytest.approx([None, 0.04, None, 0.04])  # m = 2, not 4
    assert [r.status for r in final] == ["missing", "fail", "stale", "fail"]


def test_lost_comparisons_keep_the_family_at_its_planned_size():
    """Two rows compared out of four planned (a worker died under the other tests): the missing two count
    as p = 1, so Holm scales by 4 and 3, not 2 and 1, and a drop that two rows alone would fail passes."""
    rows = [row("a", 0.02), row("b", 0.03)]
    assert [r.status for r in finalize(rows, 0.05)] == ["fail", "fail"]
    final = finalize(rows, 0.05, family_size=4)
    assert [r.p_holm for r in final] == pytest.approx([0.08, 0.09])
    assert [r.status for r in final] == ["pass", "pass"]
    assert [r.p_holm for r in finalize(rows, 0.05, family_size=1)] == pytest.approx([0.04, 0.04])  # never smaller


def test_finalize_of_nothing():
    assert finalize([], 0.05) == []
    assert fails_now([], GateSettings()) == []


def test_subset_needs_family_size_at_least_the_compared_rows():
    """The claim holds only when family_size >= the rows finalize sees (the plugin counts them at collection)."""
    rows = [row(m, 0.04) for m in "abc"]
    assert len(fails_now(rows, GateSettings(family_size=1))) == 3  # too small an m: 0.04 < 0.05
    assert not any(r.failed for r in finalize(rows, 0.05))  # Holm: 3 * 0.04 = 0.12


@pytest.mark.parametrize(("rows", "m"), [
    # a: significant but below the floor; its step lets b through: max(2 * 0.001, 0.04) < 0.05, 2 * 0.04 is not.
    ([row("a", 0.001, drop=0.001, floor=0.01), row("b", 0.04)], 2),
    # 10 metrics collected, one compared (the others skipped): 10 * 0.01 = 0.1 at test time, 0.01 at the end.
    ([row("a", 0.01)], 10),
])
def test_finalize_can_fail_rows_whose_tests_passed(rows, m):
    """Holm's later steps are more lenient than the first (and skipped tests shrink the family):
    the session fails rows no test failed. The plugin then fails the session and names them."""
    assert fails_now(rows, GateSettings(family_size=m)) == []
    assert any(r.failed for r in finalize(rows, 0.05))


# -- the property: test-time failures are a subset of the session verdict -------------------------------

def reference_holm(ps: list[float]) -> list[float]:
    """Holm by its definition: adjusted p_i = max over p_j <= p_i of min(1, (m - rank_j) * p_j)."""
    q = sorted(ps)
    m = len(q)
    return [max(min(1.0, (m - s) * q[s]) for s in range(m) if q[s] <= p) for p in ps]


@st.composite
def sessions(draw) -> tuple[list[Check], int, float]:
    """Rows of a session, its family size m (>= the rows with a p-value, often equal) and alpha."""
    alpha = draw(st.sampled_from([0.01, 0.05, 0.1]) | st.floats(0.001, 0.5))
    # One row in six has no p: from the precheck, or a compare error.
    kinds = draw(st.lists(st.sampled_from(["p"] * 5 + ["none"]), min_size=1, max_size=12))
    m = max(1, kinds.count("p") + draw(st.sampled_from([0, 0, 0, 1, 3])))
    # p-values on and around the boundaries p * j = alpha that Holm's steps and the first step test.
    near = [x for j in range(1, m + 1) for e in [alpha / j] for x in (e, math.nextafter(e, 0), math.nextafter(e, 1))]
    p_value = st.one_of(st.floats(0.0, 1.0), st.sampled_from(near), st.sampled_from([0.0, 1.0, *near]))
    floor = st.sampled_from([0.0, 0.005, 0.01, 0.05]) | st.floats(0.0, 0.1)
    hard = st.sampled_from([0.05, 0.0]) | st.floats(0.0, 0.2)
    compared = st.tuples(p_value, p_value, floor, hard, st.floats(-0.3, 0.3) | st.sampled_from(["floor", "hard"]),
                         st.sampled_from([10, 299, 300, 5000]), st.none() | st.floats(0.0, 1.0),
                         st.sampled_from([TID, TID2]))
    rows = []
    for i, kind in enumerate(kinds):
        if kind == "none":
            rows.append(row(f"m{i}", None, status=draw(st.sampled_from([*FAILING, "pass"]))))
            continue
        p, p_gain, fl, hl, drop, n, mde, task_id = draw(compared)
        drop = fl if drop == "floor" else hl if drop == "hard" else drop  # exactly on a boundary
        rows.append(row(f"m{i}", p, drop=drop, floor=fl, hard=hl, n=n, p_gain=p_gain, mde=mde, task_id=task_id))
    return rows, m, alpha


@FAST
@given(sessions())
def test_every_test_time_failure_is_a_session_failure(session):
    rows, m, alpha = session
    before = copy.deepcopy(rows)
    now = fails_now(rows, GateSettings(alpha=alpha, family_size=m))
    final = finalize(rows, alpha)
    assert rows == before  # neither mutates its input
    assert [(r.task_id, r.metric) for r in final] == [(r.task_id, r.metric) for r in rows]
    by_name = {r.metric: r for r in final}
    assert len(by_name) == len(rows)
    for r in now:
        assert r.failed
        assert by_name[r.metric].failed, (r, by_name[r.metric])
        assert by_name[r.metric].status == r.status  # the same reason: hard limit either way, or p and floor
    # Rows without a p-value pass through untouched, failed exactly when their status says so.
    for r, f in zip(rows, final):
        if r.p is None:
            assert f is r
            assert (r in now) == r.failed


@settings(max_examples=150)
@given(sessions())
def test_finalize_is_holm_over_the_compared_rows(session):
    from kensa.gate import verdicts as gate

    rows, _, alpha = session
    final = finalize(rows, alpha)
    compared = [i for i, r in enumerate(rows) if r.p is not None]
    expected = reference_holm([rows[i].p for i in compared])
    for i, adj in zip(compared, expected):
        f = final[i]
        assert f.p_holm == pytest.approx(adj, rel=1e-12, abs=1e-300)
        assert rows[i].p <= f.p_holm <= min(1.0, rows[i].p * len(compared)) * (1 + 1e-12)
        # The verdict allows EPS of float slack at both limits (0.70 - 0.65 must meet a 0.05 limit).
        hard = f.n >= 300 and f.drop >= f.hard_limit - gate.EPS
        significant = f.p_holm < alpha and f.drop >= f.abs_floor - gate.EPS
        assert (f.status == "fail (hard limit)") == hard
        assert (f.status == "fail") == (not hard and significant)
        assert f.failed == (hard or significant)


    # A row alone in its family (m = 1): the test and the session decide exactly the same.
    for r in rows:
        if r.p is not None:
            assert [c.status for c in fails_now([r], GateSettings(alpha=alpha, family_size=1))] == \
                [c.status for c in finalize([r], alpha) if c.failed]


# -- flips ----------------------------------------------------------------------------------------------

def samples(acc: list[float], acc_norm: list[float]) -> list[dict[str, Any]]:
    return [{"doc_id": i, "acc": a, "acc_norm": b, "prompt": f"問題 {i}", "continuations": ["A", "B"],
             "loglikelihoods": [-1.0, -2.0], "pred": 0, "gold": int(a == 0), "unrelated": "x"}
            for i, (a, b) in enumerate(zip(acc, acc_norm))]


def test_flips_are_exactly_the_docs_that_went_from_1_to_0():
    base = Items(["q0", "q1", "q2", "q3", "q4"], {"acc": [1, 1, 0, 1, 0], "acc_norm": [1, 0, 0, 1, 1]})
    run = samples([0.0, 1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 1.0, 0.0])
    got = flips(base, run, ["acc", "acc_norm"], {"acc": "higher", "acc_norm": "higher"})
    assert [(f["metric"], f["doc_id"], f["key"]) for f in got] == [("acc", 0, "q0"), ("acc", 3, "q3"),
                                                                   ("acc_norm", 4, "q4")]
    first = got[0]
    assert first == {"metric": "acc", "doc_id": 0, "key": "q0", "baseline": 1, "candidate": 0.0,
                     "prompt": "問題 0", "continuations": ["A", "B"], "loglikelihoods": [-1.0, -2.0], "pred": 0,
                     "gold": 1}
    assert "unrelated" not in first and "generation" not in first


def test_flips_with_lower_is_better():
    base = Items([0, 1, 2], {"acc": [0.0, 1.0, 0.0]})
    run = samples([1.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    got = flips(base, run, ["acc"], {"acc": "lower"})
    assert [(f["doc_id"], f["baseline"], f["candidate"]) for f in got] == [(0, 0.0, 1.0)]
    assert flips(base, run, ["acc"], {}) == flips(base, run, ["acc"], {"acc": "higher"})
    assert [f["doc_id"] for f in flips(base, run, ["acc"], {})] == [1]


def test_flips_count_matches_the_rows_flips():
    base = run_record([1.0, 1.0, 0.0, 1.0, 1.0, 0.0] * 4)
    cand_acc = [0.0, 1.0, 1.0, 1.0, 0.0, 0.0] * 4
    cand = run_record(cand_acc, acc_norm=base.items.values["acc_norm"])
    rows = by_metric(gate_rows(base, cand))
    got = flips(base.items, samples(cand_acc, base.items.values["acc_norm"]), ["acc", "acc_norm"], {})
    assert rows["acc"].flips == sum(1 for f in got if f["metric"] == "acc") == 8
    assert rows["acc_norm"].flips == 0


# -- rows for an updating run, and model against model ------------------------------------------------------

def test_rows_for_changes():
    base = run_record(ones(15, 20))
    old = Thresholds(path=Path("t.toml"), baseline=BASE, entries={TID: entry_for(base)})
    run1 = run_record(ones(12, 20))
    run2 = run_record(ones(5, 10), task_id=TID2, prompt_version="0.2")
    changes = [Change(BASE, TID, "refused", "acc 0.7500 -> 0.6000: lowering needs --allow-lower"),
               Change(BASE, TID2, "created")]
    rows = rows_for_changes(old, [run1, run2], changes)
    assert [(r.task_id, r.metric, r.status) for r in rows] == [
        (TID, "acc", "refused"), (TID, "acc_norm", "refused"), (TID2, "acc", "created"), (TID2, "acc_norm", "created")]
    assert rows[0].base == 0.75 and rows[0].score == 0.6 and rows[0].delta == pytest.approx(-0.15)
    assert rows[0].message == changes[0].detail and rows[0].n == 20
    assert rows[0].stderr == run1.metrics["acc_stderr"]
    assert rows[2].base is None and rows[2].delta is None and rows[2].score == 0.5
    assert all(r.p is None for r in rows)


def test_compare_models_is_two_sided_on_the_same_docs():
    a = run_record([1.0] * 10 + [0.0] * 10, model="org/a")
    b_acc = [0.0] * 8 + [1.0] * 2 + [0.0] * 8 + [1.0] * 2  # b = 8 (a right, b wrong), c = 2
    b = run_record(b_acc, acc_norm=a.items.values["acc"], model="org/b")
    got = {p.metric: p for p in compare_models(a, b)}
    acc = got["acc"]
    assert (acc.model_a, acc.model_b, acc.n, acc.method) == ("org/a", "org/b", 20, "mcnemar-exact")
    assert acc.a == 0.5 and acc.b == 0.2 and acc.delta == pytest.approx(-0.3)
    # two-sided exact binomial, 8 of 10: 2 * (C(10,8) + C(10,9) + C(10,10)) / 2**10 = 112 / 1024
    assert acc.p == pytest.approx(112 / 1024, rel=1e-12)
    assert got["acc_norm"].p == 1.0 and got["acc_norm"].delta == 0.0
    # Symmetric: B against A gives the same p and the opposite delta.
    back = {p.metric: p for p in compare_models(b, a)}["acc"]
    assert back.p == pytest.approx(acc.p) and back.delta == pytest.approx(0.3)


def test_compare_models_refuses_different_documents():
    a = run_record(ones(10, 20), model="org/a")
    b = run_record(ones(10, 20), model="org/b", keys=list(range(1, 21)))
    with pytest.raises(ValueError, match="org/a and org/b scored different documents"):
        compare_models(a, b)


# -- kensa.gate.update ---------------------------------------------------------------------------------------

DATE = "2026-12-01T00:00:00Z"
PROV = {"command": "pytest suites --thresholds-update", "git_sha": "0" * 40}


def old_thresholds(tmp_path: Path, *entries: Entry) -> Thresholds:
    return Thresholds(path=tmp_path / f"{BASE}.toml", baseline=BASE, entries={e.task_id: e for e in entries},
                      environment=dict(ENV))


def test_update_creates_a_new_entry(tmp_path):
    th = old_thresholds(tmp_path)
    run = run_record(ones(15, 20))
    new, changes, written = apply_update(th, [run], allow_lower=False, provenance=PROV, date=DATE)
    assert changes == [Change(BASE, TID, "created", "")]
    assert written == [run]
    e = new.entries[TID]
    assert (e.n, e.data_sha256, e.fewshot_sha256, e.updated, e.items) == (20, SHA, FEW, DATE, f"{BASE}/{TID}.jsonl")
    assert e.metrics["acc"].value == 0.75 and e.metrics["acc"].anchor == 0.75 and e.metrics["acc"].n == 20
    assert e.metrics["acc"].direction == "higher" and e.metrics["acc"].rule == "paired"
    assert e.weights_sha256 == "c" * 64 and e.environment == ENV
    assert new.provenance == {**PROV, "date": DATE, "kensa_version": "0.1.0"}
    assert "source" not in new.model and new.model["name"] == MODEL
    assert th.entries == {}  # the input is not mutated


def test_update_raises_and_keeps_the_anchor_and_overrides(tmp_path):
    old = entry_for(run_record(ones(14, 20)), acc={"anchor": 0.6, "abs_floor": 0.02, "hard_limit": 0.1})
    run = run_record(ones(16, 20))
    new, changes, _ = apply_update(old_thresholds(tmp_path, old), [run], allow_lower=False, provenance=PROV,
                                   date=DATE)
    assert [(c.status, c.detail) for c in changes] == [("raised", "acc 0.7000 -> 0.8000; acc_norm 0.7000 -> 0.8000")]
    acc = new.entries[TID].metrics["acc"]
    assert (acc.value, acc.anchor, acc.abs_floor, acc.hard_limit) == (0.8, 0.6, 0.02, 0.1)
    assert new.entries[TID].metrics["acc_norm"].anchor == 0.7


def test_update_without_an_old_anchor_anchors_the_old_value(tmp_path):
    old = entry_for(run_record(ones(14, 20)), acc={"anchor": None}, acc_norm={"anchor": None})
    run = run_record(ones(12, 20))
    new, changes, _ = apply_update(old_thresholds(tmp_path, old), [run], allow_lower=True, provenance=PROV,
                                   date=DATE)
    assert changes[0].status == "lowered"
    assert new.entries[TID].metrics["acc"].anchor == 0.7  # the first value known, not the lowered 0.6


def test_update_refuses_a_lower_score(tmp_path):
    old = entry_for(run_record(ones(14, 20)))
    th = old_thresholds(tmp_path, old)
    snapshot = copy.deepcopy(old)
    new, changes, written = apply_update(th, [run_record(ones(13, 20))], allow_lower=False, provenance=PROV,
                                         date=DATE)
    assert [c.status for c in changes] == ["refused"]
    assert "acc 0.7000 -> 0.6500" in changes[0].detail and "--allow-lower" in changes[0].detail
    assert written == [] and new is th and new.entries[TID] == snapshot


def test_update_lowers_with_allow_lower(tmp_path):
    old = entry_for(run_record(ones(14, 20)))
    new, changes, written = apply_update(old_thresholds(tmp_path, old), [run_record(ones(13, 20))],
                                         allow_lower=True, provenance=PROV, date=DATE)
    assert [(c.status, c.detail) for c in changes] == [("lowered", "acc 0.7000 -> 0.6500; acc_norm 0.7000 -> 0.6500")]
    assert new.entries[TID].metrics["acc"].value == 0.65 and new.entries[TID].metrics["acc"].anchor == 0.7
    assert len(written) == 1


def test_update_one_metric_lower_is_a_lowering(tmp_path):
    old = entry_for(run_record(ones(14, 20)))
    run = run_record(ones(16, 20), acc_norm=ones(13, 20))
    _, changes, written = apply_update(old_thresholds(tmp_path, old), [run], allow_lower=False, provenance=PROV)
    assert [c.status for c in changes] == ["refused"] and written == []
    assert "acc_norm 0.7000 -> 0.6500" in changes[0].detail and "acc " not in changes[0].detail


def test_update_unchanged(tmp_path):
    base = run_record(ones(14, 20))
    _, changes, written = apply_update(old_thresholds(tmp_path, entry_for(base)), [base], allow_lower=False,
                                       provenance=PROV, date=DATE)
    assert changes == [Change(BASE, TID, "unchanged", "")] and written == [base]


@pytest.mark.parametrize(("over", "said"), [
    (dict(n=20), "n 30 -> 20"),
    (dict(data_sha256="e" * 64), "eval data sha256 aaaaaaaaaaaa -> eeeeeeeeeeee"),
    (dict(environment={**ENV, "dtype": "bfloat16"}), "dtype float32 -> bfloat16"),
])
def test_update_replaces_a_stale_entry_even_when_lower(tmp_path, over, said):
    old = entry_for(run_record(ones(30, 30)), acc={"anchor": 0.99})  # every doc right: any run is lower
    run = replace(run_record(ones(10, 30) if "n" not in over else ones(10, 20)), **over)
    new, changes, _ = apply_update(old_thresholds(tmp_path, old), [run], allow_lower=False, provenance=PROV,
                                   date=DATE)
    assert changes[0].status == "replaced" and said in changes[0].detail
    acc = new.entries[TID].metrics["acc"]
    assert acc.value == run.metrics["acc"] and acc.anchor == run.metrics["acc"]  # a new measurement, new anchor


def test_partial_update_keeps_the_other_entries(tmp_path):
    other = entry_for(run_record(ones(3, 10), task_id=TID2, prompt_version="0.2"))
    old = entry_for(run_record(ones(14, 20)))
    th = old_thresholds(tmp_path, old, other)
    new, changes, _ = apply_update(th, [run_record(ones(16, 20))], allow_lower=False, provenance=PROV, date=DATE)
    assert [c.task_id for c in changes] == [TID]
    assert new.entries[TID2] is other
    assert set(new.entries) == {TID, TID2}


def test_write_update_writes_the_items_then_the_toml_and_reads_back(tmp_path, monkeypatch):
    import kensa.gate.update

    th = old_thresholds(tmp_path, entry_for(run_record(ones(3, 10), task_id=TID2, prompt_version="0.2")))
    runs = [run_record([1.0, 0.0, 1.0, 1.0] * 5, acc_norm=ones(11, 20), keys=[f"q{i}" for i in range(20)]),
            run_record(ones(4, 10), task_id=TID2, prompt_version="0.2")]
    new, changes, written = apply_update(th, runs, allow_lower=True, provenance=PROV, date=DATE)
    assert [(c.task_id, c.status) for c in changes] == [(TID2, "raised"), (TID, "created")]  # sorted by task id

    real = kensa.gate.update.write_thresholds
    seen = []

    def checked(t):
        seen.append([(tmp_path / e.items).is_file() for e in t.entries.values()])
        return real(t)

    monkeypatch.setattr(kensa.gate.update, "write_thresholds", checked)
    paths = write_update(new, written)
    assert seen == [[True, True]]  # every items file existed when the TOML was written
    assert paths == [tmp_path / BASE / f"{TID2}.jsonl", tmp_path / BASE / f"{TID}.jsonl", tmp_path / f"{BASE}.toml"]

    loaded = load_thresholds(tmp_path / f"{BASE}.toml", BASE, KNOWN)
    assert loaded.entries == new.entries and loaded.provenance == new.provenance
    for r in runs:
        assert load_items(tmp_path, loaded.entries[r.task_id], loaded.path) == r.items
    # And the gate accepts the written entry: the same run compared with it passes.
    store = BaselineStore(tmp_path, KNOWN)
    entry, rows = precheck(store, runs[0], GateSettings())
    assert rows == []
    checks = compare(entry, store.items(store.get(BASE), entry), runs[0], GateSettings(), store.path(BASE))
    assert [(c.p, c.delta) for c in checks] == [(1.0, 0.0), (1.0, 0.0)]


def test_an_update_from_one_document_can_be_read_back(tmp_path):
    run = run_record([1.0])
    assert math.isnan(run.metrics["acc_stderr"])  # as kensa.metrics.mean_stderr gives for n < 2
    new, _, written = apply_update(old_thresholds(tmp_path), [run], allow_lower=False, provenance=PROV, date=DATE)
    write_update(new, written)
    load_thresholds(tmp_path / f"{BASE}.toml", BASE, KNOWN)


def test_module_defaults_match_the_readme():
    assert (gate.ALPHA, gate.POWER, gate.HARD_LIMIT_POINTS, gate.HARD_LIMIT_MIN_N) == (0.05, 0.8, 5.0, 300)
    assert gate.PLANNING_DISCORDANCE == 0.10
    assert gate.GPU_FLOOR_POINTS == {"multiple_choice": 0.5, "generation": 1.0}


# -- corpus metrics (MCC, macro-F1): items are [gold, pred], the test a paired bootstrap -----------

def _corpus_acc(golds, preds) -> float:
    """A corpus metric simple enough to check by hand: the share of docs whose pred equals gold."""
    return float(sum(int(g == p) for g, p in zip(golds, preds)) / len(golds))


@pytest.fixture
def corpus_metric(monkeypatch):
    from types import SimpleNamespace

    from kensa.metrics import core as metrics

    spec = SimpleNamespace(name="corpus_acc", direction="higher", scale=1.0, items="corpus", compute=_corpus_acc)
    monkeypatch.setitem(metrics.METRICS, "corpus_acc", spec)
    return "corpus_acc"


def corpus_run(preds: list[int], golds: list[int]) -> RunRecord:
    rows = [[float(g), float(p)] for g, p in zip(golds, preds)]
    value = _corpus_acc(golds, preds)
    return run_record(ones(len(preds), len(preds)), gated=("corpus_acc",),
                      metrics={"corpus_acc": value, "corpus_acc_stderr": 0.05},
                      items=Items(list(range(len(preds))), {"corpus_acc": rows}))


def test_a_corpus_metric_drop_fails_by_the_paired_bootstrap(corpus_metric):
    golds = [i % 2 for i in range(60)]
    base = corpus_run(golds, golds)  # all right: 1.0
    cand_preds = [1 - g if i < 30 else g for i, g in enumerate(golds)]  # half wrong: 0.5
    cand = corpus_run(cand_preds, golds)
    entry = entry_for(base)
    [row] = compare(entry, base.items, cand, GateSettings(family_size=1), Path("t.toml"))
    assert row.method == "bootstrap" and row.drop == pytest.approx(0.5)
    # 30 of 60 docs flipped: every resample keeps a drop near 0.5, none reaches 2 * 0.5 -> p = 1 / (1 + 2000).
    assert row.p == pytest.approx(1 / (1 + gate.CORPUS_RESAMPLES))
    assert row.flips == 30 and row.status == "fail" and math.isfinite(row.mde)
    [final] = finalize([row], 0.05)
    assert final.status == "fail"


def test_a_corpus_metric_without_change_passes_and_flips_read_gold_and_pred(corpus_metric):
    golds = [i % 3 for i in range(30)]
    preds = [g if i % 4 else (g + 1) % 3 for i, g in enumerate(golds)]
    base = corpus_run(preds, golds)
    [row] = compare(entry_for(base), base.items, base, GateSettings(family_size=1), Path("t.toml"))
    assert row.p == 1.0 and row.flips == 0 and not row.failed
    # No variation in the paired difference: power is planned from the baseline's stderr (0.05 here),
    # (z(0.05) + z(0.2)) * sqrt(0.2) * 0.05; without a stderr it cannot be estimated at all.
    assert row.mde == pytest.approx((Z_05 + Z_20) * math.sqrt(0.2) * 0.05)
    blind = entry_for(base, corpus_acc={"stderr": None})
    [row] = compare(blind, base.items, base, GateSettings(family_size=1), Path("t.toml"))
    assert row.mde == math.inf and row.status == "underpowered"
    worse = corpus_run([(g + 1) % 3 for g in golds], golds)
    samples = [{"doc_id": i, "gold": g, "pred": (g + 1) % 3, "prompt": "p"} for i, g in enumerate(golds)]
    report = flips(base.items, samples, ["corpus_acc"], {"corpus_acc": "higher"})
    # exactly the docs the baseline had right (i % 4 != 0) turned wrong
    assert [r["doc_id"] for r in report] == [i for i in range(30) if i % 4]
    assert compare_models(base, worse)[0].p < 0.05


def test_corpus_items_round_trip_and_a_bad_pair_names_the_line(corpus_metric, tmp_path):
    golds = [0, 1, 2, 1]
    run = corpus_run([0, 1, 1, 1], golds)
    entry = entry_for(run)
    write_items(tmp_path, entry.items, entry, run.items)
    assert load_items(tmp_path, entry, tmp_path / "t.toml").values["corpus_acc"] == run.items.values["corpus_acc"]
    path = tmp_path / entry.items
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("[1.0, 1.0]", "[1.0, 1.0, 2.0]")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ThresholdsError, match=r"line 3, field 'corpus_acc'.*\[gold, pred\]"):
        load_items(tmp_path, entry, tmp_path / "t.toml")


def test_lowering_far_below_the_first_anchor_is_flagged(tmp_path):
    """abs_floor on CPU at n = 20 is 1/20 = 0.05: a metric 0.15 below its anchor (> 2 x 0.05) is flagged."""
    old = entry_for(run_record(ones(14, 20)), acc={"anchor": 0.8}, acc_norm={"anchor": 0.7})
    _, changes, _ = apply_update(old_thresholds(tmp_path, old), [run_record(ones(13, 20))], allow_lower=True,
                                 provenance=PROV, date=DATE)
    # acc: 0.80 - 0.65 = 0.15 > 0.10 -> flagged; acc_norm: 0.70 - 0.65 = 0.05 -> not
    assert changes[0].detail == ("acc 0.7000 -> 0.6500 (WARNING: 0.1500 below its first anchor 0.8000); "
                                 "acc_norm 0.7000 -> 0.6500")


def test_a_perfect_baseline_and_a_constant_drop_leave_the_power_unknown_not_zero():
    """JSQuAD EM on a memorising model: 100 on every doc, then 0 on every doc after damage. The drop
    fails, but with no spread anywhere the MDE cannot be planned: inf, never 0 ("any drop is seen")."""
    n = 32
    base = run_record([100.0] * n, gated=("exact_match",), metrics={"exact_match": 100.0, "exact_match_stderr": 0.0},
                      items=Items(list(range(n)), {"exact_match": [100.0] * n}))
    cand = run_record([0.0] * n, gated=("exact_match",), metrics={"exact_match": 0.0, "exact_match_stderr": 0.0},
                      items=Items(list(range(n)), {"exact_match": [0.0] * n}))
    [row] = compare(entry_for(base), base.items, cand, GateSettings(family_size=1), Path("t.toml"))
    assert row.method == "permutation" and row.failed
    assert row.mde == math.inf
