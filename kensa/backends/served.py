"""Served models: ``--model openai://HOST:PORT/v1#NAME`` scores a model behind an OpenAI-compatible server.

The spelling keeps one ``--model`` value per model: the scheme says which protocol (``openai://`` is
plain HTTP, ``openai+https://`` is TLS), host, port and path are the API's base URL, and the fragment
is the served model's name (optional when the server serves one model). The API key is read from an
environment variable only (``api_key_env=``, default ``OPENAI_API_KEY``).

kensa tokenizes and sends token ids (``prompt: [ids]``), so a served model scores the same tokens as the
HF backend. Log-likelihoods come from prompt log-probabilities (vLLM's ``prompt_logprobs``, else
``echo`` with ``logprobs``); every answer is checked: one log-probability per prompt token, for the ids
sent. A server that echoes but scores only generated tokens (llama.cpp's server, its #27174) would put
every choice at chance without an error, so it is refused with a message naming the server and field.

At most ``max_concurrency`` requests are in flight; each has a read timeout (``timeout=``) and is retried
with exponential backoff on 408, 429, 5xx and connection errors (refused, reset, closed mid-answer, timed out;
``max_retries=``), never on another 4xx. A server's ``Retry-After`` (seconds or an HTTP date) replaces the
backoff, up to ``RETRY_AFTER_MAX_S``. An answer that is not JSON, or not the shape asked for, is an error: a
request either gets its whole answer or fails with one naming the server, never a score made up from less.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kensa.backends.args import ModelSpec
from kensa.backends.contract import GenerationRequest, GenerationResult, LoglikelihoodResult, Progress
from kensa.backends.identity import describe_environment, tokenizer_sha256
from kensa.backends.tokenized import TokenizedModel
from kensa.backends.registry import BackendEntry, register
from kensa.backends.tokenizers import load_tokenizer
from kensa.errors import ModelLoadError, ModelRunError, OptionError

BACKEND = "openai"
SCHEMES = {"openai": "http", "openai+https": "https"}
_URL = re.compile(r"^(?P<scheme>openai(?:\+https)?)://(?P<host>[^/#:]+)(?::(?P<port>\d+))?(?P<path>/[^#]*)?"
                  r"(?:#(?P<name>.+))?$")
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
BACKOFF_S = (0.5, 8.0)
"""First and largest wait between attempts (doubled each time, with jitter)."""
RETRY_AFTER_MAX_S = 30.0
"""The longest a server's ``Retry-After`` makes kensa wait before the next attempt."""
PROBE_IDS_AT = 4
"""The capability probe sends a few token ids from here on (any ids of the vocabulary do)."""


@dataclass(frozen=True)
class ServedURL:
    base_url: str
    model: str | None


def is_served(name: str) -> bool:
    return name.startswith(tuple(f"{s}://" for s in SCHEMES))


def parse_served(name: str) -> ServedURL:
    """``openai://HOST:PORT/v1#NAME`` -> base URL and model name; anything else is an OptionError."""
    match = _URL.match(name)
    if not match:
        raise OptionError("--model", f"{name!r}: a served model is written openai://HOST:PORT/v1#NAME "
                                     "(or openai+https://...)")
    port = f":{match['port']}" if match["port"] else ""
    path = (match["path"] or "/v1").rstrip("/")
    return ServedURL(f"{SCHEMES[match['scheme']]}://{match['host']}{port}{path}", match["name"])


class ServerError(ModelRunError):
    """The server refused a request, gave an answer kensa cannot use, or could not be reached."""


class Client:
    """A pooled HTTP client: bounded concurrency, a timeout per request, retries only where they can help."""

    def __init__(self, base_url: str, *, api_key: str | None, max_concurrency: int, timeout: float,
                 max_retries: int):
        import httpx

        self.base_url = base_url
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url, headers=headers,
                                 timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
                                 limits=httpx.Limits(max_connections=max_concurrency,
                                                     max_keepalive_connections=max_concurrency))
        self.in_flight = 0
        self.peak_in_flight = 0
        self.retries = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request with retries; returns the JSON body. Raises :class:`ServerError`."""
        import httpx

        where = path if path.startswith("http") else f"{self.base_url}{path}"
        for attempt in range(self.max_retries + 1):
            with self._lock:
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                response = self.http.request(method, path, json=body)
            except httpx.TransportError as exc:  # refused, reset, timed out: the server may come back
                problem, wait = f"{type(exc).__name__}: {exc}", None
            else:
                if response.status_code < 400:
                    try:
                        return response.json()
                    except ValueError:
                        raise ServerError(f"{where}: the answer is not JSON: {response.text[:200]!r}") from None
                if response.status_code not in RETRY_STATUS:
                    raise ServerError(f"{where}: HTTP {response.status_code}: {_error_text(response)}")
                problem, wait = f"HTTP {response.status_code}: {_error_text(response)}", _retry_after(response)
                if wait is not None and wait > RETRY_AFTER_MAX_S:
                    problem += f" (Retry-After {wait:.0f} s; kensa waits at most {RETRY_AFTER_MAX_S:.0f} s)"
            finally:
                with self._lock:
                    self.in_flight -= 1
            if attempt == self.max_retries:
                break
            with self._lock:
                self.retries += 1
            backoff = min(BACKOFF_S[1], BACKOFF_S[0] * 2 ** attempt) * (0.5 + random.random() / 2)
            time.sleep(min(wait, RETRY_AFTER_MAX_S) if wait is not None else backoff)
        raise ServerError(f"{where}: gave up after {self.max_retries + 1} attempts; last: {problem}")

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], progress: Progress | None = None) -> list[Any]:
        """``fn`` over ``items`` with at most ``max_concurrency`` in flight, results in order. The first
        failure cancels what has not started and is raised."""
        if len(items) <= 1:
            return [fn(x) for x in items]
        out: list[Any] = [None] * len(items)
        done = 0
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(items))) as pool:
            futures = [pool.submit(fn, x) for x in items]
            try:
                for i, future in enumerate(futures):
                    out[i] = future.result()
                    done += 1
                    if progress:
                        progress(done, len(items))
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return out


def _error_text(response: Any) -> str:
    try:
        body = response.json()
        error = body.get("error", body) if isinstance(body, dict) else body
        return str(error.get("message", error) if isinstance(error, dict) else error)[:300]
    except ValueError:
        return response.text[:300]


def _retry_after(response: Any) -> float | None:
    """The seconds a 408/429/503's ``Retry-After`` asks for (delay-seconds or an HTTP date), else None."""
    from email.utils import parsedate_to_datetime

    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: the backoff applies
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class ServedLM(TokenizedModel):
    """A model behind an OpenAI-compatible completions endpoint."""

    def __init__(self, spec: ModelSpec, tokenizer: Any, client: Client, *, model: str, max_length: int,
                 info: dict[str, Any]):
        self.spec = spec
        self.name = spec.name
        self.tokenizer = tokenizer
        self.client = client
        self.model = model
        self.max_length = max_length
        self.info = info
        self.scoring = "prompt_logprobs"

    @classmethod
    def load(cls, spec: ModelSpec) -> ServedLM:
        args = spec.args
        url = parse_served(spec.source)
        client = Client(url.base_url, api_key=os.environ.get(args.api_key_env) or None,
                        max_concurrency=args.max_concurrency, timeout=args.timeout, max_retries=args.max_retries)
        try:
            listed = client.request("GET", "/models").get("data") or []
        except ServerError as exc:
            client.close()
            raise ModelLoadError(f"model {spec.name!r}: {exc}") from None
        entry = next((m for m in listed if m.get("id") == url.model), None) if url.model else \
            (listed[0] if len(listed) == 1 else None)
        if entry is None:
            client.close()
            ids = ", ".join(str(m.get("id")) for m in listed) or "none"
            raise ModelLoadError(f"model {spec.name!r}: {url.base_url}/models serves {ids}; name one with #NAME")
        root = str(entry.get("root") or "")
        tok_source = os.path.expanduser(args.tokenizer) if args.tokenizer else root
        if not args.tokenizer and not Path(root).is_dir():
            client.close()
            raise ModelLoadError(f"model {spec.name!r}: kensa sends token ids and needs the model's tokenizer: the "
                                 f"server's root {root!r} is not a directory here; give --model-args tokenizer=DIR")
        tokenizer = load_tokenizer(tok_source, revision=args.revision, use_fast=args.use_fast,
                                   trust_remote_code=args.trust_remote_code)
        served_len = int(entry.get("max_model_len") or 0)
        limit = args.max_length or (served_len - 2 if served_len else 2046)
        identity = {"name": spec.name, "source": url.base_url, "revision": args.revision or "", "commit": "",
                    "weights_sha256": "", "served_model": f"{url.base_url}#{entry.get('id')}@{root}",
                    "tokenizer_sha256": tokenizer_sha256(tok_source) or ""}
        info = {"backend": BACKEND, "identity": identity, "source": url.base_url, "served_model": entry.get("id"),
                "served_root": root, "dtype": "served", "device": "server", "quantization": None, "peft": None,
                "tokenizer_class": type(tokenizer).__name__, "vocab_size": len(tokenizer),
                "max_length": limit, "batch_size": f"{args.max_concurrency} in flight",
                "eos_token_id": tokenizer.eos_token_id, "libraries": describe_environment()}
        lm = cls(spec, tokenizer, client, model=str(entry.get("id")), max_length=limit, info=info)
        try:
            lm._probe()
        except ServerError as exc:
            client.close()
            raise ModelLoadError(f"model {spec.name!r}: {exc}") from None
        return lm

    def close(self) -> None:
        self.client.close()

    # -- what the server can do -----------------------------------------------------------
    def _probe(self) -> None:
        """Check the tokenizer where the server can tokenize, then find a scoring request whose answer has the
        right shape; refuse the server when there is none."""
        probe = "日本語のテスト、答え:A 1"
        try:
            root = re.sub(r"/v\d+$", "", self.client.base_url)  # vLLM serves /tokenize beside /v1
            theirs = self.client.request("POST", f"{root}/tokenize", {"model": self.model, "prompt": probe,
                                                                      "add_special_tokens": False}).get("tokens")
        except ServerError:
            theirs = None  # not every server tokenizes; the logprob shape check below still runs
        if theirs is not None and theirs != self.tok_encode(probe):
            raise ServerError(f"{self.client.base_url}: field tokens of /tokenize gives {theirs[:8]}... for {probe!r}, "
                              f"kensa's tokenizer {self.tok_encode(probe)[:8]}...: a tokenizer kensa cannot match "
                              "(give --model-args tokenizer= the server's own)")
        ids = list(range(PROBE_IDS_AT, PROBE_IDS_AT + 3))
        problems = []
        for style in ("prompt_logprobs", "echo"):
            self.scoring = style
            try:
                self._score_one((ids, 2))
                break
            except ServerError as exc:
                problems.append(f"{style}: {exc}")
        else:
            raise ServerError("no way to score prompt tokens on this server, so kensa refuses it for log-likelihoods; "
                              + "; ".join(problems))
        self.info["scoring"] = self.scoring
        version = self.client.request("POST", "/completions", self._generation_body([PROBE_IDS_AT], 1, ()))
        self.info["backend_version"] = str(version.get("system_fingerprint") or "unknown")

    # -- scoring ----------------------------------------------------------------------------
    def _score_one(self, pair: tuple[list[int], int]) -> LoglikelihoodResult:
        ids, n = pair
        body: dict[str, Any] = {"model": self.model, "prompt": list(ids), "max_tokens": 1, "temperature": 0}
        if self.scoring == "prompt_logprobs":
            body["prompt_logprobs"] = 0
        else:
            body.update(echo=True, logprobs=1, return_tokens_as_token_ids=True)
        start = time.perf_counter()
        answer = self.client.request("POST", "/completions", body)
        seconds = time.perf_counter() - start
        choice = (answer.get("choices") or [{}])[0]
        where = f"{self.client.base_url}/completions"
        if self.scoring == "prompt_logprobs":
            logprobs, greedy = prompt_logprob_rows(choice, ids, where)
        else:
            logprobs, greedy = echo_rows(choice, ids, where)
        return LoglikelihoodResult(logprob=float(sum(logprobs[-n:])), is_greedy=all(greedy[-n:]), num_tokens=n,
                                   seconds=seconds)

    def loglikelihood(self, requests: Sequence[tuple[str, str]],
                      progress: Progress | None = None) -> list[LoglikelihoodResult]:
        return self.client.map(self._score_one, [self.encode_pair(c, x) for c, x in requests], progress)

    # -- generation -------------------------------------------------------------------------
    def _generation_body(self, ids: list[int], budget: int, until: Sequence[str]) -> dict[str, Any]:
        # Every sampling field explicit: a server's own defaults (its model's generation config) must not
        # change a greedy answer. return_token_ids and skip_special_tokens are vLLM's; others ignore them.
        return {"model": self.model, "prompt": ids, "max_tokens": budget, "temperature": 0, "top_p": 1, "seed": 0,
                "stop": list(until), "repetition_penalty": 1.0, "return_token_ids": True,
                "skip_special_tokens": False}

    def _generate_one(self, item: tuple[GenerationRequest, list[int]]) -> GenerationResult:
        request, ids = item
        start = time.perf_counter()
        answer = self.client.request("POST", "/completions", self._generation_body(ids, request.max_new_tokens,
                                                                                   request.until))
        seconds = time.perf_counter() - start
        choice = (answer.get("choices") or [{}])[0]
        eos = self.tokenizer.eos_token_id
        tokens = choice.get("token_ids")
        if isinstance(tokens, list):
            reason = "length" if choice.get("finish_reason") == "length" else \
                "stop" if isinstance(choice.get("stop_reason"), str) else "eos"
            if reason == "eos" and tokens and tokens[-1] == eos:
                tokens = tokens[:-1]
            text = self.cut_at_stops(tokens, request.until)
            count = len(tokens)
        else:  # a server without token ids: its text, cut here too
            text = str(choice.get("text") or "")
            for stop in request.until:
                text = text.split(stop)[0]
            reason = "length" if choice.get("finish_reason") == "length" else "stop" if request.until else "eos"
            count = len(self.tok_encode(text))
        return GenerationResult(text=text, stop_reason=reason, prompt_tokens=len(ids), generated_tokens=count,
                                seconds=seconds)

    def generate_until(self, requests: Sequence[GenerationRequest],
                       progress: Progress | None = None) -> list[GenerationResult]:
        return self.client.map(self._generate_one, [(r, self.generation_ids(r)) for r in requests], progress)


def prompt_logprob_rows(choice: dict[str, Any], ids: Sequence[int], where: str) -> tuple[list[float], list[bool]]:
    """Per prompt token (from the second on): its log-probability and whether it ranked first, from vLLM's
    ``prompt_logprobs`` (a list with None first, then ``{"<id>": {"logprob", "rank"}}`` per position)."""
    rows = choice.get("prompt_logprobs")
    if not isinstance(rows, list):
        raise ServerError(f"{where}: field choices[0].prompt_logprobs is missing ({type(rows).__name__}): the "
                          "server does not return prompt log-probabilities this way")
    if len(rows) != len(ids):
        raise ServerError(f"{where}: field choices[0].prompt_logprobs has {len(rows)} entries for a prompt of "
                          f"{len(ids)} tokens")
    logprobs, greedy = [], []
    for t in range(1, len(ids)):
        entry = rows[t].get(str(ids[t])) if isinstance(rows[t], dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("logprob"), (int, float)):
            raise ServerError(f"{where}: field choices[0].prompt_logprobs[{t}] has no entry for the prompt's token "
                              f"{ids[t]} (it has {sorted(rows[t])[:5] if isinstance(rows[t], dict) else rows[t]})")
        logprobs.append(float(entry["logprob"]))
        greedy.append(entry.get("rank") == 1)
    return logprobs, greedy


def echo_rows(choice: dict[str, Any], ids: Sequence[int], where: str) -> tuple[list[float], list[bool]]:
    """The same from ``echo`` + ``logprobs``: ``token_logprobs`` must cover the prompt (None first) and
    ``tokens`` (``token_id:N`` with return_tokens_as_token_ids) must be the ids sent."""
    block = choice.get("logprobs") or {}
    values = block.get("token_logprobs")
    tokens = block.get("tokens")
    if not isinstance(values, list) or len(values) < len(ids):
        have = len(values) if isinstance(values, list) else "no"
        raise ServerError(f"{where}: field choices[0].logprobs.token_logprobs has {have} entries for a prompt of "
                          f"{len(ids)} tokens: the server returns log-probabilities only for generated tokens "
                          "(as llama.cpp's server does), so every choice would score at chance; kensa refuses it")
    if isinstance(tokens, list) and [str(t) for t in tokens[: len(ids)]] != [f"token_id:{i}" for i in ids]:
        raise ServerError(f"{where}: field choices[0].logprobs.tokens does not echo the prompt's token ids "
                          f"({tokens[:4]}... for {list(ids[:4])}...)")
    tops = block.get("top_logprobs") or [None] * len(values)
    logprobs, greedy = [], []
    for t in range(1, len(ids)):
        if not isinstance(values[t], (int, float)):
            raise ServerError(f"{where}: field choices[0].logprobs.token_logprobs[{t}] is {values[t]!r}")
        logprobs.append(float(values[t]))
        top = tops[t] if t < len(tops) and isinstance(tops[t], dict) else {}
        greedy.append(not top or float(values[t]) >= max(float(v) for v in top.values()))
    return logprobs, greedy


@dataclass(frozen=True)
class ServedArgs:
    """The model arguments only a served model's client reads."""

    max_concurrency: int = 8
    timeout: float = 300.0
    max_retries: int = 5
    api_key_env: str = "OPENAI_API_KEY"


def _load(spec: ModelSpec, device: str, *, kind: str, source: str, adapter: str | None) -> ServedLM:
    return ServedLM.load(spec)  # the server runs the model: no device, no local weights


# A served model is chosen by its openai:// name, not --backend; it leaves the HF keys alone as it always has
# (``--model-args`` may be given once for an openai:// model and a local one).
register(BackendEntry(
    name="openai", requests=("loglikelihood", "generation"), model_kinds=("causal",), args=ServedArgs, load=_load,
    what="a served model", whose="served models' (openai://...)", option=False, tolerates=("hf",)))
