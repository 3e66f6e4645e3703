"""kensa against lm-eval 0.4 on the same requests: wall time, tokens per second and the kensa/lm-eval ratio.

    .venv/bin/python -m bench.run [--rounds 3] [--limit-mc 200] [--limit-gen 100] [--device cpu]
        [--dtype float32] [--size small|1b|tiny] [--tasks jcqa,jnli,jsquad] [--threads N] [--json OUT]

The requests are built once with kensa's own prompt code on real data (``DataSource`` over ``--data-dir``,
by default ``../shared/data``): JCommonsenseQA 1.1 and JNLI 1.3 at prompt version 0.3 (3-shot) and JSQuAD
1.1 at 0.3 (2-shot). Both sides run the *same model object* with batch size 8:

* log-likelihood: kensa's ``HFCausalLM.loglikelihood(requests)`` (the backend called directly, no response
  cache) against lm-eval's ``HFLM._loglikelihood_tokens`` on the token ids kensa scores
  (``HFCausalLM.encode_pair``, as tests/peer/test_lm_eval_crosscheck.py does). Both timed regions start from the
  same strings: kensa tokenizes inside ``loglikelihood``; the lm-eval side's timed region tokenizes with
  ``encode_pair`` (the same ids at the same cost) and then calls ``_loglikelihood_tokens``.
* generation: kensa's ``HFCausalLM.generate_until`` against stock lm-eval ``HFLM.generate_until``
  (``add_bos_token=False``) on the same prompts, stop strings and budgets, as in
  tests/peer/test_lm_eval_generate_crosscheck.py, but with lm-eval's stop window left as shipped.

The sides alternate (kensa, lm-eval, lm-eval, kensa, ...) for ``--rounds`` rounds after one untimed
warm-up batch each; the median wall time of each side is reported. ``tokens`` is the same number for both
sides: for log-likelihood, the sum over requests of the scored input length ``len(ids) - 1`` (what a naive
scorer pushes through the model); for generation, the tokens of the generated text (``tok_encode`` of each
side's own output, so equal when the outputs are). ``ratio`` is kensa's median wall time over lm-eval's:
below 1, kensa is faster.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.model import DEFAULT_DATA_DIR, SIZES, MissingDataError, build_model, recipe_of

REPO = Path(__file__).resolve().parent.parent
ROWS = "kensa-rows"


@dataclass(frozen=True)
class BenchTask:
    key: str
    task_id: str
    name: str
    version: str
    num_fewshot: int
    kind: str  # "loglikelihood" or "generation"
    docs: int | None = None
    """A fixed number of docs (else ``--limit-mc`` / ``--limit-gen``)."""


TASKS = {t.key: t for t in (
    BenchTask("jcqa", "jcommonsenseqa-1.1-0.3", "jcommonsenseqa", "1.1", 3, "loglikelihood"),
    BenchTask("jnli", "jnli-1.3-0.3", "jnli", "1.3", 3, "loglikelihood"),
    BenchTask("jsquad", "jsquad-1.1-0.3", "jsquad", "1.1", 2, "generation"),
    # Long budgets: 256 new tokens (MGSM's max_gen_toks) on 50 problems, 5-shot chain-of-thought prompts.
    BenchTask("mgsm-long", "mgsm-1.0-0.3", "mgsm", "1.0", 5, "generation", docs=50),
)}
SIDES = ("kensa", "lm-eval")
README_RATIO_TASK = "jcqa"
FULL_SIZE = {"rounds": 3, "limit_mc": 200, "limit_gen": 100, "size": "small"}
"""The full-size benchmark: only a run at least this large may print the README's ``ratio:`` line."""


class BenchError(Exception):
    """A bad option or missing input, worded for the command line."""


# -- setup ---------------------------------------------------------------------------------------
def variant_of(task: BenchTask):
    from kensa.tasks import get_task

    registered = get_task(task.name, task.version)
    for v in registered.variants():
        if v.task_id == task.task_id:
            return v
    raise BenchError(f"{task.task_id}: not in kensa's registry (known: "
                     f"{', '.join(v.task_id for v in registered.variants())})")


def data_source(data_dir: str):
    from kensa.data import DataSource

    if data_dir == "fixtures":
        return DataSource.fixtures()
    root = Path(data_dir)
    if not (root / "jglue").is_dir():
        raise BenchError(f"--data-dir {data_dir}: no jglue/ folder there (expected a folder laid out like "
                         f"shared/data, or 'fixtures')")
    return DataSource.local(root)


def model_dir(size: str, data_dir: str) -> Path:
    """``tiny``: kensa's random tiny-llama (for smoke tests); else a :mod:`bench.model` build, whose
    tokenizer is trained on ``--data-dir`` (on the default shared data when that is ``fixtures``)."""
    if size == "tiny":
        from kensa.tiny import build as tiny

        return tiny.build_model("tiny-llama")
    spm_data = DEFAULT_DATA_DIR if data_dir == "fixtures" else Path(data_dir)
    try:
        return build_model(size, spm_data)
    except MissingDataError as exc:
        raise BenchError(str(exc)) from None


def load_lm(path: Path, name: str, device: str, dtype: str, batch_size: int):
    from kensa.backends.args import parse_model_args
    from kensa.backends.hf_causal import HFCausalLM
    from kensa.models import resolve_model

    args = replace(parse_model_args(f"batch_size={batch_size},dtype={dtype}"), pretrained=str(path))
    return HFCausalLM.load(resolve_model(name, args), device)


def make_peer(lm, batch_size: int, softmax_dtype: str | None = None):
    """lm-eval's HFLM around kensa's model and tokenizer objects (the same weights, on the same device).
    ``softmax_dtype``: lm-eval's option of that name; None keeps its default (the model's dtype)."""
    from lm_eval.models.huggingface import HFLM

    logging.getLogger("lm_eval").setLevel(logging.ERROR)  # "pretrained is not a str", etc.
    return HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=batch_size, max_length=lm.max_length,
                add_bos_token=False, softmax_dtype=softmax_dtype)


def git_state() -> str:
    """``git rev-parse --short HEAD``, plus "with uncommitted changes" when the tree is dirty (read only)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return head + (" with uncommitted changes" if dirty else "")


# -- timing --------------------------------------------------------------------------------------
def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(fn, device: str) -> tuple[float, Any]:
    synchronize(device)
    start = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - start, out


def alternate(sides: dict[str, Any], rounds: int, device: str) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Run each side ``rounds`` times, in the order k,l / l,k / k,l ...; every round's seconds and the
    first round's output of each side."""
    seconds: dict[str, list[float]] = {s: [] for s in sides}
    first: dict[str, Any] = {}
    names = list(sides)
    for r in range(rounds):
        for side in (names if r % 2 == 0 else names[::-1]):
            t, out = timed(sides[side], device)
            seconds[side].append(t)
            first.setdefault(side, out)
    return seconds, first


def summary(seconds: dict[str, list[float]], tokens: int) -> dict[str, Any]:
    med = {s: statistics.median(v) for s, v in seconds.items()}
    return {
        "seconds": {s: [round(x, 4) for x in v] for s, v in seconds.items()},
        "median_seconds": {s: round(v, 4) for s, v in med.items()},
        "tokens_per_second": {s: round(tokens / v, 1) if v > 0 else math.inf for s, v in med.items()},
        "ratio": round(med["kensa"] / med["lm-eval"], 4) if med["lm-eval"] > 0 else math.inf,
        **({"ratio_rows": round(med[ROWS] / med["lm-eval"], 4)} if ROWS in med and med["lm-eval"] > 0 else {}),
    }


# -- the two kinds of task -------------------------------------------------------------------------
def run_loglikelihood(task: BenchTask, lm, peer, source, limit: int, rounds: int, device: str,
                      with_rows: bool = False) -> dict[str, Any]:
    import numpy as np

    from kensa.tasks.render import prepare

    variant = variant_of(task)
    eval_split, pool = load_task_data(variant, source)
    docs = prepare(variant, eval_split, pool, task.num_fewshot, limit)
    requests = [(d.prompt, c) for d in docs for c in d.continuations]
    encoded = [lm.encode_pair(c, x) for c, x in requests]
    tokens = sum(len(ids) - 1 for ids, _ in encoded)

    def peer_requests(pairs):
        out = []
        for c, x in pairs:
            ids, n = lm.encode_pair(c, x)
            out.append(((c, x), ids[:-n], ids[-n:]))
        return out

    def kensa_side(pairs=requests):
        return [(r.logprob, r.is_greedy) for r in lm.loglikelihood(pairs)]

    def peer_side(pairs=requests):
        return [(float(ll), bool(g)) for ll, g in peer._loglikelihood_tokens(peer_requests(pairs), disable_tqdm=True)]

    def rows_side(pairs=requests):  # kensa without packing: one row per distinct input, as lm-eval
        return [(r.logprob, r.is_greedy) for r in lm.loglikelihood_simple(pairs)]

    warm = requests[: lm.batch_size]
    kensa_side(warm)
    peer_side(warm)
    sides = {"kensa": kensa_side, "lm-eval": peer_side}
    if with_rows:
        rows_side(warm)
        sides[ROWS] = rows_side
    seconds, first = alternate(sides, rounds, device)
    ours, theirs = first["kensa"], first["lm-eval"]
    # Agreement, doc by doc: both sides scored exactly the same ids (the peer's come from encode_pair).
    same_pred, acc = 0, {"kensa": 0, "lm-eval": 0}
    pos = 0
    for d in docs:
        n = len(d.continuations)
        preds = {s: int(np.argmax([ll for ll, _ in out[pos: pos + n]])) for s, out in (("kensa", ours),
                                                                                       ("lm-eval", theirs))}
        pos += n
        same_pred += preds["kensa"] == preds["lm-eval"]
        for s, p in preds.items():
            acc[s] += p == d.gold
    deltas = [abs(a[0] - b[0]) for a, b in zip(ours, theirs, strict=True)]
    extra = {}
    if with_rows:
        extra["rows_max_abs_loglikelihood_diff"] = max(abs(a[0] - b[0]) for a, b in zip(first[ROWS], theirs))
    return {
        "task": task.task_id, "kind": task.kind, "num_fewshot": task.num_fewshot, "docs": len(docs),
        "requests": len(requests), "tokens": tokens,
        "tokens_definition": "sum over requests of len(ids) - 1 (kensa's encode_pair ids, the same for both sides)",
        "data": {"eval": eval_split.provenance(), "fewshot": pool.provenance() if pool else None},
        **summary(seconds, tokens),
        "agreement": {
            "docs_compared": len(docs), "same_prediction": same_pred,
            "max_abs_loglikelihood_diff": max(deltas) if deltas else 0.0,
            "same_is_greedy": sum(a[1] == b[1] for a, b in zip(ours, theirs, strict=True)),
            "acc": {s: v / len(docs) if docs else 0.0 for s, v in acc.items()},
            **extra,
        },
    }


def run_generation(task: BenchTask, lm, peer, source, limit: int, rounds: int, device: str) -> dict[str, Any]:
    from lm_eval.api.instance import Instance

    from bench.decode import decode_work, stop_check_share
    from kensa.backends.contract import GenerationRequest
    from kensa.tasks.render import prepare_generation

    variant = variant_of(task)
    eval_split, pool = load_task_data(variant, source)
    docs = prepare_generation(variant, eval_split, pool, task.num_fewshot, task.docs or limit, lm)
    requests = [GenerationRequest(d.prompt, d.until, d.max_new_tokens) for d in docs]
    prompt_ids = [lm.generation_ids(r) for r in requests]
    same_prompt_ids = 0
    for r, ids in zip(requests, prompt_ids, strict=True):  # what lm-eval feeds the model for the same request
        theirs, _ = peer.tok_batch_encode([r.context], left_truncate_len=peer.max_length - r.max_new_tokens)
        same_prompt_ids += theirs[0].tolist() == ids

    def kensa_side(reqs=requests):
        return [r.text for r in lm.generate_until(reqs)]

    def peer_side(reqs=requests):
        instances = [Instance(request_type="generate_until", doc={}, idx=i, arguments=(
            r.context, {"until": list(r.until), "max_gen_toks": r.max_new_tokens, "do_sample": False}))
            for i, r in enumerate(reqs)]
        return peer.generate_until(instances, disable_tqdm=True)

    warm = requests[: lm.batch_size]
    kensa_side(warm)
    peer_side(warm)
    seconds, first = alternate({"kensa": kensa_side, "lm-eval": peer_side}, rounds, device)
    generated = {s: sum(len(lm.tok_encode(t)) for t in out) for s, out in first.items()}
    med = {s: statistics.median(v) for s, v in seconds.items()}
    out = summary(seconds, generated["kensa"])
    out["tokens_per_second"] = {s: round(generated[s] / med[s], 1) if med[s] > 0 else math.inf for s in med}
    # One more run each, profiled (not timed): the stop check's share, windowed and as a full decode.
    out["stop_check"] = {"windowed": stop_check_share(lm, lambda: lm.generate_until(requests)),
                         "full_decode": stop_check_share(lm, lambda: lm.generate_until(requests), full_decode=True)}
    out["decode_work"] = decode_work(lm, lambda: lm.generate_until(requests))
    return {
        "task": task.task_id, "kind": task.kind, "num_fewshot": task.num_fewshot, "docs": len(docs),
        "requests": len(requests), "prompt_tokens": sum(map(len, prompt_ids)),
        "prompt_and_generated_tokens_per_second": {
            s: round((sum(map(len, prompt_ids)) + generated[s]) / med[s], 1) if med[s] > 0 else math.inf
            for s in med},
        "generated_tokens": generated, "budget_tokens": sum(r.max_new_tokens for r in requests),
        "tokens_definition": "generated tokens: len(tok_encode(text)) of each side's own outputs, stop strings cut",
        "data": {"eval": eval_split.provenance(), "fewshot": pool.provenance() if pool else None},
        **out,
        "agreement": {
            "requests_compared": len(requests), "same_prompt_ids": same_prompt_ids,
            "identical_outputs": sum(a == b for a, b in zip(first["kensa"], first["lm-eval"], strict=True)),
        },
    }


def load_task_data(variant, source):
    """The task's eval split and few-shot pool; the fallback pool's warning (JNLI and JSQuAD have no train
    file in shared/data: shots come from test) is kept in the provenance, not printed mid-table."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return variant.task.load(source)


# -- GPU extras ------------------------------------------------------------------------------------
def matmul_peak(device: str, n: int = 8192, iters: int = 20) -> float:
    """Measured bf16 matmul throughput in TFLOP/s (square ``n`` x ``n`` matrices, the best of 3 runs)."""
    import torch

    x = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    y = torch.randn(n, n, device=device, dtype=torch.bfloat16)

    def burst(k: int) -> None:
        for _ in range(k):
            torch.matmul(x, y)

    burst(3)
    return max(2 * n**3 * iters / timed(lambda: burst(iters), device)[0] / 1e12 for _ in range(3))


def matmul_parameters(model) -> int:
    """Parameters that take part in a matmul per token: all but the input embedding table (a lookup)."""
    return sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()


# -- output ----------------------------------------------------------------------------------------
def table(results: list[dict[str, Any]]) -> str:
    head = (f"{'task':<24}{'reqs':>6}{'tokens':>10}{'kensa s':>10}{'lm-eval s':>11}{'kensa tok/s':>13}"
            f"{'lm-eval tok/s':>15}{'ratio':>7}  agreement")
    lines = [head, "-" * len(head)]
    for r in results:
        a = r["agreement"]
        if r["kind"] == "loglikelihood":
            tokens = r["tokens"]
            agree = (f"same pred {a['same_prediction']}/{a['docs_compared']} docs, "
                     f"max|dLL| {a['max_abs_loglikelihood_diff']:.2e}")
        else:
            tokens = r["generated_tokens"]["kensa"]
            agree = (f"identical {a['identical_outputs']}/{a['requests_compared']}, "
                     f"same prompt ids {a['same_prompt_ids']}/{a['requests_compared']} (generated tokens)")
        m, tps = r["median_seconds"], r["tokens_per_second"]
        lines.append(f"{r['task']:<24}{r['requests']:>6}{tokens:>10}{m['kensa']:>10.2f}{m['lm-eval']:>11.2f}"
                     f"{tps['kensa']:>13.0f}{tps['lm-eval']:>15.0f}{r['ratio']:>7.2f}  {agree}")
        if ROWS in m:
            lines.append(f"{'  (kensa, one row per input)':<40}{m[ROWS]:>10.2f}{'':>11}{tps[ROWS]:>13.0f}{'':>15}"
                         f"{r['ratio_rows']:>7.2f}  max|dLL| {a['rows_max_abs_loglikelihood_diff']:.2e}")
        if "stop_check" in r:
            sc, w = r["stop_check"], r["decode_work"]
            lines.append(f"{'':<24}stop check: {100 * sc['windowed']['share']:.1f}% of kensa's generate_until "
                         f"(decoding the whole generation each step: {100 * sc['full_decode']['share']:.1f}%); "
                         f"rows computed {w['row_steps']} of {w['row_steps_if_finished_rows_stayed']} if finished "
                         f"rows stayed")
        if "peak_fraction" in r:
            f = r["peak_fraction"]
            lines.append(f"{'':<24}model FLOP/s as a fraction of the bf16 matmul peak: kensa {f['kensa']:.3f}, "
                         f"lm-eval {f['lm-eval']:.3f}")
    return "\n".join(lines)


def is_full_size(args) -> bool:
    return (args.rounds >= FULL_SIZE["rounds"] and args.limit_mc >= FULL_SIZE["limit_mc"]
            and args.limit_gen >= FULL_SIZE["limit_gen"] and args.size == FULL_SIZE["size"]
            and args.data_dir != "fixtures" and args.device == "cpu")


def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(prog="python -m bench.run", description="kensa vs lm-eval 0.4 on the same requests.")
    p.add_argument("--rounds", type=int, default=3, help="timed runs of each side, alternating (default 3)")
    p.add_argument("--limit-mc", type=int, default=200, help="docs of each log-likelihood task (default 200)")
    p.add_argument("--limit-gen", type=int, default=100, help="docs of the jsquad generation task (default 100; "
                   "mgsm-long always runs 50 problems)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--dtype", default=None, help="float32 or bfloat16 (default: the size's, float32 / bfloat16)")
    p.add_argument("--size", default="small", choices=[*SIZES, "tiny"],
                   help="small: 27.5M Llama (CPU); 1b: ~1B Llama (GPU, bf16); tiny: kensa's tiny-llama (smoke tests)")
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, of {', '.join(TASKS)}")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: the CPUs this process may use)")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR),
                   help="a folder laid out like shared/data, or 'fixtures' (default ../shared/data)")
    p.add_argument("--lm-eval-softmax-dtype", default="model", choices=["model", "float32"],
                   help="lm-eval's log-softmax dtype: its default, the model's (default), or float32 as kensa's")
    p.add_argument("--with-rows", action="store_true",
                   help="also time kensa's unpacked path (one row per distinct input, as lm-eval): the like-for-like "
                        "comparison of the scorer itself, before shared-prompt packing")
    p.add_argument("--json", type=Path, default=None, help="write every number to this JSON file")
    args = p.parse_args(argv)
    for name in ("rounds", "limit_mc", "limit_gen", "batch_size", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} {value}: must be at least 1")
    keys = [k.strip() for k in args.tasks.split(",") if k.strip()]
    unknown = [k for k in keys if k not in TASKS]
    if unknown or not keys:
        p.error(f"--tasks {args.tasks!r}: expected a comma-separated list of {', '.join(TASKS)}")
    args.task_keys = keys
    if args.dtype is None:
        args.dtype = SIZES[args.size].dtype if args.size in SIZES else "float32"
    if args.dtype not in ("float32", "bfloat16", "float16"):
        p.error(f"--dtype {args.dtype!r}: expected float32, bfloat16 or float16")
    if args.device != "cpu" and not args.device.startswith("cuda"):
        p.error(f"--device {args.device!r}: expected cpu or cuda")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.command = " ".join([".venv/bin/python -m bench.run", shlex.join(sys.argv[1:] if argv is None else argv)])
    try:
        result = run(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(result["results"]))
    print()
    for line in readme_lines(result, args):
        print(line)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")
    return 0


def readme_lines(result: dict[str, Any], args) -> list[str]:
    c = result["config"]
    lines = [f"command: {c['command']}", f"git: {c['git']}; date: {c['date']}",
             (f"threads: {c['threads']}; device: {c['device']}; dtype: {c['dtype']}; "
              f"model: {c['model']['name']} ({c['model']['parameters']:,} parameters)")]
    jcqa = next((r for r in result["results"] if r["task"] == TASKS[README_RATIO_TASK].task_id), None)
    if jcqa is not None:
        if is_full_size(args):
            lines.append(f"ratio: {jcqa['ratio']:.2f}")
        else:
            lines.append(f"JCommonsenseQA kensa/lm-eval (smoke size, not the benchmark): {jcqa['ratio']:.2f}")
    return lines


def run(args) -> dict[str, Any]:
    """The whole benchmark; torch's thread count is set for it and restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    try:
        return _run(args)
    finally:
        torch.set_num_threads(before)


def _run(args) -> dict[str, Any]:
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError(f"--device {args.device}: torch sees no CUDA device")
    source = data_source(args.data_dir)
    path = model_dir(args.size, args.data_dir)
    name = f"bench-{args.size}" if args.size in SIZES else "tiny-llama"
    lm = load_lm(path, name, args.device, args.dtype, args.batch_size)
    softmax = None if args.lm_eval_softmax_dtype == "model" else args.lm_eval_softmax_dtype
    peer = make_peer(lm, args.batch_size, softmax)
    load_before = os.getloadavg()
    config: dict[str, Any] = {
        "command": getattr(args, "command", ".venv/bin/python -m bench.run"),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "command"},
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "git": git_state(),
        "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
        "device": args.device, "dtype": str(next(lm.model.parameters()).dtype).removeprefix("torch."),
        "batch_size": args.batch_size, "rounds": args.rounds, "order": "kensa,lm-eval then lm-eval,kensa, alternating",
        "model": {"name": name, "dir": str(path), "parameters": lm.info["parameters"],
                  "matmul_parameters": matmul_parameters(lm.model), "vocab_size": lm.info["vocab_size"],
                  "max_length": lm.max_length, "recipe": recipe_of(path)},
        "libraries": {**lm.info["libraries"], "lm_eval": _version("lm_eval")},
        "lm_eval_settings": {"batch_size": args.batch_size, "max_length": lm.max_length, "add_bos_token": False,
                             "logits_cache": True,
                             "softmax_dtype": softmax or "the model's dtype (lm-eval's default)"},
        "loadavg_before": load_before,
    }
    if args.device.startswith("cuda"):
        config["gpu"] = torch.cuda.get_device_name()
        config["bf16_matmul_peak_tflops"] = round(matmul_peak(args.device), 1)
    results = []
    for key in args.task_keys:
        task = TASKS[key]
        if task.kind == "loglikelihood":
            r = run_loglikelihood(task, lm, peer, source, args.limit_mc, args.rounds, args.device, args.with_rows)
            if "bf16_matmul_peak_tflops" in config:
                flops = {s: 2 * config["model"]["matmul_parameters"] * tps for s, tps in r["tokens_per_second"].items()}
                r["model_tflops"] = {s: round(f / 1e12, 2) for s, f in flops.items()}
                r["peak_fraction"] = {s: f / 1e12 / config["bf16_matmul_peak_tflops"] for s, f in flops.items()}
        else:
            r = run_generation(task, lm, peer, source, args.limit_gen, args.rounds, args.device)
        results.append(r)
    config["loadavg_after"] = os.getloadavg()
    return {"config": config, "results": results}


def _version(pkg: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    sys.exit(main())
