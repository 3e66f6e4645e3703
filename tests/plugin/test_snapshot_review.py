"""The snapshot review flow, as a reviewer meets it (pytester, the real suite files, -n 0 and -n 2).

1. One character of a prompt template changes (a conftest edits JCommonsenseQA 0.3's text): the
   prompt snapshot fails with a readable diff naming the line, the summary names the task, and
   after --snapshot-update the run passes again.
2. The tiny model's tokenizer is swapped for a variant with an NFKC normaliser (a conftest wraps
   the loader): the tokenizer snapshot fails with the changed ids, and passes after the update.
"""

from __future__ import annotations

import shutil

import pytest

from tests.helpers import REPO

PROMPTS = REPO / "suites" / "jglue"
TOKENIZERS = REPO / "suites" / "tokenizers"
TASK = "jcommonsenseqa-1.1-0.3"

EDIT_TEMPLATE = '''
import dataclasses

from kensa.tasks import all_tasks

for task in all_tasks():
    if task.name == "jcommonsenseqa":
        templates = [dataclasses.replace(t, text=t.text.replace("選んでください", "選んで下さい", 1))
                     if t.version == "0.3" else t for t in task.templates]
        object.__setattr__(task, "templates", templates)
'''

SWAP_TOKENIZER = '''
import kensa.backends.hf_causal as hf

_load = hf.load_tokenizer


def load_nfkc(*args, **kwargs):
    from tokenizers import normalizers

    tok = _load(*args, **kwargs)
    old = tok.backend_tokenizer.normalizer
    tok.backend_tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), old])
    return tok


hf.load_tokenizer = load_nfkc
'''


def run(pytester, xdist, *args):
    extra = ("-n", "2") if xdist else ()
    return pytester.runpytest_subprocess("-p", "kensa_pytest", "-p", "no:cacheprovider", "-m", "snapshot",
                                         "-q", *extra, *args)


@pytest.mark.parametrize("xdist", [False, True], ids=["n0", "n2"])
def test_a_changed_template_fails_with_a_readable_diff_until_updated(pytester, monkeypatch, xdist):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    shutil.copy(PROMPTS / "test_prompt_snapshots.py", pytester.path)
    shutil.copytree(PROMPTS / "__snapshots__", pytester.path / "__snapshots__")
    assert run(pytester, xdist).ret == 0
    pytester.makeconftest(EDIT_TEMPLATE)

    result = run(pytester, xdist)
    result.assert_outcomes(failed=1, passed=len(list((pytester.path / "__snapshots__").rglob("*.prompt.txt"))) - 1)
    result.stdout.fnmatch_lines([
        f"*the prompts of {TASK} changed (snapshot test_prompt[[]{TASK}[]]):*",
        "*--- snapshot*", "*+++ now*",
        "*選んでください*",
        "*選んで下さい*",
        f"*kensa: prompts changed (1): {TASK}*",
    ])
    assert "\\u" not in result.stdout.str().split("kensa: prompts changed")[0].split("+++ now")[1]
    # results/summary.md (the pull request's view) links the file, says how to see its diff and folds the diff in
    file = f"__snapshots__/test_prompt_snapshots/test_prompt[{TASK}].prompt.txt"
    summary = (pytester.path / "results" / "summary.md").read_text("utf-8")
    assert summary.startswith("**kensa: no model was scored; 1 snapshot file(s) changed**")
    link = file.replace("[", "%5B").replace("]", "%5D")
    shown = file.replace("[", "\\[").replace("]", "\\]")  # brackets escaped in the link's text
    assert f"- the prompts of {TASK}: [{shown}](../{link})" in summary
    assert f"`git diff -- '{file}'`" in summary and "--snapshot-update`" in summary
    assert "```diff" in summary and "+" in summary.split("```diff")[1] and "選んで下さい" in summary

    updated = run(pytester, xdist, "--snapshot-update")
    assert updated.ret == 0
    updated.stdout.fnmatch_lines(["*1 snapshot updated*"])
    summary = (pytester.path / "results" / "summary.md").read_text("utf-8")
    assert f"rewritten by --snapshot-update; review `git diff -- '{file}'`" in summary
    text = next((pytester.path / "__snapshots__").rglob(f"test_prompt[[]{TASK}[]].prompt.txt")).read_text("utf-8")
    assert "選んで下さい" in text and "選んでください" not in text
    assert run(pytester, xdist).ret == 0


@pytest.mark.slow  # loads the tiny model in each of 3 runs (about 25 s each on a busy 2-CPU machine)
@pytest.mark.parametrize("xdist", [pytest.param(False, marks=pytest.mark.ci), True], ids=["n0", "n2"])
def test_a_swapped_tokenizer_fails_the_tokenizer_snapshot_until_updated(pytester, monkeypatch, xdist, tiny_neox):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    shutil.copy(TOKENIZERS / "test_tokenizer_snapshots.py", pytester.path)
    shutil.copytree(TOKENIZERS / "__snapshots__", pytester.path / "__snapshots__")
    args = ("--model", "tiny", "test_tokenizer_snapshots.py::test_tokenizer")
    assert run(pytester, xdist, *args).ret == 0
    pytester.makeconftest(SWAP_TOKENIZER)

    result = run(pytester, xdist, *args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*the tokenizer of tiny changed (snapshot test_tokenizer[[]tiny[]]):*",
        "*== fullwidth-alnum: full-width Latin and digits (NFKC folds them) ==*",
        "*-ids (19):*", "*+ids (*", "*kensa: tokenizer changed (1): tiny*",
    ])
    updated = run(pytester, xdist, *args, "--snapshot-update")
    assert updated.ret == 0
    updated.stdout.fnmatch_lines(["*1 snapshot updated*"])
    assert run(pytester, xdist, *args).ret == 0


def test_a_model_without_a_snapshot_is_told_to_take_one_not_that_its_tokenizer_changed(pytester, monkeypatch,
                                                                                      tiny_neox):
    """A first run names the missing file and the command; it is not reported as a tokenizer change."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    shutil.copy(TOKENIZERS / "test_tokenizer_snapshots.py", pytester.path)
    args = ("-p", "kensa_pytest", "-p", "no:cacheprovider", "-m", "snapshot", "--model", "tiny",
            "test_tokenizer_snapshots.py::test_tokenizer")
    result = pytester.runpytest(*args)  # in this process: the tiny model loads once
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        ("*no snapshot yet for the tokenizer of tiny (test_tokenizer[[]tiny[]].tokens.txt): run with "
         "--snapshot-update and commit it*"),
        "*kensa: no snapshot yet (1): tiny: run with --snapshot-update and commit the new files*",
    ])
    assert "tokenizer changed" not in result.stdout.str()
    assert pytester.runpytest(*args, "--snapshot-update").ret == 0
    assert pytester.runpytest(*args).ret == 0


def test_every_built_in_model_has_its_tokenizer_snapshot_committed():
    from kensa.tiny import build as tiny

    names = {*tiny.MODELS, *tiny.ALIASES}
    have = {p.name for p in (TOKENIZERS / "__snapshots__" / "test_tokenizer_snapshots").glob("*.tokens.txt")}
    assert {f"test_tokenizer[{n}].tokens.txt" for n in names} <= have
