"""kensa's backends side by side on the same requests: HF (transformers in this process), vLLM (``--backend
vllm``: an offline engine in a worker process) and a served model (vLLM's OpenAI server on 127.0.0.1).

    .venv/bin/python -m bench.backends [--backend hf --backend vllm --backend served] [--size small|tiny]
        [--limit-mc 100] [--limit-gen 50] [--rounds 3] [--threads N] [--data-dir ../shared/data] [--json OUT]

Requests are built once, as in ``bench.run``: JCommonsenseQA 1.1-0.3 (multiple choice, 3-shot) and JSQuAD
1.1-0.3 (generation, 2-shot) on real data, on the bench model (``bench.model``; ``--size tiny`` is kensa's tiny
GPT-NeoX on the fixtures, whose 32-wide heads vLLM's CPU kernels take). Each backend answers the same
requests in alternating rounds after one untimed warm-up; the median is reported with tokens per second and
agreement with the HF backend (max |Δ log-likelihood|, same predictions, identical generations). The served
run goes through kensa's client (at most ``max_concurrency`` = 8 requests in flight); the servers' start-up
is reported apart, not timed in the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.run import TASKS, BenchError, data_source, git_state, load_task_data, model_dir, variant_of

BACKENDS = ("hf", "vllm", "served")


def load(backend: str, path: Path, dtype: str, batch_size: int, log_dir: Path):
    from kensa.backends.args import parse_model_args
    from kensa.models import load_model, resolve_model

    if backend == "hf":
        args = replace(parse_model_args(f"batch_size={batch_size},dtype={dtype}"), pretrained=str(path))
        return load_model(resolve_model("bench", args), "cpu"), None
    if backend == "vllm":
        args = replace(parse_model_args(f"dtype={dtype}"), pretrained=str(path))
        return load_model(resolve_model("bench", args, "vllm"), "cpu"), None
    from kensa.backends.vllm_server import LocalServer

    server = LocalServer(str(path), name="bench", log=log_dir / "bench-server.log", dtype=dtype).start()
    return load_model(resolve_model(server.url, parse_model_args(None)), "cpu"), server


def median_round(fns: dict[str, Any], rounds: int) -> tuple[dict[str, list[float]], dict[str, Any]]:
    seconds: dict[str, list[float]] = {k: [] for k in fns}
    first: dict[str, Any] = {}
    names = list(fns)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            out = fns[name]()
            seconds[name].append(time.perf_counter() - start)
            first.setdefault(name, out)
    return seconds, first


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", action="append", choices=BACKENDS, help="repeatable; default all three")
    ap.add_argument("--size", default="small", choices=("small", "tiny"))
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--limit-mc", type=int, default=100)
    ap.add_argument("--limit-gen", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json")
    opts = ap.parse_args(argv)
    backends = opts.backend or list(BACKENDS)
    if "hf" not in backends:
        backends.insert(0, "hf")  # the reference every agreement column compares with
    import torch

    torch.set_num_threads(opts.threads or len(os.sched_getaffinity(0)))
    try:
        if opts.size == "tiny":
            from kensa.tiny import build as tiny

            path, source = tiny.build_model("tiny"), data_source("fixtures")
        else:
            path, source = model_dir("small", opts.data_dir), data_source(opts.data_dir)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    from kensa.backends.contract import GenerationRequest
    from kensa.paths import cache_root
    from kensa.tasks.render import prepare, prepare_generation

    loaded, servers, startup = {}, [], {}
    try:
        for b in backends:
            start = time.perf_counter()
            loaded[b], server = load(b, path, "float32", 8, cache_root() / "bench")
            startup[b] = round(time.perf_counter() - start, 1)
            if server is not None:
                servers.append(server)
        hf = loaded["hf"]
        mc_task, gen_task = TASKS["jcqa"], TASKS["jsquad"]
        variant = variant_of(mc_task)
        eval_split, pool = load_task_data(variant, source)
        docs = prepare(variant, eval_split, pool, mc_task.num_fewshot, opts.limit_mc)
        mc = [(d.prompt, c) for d in docs for c in d.continuations]
        gvariant = variant_of(gen_task)
        geval, gpool = load_task_data(gvariant, source)
        gdocs = prepare_generation(gvariant, geval, gpool, gen_task.num_fewshot, opts.limit_gen, hf)
        gen = [GenerationRequest(d.prompt, d.until, d.max_new_tokens) for d in gdocs]
        for lm in loaded.values():  # warm-up, untimed
            lm.loglikelihood(mc[:8])
            lm.generate_until(gen[:2])
        mc_tokens = sum(len(ids) - 1 for ids, _ in (hf.encode_pair(c, x) for c, x in mc))
        mc_s, mc_out = median_round({b: (lambda lm=lm: lm.loglikelihood(mc)) for b, lm in loaded.items()}, opts.rounds)
        gen_s, gen_out = median_round({b: (lambda lm=lm: lm.generate_until(gen)) for b, lm in loaded.items()},
                                      opts.rounds)
    finally:
        for lm in loaded.values():
            lm.close()
        for server in servers:
            server.stop()

    def preds(results):
        out, pos = [], 0
        for d in docs:
            k = len(d.continuations)
            scores = [r.logprob for r in results[pos: pos + k]]
            out.append(scores.index(max(scores)))
            pos += k
        return out

    rows = []
    for b in loaded:
        m, g = statistics.median(mc_s[b]), statistics.median(gen_s[b])
        generated = sum(r.generated_tokens for r in gen_out[b])
        rows.append({
            "backend": b, "startup_seconds": startup[b],
            "mc": {"requests": len(mc), "tokens": mc_tokens, "seconds": [round(x, 3) for x in mc_s[b]],
                   "median_seconds": round(m, 3), "tokens_per_second": round(mc_tokens / m, 1),
                   "max_abs_loglikelihood_diff_vs_hf": max(abs(a.logprob - h.logprob)
                                                           for a, h in zip(mc_out[b], mc_out["hf"], strict=True)),
                   "same_prediction_as_hf": sum(a == h for a, h in zip(preds(mc_out[b]), preds(mc_out["hf"])))},
            "generation": {"requests": len(gen), "generated_tokens": generated,
                           "seconds": [round(x, 3) for x in gen_s[b]], "median_seconds": round(g, 3),
                           "generated_tokens_per_second": round(generated / g, 1),
                           "identical_to_hf": sum(a.text == h.text for a, h in zip(gen_out[b], gen_out["hf"]))},
        })
    faster = {kind: min(rows, key=lambda r: r[kind]["median_seconds"])["backend"] for kind in ("mc", "generation")}
    doc = {"command": " ".join(["python -m bench.backends", *(argv if argv is not None else sys.argv[1:])]),
           "git": git_state(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "size": opts.size,
           "model": str(path), "threads": torch.get_num_threads(), "docs": {"mc": len(docs), "generation": len(gdocs)},
           "rounds": opts.rounds, "backends": rows, "faster": faster}
    print(f"| backend | start s | MC s ({len(mc)} req) | MC tok/s | max ΔLL vs HF | same pred | gen s ({len(gen)} req) "
          "| gen tok/s | identical gen |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['backend']} | {r['startup_seconds']} | {r['mc']['median_seconds']} | {r['mc']['tokens_per_second']} "
              f"| {r['mc']['max_abs_loglikelihood_diff_vs_hf']:.1e} | {r['mc']['same_prediction_as_hf']}/{len(docs)} "
              f"| {r['generation']['median_seconds']} | {r['generation']['generated_tokens_per_second']} "
              f"| {r['generation']['identical_to_hf']}/{len(gen)} |")
    print(f"faster: multiple choice {faster['mc']}, generation {faster['generation']}")
    if opts.json:
        Path(opts.json).parent.mkdir(parents=True, exist_ok=True)
        Path(opts.json).write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
