"""Smoke tests of the benchmark (bench/): both sides get the same token ids and agree, the CLI runs and
writes its JSON, and the benchmark models have the parameter counts their recipes claim.

No shared data needed: the model is kensa's tiny-llama and the docs are the project's fixtures (``--size
tiny --data-dir fixtures``); the one test that reads the shared JGLUE text skips without it.
"""

from __future__ import annotations

import json
import math
from importlib.metadata import version

import pytest

from bench import model as bench_model
from bench import run as bench
from kensa.data import DataSource

lm_eval = pytest.importorskip("lm_eval", reason="lm-eval is the benchmark's peer; `make install` installs it (extra 'peer')")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as the other lm-eval tests use (restored afterwards)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def peer(tiny_llama):
    return bench.make_peer(tiny_llama, 8)


def test_lm_eval_gets_kensas_token_ids_and_agrees(tiny_llama, peer, monkeypatch):
    """What lm-eval's timed call receives is exactly kensa's encode_pair ids, for every request, in every
    round; the scores then agree to float precision and so do the per-doc predictions."""
    seen = []
    original = peer._loglikelihood_tokens

    def spy(requests, **kwargs):
        seen.append(list(requests))
        return original(requests, **kwargs)

    monkeypatch.setattr(peer, "_loglikelihood_tokens", spy)
    task = bench.TASKS["jcqa"]
    result = bench.run_loglikelihood(task, tiny_llama, peer, DataSource.fixtures(), limit=5, rounds=2, device="cpu")
    assert result["docs"] == 5 and result["requests"] == 25
    timed_calls = [reqs for reqs in seen if len(reqs) == result["requests"]]
    assert len(timed_calls) == 2  # one per round; the warm-up batch is smaller
    for reqs in timed_calls:
        for (context, continuation), ctx_ids, cont_ids in reqs:
            ids, n = tiny_llama.encode_pair(context, continuation)
            assert ctx_ids + cont_ids == ids and len(cont_ids) == n
    assert result["tokens"] == sum(len(ctx) + len(cont) - 1 for _, ctx, cont in timed_calls[0])
    agreement = result["agreement"]
    assert agreement["same_prediction"] == agreement["docs_compared"] == 5
    assert agreement["same_is_greedy"] == 25
    assert agreement["max_abs_loglikelihood_diff"] < 1e-4
    assert agreement["acc"]["kensa"] == agreement["acc"]["lm-eval"]
    assert [len(v) for v in result["seconds"].values()] == [2, 2]
    assert result["ratio"] == pytest.approx(result["median_seconds"]["kensa"] / result["median_seconds"]["lm-eval"],
                                            rel=1e-3)


def test_generation_sides_see_the_same_prompts_and_agree(tiny_llama, peer):
    task = bench.TASKS["jsquad"]
    result = bench.run_generation(task, tiny_llama, peer, DataSource.fixtures(), limit=3, rounds=1, device="cpu")
    a = result["agreement"]
    assert a["requests_compared"] == 3
    assert a["same_prompt_ids"] == 3
    assert a["identical_outputs"] == 3
    assert result["generated_tokens"]["kensa"] == result["generated_tokens"]["lm-eval"] > 0


def test_cli_runs_one_round_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = bench.main(["--size", "tiny", "--data-dir", "fixtures", "--rounds", "1", "--limit-mc", "3",
                     "--limit-gen", "2", "--tasks", "jcqa,jsquad", "--threads", "1", "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "jcommonsenseqa-1.1-0.3" in printed and "jsquad-1.1-0.3" in printed
    assert "smoke size, not the benchmark" in printed
    assert "\nratio: " not in printed  # the README's ratio line is for a full-size run only
    data = json.loads(out.read_text())
    assert data["config"]["threads"] == 1
    assert data["config"]["model"]["name"] == "tiny-llama"
    assert data["config"]["libraries"]["lm_eval"] == version("lm_eval")
    assert data["config"]["command"].endswith(f"--json {out}")
    tasks = [r["task"] for r in data["results"]]
    assert tasks == ["jcommonsenseqa-1.1-0.3", "jsquad-1.1-0.3"]
    for r in data["results"]:
        assert set(r["median_seconds"]) == {"kensa", "lm-eval"}
        assert all(len(v) == 1 and v[0] > 0 for v in r["seconds"].values())
        assert math.isfinite(r["ratio"]) and r["ratio"] > 0
    jcqa = data["results"][0]
    assert jcqa["docs"] == 3 and jcqa["agreement"]["same_prediction"] == 3


@pytest.mark.parametrize(("argv", "message"), [
    (["--tasks", "jcqa,marc"], "--tasks"),
    (["--rounds", "0"], "--rounds 0"),
    (["--dtype", "int8"], "--dtype 'int8'"),
])
def test_cli_refuses_bad_options(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--size", "tiny", "--data-dir", "fixtures", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_names_a_missing_data_dir(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert bench.main(["--size", "tiny", "--data-dir", str(missing), "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "jglue" in err


def test_tokenizer_text_missing_names_the_file(tmp_path):
    with pytest.raises(bench_model.MissingDataError) as exc:
        bench_model.training_lines(tmp_path)
    assert str(tmp_path / "jglue" / "jcommonsenseqa" / "train-v1.3.json") in str(exc.value)
    assert "--data-dir" in str(exc.value)


@pytest.mark.parametrize("size", sorted(bench_model.SIZES))
def test_parameter_counts_match_a_real_llama(size):
    """The recipe's count is what transformers builds (on the meta device: no memory, no time)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    r = bench_model.SIZES[size]
    config = LlamaConfig(vocab_size=bench_model.SPM_VOCAB, hidden_size=r.hidden_size,
                         num_hidden_layers=r.num_hidden_layers, num_attention_heads=r.num_attention_heads,
                         num_key_value_heads=r.num_attention_heads, intermediate_size=r.intermediate_size,
                         max_position_embeddings=r.max_position_embeddings, tie_word_embeddings=False)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    count = sum(p.numel() for p in model.parameters())
    assert count == bench_model.expected_parameters(r, bench_model.SPM_VOCAB)
    target = {"small": 27.5e6, "1b": 1.0e9}[size]
    assert abs(count - target) / target < 0.07, f"{size}: {count:,} parameters"


def test_tokenizer_text_is_fixed(shared_data):
    """The same lines in the same order every time, from all three sources, none empty."""
    lines = bench_model.training_lines(shared_data)
    assert len(lines) == bench_model.CORPUS_LINES
    assert lines == bench_model.training_lines(shared_data)
    assert all(line.strip() for line in lines)
    assert lines[0].endswith("どれ？")  # JCommonsenseQA train's first question, then JSTS, then JSQuAD
