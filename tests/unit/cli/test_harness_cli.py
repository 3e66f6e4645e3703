"""``python -m kensa harness``: main.py's flags, translated to the suite's pytest options."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kensa.backends.args import parse_model_args
from kensa.cli.harness import SUITE, translate
from kensa.errors import OptionError
from tests.helpers import REPO

KNOWN = {"jcommonsenseqa-1.1-0.3": "jcommonsenseqa", "jcommonsenseqa-1.1-0.4": "jcommonsenseqa",
         "jnli-1.1-0.3": "jnli", "marc_ja-1.1-0.3": "marc_ja", "xwinograd_ja": "xwinograd_ja"}


def test_the_xgen_command_translates_flag_for_flag(tmp_path):
    tr = translate(["--model", "hf-causal-experimental", "--model_args",
                    ("pretrained=Salesforce/xgen-7b-8k-base,peft=PATH,load_in_8bit=True,device_map_option=auto,"
                    "dtype=float16,trust_remote_code=True"), "--tasks", ("jcommonsenseqa-1.1-0.3,jnli-1.1-0.3,"
                    "marc_ja-1.1-0.3"), "--num_fewshot", "2,3,3", "--device", "cuda", "--output_path",
                    str(tmp_path / "result.json")], KNOWN)
    args = tr.pytest_args
    assert tr.model == "Salesforce/xgen-7b-8k-base" and tr.output_path == tmp_path / "result.json"
    assert args[args.index("--model-args") + 1] == ("peft=PATH,load_in_8bit=True,device_map_option=auto,"
                                                    "dtype=float16,trust_remote_code=True")
    assert args[args.index("--num-fewshot") + 1] == "jcommonsenseqa=2,jnli=3,marc_ja=3"
    assert args[args.index("--device") + 1] == "cuda" and "--gate" in args
    assert args[-3:] == [f"{SUITE}::test_task[{t}]" for t in ("jcommonsenseqa-1.1-0.3", "jnli-1.1-0.3",
                                                             "marc_ja-1.1-0.3")]


def test_the_openorca_command_moves_batch_size_into_the_model_args():
    tr = translate(["--model", "hf-causal", "--model_args", "pretrained=lightblue/openorca_stx,use_accelerate=True",
                    "--tasks", "jcommonsenseqa-1.1-0.3", "--num_fewshot", "2", "--batch_size", "4"], KNOWN)
    assert tr.pytest_args[tr.pytest_args.index("--model-args") + 1] == "use_accelerate=True,batch_size=4"
    args = parse_model_args("use_accelerate=True,batch_size=4")
    assert args.use_accelerate and args.device_map_option == "auto" and args.batch_size == 4


@pytest.mark.parametrize(("argv", "message"), [
    (["--model", "gpt3", "--model_args", "pretrained=x", "--tasks", "xwinograd_ja"], "--model: 'gpt3'"),
    (["--model", "hf", "--model_args", "dtype=float16", "--tasks", "xwinograd_ja"], "has no pretrained="),
    (["--model", "hf", "--model_args", "pretrained=x", "--tasks", "xlsum_ja"], "--tasks: unknown task(s) xlsum_ja"),
    (["--model", "hf", "--model_args", "pretrained=x", "--tasks", "jnli-1.1-0.3,xwinograd_ja", "--num_fewshot",
      "3,0,1"], "--num_fewshot: 3 values for 2 tasks"),
    (["--model", "hf", "--model_args", "pretrained=x", "--tasks", "jcommonsenseqa-1.1-0.3,jcommonsenseqa-1.1-0.4",
      "--num_fewshot", "2,3"], "task jcommonsenseqa is given k=2 and k=3"),
    (["--model", "hf", "--model_args", "pretrained=x,batch_size=2", "--tasks", "xwinograd_ja", "--batch_size", "4"],
     "--batch_size: also given in --model_args"),
    (["--model", "hf", "--model_args", "pretrained=x", "--tasks", "xwinograd_ja", "--description_dict_path", "d"],
     "--description_dict_path: not supported"),
])
def test_bad_harness_flags_name_the_flag_and_value(argv, message):
    with pytest.raises(OptionError) as exc:
        translate(argv, KNOWN)
    assert message in str(exc.value)


@pytest.mark.parametrize(("text", "message"), [
    ("quantized=model.safetensors", "quantized='model.safetensors' is not supported: GPTQ"),
    ("gptq_use_triton=True", "gptq_use_triton='True' is not supported"),
    ("add_special_tokens=True", "add_special_tokens=True is not supported"),
    ("device_map=auto,use_accelerate=True", "give device_map or use_accelerate"),
    ("device=tpu", "device='tpu'"),
])
def test_harness_model_args_kensa_cannot_honour_are_refused_with_a_reason(text, message):
    with pytest.raises(OptionError, match="--model-args") as exc:
        parse_model_args(text)
    assert message in str(exc.value)


def test_every_harness_model_arg_is_accepted():
    args = parse_model_args("use_accelerate=True,device_map_option=balanced,max_memory_per_gpu=20GB,"
                            "max_cpu_memory=64GB,offload_folder=/tmp/off,subfolder=sub,low_cpu_mem_usage=True,"
                            "add_special_tokens=False,max_gen_toks=128,device=cuda:0,revision=main,use_fast=False")
    assert (args.device_map_option, args.max_memory_per_gpu, args.max_cpu_memory, args.offload_folder) == \
        ("balanced", "20GB", "64GB", "/tmp/off")
    assert args.subfolder == "sub" and args.low_cpu_mem_usage and args.max_gen_toks == 128 and args.device == "cuda:0"


def _run_harness(tmp_path, argv):
    cmd = [sys.executable, "-m", "kensa", "harness", *argv, "--results_dir", str(tmp_path / "res")]
    done = subprocess.run(cmd, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_the_xgen_command_runs_as_pasted_on_cpu_with_a_tiny_model(tmp_path):
    """The published command, with only the model swapped for a built-in tiny one (and its adapter), and
    --device cpu: five tasks, two of them generation (JSQuAD, and XL-Sum by its plain name). ``--limit 8``
    keeps it to a minute: bitsandbytes' 8-bit matmul on CPU is slow (the whole fixture set takes 5 min)."""
    pytest.importorskip("transformers")
    out = tmp_path / "result.json"
    _run_harness(tmp_path, [
        "--model", "hf-causal-experimental", "--model_args",
        "pretrained=tiny,peft=tiny-lora,load_in_8bit=True,device_map_option=auto,dtype=float16,trust_remote_code=True",
        "--tasks", "jcommonsenseqa-1.1-0.3,jnli-1.1-0.3,marc_ja-1.1-0.3,jsquad-1.1-0.3,xlsum_ja",
        "--num_fewshot", "2,3,3,3,1", "--device", "cpu", "--limit", "8", "--output_path", str(out)])
    doc = json.loads(out.read_text(encoding="utf-8"))
    tasks = ["jcommonsenseqa-1.1-0.3", "jnli-1.1-0.3", "marc_ja-1.1-0.3", "jsquad-1.1-0.3", "xlsum_ja"]
    assert list(doc["results"]) == tasks  # the plain name stays plain, as in the harness's result.json
    assert doc["versions"]["xlsum_ja"] == 1.0 and doc["versions"]["jsquad-1.1-0.3"] == 1.1
    assert set(doc["results"]["jsquad-1.1-0.3"]) >= {"exact_match", "f1"}
    assert set(doc["results"]["xlsum_ja"]) >= {"rouge2", "rouge2_mecab"}
    assert doc["config"]["num_fewshot"] == [2, 3, 3, 3, 1]
    assert "peft=tiny-lora" in doc["config"]["model_args"] and "load_in_8bit=True" in doc["config"]["model_args"]
    assert doc["kensa"]["model_info"]["quantization"] == "8bit"


@pytest.mark.slow
@pytest.mark.ci  # the harness end to end in CI (the xgen command adds 8-bit, which test_hf_backend checks)
def test_the_openorca_command_runs_as_pasted_on_cpu_with_a_tiny_model(tmp_path):
    """``--model_args pretrained=...,use_accelerate=True --num_fewshot "2,3,3,3" --batch_size 4`` with the
    README quick-start's task list (plain names: jsquad first, so JSQuAD gets 2 shots)."""
    pytest.importorskip("transformers")
    out = tmp_path / "result.json"
    _run_harness(tmp_path, [
        "--model", "hf-causal-experimental", "--model_args", "pretrained=tiny,use_accelerate=True",
        "--tasks", "jsquad,jcommonsenseqa,jnli,marc_ja", "--num_fewshot", "2,3,3,3", "--batch_size", "4",
        "--device", "cpu", "--limit", "16", "--output_path", str(out)])
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert list(doc["results"]) == ["jsquad", "jcommonsenseqa", "jnli", "marc_ja"]
    assert doc["versions"] == {"jsquad": 1.1, "jcommonsenseqa": 1.1, "jnli": 1.3, "marc_ja": 1.1}
    assert doc["config"]["num_fewshot"] == [2, 3, 3, 3]
    assert doc["config"]["batch_size"] == 4 and "use_accelerate=True" in doc["config"]["model_args"]
