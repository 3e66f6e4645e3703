"""The gate through pytest, as a release engineer drives it (pytester, the real suite file, tiny model).

The lifecycle: no thresholds -> error; --thresholds-update -> exit 1 "review"; the next run
passes; a drop fails; lowering is refused without --allow-lower; a partial update keeps the
other entries; a stale or incomparable entry is an error naming what changed; -n 2 reports
exactly what -n 0 reports.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import tomli_w

from tests.helpers import REPO

if __import__("sys").version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytest.importorskip("transformers")

SUITE = (REPO / "suites" / "jglue" / "test_jglue.py").read_text(encoding="utf-8")
# One prompt version and a few docs keep each run to a couple of seconds.
FAST = ("--model", "tiny", "--limit", "12", "--prompt-version", "0.3")
TASK = "jcommonsenseqa-1.1-0.3"


@pytest.fixture
def gated(pytester, monkeypatch, tiny_neox):
    """A pytester dir with the real suite file; thresholds in th/, results in out/ (tiny loaded outside first)."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pytester.makepyfile(test_jglue=SUITE)
    return pytester


def run(pytester, *args):
    runner = pytester.runpytest_subprocess if "-n" in args else pytester.runpytest
    only = () if "-k" in args else ("-k", "jcommonsenseqa")  # the gate is exercised on JCommonsenseQA
    return runner("-p", "kensa_pytest", "-p", "no:cacheprovider", "--thresholds-dir",
                  str(pytester.path / "th"), "--results-dir", str(pytester.path / "out"), *only, *args)


def read_toml(pytester, baseline="tiny-neox"):
    return tomllib.loads((pytester.path / "th" / f"{baseline}.toml").read_text(encoding="utf-8"))


def write_toml(pytester, doc, baseline="tiny-neox"):
    (pytester.path / "th" / f"{baseline}.toml").write_text(tomli_w.dumps(doc), encoding="utf-8")


def make_baseline_perfect(pytester, task=TASK, baseline="tiny-neox"):
    """Pretend the baseline got every doc right: the tiny model's real run is then a large drop."""
    doc = read_toml(pytester, baseline)
    for metric in doc["entries"][task]["metrics"].values():
        metric["value"] = 1.0
    write_toml(pytester, doc, baseline)
    items = pytester.path / "th" / baseline / f"{task}.jsonl"
    lines = items.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(x) for x in lines[1:]]
    for row in rows:
        row["acc"] = row["acc_norm"] = 1.0
    items.write_text("\n".join([lines[0], *(json.dumps(r) for r in rows)]) + "\n", encoding="utf-8")


def test_first_run_without_thresholds_is_an_error_naming_the_command(gated):
    result = run(gated, *FAST)
    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        ("*kensa gate: no thresholds file */th/tiny-neox.toml; create it with "
        "`pytest * --baseline tiny-neox --thresholds-update`*")])


def test_update_exits_1_for_review_then_the_next_run_passes(gated):
    result = run(gated, *FAST, "--thresholds-update")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["kensa gate: UPDATING th/tiny-neox.toml*",
                                 f"*tiny*{TASK}*acc *12*created*",
                                 "kensa: thresholds updated: review and commit * (2 files)*"])
    doc = read_toml(gated)
    entry = doc["entries"][TASK]
    assert (entry["task_version"], entry["prompt_version"], entry["num_fewshot"], entry["n"]) == ("1.1", "0.3", 3, 12)
    assert entry["metrics"]["acc"]["direction"] == "higher" and entry["environment"]["device"] == "cpu"
    assert "--model tiny --limit 12 --prompt-version 0.3 --thresholds-update" in doc["provenance"]["command"]
    assert len((gated.path / "th" / "tiny-neox" / f"{TASK}.jsonl").read_text().splitlines()) == 1 + 12

    again = run(gated, *FAST)
    again.assert_outcomes(passed=1)
    assert again.ret == pytest.ExitCode.OK
    # 12 documents of a random model: no row could have seen a drop, and the verdict line says so
    again.stdout.fnmatch_lines(["kensa gate: PASS (all rows underpowered); baselines th/tiny-neox.toml; "
                                "alpha 0.05*Holm over 2*",
                                f"*tiny*{TASK}*acc *12*+0.0000*1.0000*underpowered*"])
    summary = (gated.path / "out" / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("**kensa gate: PASS (all rows underpowered); baselines th/tiny-neox.toml")


def test_the_verdict_line_says_pass_plainly_only_when_some_row_could_have_seen_a_drop():
    from types import SimpleNamespace

    from kensa.gate.verdicts import Check
    from kensa.report.results import gate_headline

    gate = SimpleNamespace(enabled=True, update=False, baselines=["b"], directory=REPO / "thresholds", alpha=0.05)

    def rows(*statuses):
        return [Check("m", "b", f"t{i}", "acc", s, p=0.5) for i, s in enumerate(statuses)]

    assert gate_headline(rows("underpowered", "underpowered"), gate).startswith(
        "kensa gate: PASS (all rows underpowered); baselines thresholds/b.toml; alpha 0.05 family-wise, Holm over 2")
    assert gate_headline(rows("pass", "underpowered"), gate).startswith("kensa gate: PASS; baselines")
    assert gate_headline(rows("underpowered", "raise baseline"), gate).startswith("kensa gate: PASS; baselines")
    assert gate_headline(rows("underpowered", "fail"), gate).startswith("kensa gate: FAIL (1 of 2 rows); baselines")


def test_a_drop_fails_with_a_readable_table_and_a_flip_report(gated):
    run(gated, *FAST, "--thresholds-update")
    make_baseline_perfect(gated)
    result = run(gated, *FAST)
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*kensa gate: the score dropped against the baseline*",
                                 "*model*task*metric*n*score*baseline*p (Holm)*MDE*verdict*",
                                 f"*tiny*{TASK}*acc *12*1.0000*-0.*fail*",
                                 "*documents that got worse: */flips_jcommonsenseqa-1.1-0.3.jsonl*",
                                 "kensa gate: FAIL*"])
    flips = [json.loads(x) for x in (gated.path / "out" / "tiny" / f"flips_{TASK}.jsonl").read_text().splitlines()]
    assert flips and all(f["baseline"] == 1.0 and f["candidate"] == 0.0 for f in flips)
    assert all(f["prompt"].endswith("### 応答:\n") and len(f["continuations"]) == 5 for f in flips)


def test_lowering_is_refused_without_allow_lower_and_listed_with_it(gated):
    run(gated, *FAST, "--thresholds-update")
    make_baseline_perfect(gated)
    before = (gated.path / "th" / "tiny-neox.toml").read_text(encoding="utf-8")
    refused = run(gated, *FAST, "--thresholds-update")
    assert refused.ret == pytest.ExitCode.TESTS_FAILED
    refused.stdout.fnmatch_lines([f"*{TASK}*refused*", "*lowering needs --allow-lower*"])
    assert (gated.path / "th" / "tiny-neox.toml").read_text(encoding="utf-8") == before

    lowered = run(gated, *FAST, "--thresholds-update", "--allow-lower")
    assert lowered.ret == pytest.ExitCode.TESTS_FAILED
    lowered.stdout.fnmatch_lines([f"*{TASK}*lowered*", "*acc 1.0000 -> 0.*"])
    metric = read_toml(gated)["entries"][TASK]["metrics"]["acc"]
    assert metric["value"] < 1.0 and metric["anchor"] < 1.0  # the anchor is the first value ever recorded


def test_a_partial_update_keeps_the_other_entries(gated):
    run(gated, "--model", "tiny", "--limit", "12", "--prompt-version", "0.3,0.4", "--thresholds-update")
    before = read_toml(gated)["entries"]
    result = run(gated, "--model", "tiny", "--limit", "12", "--prompt-version", "0.3", "--thresholds-update")
    result.stdout.fnmatch_lines([f"*{TASK}*unchanged*"])
    after = read_toml(gated)["entries"]
    assert set(after) == {TASK, "jcommonsenseqa-1.1-0.4"}
    assert after["jcommonsenseqa-1.1-0.4"] == before["jcommonsenseqa-1.1-0.4"]


@pytest.mark.parametrize(("extra", "changed"), [
    (("--num-fewshot", "jcommonsenseqa=2"), "num_fewshot 3 -> 2"),
    (("--limit", "8"), "limit 12 -> 8; n 12 -> 8"),
])
def test_a_stale_entry_is_an_error_naming_what_changed(gated, extra, changed):
    run(gated, *FAST, "--thresholds-update")
    args = list(FAST)
    if extra[0] == "--limit":
        args[args.index("--limit") + 1] = extra[1]
    else:
        args += extra
    result = run(gated, *args)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*entry {TASK} is stale ({changed}*Re-baseline with `pytest *"])


def test_another_environment_is_incomparable_unless_accepted(gated):
    run(gated, *FAST, "--thresholds-update")
    doc = read_toml(gated)
    doc["entries"][TASK]["environment"]["dtype"] = "bfloat16"
    doc["entries"][TASK]["environment"]["transformers"] = "4.57.1"
    write_toml(gated, doc)
    result = run(gated, *FAST)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([("*measured in another environment (dtype bfloat16 -> float32; "
                                 "transformers 4.57.1 -> *)*--accept-env-change*")])
    accepted = run(gated, *FAST, "--accept-env-change")
    accepted.assert_outcomes(passed=1)
    accepted.stdout.fnmatch_lines(["*compared under --accept-env-change*"])


def test_a_bad_thresholds_file_is_an_error_naming_file_and_key(gated):
    (gated.path / "th").mkdir()
    (gated.path / "th" / "tiny-neox.toml").write_text("schema_version = 9\nbaseline = 'tiny-neox'\n")
    result = run(gated, *FAST)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*th/tiny-neox.toml: schema_version: 9 is newer than this kensa reads (1)*"])


def test_gate_off_says_so_in_the_first_line_of_the_summary(gated):
    result = run(gated, *FAST, "--gate", "off")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["kensa gate: OFF (--gate off): nothing was gated*", f"*{TASK}*not gated*"])
    assert (gated.path / "out" / "summary.md").read_text().startswith("**kensa gate: OFF")


def test_a_model_is_gated_against_the_named_baseline(gated):
    """The candidate is another model: --baseline picks the line's file, not the candidate's slug."""
    run(gated, *FAST, "--thresholds-update", "--baseline", "line")
    assert (gated.path / "th" / "line.toml").is_file()
    result = run(gated, "--model", "tiny-llama", "--limit", "12", "--prompt-version", "0.3", "--baseline", "line",
                 "--accept-env-change")
    result.stdout.fnmatch_lines(["kensa gate: * baselines th/line.toml*", f"*tiny-llama*{TASK}*acc *"])


def _outputs(pytester, *args):
    result = run(pytester, *args, "--junitxml", str(pytester.path / "junit.xml"))
    summary = (pytester.path / "out" / "summary.md").read_text(encoding="utf-8")
    props = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "junit.xml").iter("property")}
    doc = json.loads((pytester.path / "out" / "tiny" / "results.json").read_text(encoding="utf-8"))
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "kensa scores" in line)
    table = lines[start: next(i for i, line in enumerate(lines) if line.startswith("results: "))]
    return result, summary, props, doc["kensa"]["gate"], table


# Slow tier: tests/plugin/test_workers.py::test_both_xdist_modes_report_exactly_what_a_serial_run_reports checks the
# same (summary, JUnit, gate rows, table, Holm, cache) for both xdist modes in the default tier.
@pytest.mark.slow
def test_xdist_reports_exactly_what_a_serial_run_reports(gated):
    args = ("--model", "tiny", "--limit", "12", "--prompt-version", "0.3,0.4,0.6")
    run(gated, *args, "--thresholds-update")
    make_baseline_perfect(gated)  # so the comparison has a failure, p-values and flips to agree on
    serial = _outputs(gated, *args)
    parallel = _outputs(gated, *args, "-n", "2")
    serial[0].assert_outcomes(failed=1, passed=2)
    parallel[0].assert_outcomes(failed=1, passed=2)
    assert serial[1] == parallel[1]  # summary.md
    assert serial[2] == parallel[2] and len(serial[2]) == 1 + 6  # JUnit: headline + one property per row
    assert serial[3] == parallel[3]  # results JSON gate rows
    assert serial[4] == parallel[4]  # terminal table rows


def test_two_models_print_b_minus_a_with_a_paired_p_value(gated, tiny_llama):
    result = run(gated, "--model", "tiny", "--model", "tiny-llama", "--limit", "12", "--prompt-version", "0.3",
                 "--gate", "off")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["model against model (paired, two-sided):",
                                 "task*metric*n*A*B*A score*B score*B − A*p (two-sided)*test*",
                                 f"{TASK}*acc *12*tiny*tiny-llama*mcnemar-exact*"])
    assert "Model against model (paired, two-sided):" in (gated.path / "out" / "summary.md").read_text()


def test_a_threshold_lowered_by_hand_fails_the_session_against_git_history(gated):
    """The thresholds folder is a git repository: after an update on main, a hand edit that lowers an
    entry on a branch fails the session as 'lowered outside --thresholds-update'; --thresholds-base none
    turns the check off."""
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=gated.path / "th", check=True, capture_output=True,
                       env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                            "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(gated.path), "PATH": "/usr/bin:/bin"})

    assert run(gated, *FAST, "--thresholds-update").ret == pytest.ExitCode.TESTS_FAILED
    git("init", "-q", "-b", "main")
    git("add", ".")
    git("commit", "-q", "-m", "thresholds")
    git("checkout", "-q", "-b", "rc")
    assert run(gated, *FAST).ret == pytest.ExitCode.OK
    doc = read_toml(gated)
    doc["entries"][TASK]["metrics"]["acc"]["value"] -= 0.25
    write_toml(gated, doc)
    result = run(gated, *FAST)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*acc*lowered outside --thresholds-update*"])
    assert run(gated, *FAST, "--thresholds-base", "none").ret == pytest.ExitCode.OK
