"""The quiz suite through pytester: collection follows the data, bad options are usage errors, a run prints
the per-category table and writes quiz.md and quiz.png, and the latency gate fails a backend slowed on purpose
(its model times scaled, so no real timing is asserted) and passes the same backend."""

from __future__ import annotations

import os

import pytest

from tests.helpers import REPO

pytest.importorskip("transformers")

SUITE = (REPO / "suites" / "quiz" / "test_quiz.py").read_text(encoding="utf-8")
DATA = REPO / "fixtures" / "quiz" / "data"

SCALED = '''
"""Replaces each answer's model time with a deterministic one, scaled by KENSA_TEST_SLOWDOWN."""
import dataclasses
import os

import kensa.models as models

_load = models.load_model


class Scaled:
    def __init__(self, inner, factor):
        self.inner, self.factor = inner, factor

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def loglikelihood(self, requests, progress=None):
        out = self.inner.loglikelihood(requests, progress)
        return [dataclasses.replace(r, seconds=self.factor * 0.001 * (len(c) + k % 3)) for k, (r, (_, c))
                in enumerate(zip(out, requests))]

    def generate_until(self, requests, progress=None):
        out = self.inner.generate_until(requests, progress)
        return [dataclasses.replace(r, seconds=self.factor * 0.002 * (1 + k % 4)) for k, r in enumerate(out)]


def load_model(spec, device="auto"):
    return Scaled(_load(spec, device), float(os.environ.get("KENSA_TEST_SLOWDOWN", "1")))


models.load_model = load_model
'''


@pytest.fixture
def quiz(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), str(pytester.path)]))
    pytester.makepyfile(test_quiz=SUITE, scaled=SCALED)
    return pytester


def run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "kensa_pytest", "-p", "no:cacheprovider", *args)


def test_collection_follows_the_data(quiz):
    result = run(quiz, "--collect-only", "-q", "--data-dir", str(DATA))
    ids = [line for line in result.stdout.lines if "::test_quiz[" in line]
    # JMMLU fixture: 学問, 雑学, marketing; AI王 dev1, dev2: drawn five choices and open answers; 6 versions each
    assert len(ids) == (3 * 2 + 2 * 3) * 6
    for expected in ("quiz_jmmlu_academic_loglik-1.0-0.1", "quiz_jmmlu_trivia_gen-1.0-0.6",
                     "quiz_jmmlu_marketing_gen-1.0-0.3", "quiz_aio_dev1_uncategorised_open-1.0-0.2",
                     "quiz_aio_dev2_uncategorised_loglik-1.0-0.4"):
        assert any(expected in i for i in ids), expected
    fixtures = run(quiz, "--collect-only", "-q")
    assert sum("::test_quiz[quiz_fixtures_" in line for line in fixtures.stdout.lines) == 5 * 2 * 6
    user = run(quiz, "--collect-only", "-q", "--quiz-data", str(REPO / "fixtures" / "quiz" / "jaqket_v1_dev.json"))
    assert sum("::test_quiz[quiz_jaqket_v1_dev_uncategorised_" in line for line in user.stdout.lines) == 2 * 6


def test_no_quiz_data_skips_with_the_reason(quiz):
    result = run(quiz, "-m", "gpu", "--model", "tiny", "-rs", "--data-dir", str(REPO / "fixtures" / "jglue"))
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*kensa quiz: no quiz data under*point --quiz-data at a file*"])


@pytest.mark.parametrize("args,message", [
    (["--quiz-data", "/no/such.json"], "--quiz-data: '/no/such.json': no such file"),
    (["--gate-latency", "fast"], "--gate-latency: 'fast': expected a percentage"),
    (["--gate-latency", "50", "--gate", "off"], "--gate-latency: needs the gate on"),
])
def test_bad_quiz_options_are_usage_errors(quiz, args, message):
    result = run(quiz, "--collect-only", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*kensa: {message}*"])


def test_two_models_write_quiz_md_and_png(quiz):
    out = quiz.path / "out"
    result = run(quiz, "-m", "gpu", "--model", "tiny", "--model", "tiny-llama", "--gate", "off", "-k",
                 "anime_loglik-1.0-0.2 or anime_gen-1.0-0.2", "--results-dir", str(out), "--response-cache", "off")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*kensa quiz*", "model*set*category*mode*prompt*score*unparseable*late*s/q*p50*p95*",
                                 "*tiny-llama*fixtures*アニメ*gen*0.2*16*", "model load (apart from every category)*"])
    md = (out / "quiz.md").read_text(encoding="utf-8")
    assert "## generation, prompt 0.2 (quiz-eval)" in md and "## Other modes and prompts" in md
    assert md.count("アニメ (kensa fixtures (hand-written, five QMA genres), n=16)") == 2
    assert "| Model | Environment | Score | Latency | Unparseable | Late answer |" in md
    assert "at most 32 new tokens, stop at '\\n\\n', '###'; batch size 4" in md
    assert md.count("| tiny-llama |") == 2 and md.count("| tiny |") == 2
    # each model's records in its own file: a later session of another model into the same folder keeps them
    assert (out / "tiny-neox" / "quiz.jsonl").is_file() or (out / "tiny" / "quiz.jsonl").is_file()
    again = run(quiz, "-m", "gpu", "--model", "tiny-t5", "--gate", "off", "-k", "anime_gen-1.0-0.2", "--results-dir",
                str(out), "--response-cache", "off", "--environment", "dev9")
    again.assert_outcomes(passed=1)
    md = (out / "quiz.md").read_text(encoding="utf-8")
    assert "| tiny-t5 | dev9 · " in md and md.count("| tiny-llama |") == 2
    assert (out / "quiz.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_latency_gate_fails_a_slowed_backend_and_passes_the_same_one(quiz, monkeypatch):
    th = quiz.path / "th"
    common = ["-p", "scaled", "-m", "gpu", "--model", "tiny", "-k", "anime_loglik-1.0-0.2", "--thresholds-dir", str(th),
              "--baseline", "line", "--response-cache", "off", "--model-args", "batch_size=1"]
    update = run(quiz, *common, "--thresholds-update")
    assert update.ret == pytest.ExitCode.TESTS_FAILED  # an update asks for review
    assert '"seconds": ' in (th / "line" / "quiz_fixtures_anime_loglik-1.0-0.2.jsonl").read_text(encoding="utf-8")
    same = run(quiz, *common, "--gate-latency", "50")
    same.assert_outcomes(passed=1)
    same.stdout.fnmatch_lines(["*tiny*fixtures*アニメ*loglik*0.2*pass x1.00*"])
    monkeypatch.setenv("KENSA_TEST_SLOWDOWN", "3")
    slow = run(quiz, *common, "--gate-latency", "50")
    slow.assert_outcomes(failed=1)
    slow.stdout.fnmatch_lines(["*kensa latency gate: fail: seconds x3.00*16 questions*more than +50% slower*"])


@pytest.mark.parametrize("batch_size", ["1", "2"])
def test_the_quiz_goes_through_the_sequential_gate_and_its_latency_gate_stays_paired(quiz, batch_size):
    th, out = quiz.path / "th", quiz.path / "out"
    common = ["-p", "scaled", "-m", "gpu", "--model", "tiny", "-k", "anime_loglik-1.0-0.2", "--thresholds-dir", str(th),
              "--baseline", "line", "--response-cache", "off", "--model-args", f"batch_size={batch_size}",
              "--results-dir", str(out)]
    assert run(quiz, *common, "--thresholds-update").ret == pytest.ExitCode.TESTS_FAILED  # measured in full
    done = run(quiz, *common, "--gate-latency", "50", "--gate-sequential")
    done.assert_outcomes(passed=1)
    import json

    (results,) = out.glob("*/results.json")
    doc = json.loads(results.read_text(encoding="utf-8"))
    (task,) = doc["kensa"]["tasks"].values()
    rows = doc["kensa"]["gate"]
    if batch_size == "1":  # scored in looks by the sequential gate; the latency gate pairs each question
        assert task["data"]["sequential"]["looks"] == 10
        assert all(r["method"].startswith("sequential") for r in rows)
        done.stdout.fnmatch_lines(["*tiny*fixtures*アニメ*loglik*0.2*pass x*"])
    else:  # batched: one call, as the baseline measured it, and the rows say why
        assert "sequential" not in task["data"]
        assert all("scored in full under --gate-sequential: the latency gate pairs" in r["message"] for r in rows)
        done.stdout.fnmatch_lines(["*tiny*fixtures*アニメ*loglik*0.2*pass x1.00*"])
