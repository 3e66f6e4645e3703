"""The pytest layer, driven through pytester: options, errors, outputs, xdist."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.helpers import REPO

pytest.importorskip("transformers")

SUITE = (REPO / "suites" / "jglue" / "test_jglue.py").read_text(encoding="utf-8")
SAMPLE_KEYS = {"task", "doc_id", "doc", "prompt", "continuations", "loglikelihoods", "pred", "gold"}


@pytest.fixture
def suite(pytester, monkeypatch, tiny_neox, tiny_llama):
    """A pytester dir holding the real JGLUE suite file; xdist workers find the plugin via PYTHONPATH.

    The tiny models are loaded in this (outer) process first: in-process pytester runs restore
    ``sys.modules`` afterwards, and torch imported for the first time inside one inner run would
    be dropped and imported again by the next, which crashes the interpreter.
    """
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pytester.makepyfile(test_jglue=SUITE)
    return pytester


def run(pytester, *args, gate: str = "off"):
    """In-process for speed; xdist runs in a subprocess, as users run it. The gate is off here
    (these tests are about scoring and options); tests/plugin/test_gate_plugin.py tests the gate."""
    runner = pytester.runpytest_subprocess if "-n" in args else pytester.runpytest
    # These tests exercise the pytest layer on JCommonsenseQA; the other tasks have their own tests.
    only = () if "-k" in args else ("-k", "jcommonsenseqa")
    return runner("-p", "kensa_pytest", "--strict-markers", "--gate", gate, *only, *args)


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_suite_writes_results_samples_and_table(suite, xdist):
    out = suite.path / "out"
    result = run(suite, "-m", "gpu", "--model", "tiny", "--limit", "3", "--prompt-version", "0.3,0.6",
                 "--results-dir", str(out), *xdist)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*kensa scores*", "kensa gate: OFF (--gate off): nothing was gated*",
                                 "*tiny*jcommonsenseqa-1.1-0.3*acc *3*", "*tiny*jcommonsenseqa-1.1-0.6*acc_norm*"])
    doc = json.loads((out / "tiny" / "results.json").read_text(encoding="utf-8"))
    assert set(doc) >= {"results", "versions", "config"}
    assert set(doc["results"]) == {"jcommonsenseqa-1.1-0.3", "jcommonsenseqa-1.1-0.6"}
    assert doc["versions"]["jcommonsenseqa-1.1-0.3"] == 1.1
    assert set(doc["results"]["jcommonsenseqa-1.1-0.3"]) == {"acc", "acc_stderr", "acc_norm", "acc_norm_stderr"}
    assert doc["config"]["num_fewshot"] == [3, 3] and doc["config"]["limit"] == 3
    lines = (out / "tiny" / "samples_jcommonsenseqa-1.1-0.3.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    for line in lines:
        sample = json.loads(line)
        assert SAMPLE_KEYS <= set(sample)
        assert sample["prompt"].endswith("### 応答:\n") and len(sample["loglikelihoods"]) == 5
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("**kensa gate: OFF") and "| model | task | metric |" in summary


# Slow tier: tests/plugin/test_workers.py::test_both_xdist_modes_report_exactly_what_a_serial_run_reports checks the
# same (summary, JUnit, gate rows, table, Holm, cache) for both xdist modes in the default tier.
@pytest.mark.slow
def test_serial_and_xdist_give_the_same_scores(suite):
    scores = []
    for extra in ([], ["-n", "2"]):
        out = suite.path / f"out{len(extra)}"
        run(suite, "--model", "tiny", "--limit", "4", "--results-dir", str(out), *extra).assert_outcomes(passed=7)
        scores.append(json.loads((out / "tiny" / "results.json").read_text(encoding="utf-8"))["results"])
    assert scores[0] == scores[1]


def test_report_header_echoes_the_options(suite):
    result = run(suite, "--model", "tiny", "--model-args", "batch_size=2", "--limit", "2",
                 "--num-fewshot", "jcommonsenseqa=1", "--prompt-version", "0.4", "--collect-only")
    result.stdout.fnmatch_lines([
        "kensa: models: tiny [[]tiny[]] (pretrained=tiny,batch_size=2)",
        "kensa: prompt versions: ['0.4']; num-fewshot: {'jcommonsenseqa': 1}; limit: 2; device: auto",
        "kensa: data: fixtures:*",
    ])


def test_num_fewshot_option_changes_the_shots(suite):
    out = suite.path / "out"
    run(suite, "--model", "tiny", "--limit", "2", "--num-fewshot", "jcommonsenseqa=0", "--prompt-version", "0.1",
        "--results-dir", str(out)).assert_outcomes(passed=1)
    sample = json.loads((out / "tiny" / "samples_jcommonsenseqa-1.1-0.1.jsonl").read_text().splitlines()[0])
    assert sample["fewshot_ids"] == [] and sample["prompt"].count("[問題]:") == 1


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--model-args", "foo=1", "--model-args: unknown key 'foo'"),
    ("--model-args", "batch_size=zero", "--model-args: batch_size='zero': expected an integer"),
    ("--prompt-version", "9.9", "--prompt-version: unknown prompt version '9.9'"),
    ("--num-fewshot", "jnli9=1", "--num-fewshot: unknown task 'jnli9'"),
    ("--limit", "-3", "--limit: '-3': must be positive"),
    ("--device", "tpu", "--device: 'tpu'"),
    ("--data-dir", "/no/such/data", "--data-dir: '/no/such/data': no such directory"),
    ("--model", "./no/such/model", "--model: './no/such/model': no such directory"),
])
def test_bad_options_are_usage_errors_naming_option_and_value(suite, option, value, message):
    args = [option, value] if option == "--model" else ["--model", "tiny", option, value]
    result = run(suite, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*kensa: {message}*"])


def test_running_the_suite_without_a_model_is_a_usage_error(suite):
    result = run(suite)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*name one with --model*"])
    assert run(suite, "--collect-only").ret == 0  # collection alone needs no model


QA_MARKER_CHECKS = 1
"""suites/qa's test_highlight_marker_is_one_token: one test per model (one "no-model" test without --model)."""

RECORD_PROMPT_SNAPSHOTS = 4
"""suites/quiz's test_record_prompt: prompts 0.1 and 0.2 of a training-format record and of a JMMLU row."""


def _variant_count() -> int:
    from kensa.tasks import all_tasks

    return sum(len(t.variants()) for t in all_tasks())


def test_snapshot_tests_need_no_model(pytester, monkeypatch):
    """Prompt snapshots run without --model (and without torch) once the model tests are deselected."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    result = pytester.runpytest_subprocess("-p", "kensa_pytest", str(REPO / "suites"), "-m", "snapshot",
                                           "--rootdir", str(REPO), "-p", "no:cacheprovider")
    n = _variant_count()
    # every task variant's prompt snapshot; the tokenizer snapshots skip without a model
    result.assert_outcomes(passed=n + RECORD_PROMPT_SNAPSHOTS, deselected=n + QA_MARKER_CHECKS, skipped=2)


def test_a_model_that_cannot_load_stops_the_session_once(suite):
    broken = suite.mkdir("broken-model")
    (broken / "config.json").write_text('{"model_type": "gpt_neox"}')
    (broken / "model.safetensors").write_bytes(b"garbage")
    result = run(suite, "--model", str(broken))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    text = result.stdout.str() + result.stderr.str()
    assert text.count("SafetensorError") == 1, text
    result.assert_outcomes()  # nothing ran, nothing failed per test


def test_bad_data_names_the_file_row_and_field(suite):
    data = suite.mkdir("data")
    task_dir = data / "jglue" / "jcommonsenseqa"
    task_dir.mkdir(parents=True)
    good = (REPO / "fixtures" / "jglue" / "jcommonsenseqa" / "train-v1.3.json").read_text(encoding="utf-8")
    (task_dir / "train-v1.3.json").write_text(good, encoding="utf-8")
    rows = good.splitlines()
    rows[1] = rows[1].replace('"label": 1', '"label": 9')
    (task_dir / "valid-v1.3.json").write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = run(suite, "--model", "tiny", "--data-dir", str(data), "--prompt-version", "0.3")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*valid-v1.3.json, row 2, field 'label': label 9 is out of range 0..4*"])


def test_several_models_run_one_after_another(suite):
    out = suite.path / "out"
    result = run(suite, "--model", "tiny", "--model", "tiny-llama", "--limit", "2", "--prompt-version", "0.3,0.5",
                 "--results-dir", str(out), "-v")
    result.assert_outcomes(passed=4)
    order = [line.split("[")[1].split("]")[0] for line in result.stdout.lines if "PASSED" in line]
    assert [o.rsplit("-", 1)[-1] for o in order] == ["tiny", "tiny", "llama", "llama"], order
    assert (out / "tiny" / "results.json").is_file() and (out / "tiny-llama" / "results.json").is_file()


def test_collect_only_imports_neither_torch_transformers_nor_scipy():
    code = ("import sys, pytest; rc = pytest.main(['--collect-only', '-q', 'suites']); "
            "print('HEAVY', sorted(m for m in ('torch', 'transformers', 'datasets', 'scipy') if m in sys.modules)); "
            "raise SystemExit(rc)")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stdout + done.stderr
    assert "HEAVY []" in done.stdout, done.stdout
    # every task variant x (score, prompt snapshot), the tokenizer snapshot and its round-trip property, and
    # the QA suite's marker check
    assert f"{2 * _variant_count() + 2 + QA_MARKER_CHECKS + RECORD_PROMPT_SNAPSHOTS} tests collected" in done.stdout
    print(f"collect-only took {elapsed:.2f} s")  # measured, not asserted: see README


def test_suite_runs_on_the_real_validation_set(suite, shared_data):
    """`--data-dir ../shared/data --limit N` reads JGLUE v1.3 itself (skipped where it is absent)."""
    out = suite.path / "out"
    run(suite, "--model", "tiny", "--data-dir", str(shared_data), "--limit", "5", "--prompt-version", "0.4",
        "--results-dir", str(out)).assert_outcomes(passed=1)
    doc = json.loads((out / "tiny" / "results.json").read_text(encoding="utf-8"))
    data = doc["kensa"]["tasks"]["jcommonsenseqa-1.1-0.4"]["data"]
    assert data["eval"]["rows"] == 1119 and data["eval"]["version"] == "1.3"
    assert data["eval"]["source"].endswith("jglue/jcommonsenseqa/valid-v1.3.json")
    samples = [json.loads(x) for x in (out / "tiny" / "samples_jcommonsenseqa-1.1-0.4.jsonl").read_text().splitlines()]
    assert len(samples) == 5 and all(s["doc"]["q_id"] >= 8939 for s in samples)  # validation ids
    assert all(0 <= i < 8939 for s in samples for i in s["fewshot_ids"])  # shots from train


def test_long_runs_print_progress(suite, monkeypatch):
    """Progress lines go past pytest's capture; the interval is 0 here so a short run shows them."""
    import kensa_pytest.progress as plugin

    monkeypatch.setattr(plugin.ProgressLine, "INTERVAL", 0.0)
    result = run(suite, "--model", "tiny", "--prompt-version", "0.3", "--model-args", "batch_size=2")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["kensa: tiny jcommonsenseqa-1.1-0.3: */200 requests (*%), *",
                                 "kensa: tiny jcommonsenseqa-1.1-0.3: done in * s"])


def test_one_model_is_resident_at_a_time(suite, monkeypatch):
    """Each model is closed before the next one loads (session-scoped parametrization)."""
    from kensa.backends.hf_causal import HFCausalLM

    events = []
    real_load, real_close = HFCausalLM.load.__func__, HFCausalLM.close

    def load(cls, spec, device="auto", **where):
        events.append(("load", spec.name))
        return real_load(cls, spec, device, **where)

    def close(self):
        events.append(("close", self.name))
        real_close(self)

    monkeypatch.setattr(HFCausalLM, "load", classmethod(load))
    monkeypatch.setattr(HFCausalLM, "close", close)
    run(suite, "--model", "tiny-llama", "--model", "tiny", "--limit", "1", "--prompt-version", "0.1,0.2",
        "--results-dir", str(suite.path / "out")).assert_outcomes(passed=4)
    assert events == [("load", "tiny-llama"), ("close", "tiny-llama"), ("load", "tiny"), ("close", "tiny")]


def test_a_broken_run_fails_the_suite_test(suite, monkeypatch):
    """The suite's own assertion: a non-finite log-likelihood fails the test, and is still reported."""
    from kensa.backends.contract import LoglikelihoodResult
    from kensa.backends.hf_causal import HFCausalLM

    real = HFCausalLM.loglikelihood

    def nan_first(self, requests, progress=None):
        results = real(self, requests, progress)
        return [LoglikelihoodResult(float("nan"), False, results[0].num_tokens), *results[1:]]

    monkeypatch.setattr(HFCausalLM, "loglikelihood", nan_first)
    out = suite.path / "out"
    result = run(suite, "--model", "tiny", "--limit", "2", "--prompt-version", "0.3", "--results-dir", str(out))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*jcommonsenseqa-1.1-0.3 doc 0: log-likelihoods [[]nan[]] are not finite and <= 0*"])
    assert (out / "tiny" / "results.json").is_file()  # the failing run's numbers are not lost
