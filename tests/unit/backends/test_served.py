"""Served models (``--model openai://HOST:PORT/v1#NAME``) against real servers on 127.0.0.1.

* A small stdlib HTTP server on 127.0.0.1 (tests/loopback.py), scripted per test, checks the client: 408, 429
  and 503 retried after the server's Retry-After (seconds, a date, capped) or the backoff, none on 400; a dropped
  or reset connection, a body cut off, a stalled answer past the timeout retried within max_retries, then a clear
  error; JSON cut short an error, never a score; at most ``max_concurrency`` requests in flight; and the refusal
  of a server that echoes but scores only generated tokens (llama.cpp's #27174 shape).
* vLLM's own OpenAI server on the CPU build, with the tiny model, started by a module fixture: scores equal
  the HF backend's, greedy outputs are identical, and a server killed mid-run is retried, given up on with a
  clear error, and the rerun resumes from the response cache. Skips only where vLLM is not installed, and
  fails there instead with ``KENSA_REQUIRE_VLLM=1`` (CI).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from kensa.backends import served as served_py
from kensa.backends.args import parse_model_args
from kensa.backends.contract import GenerationRequest
from kensa.backends.served import Client, ServedLM, ServerError, echo_rows, parse_served, prompt_logprob_rows
from kensa.errors import ModelLoadError, OptionError
from kensa.gate.fingerprint import environment, incomparable
from kensa.models import load_model, resolve_model
from kensa.tiny import build as tiny
from kensa.run.cache import CachedLM, ResponseCache
from tests.helpers import skip_unless_required, vllm_or_skip
from tests.loopback import LoopbackServer, Script

try:
    import httpx  # noqa: F401
except ImportError:
    skip_unless_required("httpx is not installed: served models need it (pip install -e .)")


def test_the_model_spelling():
    assert parse_served("openai://127.0.0.1:8000/v1#tiny") == parse_served("openai://127.0.0.1:8000/v1/#tiny")
    assert parse_served("openai+https://h.example/api/v2#m").base_url == "https://h.example/api/v2"
    assert parse_served("openai://h:1").model is None
    with pytest.raises(OptionError, match="openai://HOST:PORT/v1#NAME"):
        parse_served("openai://")
    spec = resolve_model("openai://127.0.0.1:8000/v1#tiny", parse_model_args("max_concurrency=2"))
    assert (spec.kind, spec.backend) == ("served", "openai")
    with pytest.raises(OptionError, match="api_key=.*environment variable"):
        parse_model_args("api_key=sk-123")
    with pytest.raises(OptionError, match="does not apply to the served model"):
        resolve_model("openai://127.0.0.1:8000/v1#tiny", parse_model_args(None), "vllm")


# -- a scripted server --------------------------------------------------------------------------

@pytest.fixture
def scripted():
    script = Script()
    server = LoopbackServer(script).start()
    yield script
    server.stop()


def client(url, **kw):
    args = dict(api_key="k", max_concurrency=8, timeout=5.0, max_retries=3) | kw
    return Client(url, **args)


@pytest.fixture
def waits(monkeypatch):
    """The client's waits between attempts, recorded instead of slept (the tests read them, not a clock)."""
    slept: list[float] = []
    monkeypatch.setattr(served_py, "time", SimpleNamespace(sleep=slept.append, perf_counter=time.perf_counter))
    return slept


def test_retries_on_503_and_dropped_connections_never_on_400(scripted, monkeypatch):
    monkeypatch.setattr("kensa.backends.served.BACKOFF_S", (0.01, 0.05))
    scripted.replies = [(503, {"error": {"message": "busy"}}), "drop", (200, {"ok": 1})]
    c = client(scripted.url)
    assert c.request("POST", "/completions", {"a": 1}) == {"ok": 1}
    assert c.retries == 2 and len(scripted.seen) == 3
    scripted.replies = [(400, {"error": {"message": "max_tokens must be at least 1"}}), (200, {"ok": 1})]
    with pytest.raises(ServerError, match=r"/v1/completions: HTTP 400: max_tokens must be at least 1"):
        c.request("POST", "/completions", {})
    assert len(scripted.seen) == 4  # the 400 was not retried
    scripted.replies = [(503, {})] * 4
    with pytest.raises(ServerError, match="gave up after 4 attempts; last: HTTP 503"):
        c.request("POST", "/completions", {})


@pytest.mark.parametrize("status", [408, 429, 503])
def test_a_busy_or_timed_out_status_is_retried_after_the_servers_retry_after(scripted, waits, status):
    busy = {"error": {"message": "slow down"}}
    scripted.replies = [(status, busy, {"Retry-After": "7"}), (status, busy), (200, {"ok": 1})]
    c = client(scripted.url)
    assert c.request("POST", "/completions", {}) == {"ok": 1}
    assert len(scripted.seen) == 3 and c.retries == 2
    first, largest = served_py.BACKOFF_S
    assert waits[0] == 7.0  # the server's Retry-After, not the backoff
    assert first * 2 / 2 <= waits[1] <= min(largest, first * 2)  # no Retry-After: the second backoff, jittered
    scripted.replies = [(status, busy, {"Retry-After": "0"})] * 4
    with pytest.raises(ServerError, match=rf"gave up after 4 attempts; last: HTTP {status}: slow down"):
        c.request("POST", "/completions", {})
    assert waits[2:] == [0.0, 0.0, 0.0]


def test_retry_after_as_a_date_and_beyond_the_bound(scripted, waits):
    from email.utils import format_datetime

    soon = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=20), usegmt=True)
    scripted.replies = [(429, {}, {"Retry-After": soon}), (503, {}, {"Retry-After": "3600"}), (200, {"ok": 1})]
    assert client(scripted.url).request("POST", "/completions", {}) == {"ok": 1}
    assert 15 <= waits[0] <= 20 and waits[1] == served_py.RETRY_AFTER_MAX_S  # an hour is capped, not slept
    scripted.replies = [(429, {"error": {"message": "quota"}}, {"Retry-After": "3600"})] * 2
    with pytest.raises(ServerError, match=r"gave up after 2 attempts; last: HTTP 429: quota \(Retry-After 3600 s; "
                                          r"kensa waits at most 30 s\)"):
        client(scripted.url, max_retries=1).request("POST", "/completions", {})


@pytest.mark.parametrize("fault, error", [("reset", r"(ReadError|RemoteProtocolError|ConnectError)"),
                                          (("truncate", {"ok": 1, "pad": "x" * 200}), r"RemoteProtocolError"),
                                          (("stall", 30, (200, {"ok": 1})), r"ReadTimeout")])
def test_a_reset_a_body_cut_off_or_a_stalled_answer_is_retried_then_given_up(scripted, waits, fault, error):
    """The connection breaks (reset, closed before the body the headers promised, no answer within the timeout):
    retried within max_retries; a whole later answer is used; when every attempt breaks, a clear error."""
    c = client(scripted.url, timeout=0.5, max_retries=2)
    scripted.replies = [fault, fault, (200, {"ok": 2})]
    assert c.request("POST", "/completions", {}) == {"ok": 2}
    assert len(scripted.seen) == 3 and len(waits) == 2
    scripted.replies = [fault] * 3
    with pytest.raises(ServerError, match=rf"/v1/completions: gave up after 3 attempts; last: {error}"):
        c.request("POST", "/completions", {})
    assert len(scripted.seen) == 6


def test_an_answer_that_is_not_whole_json_is_an_error_never_a_score(scripted, waits):
    """A correctly framed body holding JSON cut short is the server's bug: an error naming the server, the
    request and what came back; no retry (it would answer the same) and no score."""
    lm = ServedLM(SimpleNamespace(name="m"), None, client(scripted.url), model="m", max_length=64, info={})
    rows = [None, {"5": {"logprob": -1.25, "rank": 1}}, {"6": {"logprob": -0.5, "rank": 2}}]
    whole = {"choices": [{"text": "x", "prompt_logprobs": rows}]}
    cut = json.dumps(whole)[:-30]
    scripted.replies = [("raw", 200, cut)]
    with pytest.raises(ServerError, match=rf"{scripted.url}/completions: the answer is not JSON: .*prompt_logprobs"):
        lm._score_one(([4, 5, 6], 2))
    assert len(scripted.seen) == 1 and waits == []
    # the same answer after a 429, a reset and a body cut off mid-way: retried, then scored from the whole answer
    scripted.replies = [(429, {}), "reset", ("truncate", whole), (200, whole)]
    got = lm._score_one(([4, 5, 6], 2))
    assert (got.logprob, got.is_greedy, got.num_tokens) == (-1.75, False, 2) and len(scripted.seen) == 5
    lm.close()


def test_at_most_max_concurrency_in_flight_and_a_timeout_per_request(scripted):
    """Three in flight, synchronised on a barrier of three: each wave of requests waits until three have arrived
    together (fewer and the barrier breaks: a 400), and the peak counted at arrival shows no fourth."""
    scripted.barrier = threading.Barrier(3, timeout=30)
    c = client(scripted.url, max_concurrency=3, timeout=60)
    assert len(c.map(lambda i: c.request("POST", "/completions", {"i": i}), list(range(12)))) == 12
    assert scripted.peak == 3 and c.peak_in_flight == 3
    scripted.barrier = None
    scripted.replies = [("stall", 30, (200, {"ok": 1}))]
    slow = client(scripted.url, timeout=0.05, max_retries=0)
    with pytest.raises(ServerError, match="ReadTimeout"):
        slow.request("POST", "/completions", {})


def test_the_api_key_comes_from_the_named_environment_variable(scripted, monkeypatch):
    monkeypatch.setenv("MY_KEY", "secret-1")
    spec = resolve_model(f"openai://{scripted.url.removeprefix('http://')}#m", parse_model_args("api_key_env=MY_KEY"))
    scripted.replies = [(401, {"error": {"message": "no"}})]
    with pytest.raises(ModelLoadError, match="HTTP 401") as refused:
        ServedLM.load(spec)
    assert scripted.seen[0]["path"] == "/v1/models" and scripted.seen[0]["auth"] == "Bearer secret-1"
    assert "secret-1" not in str(refused.value)


def llama_cpp_like(body):
    """Echoes, but log-probabilities only for the generated token (llama.cpp server, #27174)."""
    if body and "prompt_logprobs" in body:
        return 200, {"choices": [{"text": "x", "logprobs": None}]}
    return 200, {"choices": [{"text": "x", "logprobs": {"tokens": ["x"], "token_logprobs": [-1.5],
                                                        "top_logprobs": [{"x": -1.5}]}}]}


def test_a_server_that_scores_only_generated_tokens_is_refused(scripted, tiny_neox):
    root = str(tiny.build_model("tiny"))
    scripted.replies = [(200, {"data": [{"id": "m", "root": root}]}), (404, {}), llama_cpp_like, llama_cpp_like]
    spec = resolve_model(f"openai://{scripted.url.removeprefix('http://')}#m", parse_model_args(None))
    with pytest.raises(ModelLoadError) as err:
        ServedLM.load(spec)
    message = str(err.value)
    assert scripted.url in message and "choices[0].prompt_logprobs is missing" in message
    assert "choices[0].logprobs.token_logprobs has 1 entries for a prompt of 3 tokens" in message
    assert "only for generated tokens" in message


def test_shape_checks_name_the_field():
    ids = [4, 5, 6]
    with pytest.raises(ServerError, match=r"token_logprobs has 1 entries for a prompt of 3 tokens.*chance"):
        echo_rows({"logprobs": {"token_logprobs": [-1.0]}}, ids, "srv")
    with pytest.raises(ServerError, match=r"tokens does not echo the prompt's token ids"):
        echo_rows({"logprobs": {"token_logprobs": [None, -1.0, -2.0, -3.0],
                                "tokens": ["token_id:4", "token_id:9", "token_id:6", "x"]}}, ids, "srv")
    good = {"logprobs": {"token_logprobs": [None, -1.0, -2.0, -3.0], "tokens": [f"token_id:{i}" for i in [*ids, 7]],
                         "top_logprobs": [None, {"a": -1.0}, {"b": -0.5}, {"c": -3.0}]}}
    assert echo_rows(good, ids, "srv") == ([-1.0, -2.0], [True, False])
    with pytest.raises(ServerError, match=r"prompt_logprobs\[2\] has no entry for the prompt's token 6"):
        prompt_logprob_rows({"prompt_logprobs": [None, {"5": {"logprob": -1, "rank": 1}}, {"7": {"logprob": -1}}]},
                            ids, "srv")


# -- vLLM's OpenAI server -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    from kensa.backends.vllm_server import LocalServer

    vllm_or_skip()
    server = LocalServer(str(tiny.build_model("tiny")), log=tmp_path_factory.mktemp("vllm") / "server.log")
    server.start()
    yield server
    server.stop()


def served(server, args: str = ""):
    return load_model(resolve_model(server.url, parse_model_args(args or None)), "cpu")


def test_served_scores_equal_the_hf_backends(vllm_server, tiny_neox):
    from kensa.data import DataSource
    from kensa.tasks import get_task
    from kensa.tasks.render import prepare

    lm = served(vllm_server)
    assert lm.info["scoring"] == "prompt_logprobs" and lm.info["backend_version"].startswith("vllm-0.32")
    variant = get_task("jcommonsenseqa", "1.1").variants()[0]
    eval_split, pool = variant.task.load(DataSource.fixtures())
    requests = [(d.prompt, c) for d in prepare(variant, eval_split, pool, 3, 8) for c in d.continuations]
    for ours, theirs in zip(tiny_neox.loglikelihood(requests), lm.loglikelihood(requests), strict=True):
        assert abs(ours.logprob - theirs.logprob) <= 1e-4 * ours.num_tokens
        assert ours.is_greedy == theirs.is_greedy
    generations = [GenerationRequest("質問：日本の首都は？\n答え：", ("\n",), 16), GenerationRequest("東京", ("。",), 6)]
    assert [(g.text, g.stop_reason, g.generated_tokens) for g in lm.generate_until(generations)] == \
        [(g.text, g.stop_reason, g.generated_tokens) for g in tiny_neox.generate_until(generations)]
    # a served baseline is never silently compared with an HF run
    assert "backend hf -> openai" in incomparable(environment(tiny_neox.info), environment(lm.info))
    lm.close()


SECRET = "sk-kensa-0123456789-never-written"


def test_the_api_key_never_reaches_results_samples_logs_cache_or_junit(vllm_server, tmp_path):
    """A whole suite run against the server, in a subprocess, with DEBUG logging captured into the JUnit XML:
    the key is sent (the server accepts any) but no file the run writes, nor its output, contains it."""
    import os
    import subprocess
    import sys

    from kensa.backends.vllm_server import LocalServer
    from tests.helpers import REPO

    if vllm_server.proc is None or vllm_server.proc.poll() is not None:  # killed by another test on this worker
        vllm_server.proc = LocalServer(vllm_server.model, port=vllm_server.port, log=vllm_server.log).start().proc
    out = tmp_path / "run"
    env = dict(os.environ, KENSA_TEST_API_KEY=SECRET)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/jglue", "-m", "gpu", "--model", vllm_server.url,
         "--model-args", "api_key_env=KENSA_TEST_API_KEY", "-k", "jcommonsenseqa-1.1-0.2", "--limit", "4",
         "--gate", "off", "--results-dir", str(out / "results"), "--response-cache", str(out / "responses.sqlite"),
         "--junitxml", str(out / "junit.xml"), "-o", "junit_logging=all", "--log-level=DEBUG", "-rA",
         "-p", "no:cacheprovider"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    written = sorted(p for p in out.rglob("*") if p.is_file())
    assert any(p.name == "results.json" for p in written) and any(p.suffix == ".jsonl" for p in written)
    assert any(p.name.startswith("responses.sqlite") for p in written)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in done.stdout + done.stderr


def test_a_server_killed_mid_run_is_retried_then_the_run_resumes_from_the_cache(vllm_server, tiny_neox, tmp_path,
                                                                                monkeypatch):
    from kensa.backends.vllm_server import LocalServer

    monkeypatch.setattr("kensa.backends.served.BACKOFF_S", (0.05, 0.2))
    requests = [(f"質問{i}：答えは？\n答え：", choice) for i in range(12) for choice in ("東京", "大阪")]
    cache = ResponseCache(tmp_path / "responses.sqlite")
    lm = CachedLM(served(vllm_server, "max_retries=2,max_concurrency=2"), cache, chunk_size=8)
    real = lm.inner.loglikelihood
    chunks = []

    def dies_after_first_chunk(reqs, progress=None):
        if chunks:
            vllm_server.kill()  # the server crashes between two chunks
        chunks.append(len(reqs))
        return real(reqs, progress)

    monkeypatch.setattr(lm.inner, "loglikelihood", dies_after_first_chunk)
    with pytest.raises(ServerError, match=r"gave up after 3 attempts; last: (ConnectError|RemoteProtocolError)"):
        lm.loglikelihood(requests)
    # the first chunk was committed before the crash (its size is the cache's first, time-free guess)
    assert lm.inner.client.retries >= 2 and lm.computed == chunks[0] > 0
    lm.inner.close()

    restarted = LocalServer(vllm_server.model, port=vllm_server.port, log=vllm_server.log).start()
    vllm_server.proc = restarted.proc  # the module fixture stops it
    again = CachedLM(served(vllm_server), cache, chunk_size=8)
    results = again.loglikelihood(requests)
    assert (again.from_cache, again.computed) == (chunks[0], len(requests) - chunks[0])
    for ours, theirs in zip(tiny_neox.loglikelihood(requests), results, strict=True):
        assert abs(ours.logprob - theirs.logprob) <= 1e-4 * ours.num_tokens
    again.inner.close()
    cache.close()


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on ``port``, from the kernel's own tables."""
    import ipaddress

    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)  # host-order 32-bit words
                found.add(str(ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)))))
    return found


def test_the_server_fixture_binds_loopback_only(vllm_server):
    if vllm_server.proc is None or vllm_server.proc.poll() is not None:  # killed by another test on this worker
        from kensa.backends.vllm_server import LocalServer

        vllm_server.proc = LocalServer(vllm_server.model, port=vllm_server.port, log=vllm_server.log).start().proc
    assert listening_addresses(vllm_server.port) == {"127.0.0.1"}
    log = Path(vllm_server.log).read_text(errors="replace")
    assert "0.0.0.0" not in log
