"""Bad option values fail at session start with an OptionError naming the option and the value.

Covers ``--model-args`` (kensa.backends.args), ``--model`` resolution (kensa.models.resolve_model
through kensa.cli.options.parse_models) and the other run options in kensa.cli.options. Good inputs,
including the harness's own model_args strings, must parse to the right fields.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kensa.backends.args import ModelArgs, parse_model_args
from kensa.cli.options import (
    build_run_config,
    parse_data_source,
    parse_device,
    parse_limit,
    parse_models,
    parse_num_fewshot,
    parse_prompt_versions,
)
from kensa.data import DataSource
from kensa.errors import OptionError
from kensa.tasks.jglue.jcommonsenseqa import TASK
from tests.helpers import REPO


@contextmanager
def raises_option(option: str, *fragments: str):
    """Expect an OptionError for ``option`` whose message holds every fragment."""
    with pytest.raises(OptionError) as info:
        yield info
    message = str(info.value)
    assert info.value.option == option, message
    assert message.startswith(f"{option}:"), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# --- --model-args: errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("foo=1", ["'foo'", "unknown key"]),
        ("pretrained=x,tokenzier=y", ["'tokenzier'", "tokenizer"]),  # typo; known keys are listed
        ("use_fast=true,use_fast=false", ["'use_fast'", "twice"]),
        ("dtype=float16,torch_dtype=bf16", ["'dtype'", "twice"]),
        ("use_fast=maybe", ["use_fast", "'maybe'"]),
        ("trust_remote_code=", ["trust_remote_code", "''"]),
        ("batch_size=abc", ["batch_size", "'abc'"]),
        ("max_length=1.5", ["max_length", "'1.5'"]),
        ("batch_size=0", ["batch_size", "'0'"]),
        ("batch_size=-4", ["batch_size", "'-4'"]),
        ("max_length=0", ["max_length", "'0'"]),
        ("dtype=float8", ["dtype", "'float8'"]),
        ("torch_dtype=int4", ["'int4'"]),
        ("load_in_8bit=true,load_in_4bit=true", ["load_in_8bit", "load_in_4bit"]),
        ("foo", ["'foo'", "key=value"]),
        ("pretrained=x,use_fast", ["'use_fast'", "key=value"]),
        ("revision=", ["revision", "empty"]),
        ("=1", ["''"]),
    ],
)
def test_bad_model_args(text, fragments):
    with raises_option("--model-args", *fragments):
        parse_model_args(text)


# --- --model-args: good values --------------------------------------------------------------


def test_harness_model_args_string_parses():
    args = parse_model_args(
        "pretrained=rinna/japanese-gpt-neox-3.6b-instruction-ppo,use_fast=False,device_map=auto,torch_dtype=auto"
    )
    assert args.pretrained == "rinna/japanese-gpt-neox-3.6b-instruction-ppo"
    assert args.use_fast is False
    assert args.device_map == "auto"
    assert args.dtype == "auto"
    assert args.batch_size == 4 and args.load_in_8bit is False and args.peft is None


@pytest.mark.parametrize(
    ("text", "dtype"),
    [("torch_dtype=bf16", "bfloat16"), ("torch_dtype=float16", "float16"), ("dtype=fp16", "float16"),
     ("dtype=half", "float16"), ("torch_dtype=fp32", "float32"), ("dtype=float", "float32"),
     ("dtype=BFloat16", "bfloat16"), ("dtype=auto", "auto")],
)
def test_dtype_aliases(text, dtype):
    assert parse_model_args(text).dtype == dtype


def test_torch_dtype_equals_dtype():
    assert parse_model_args("torch_dtype=bfloat16") == parse_model_args("dtype=bfloat16")


@pytest.mark.parametrize("text", [None, "", "  ", ",", " , "])
def test_empty_model_args_are_defaults(text):
    assert parse_model_args(text) == ModelArgs()


def test_model_args_whitespace_and_bool_spellings():
    args = parse_model_args(" use_fast = no , trust_remote_code=YES, load_in_4bit=1 ,batch_size= 16 ")
    assert (args.use_fast, args.trust_remote_code, args.load_in_4bit, args.batch_size) == (False, True, True, 16)


# The fields of ModelArgs, written out here so that a renamed or dropped key fails the test.
STR_KEYS = ("pretrained", "revision", "tokenizer", "device_map", "peft")
BOOL_KEYS = ("use_fast", "load_in_8bit", "load_in_4bit", "trust_remote_code")
INT_KEYS = ("max_length", "batch_size")
DTYPE_SPELLINGS = {"auto": "auto", "float32": "float32", "fp32": "float32", "float": "float32",
                   "float16": "float16", "fp16": "float16", "half": "float16",
                   "bfloat16": "bfloat16", "bf16": "bfloat16"}
BOOL_SPELLINGS = {"True": True, "true": True, "1": True, "yes": True, "False": False, "false": False,
                  "0": False, "no": False}

_value_text = st.text(
    alphabet=st.sampled_from("abcxyzABC019-_./:=りんご日本"), min_size=1, max_size=20
).filter(lambda s: s.strip() == s)


@st.composite
def model_arg_items(draw):
    """A list of (key, written value, expected parsed value), each key at most once."""
    keys = draw(st.lists(st.sampled_from(STR_KEYS + BOOL_KEYS + INT_KEYS + ("dtype", "torch_dtype")),
                         unique_by=lambda k: "dtype" if k == "torch_dtype" else k))
    items = []
    for key in keys:
        if key in STR_KEYS:
            value = draw(_value_text)
            items.append((key, value, key, value))
        elif key in BOOL_KEYS:
            written = draw(st.sampled_from(sorted(BOOL_SPELLINGS)))
            items.append((key, written, key, BOOL_SPELLINGS[written]))
        elif key in INT_KEYS:
            n = draw(st.integers(1, 10**6))
            items.append((key, str(n), key, n))
        else:
            written = draw(st.sampled_from(sorted(DTYPE_SPELLINGS)))
            items.append((key, written, "dtype", DTYPE_SPELLINGS[written]))
    expected = {field: value for _, _, field, value in items}
    if expected.get("load_in_8bit") and expected.get("load_in_4bit"):
        items = [i for i in items if i[0] != "load_in_4bit"]
    return items


@given(model_arg_items())
def test_model_args_round_trip(items):
    text = ",".join(f"{key}={written}" for key, written, _, _ in items)
    args = parse_model_args(text)
    expected = {field: value for _, _, field, value in items}
    defaults = ModelArgs()
    for field in STR_KEYS + BOOL_KEYS + INT_KEYS + ("dtype",):
        assert getattr(args, field) == expected.get(field, getattr(defaults, field)), (text, field)


# --- --num-fewshot --------------------------------------------------------------------------

TASKS = ["jcommonsenseqa"]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("jnli=3", ["'jnli'", "jcommonsenseqa"]),           # unknown task; known ones listed
        ("jcommonsenseqa=-1", ["'jcommonsenseqa=-1'", "negative"]),
        ("jcommonsenseqa=two", ["'jcommonsenseqa=two'", "integer"]),
        ("jcommonsenseqa=2.5", ["'jcommonsenseqa=2.5'"]),
        ("jcommonsenseqa", ["'jcommonsenseqa'", "task=k"]),
        ("3", ["'3'"]),
    ],
)
def test_bad_num_fewshot(text, fragments):
    with raises_option("--num-fewshot", *fragments):
        parse_num_fewshot(text, TASKS)


def test_num_fewshot_repeated_task_is_an_error():
    """Two different k for one task is a conflict; --model-args refuses a repeated key the same way."""
    with raises_option("--num-fewshot", "'jcommonsenseqa'"):
        parse_num_fewshot("jcommonsenseqa=2,jcommonsenseqa=5", TASKS)


def test_good_num_fewshot():
    assert parse_num_fewshot("jcommonsenseqa=2", TASKS) == {"jcommonsenseqa": 2}
    assert parse_num_fewshot(" jcommonsenseqa = 0 ", TASKS) == {"jcommonsenseqa": 0}
    assert parse_num_fewshot(None, TASKS) == {}
    assert parse_num_fewshot("", TASKS) == {}


# --- --prompt-version -----------------------------------------------------------------------

KNOWN_VERSIONS = ["0.1", "0.2", "0.2.1", "0.3", "0.4", "0.5", "0.6"]


def test_task_versions_are_the_seven_harness_versions():
    assert TASK.versions() == KNOWN_VERSIONS


@pytest.mark.parametrize("text", ["0.7", "0.1,0.9", "1", "0.2.2", "ja-alpaca"])
def test_unknown_prompt_version(text):
    bad = next(v for v in text.split(",") if v not in KNOWN_VERSIONS)
    with raises_option("--prompt-version", repr(bad), *KNOWN_VERSIONS):
        parse_prompt_versions(text, KNOWN_VERSIONS)


def test_good_prompt_versions():
    assert parse_prompt_versions("0.1, 0.2.1,0.6", KNOWN_VERSIONS) == ("0.1", "0.2.1", "0.6")
    assert parse_prompt_versions(None, KNOWN_VERSIONS) is None


# --- --limit --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["abc", "", "0", "-1", "-0.5", "1.5", "10.25", "0x10"])
def test_bad_limit(text):
    with raises_option("--limit", repr(text)):
        parse_limit(text)


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e400"])
def test_non_finite_limit_is_an_option_error(text):
    """'nan' must not pass (it would crash later in resolve_limit); 'inf' must not escape as OverflowError."""
    with raises_option("--limit", repr(text)):
        parse_limit(text)


@pytest.mark.parametrize(("text", "value"), [("5", 5), ("5.0", 5), ("1e3", 1000), ("0.5", 0.5), ("1", 1),
                                             (None, None)])
def test_good_limit(text, value):
    got = parse_limit(text)
    assert got == value
    assert type(got) is type(value)


# --- --data-dir / --data-from-hub -----------------------------------------------------------


def test_missing_data_dir(tmp_path):
    missing = str(tmp_path / "no-such-data")
    with raises_option("--data-dir", repr(missing), "no such directory"):
        parse_data_source(missing, False)


def test_data_dir_that_is_a_file(tmp_path):
    f = tmp_path / "data.json"
    f.write_text("{}")
    with raises_option("--data-dir", repr(str(f))):
        parse_data_source(str(f), False)


def test_data_dir_and_hub_together(tmp_path):
    with raises_option("--data-dir", "--data-from-hub"):
        parse_data_source(str(tmp_path), True)


def test_good_data_sources(tmp_path):
    assert parse_data_source(str(tmp_path), False) == DataSource.local(tmp_path)
    assert parse_data_source(None, True) == DataSource.hub()
    assert parse_data_source(None, False) == DataSource.fixtures()


# --- --device -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["gpu", "CUDA", "cuda:0", "", "mps"])
def test_bad_device(text):
    with raises_option("--device", repr(text), "auto", "cpu", "cuda"):
        parse_device(text)


@pytest.mark.parametrize("text", ["auto", "cpu", "cuda"])
def test_good_device(text):
    assert parse_device(text) == text


# --- --model --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["./no/such/model", "/tmp/definitely-missing-xyz", "~/definitely/missing/xyz",
                                  "a/b/c"])
def test_missing_local_model_path(path):
    with raises_option("--model", repr(path), "no such directory"):
        parse_models([path], [])


def test_directory_without_config_json(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with raises_option("--model", repr(str(tmp_path)), "config.json"):
        parse_models([str(tmp_path)], [])


def test_local_model_directory(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (spec,) = parse_models([str(tmp_path)], [])
    assert spec.kind == "local"
    assert spec.source == str(tmp_path.resolve())


def test_missing_pretrained_path_names_model_args():
    with raises_option("--model-args pretrained", "'./no/such/model'"):
        parse_models(["my-model"], ["pretrained=./no/such/model"])


@pytest.mark.parametrize("name", ["tiny", "tiny-neox", "tiny-llama"])
def test_tiny_models(name):
    (spec,) = parse_models([name], [])
    assert spec.kind == "tiny"
    assert spec.source == name
    assert spec.args == ModelArgs()


def test_hub_id():
    (spec,) = parse_models(["rinna/japanese-gpt-neox-3.6b"], [])
    assert (spec.kind, spec.source, spec.name) == ("hub", "rinna/japanese-gpt-neox-3.6b", "rinna/japanese-gpt-neox-3.6b")


def test_hub_id_from_pretrained_arg():
    (spec,) = parse_models(["ppo"], ["pretrained=rinna/japanese-gpt-neox-3.6b-instruction-ppo,use_fast=False"])
    assert (spec.kind, spec.source, spec.name) == ("hub", "rinna/japanese-gpt-neox-3.6b-instruction-ppo", "ppo")
    assert spec.args.use_fast is False


@pytest.mark.parametrize("name", ["bad name!", "org/na me", "-leading-dash"])
def test_neither_path_nor_hub_id(name):
    with raises_option("--model", repr(name)):
        parse_models([name], [])


def test_model_args_twice_for_one_model():
    with raises_option("--model-args", "2 times", "1 models"):
        parse_models(["tiny"], ["batch_size=2", "batch_size=4"])


def test_model_args_without_model():
    with raises_option("--model-args", "without --model"):
        parse_models([], ["batch_size=2"])


def test_model_args_once_per_model():
    a, b = parse_models(["tiny-neox", "tiny-llama"], ["batch_size=2", "batch_size=8"])
    assert (a.args.batch_size, b.args.batch_size) == (2, 8)
    a, b = parse_models(["tiny-neox", "tiny-llama"], ["batch_size=3"])
    assert (a.args.batch_size, b.args.batch_size) == (3, 3)


def test_model_args_count_mismatch():
    with raises_option("--model-args", "3 times", "2 models"):
        parse_models(["tiny-neox", "tiny-llama"], ["batch_size=1", "batch_size=2", "batch_size=3"])


@pytest.mark.parametrize("models", [["tiny", "tiny"], ["rinna/x", "rinna/x"], ["tiny", "tiny-llama", "tiny"]])
def test_duplicate_model(models):
    with raises_option("--model", "more than once"):
        parse_models(models, [])


@pytest.mark.parametrize("peft", ["./no/such/adapter", "/tmp/definitely-missing-adapter-xyz"])
def test_missing_peft_path(peft):
    with raises_option("--model-args peft", repr(peft), "no such directory"):
        parse_models(["tiny"], [f"peft={peft}"])


def test_peft_directory_without_adapter_config(tmp_path):
    with raises_option("--model-args peft", "adapter_config.json"):
        parse_models(["tiny"], [f"peft={tmp_path}"])


def test_good_peft(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    (spec,) = parse_models(["tiny"], [f"peft={tmp_path}"])
    assert spec.args.peft == str(tmp_path)
    (spec,) = parse_models(["tiny"], ["peft=tiny-lora"])
    assert spec.args.peft == "tiny-lora"


def test_missing_tokenizer_path():
    with raises_option("--model-args tokenizer", "'./no/such/tokenizer'"):
        parse_models(["tiny"], ["tokenizer=./no/such/tokenizer"])


def test_bad_model_args_surface_through_parse_models():
    with raises_option("--model-args", "'foo'"):
        parse_models(["tiny"], ["foo=bar"])


def test_home_relative_model_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    (spec,) = parse_models(["~/model"], [])
    assert (spec.kind, spec.source) == ("local", str((tmp_path / "model").resolve()))


def test_home_relative_tokenizer_path(tmp_path, monkeypatch):
    """'~/tok' is treated as a path (like --model '~/x'), so an existing ~/tok must be accepted."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "tok").mkdir()
    (spec,) = parse_models(["tiny"], ["tokenizer=~/tok"])
    assert spec.args.tokenizer == "~/tok"  # kept as given; expanded where the tokenizer is loaded
    with pytest.raises(OptionError, match="tokenizer.*'~/no-tok': no such directory"):
        parse_models(["tiny"], ["tokenizer=~/no-tok"])


def test_fewshot_pool_names_a_split_or_a_file(tmp_path):
    from kensa.cli.options import parse_pools
    from kensa.data import DataSource
    from kensa.tasks import all_tasks

    tasks = all_tasks()
    source = parse_pools("jnli=validation", tasks, DataSource.fixtures())
    assert source.pool_for("jnli") == "validation" and "jnli shots from validation" in source.describe()
    jnli = next(t for t in tasks if t.name == "jnli")
    _, pool = jnli.load(source)
    assert pool.source.endswith("fixtures/jglue/jnli/valid-v1.3.json")
    pool_file = tmp_path / "pool.json"
    pool_file.write_text((REPO / "fixtures/jglue/jnli/train-v1.3.json").read_text(encoding="utf-8"), encoding="utf-8")
    _, pool = jnli.load(parse_pools(f"jnli={pool_file}", tasks, DataSource.fixtures()))
    assert pool.source == str(pool_file)
    for text, message in [("jnli", "not of the form"), ("nope=valid", "unknown task 'nope'"),
                          ("jnli=nosuch", "neither a split of jnli"), ("jnli=validation,jnli=test", "given twice")]:
        with pytest.raises(OptionError, match="--fewshot-pool") as exc:
            parse_pools(text, tasks, DataSource.fixtures())
        assert message in str(exc.value)


@pytest.mark.parametrize(("gate", "message"), [
    (dict(mode="maybe"), "--gate: 'maybe': expected on or off"),
    (dict(mode="off", update=True), "--thresholds-update: cannot be combined with --gate off"),
    (dict(allow_lower=True), "--allow-lower: only means something with --thresholds-update"),
    (dict(baselines=["a/b"]), "--baseline: 'a/b': a baseline name is a file name"),
    (dict(baselines=["a", "b"]), "--baseline: given 2 times for 1 models"),
    (dict(alpha="x"), "--alpha: 'x': expected a number"),
    (dict(alpha="1.5"), "--alpha: '1.5': must be between 0 and 1"),
])
def test_bad_gate_options_name_the_option_and_value(gate, message):
    from kensa.tasks import all_tasks

    with pytest.raises(OptionError) as exc:
        build_run_config(models=["tiny"], model_args=[], prompt_version=None, num_fewshot=None, limit=None,
                         device="cpu", data_dir=None, data_from_hub=False, results_dir="r", tasks=all_tasks(),
                         gate=gate)
    assert message in str(exc.value)


def test_two_models_cannot_update_one_baseline():
    from kensa.tasks import all_tasks

    with pytest.raises(OptionError, match="two models cannot update the same baseline"):
        build_run_config(models=["tiny", "tiny-llama"], model_args=[], prompt_version=None, num_fewshot=None,
                         limit=None, device="cpu", data_dir=None, data_from_hub=False, results_dir="r",
                         tasks=all_tasks(), gate=dict(baselines=["line"], update=True))


def test_batch_size_auto_is_accepted_and_a_bad_value_says_what_is():
    assert parse_model_args("batch_size=auto").batch_size == "auto"
    assert parse_model_args("batch_size=AUTO").batch_size == "auto"
    with pytest.raises(OptionError, match=r"batch_size='max': expected an integer or auto"):
        parse_model_args("batch_size=max")
