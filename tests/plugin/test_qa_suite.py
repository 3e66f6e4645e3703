"""The QA suite as users run it: which tests a model gets, the TSV skip, and the gate catching a damaged
tiny-t5-trained."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO


def pytest_run(tmp_path, *args, timeout=900):
    cmd = [sys.executable, "-m", "pytest", "suites/qa", "-p", "no:cacheprovider", "--results-dir",
           str(tmp_path / "results"), "--response-cache", "off", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False, timeout=timeout)


def collected(tmp_path, *args) -> list[str]:
    done = pytest_run(tmp_path, "--collect-only", "-q", "-m", "gpu", *args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return sorted(line.split("[", 1)[1].rstrip("]") for line in done.stdout.splitlines() if "::test_task[" in line)


def test_each_kind_of_model_gets_the_prompts_written_for_it(tmp_path):
    causal = collected(tmp_path, "--model", "tiny")
    assert causal == ["aqg-1.0-0.3", "aqg_hl-1.0-0.3", "qa-1.0-0.3"]
    seq2seq = collected(tmp_path, "--model", "tiny-t5")
    assert seq2seq == ["aqg-1.0-0.1", "aqg-1.0-0.4", "aqg_hl-1.0-0.1", "aqg_hl-1.0-0.2", "aqg_hl-1.0-0.4",
                       "aqg_hl-1.0-0.5", "aqg_hl_tsv-1.0-0.1", "aqg_tsv-1.0-0.1", "qa-1.0-0.1", "qa-1.0-0.4",
                       "qa_tsv-1.0-0.1"]
    both = collected(tmp_path, "--model", "tiny", "--model", "tiny-t5")
    assert len(both) == len(causal) + len(seq2seq)


def test_the_users_tsv_skips_with_a_reason_when_the_data_dir_has_none(tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(REPO / "fixtures" / "qa" / "jsquad", data / "jglue" / "jsquad")
    done = pytest_run(tmp_path, "--model", "tiny-t5", "--data-dir", str(data), "-k", "qa_tsv", "-rs", "--gate", "off")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 skipped" in done.stdout and "qa_tsv-1.0-0.1: the QA TSV is the users' own data" in done.stdout


@pytest.mark.slow
@pytest.mark.ci
def test_a_damaged_tiny_t5_trained_fails_the_gate(tmp_path):
    from kensa.tiny import build as tiny

    copy = tiny.write_tiny("tiny-t5-trained", tmp_path / "t5")
    damaged = tiny.perturb_weights(copy, tmp_path / "t5-damaged", scale=tiny.DAMAGE_SCALE, seed=0)
    some = ("-k", "qa_tsv or aqg-1.0-0.1")
    done = pytest_run(tmp_path, "--model", str(copy), "--baseline", "tiny-t5-trained", *some)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    done = pytest_run(tmp_path, "--model", str(damaged), "--baseline", "tiny-t5-trained", *some)
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr[-2000:]
    assert "kensa gate: FAIL" in done.stdout
    failed = {line.split()[2] for line in done.stdout.splitlines() if line.rstrip().endswith(" fail")}
    assert {"exact_match", "char_f1"} <= failed, done.stdout[-4000:]


def kensa_generate(*args):
    return subprocess.run([sys.executable, "-m", "kensa", "generate", *args], cwd=REPO, capture_output=True,
                          text=True, check=False, timeout=600)


def test_generate_writes_a_question_without_the_bad_words():
    done = kensa_generate("--model", "tiny-t5-trained", "--answer", "甲府市", "--context", "山梨県の県庁所在地は甲府市です。",
                          "--bad-words", "山梨", "山梨県")  # the users' form: several values
    assert done.returncode == 0, done.stderr[-2000:]
    question = done.stdout.strip()
    assert question and "山梨" not in question and "山梨県" not in question
    assert "prompt 0.1 (t5-aqg)" in done.stderr


def test_generate_refuses_bad_options_by_name():
    done = kensa_generate("--model", "tiny-t5", "--answer", "神社", "--context", "西の神社と東の神社", "--highlight")
    assert done.returncode == 4 and "--answer-start" in done.stderr and "occurs 2 times" in done.stderr
    done = kensa_generate("--model", "tiny-t5", "--answer", "x", "--context", "abc")
    assert done.returncode == 4 and "--answer: 'x' does not occur in the context" in done.stderr
    done = kensa_generate("--model", "tiny-t5", "--answer", "a", "--context", "abc", "--bad-words", "a,,b")
    assert done.returncode == 4 and "--bad-words: 'a,,b': entry 2 is empty" in done.stderr
    done = kensa_generate("--model", "tiny-t5", "--answer", "a", "--context", "abc", "--bad-words", "山梨 山梨県")
    assert done.returncode == 4 and "'山梨 山梨県' holds whitespace" in done.stderr


def test_a_round_trip_answered_by_another_qa_model_is_incomparable_not_a_failure(tmp_path):
    # tiny-t5-trained's baseline was measured answering its own questions ("self"); the gate stops before
    # scoring and names the change instead of failing roundtrip_f1 against a number another model produced.
    done = pytest_run(tmp_path, "--model", "tiny-t5-trained", "--qa-model", "tiny-t5", "-k", "aqg-1.0-0.1")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    assert "incomparable" in done.stdout and "qa_model self -> tiny-t5@" in done.stdout, done.stdout[-3000:]
