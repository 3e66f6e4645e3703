"""A pytest-xdist worker that dies under a test (os._exit inside the model run): the controller names the
lost test, writes what the others produced, and the session fails; it never passes with fewer tests."""

from __future__ import annotations

import pytest

from tests.helpers import REPO

pytest.importorskip("xdist")
pytest.importorskip("transformers")

DOOMED = "jcommonsenseqa-1.1-0.3"
CONFTEST = f'''
import os

import kensa.run

_real = kensa.run.evaluate_variant


def dying(variant, *args, **kwargs):
    if variant.task_id == "{DOOMED}" and os.environ.get("PYTEST_XDIST_WORKER"):
        os._exit(1)  # the worker dies: no report, no cleanup
    return _real(variant, *args, **kwargs)


kensa.run.evaluate_variant = dying
'''


def test_a_dead_worker_fails_the_session_and_names_the_lost_test(pytester, monkeypatch, tiny_neox):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    pytester.makepyfile(test_jglue=(REPO / "suites" / "jglue" / "test_jglue.py").read_text(encoding="utf-8"))
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest_subprocess(
        "-p", "kensa_pytest", "-p", "no:cacheprovider", "-n", "2", "--model", "tiny", "--limit", "4",
        "--gate", "off", "--prompt-version", "0.3", "-k", "jcommonsenseqa or jnli-1.3",
        "--results-dir", str(pytester.path / "out"))
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out[-3000:]
    assert "crashed while running" in out and DOOMED in out
    assert f"kensa: 1 test(s) lost when their worker died: test_jglue.py::test_task[{DOOMED}]" in out
    summary = (pytester.path / "out" / "summary.md").read_text(encoding="utf-8")
    assert "lost when their worker died" in summary
    result.assert_outcomes(passed=1, failed=1)  # JNLI 1.3 ran on the restarted worker; JCommonsenseQA was lost
