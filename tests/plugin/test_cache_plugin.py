"""The response cache through pytest (pytester, the real suite file, tiny-llama): a killed run
resumes, two models that differ only in weights never share answers, xdist workers share a file."""

from __future__ import annotations

import json
import os
import re
import textwrap

import pytest

from kensa.tiny import build as tiny
from tests.helpers import REPO

pytest.importorskip("transformers")

SUITE = (REPO / "suites" / "jglue" / "test_jglue.py").read_text(encoding="utf-8")
TASK = "jcommonsenseqa-1.1-0.3"
FAST = ("--model", "tiny-llama", "--limit", "8", "--gate", "off", "-k", TASK)
LINE = re.compile(r"^kensa: responses: (\d+) computed, (\d+) from cache \((.*)\)$", re.MULTILINE)
# Before pytester points HOME at its own directory: where the tiny models are already built.
TINY_CACHE = tiny.cache_root()

# Loaded by every inner run: small chunks (two docs), a log of what the real backend scored, and
# with KENSA_DIE_AFTER=N an abrupt death (no cleanup, no commit) when the (N+1)th chunk starts.
CONFTEST = textwrap.dedent('''
    import os

    import kensa.run.cache
    from kensa.backends.hf_causal import HFCausalLM

    kensa.run.cache.CHUNK_SIZE = 10
    _real = HFCausalLM.loglikelihood
    _calls = []

    def counting(self, requests, progress=None):
        if os.environ.get("KENSA_DIE_AFTER") and len(_calls) == int(os.environ["KENSA_DIE_AFTER"]):
            os._exit(1)
        out = _real(self, requests, progress)
        _calls.append(len(requests))
        with open(os.environ["KENSA_COUNT_LOG"], "a") as f:
            f.write(f"{len(requests)}\\n")
        return out

    HFCausalLM.loglikelihood = counting
''')


@pytest.fixture
def suite(pytester, monkeypatch, tiny_llama):
    """A pytester dir holding the real JGLUE suite; tiny-llama is built (and loaded) outside first."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("KENSA_CACHE_DIR", str(TINY_CACHE))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("KENSA_RESPONSE_CACHE", raising=False)  # the header test reads the default
    pytester.makepyfile(test_jglue=SUITE)
    return pytester


def run(pytester, *args, out: str, subprocess: bool = False):
    runner = pytester.runpytest_subprocess if subprocess or "-n" in args else pytester.runpytest
    return runner("-p", "kensa_pytest", "-p", "no:cacheprovider", "--results-dir",
                  str(pytester.path / out), *args)


def responses(result) -> tuple[int, int, str]:
    found = LINE.findall(result.stdout.str())
    assert len(found) == 1, result.stdout.str()
    computed, cached, path = found[0]
    return int(computed), int(cached), path


def model_dir(pytester, out: str):
    (only,) = [p for p in (pytester.path / out).iterdir() if p.is_dir()]
    return only


def samples(pytester, out: str, task: str = TASK) -> list[float]:
    path = model_dir(pytester, out) / f"samples_{task}.jsonl"
    return [x for line in path.read_text(encoding="utf-8").splitlines() for x in json.loads(line)["loglikelihoods"]]


def document(pytester, out: str) -> dict:
    return json.loads((model_dir(pytester, out) / "results.json").read_text(encoding="utf-8"))


def scores(pytester, out: str) -> dict:
    return document(pytester, out)["results"]


def logged(path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_a_killed_run_resumes_where_it_stopped(suite, monkeypatch):
    suite.makeconftest(CONFTEST)
    cache = suite.path / "responses.sqlite"
    log = suite.path / "scored.log"
    monkeypatch.setenv("KENSA_COUNT_LOG", str(log))

    monkeypatch.setenv("KENSA_DIE_AFTER", "2")
    died = run(suite, *FAST, "--response-cache", str(cache), out="out1", subprocess=True)
    assert died.ret == 1 and "passed" not in died.stdout.str()
    committed = logged(log)
    # Two chunks scored and committed: the first, before any timing is known, of FIRST_CHUNK (4) requests
    # rounded up to one whole doc (five choices share its prompt), then the largest size (two docs).
    assert committed == [5, 10]
    monkeypatch.delenv("KENSA_DIE_AFTER")

    log.unlink()
    resumed = run(suite, *FAST, "--response-cache", str(cache), out="out2", subprocess=True)
    resumed.assert_outcomes(passed=1)
    total = 8 * 5
    assert sum(logged(log)) == total - sum(committed)
    assert responses(resumed) == (total - sum(committed), sum(committed), str(cache))

    log.unlink()
    again = run(suite, *FAST, "--response-cache", str(cache), out="out3", subprocess=True)
    again.assert_outcomes(passed=1)
    assert logged(log) == [] and responses(again) == (0, total, str(cache))

    (suite.path / "conftest.py").unlink()  # the reference runs in this process, with the real backend
    uncached = run(suite, *FAST, "--response-cache", "off", out="off")
    uncached.assert_outcomes(passed=1)
    assert responses(uncached) == (total, 0, "response cache off")
    assert scores(suite, "out2") == scores(suite, "out3") == scores(suite, "off")
    assert samples(suite, "out2") == samples(suite, "out3")
    # results.json says where each task's answers came from, and whether a cache was in play at all.
    provenance = {out: document(suite, out) for out in ("out2", "out3", "off")}
    assert provenance["out2"]["kensa"]["tasks"][TASK]["data"]["responses"] == {
        "computed": total - sum(committed), "from_cache": sum(committed)}
    assert provenance["out3"]["kensa"]["tasks"][TASK]["data"]["responses"] == {"computed": 0, "from_cache": total}
    assert provenance["off"]["kensa"]["tasks"][TASK]["data"]["responses"] == {"computed": total, "from_cache": 0}
    assert [provenance[o]["config"]["no_cache"] for o in ("out2", "out3", "off")] == [False, False, True]
    # The same numbers up to float noise: chunks put other requests beside each one in a batch.
    assert samples(suite, "out2") == pytest.approx(samples(suite, "off"), rel=1e-6, abs=1e-4)


def test_models_that_differ_only_in_weights_never_share_answers(suite):
    damaged = tiny.perturb_weights(tiny.build_model("tiny-llama"), suite.path / "damaged", scale=2.0, seed=0)
    cache = suite.path / "responses.sqlite"
    a = run(suite, *FAST, "--response-cache", str(cache), out="a")
    a.assert_outcomes(passed=1)
    assert responses(a) == (40, 0, str(cache))
    b_args = ("--model", str(damaged), *FAST[2:])
    b = run(suite, *b_args, "--response-cache", str(cache), out="b")
    b.assert_outcomes(passed=1)
    assert responses(b) == (40, 0, str(cache))  # nothing of A's was served to B
    b_off = run(suite, *b_args, "--response-cache", "off", out="b_off")
    b_off.assert_outcomes(passed=1)
    # B's own answers, up to float noise (the cached run scores in time-sized chunks, so other requests
    # share a batch), and not A's.
    assert samples(suite, "b") == pytest.approx(samples(suite, "b_off"), rel=1e-6, abs=1e-4)
    assert samples(suite, "b") != pytest.approx(samples(suite, "a"), rel=1e-6, abs=1e-4)
    assert scores(suite, "b") == scores(suite, "b_off")


def test_two_xdist_workers_share_one_cache(suite, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS")  # so the workers' own share of the cores is what is checked
    cache = suite.path / "responses.sqlite"
    two = ("--model", "tiny-llama", "--limit", "8", "--gate", "off", "-k", f"{TASK} or jnli-1.3-0.3")
    first = run(suite, *two, "--response-cache", str(cache), "-n", "2", out="x1")
    first.assert_outcomes(passed=2)
    total = 8 * 5 + 8 * 3  # JCommonsenseQA has five choices, JNLI three
    assert responses(first) == (total, 0, str(cache))  # both workers' counts reach the controller
    # Each worker took its share of the cores for torch (not all of them: workers would fight over them).
    assert document(suite, "x1")["kensa"]["model_info"]["torch_threads"] == max(1, len(os.sched_getaffinity(0)) // 2)
    rerun = run(suite, *two, "--response-cache", str(cache), out="x2")
    rerun.assert_outcomes(passed=2)
    assert responses(rerun) == (0, total, str(cache))
    assert scores(suite, "x1") == scores(suite, "x2")


def test_bad_response_cache_option_is_a_usage_error(suite):
    result = run(suite, "--model", "tiny-llama", "--response-cache", str(suite.path), out="o")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*kensa: --response-cache: '{suite.path}' is a directory; give a file*"])


def test_the_header_names_the_cache(suite):
    result = run(suite, *FAST, "--response-cache", "off", "--collect-only", out="o")
    result.stdout.fnmatch_lines(["kensa: data: *; response cache: off"])
    result = run(suite, *FAST, "--collect-only", out="o")
    result.stdout.fnmatch_lines([f"kensa: data: *; response cache: {TINY_CACHE / 'responses.sqlite'}"])
