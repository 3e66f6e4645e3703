"""Every reader besides the task loaders (tests/unit/tasks/test_loader_fuzz.py), and every option parser, fuzzed.

Damaged thresholds TOML and per-document files, damaged tokenizer probe files, and arbitrary option and
model-arg values (huge, negative, NaN, odd encodings): the only exceptions that come out are kensa's own,
naming the file (and line or field) or the option and value.
"""

from __future__ import annotations

import math
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kensa.backends.args import parse_model_args
from kensa.cli.options import (
    parse_device,
    parse_gate,
    parse_limit,
    parse_num_fewshot,
    parse_prompt_versions,
    parse_response_cache,
)
from kensa.errors import DataError, OptionError
from kensa.gate.thresholds import ThresholdsError, load_items, load_thresholds
from kensa.report.snapshot_text import PROBES_FILE, load_probes
from kensa.tasks import all_tasks
from tests.helpers import REPO, damage

KNOWN = {v.task_id: t.metrics for t in all_tasks() for v in t.variants()}
TASK_NAMES = sorted({t.name for t in all_tasks()})
VERSIONS = sorted({v for t in all_tasks() for v in t.versions()})
FUZZ = settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])


HOW = st.sampled_from(["cut", "flip", "invalid-utf8", "bom", "shift_jis", "utf-16", "numbers", "nul"])


@pytest.fixture(scope="module")
def copied(tmp_path_factory):
    root = tmp_path_factory.mktemp("thresholds")
    shutil.copy(REPO / "thresholds" / "tiny-neox.toml", root / "tiny-neox.toml")
    shutil.copytree(REPO / "thresholds" / "tiny-neox", root / "tiny-neox")
    return root


@FUZZ
@given(how=HOW, where=st.floats(0, 1), junk=st.binary(min_size=1, max_size=6))
def test_a_damaged_thresholds_file_is_a_thresholds_error_naming_it(copied, tmp_path_factory, how, where, junk):
    path = tmp_path_factory.mktemp("th") / "tiny-neox.toml"
    path.write_bytes(damage((copied / "tiny-neox.toml").read_bytes(), how, where, junk))
    try:
        th = load_thresholds(path, "tiny-neox", KNOWN)
    except ThresholdsError as exc:
        assert str(path) in str(exc)
        return
    for entry in th.entries.values():  # whatever loaded is sane: finite values, positive n
        assert entry.n > 0 and all(math.isfinite(m.value) for m in entry.metrics.values())


@FUZZ
@given(how=HOW, where=st.floats(0, 1), junk=st.binary(min_size=1, max_size=6), which=st.integers(0, 62))
def test_a_damaged_items_file_is_a_thresholds_error_naming_it(copied, tmp_path_factory, how, where, junk, which):
    th = load_thresholds(copied / "tiny-neox.toml", "tiny-neox", KNOWN)
    entry = sorted(th.entries.values(), key=lambda e: e.task_id)[which % len(th.entries)]
    root = tmp_path_factory.mktemp("items")
    target = root / entry.items
    target.parent.mkdir(parents=True)
    target.write_bytes(damage((copied / entry.items).read_bytes(), how, where, junk))
    try:
        items = load_items(root, entry, th.path)
    except ThresholdsError as exc:
        assert str(target) in str(exc) or str(th.path) in str(exc)
        return
    assert all(len(v) == entry.n for v in items.values.values())


@FUZZ
@given(how=HOW, where=st.floats(0, 1), junk=st.binary(min_size=1, max_size=6))
def test_a_damaged_probe_file_is_a_data_error_naming_it(tmp_path_factory, how, where, junk):
    path = tmp_path_factory.mktemp("probes") / "tokenizer_probes.jsonl"
    path.write_bytes(damage(PROBES_FILE.read_bytes(), how, where, junk))
    try:
        probes = load_probes(path)
    except DataError as exc:
        assert str(path) in str(exc)
        return
    assert all(isinstance(p.text, str) for p in probes)


# -- options -----------------------------------------------------------------------------------------

NASTY = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["nan", "-nan", "inf", "-inf", "1e309", "-1", "0", "-0", "1" * 400, "0x10", "1_000", " 3 ",
                     "３", "٣", "None", "", ",", "=", "==", "a=b=c", "batch_size=", "batch_size=-1",
                     "batch_size=1e9", "max_length=nan", "dtype=float8", "peft=", "load_in_8bit=maybe"]),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["batch_size", "max_length", "max_gen_toks", "dtype",
                                                        "load_in_4bit", "use_fast", "revision", "device"]),
              st.text(max_size=12)),
)


@FUZZ
@given(NASTY)
def test_model_args_fail_only_with_an_option_error(text):
    try:
        args = parse_model_args(text)
    except OptionError as exc:
        assert str(exc).startswith("--model-args")
        return
    assert args.batch_size == "auto" or 1 <= int(args.batch_size) < 1 << 31
    assert args.max_length is None or 0 < args.max_length < 1 << 31


@FUZZ
@given(NASTY)
def test_limit_fails_only_with_an_option_error(text):
    try:
        value = parse_limit(text)
    except OptionError as exc:
        assert "--limit" in str(exc)
        return
    assert value is None or (math.isfinite(value) and value > 0)


@FUZZ
@given(NASTY)
def test_run_options_fail_only_with_option_errors_naming_them(text):
    for option, parse in (("--num-fewshot", lambda t: parse_num_fewshot(t, TASK_NAMES)),
                          ("--prompt-version", lambda t: parse_prompt_versions(t, VERSIONS)),
                          ("--device", parse_device),
                          ("--response-cache", parse_response_cache),
                          ("--alpha", lambda t: parse_gate([], baselines=(), mode="on", directory="th", update=False,
                                                           allow_lower=False, alpha=t, accept_env_change=False)),
                          ("--thresholds-base", lambda t: parse_gate([], baselines=(), mode="on", directory="th",
                                                                     update=False, allow_lower=False, alpha=0.05,
                                                                     accept_env_change=False, base=t))):
        try:
            parse(text)
        except OptionError as exc:
            assert option in str(exc), (option, str(exc))
