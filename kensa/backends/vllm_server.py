"""A vLLM OpenAI-compatible server on this machine's loopback, for tests and the bench (and anyone who wants
to score a local model through the served-model path): free port, readiness by ``/health`` and one real
completion, and a stop that leaves no engine process and no ``/dev/shm`` file behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from kensa.backends.vllm import SHM_PREFIXES, _shm_files, _tail, vllm_python
from kensa.errors import ModelLoadError

HOST = "127.0.0.1"  # never another interface


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class LocalServer:
    """``python -m vllm.entrypoints.openai.api_server`` for ``model`` (a directory) as ``name``."""

    def __init__(self, model: str, *, name: str = "tiny", port: int | None = None, log: Path,
                 dtype: str = "float32", extra: tuple[str, ...] = ()):
        self.model, self.name, self.log, self.dtype, self.extra = model, name, log, dtype, extra
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self._shm_before: set[str] = set()

    @property
    def url(self) -> str:
        """The ``--model`` value for kensa."""
        return f"openai://{HOST}:{self.port}/v1#{self.name}"

    def start(self, timeout: float = 300.0) -> LocalServer:
        env = dict(os.environ, VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1")
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        argv = [vllm_python(), "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
                "--served-model-name", self.name, "--host", HOST, "--port", str(self.port), "--dtype", self.dtype,
                "--enforce-eager", "--seed", "0",
                # the same reasons as the offline engine (kensa/backends/vllm_worker.py)
                "--no-enable-prefix-caching", "--generation-config", "vllm", *self.extra]
        self._shm_before = _shm_files()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        base = f"http://{HOST}:{self.port}"
        while True:  # bounded by the deadline; fails at once if the server exits
            if self.proc.poll() is not None:
                raise ModelLoadError(f"the vLLM server exited with code {self.proc.returncode}:\n{_tail(self.log)}")
            if time.monotonic() > deadline:
                self.stop()
                raise ModelLoadError(f"the vLLM server was not healthy within {timeout:.0f} s:\n{_tail(self.log)}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        # /health can pass while the first real request kills the engine (an unsupported head size does).
        body = json.dumps({"model": self.name, "prompt": [4, 5, 6], "max_tokens": 2, "temperature": 0}).encode()
        request = urllib.request.Request(f"{base}/v1/completions", body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                json.load(r)["choices"][0]
        except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
            self.stop()
            raise ModelLoadError(f"the vLLM server failed its first completion ({exc}):\n{_tail(self.log)}") from None
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group at once (what a crash looks like to a client)."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self._clean_shm()

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM (a clean shutdown takes well under a second), then SIGKILL whatever of the group is left."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def _clean_shm(self) -> None:
        for name in _shm_files() - self._shm_before:
            if name.startswith(SHM_PREFIXES):
                try:
                    os.unlink(os.path.join("/dev/shm", name))
                except OSError:
                    pass

