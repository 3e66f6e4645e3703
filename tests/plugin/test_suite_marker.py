"""A suite declares itself with ``pytest.mark.kensa_suite(NAME)``, whatever its file is called, and its whole
test is ``kensa_check(task_variant)``: the quiz's own steps (warm-up, record, latency gate) come through the
plugin hooks, not from the file name."""

from __future__ import annotations

import os

import pytest

from tests.helpers import REPO

QUIZ = (REPO / "suites" / "quiz" / "test_quiz.py").read_text(encoding="utf-8")


def run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "kensa_pytest", "-p", "no:cacheprovider", *args)


@pytest.fixture
def tree(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), str(pytester.path)]))
    return pytester


def test_task_variant_without_a_suite_marker_is_a_collection_error(tree):
    tree.makepyfile(test_mine="def test_a(task_variant):\n    pass\n")
    result = run(tree, "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error
    result.stdout.fnmatch_lines(["*test_mine: mark it with pytest.mark.kensa_suite(NAME) to use task_variant*"])


def test_the_suite_marker_picks_the_tasks(tree):
    tree.makepyfile(test_mine="import pytest\n\npytestmark = pytest.mark.kensa_suite('qa')\n\n\n"
                              "def test_a(task_variant):\n    pass\n")
    ids = [line for line in run(tree, "--collect-only", "-q").stdout.lines if "::test_a[" in line]
    assert ids and all("aqg" in i or "qa" in i for i in ids)
    assert not any("jcommonsenseqa" in i or "quiz_" in i for i in ids)


def test_the_quiz_suite_under_another_file_name_still_records_its_categories(tree):
    pytest.importorskip("transformers")
    tree.makepyfile(test_categories=QUIZ)
    out = tree.path / "out"
    result = run(tree, "-m", "gpu", "--model", "tiny", "--gate", "off", "-k", "anime_loglik-1.0-0.2", "--limit", "4",
                 "--results-dir", str(out), "--response-cache", "off")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*kensa quiz*", "*tiny*fixtures*アニメ*loglik*0.2*"])
    assert (out / "quiz.md").is_file()


def test_the_quiz_prompt_snapshots_keep_the_registered_tasks_whatever_the_data(tree):
    """The scored quiz tests follow the data; its prompt snapshots render the registered tasks from the fixtures."""
    tree.makepyfile(test_snaps=(REPO / "suites" / "quiz" / "test_quiz_prompt_snapshots.py").read_text(encoding="utf-8"),
                    test_categories=QUIZ)
    data = REPO / "fixtures" / "quiz" / "data"

    def ids(*args):
        lines = run(tree, "--collect-only", "-q", *args).stdout.lines
        return ([x.split("[", 1)[1] for x in lines if "::test_prompt[" in x],
                [x.split("[", 1)[1] for x in lines if "::test_quiz[" in x])

    snaps, scored = ids()
    snaps_with_data, scored_with_data = ids("--data-dir", str(data))
    assert snaps and snaps == snaps_with_data
    assert scored != scored_with_data and any("jmmlu" in i for i in scored_with_data)
