"""Ctrl-C stops cleanly: a message, exit code 2, and the results of the tests that finished, marked partial."""

from __future__ import annotations

import json

import pytest

from tests.helpers import REPO

pytest.importorskip("transformers")

# The first scored test sends this process SIGINT as it finishes, as a user's Ctrl-C would. The handler is set to
# Python's default first, as in a user's shell: a disposition inherited from the parent (an ignored SIGINT) made the
# run finish with exit code 0 once in CI, and the inherited one is printed so such a run says so.
CONFTEST = '''
import os
import signal

import pytest


def pytest_configure(config):
    print(f"inherited SIGINT handler: {signal.getsignal(signal.SIGINT)!r}")
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report):
    if report.when == "call" and "jcommonsenseqa-1.1-0.3" in report.nodeid:
        os.kill(os.getpid(), signal.SIGINT)
'''


def test_ctrl_c_marks_the_results_partial(pytester, monkeypatch, tiny_neox):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pytester.makepyfile(test_jglue=(REPO / "suites" / "jglue" / "test_jglue.py").read_text(encoding="utf-8"))
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest_subprocess(
        "-p", "kensa_pytest", "-p", "no:cacheprovider", "--model", "tiny", "--limit", "4", "--gate", "off",
        "--prompt-version", "0.3", "-k", "jcommonsenseqa or jnli", "--results-dir", str(pytester.path / "out"))
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED, out[-3000:]
    assert "KeyboardInterrupt" in out
    assert "kensa gate: PARTIAL RUN, interrupted (Ctrl-C): 1 tests scored before it stopped" in out
    doc = json.loads((pytester.path / "out" / "tiny" / "results.json").read_text(encoding="utf-8"))
    assert list(doc["results"]) == ["jcommonsenseqa-1.1-0.3"]
    assert doc["kensa"]["partial"]["reason"] == "interrupted (Ctrl-C)" and doc["kensa"]["partial"]["scored_tests"] == 1
    assert "PARTIAL RUN" in (pytester.path / "out" / "summary.md").read_text(encoding="utf-8")


def test_a_complete_run_is_not_partial(pytester, monkeypatch, tiny_neox):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pytester.makepyfile(test_jglue=(REPO / "suites" / "jglue" / "test_jglue.py").read_text(encoding="utf-8"))
    result = pytester.runpytest("-p", "kensa_pytest", "-p", "no:cacheprovider", "--model", "tiny", "--limit",
                                "4", "--gate", "off", "--prompt-version", "0.3", "-k", "jcommonsenseqa",
                                "--results-dir", str(pytester.path / "out"))
    assert result.ret == pytest.ExitCode.OK
    doc = json.loads((pytester.path / "out" / "tiny" / "results.json").read_text(encoding="utf-8"))
    assert doc["kensa"]["partial"] is False
