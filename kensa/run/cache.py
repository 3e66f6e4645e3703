"""An on-disk cache of model responses: a re-run scores only what is new, a killed run resumes.

* **Key.** A model fingerprint (:func:`model_fingerprint`: the backend, the weights' revision or
  SHA-256, the tokenizer and adapter hashes, dtype, quantization, device class, torch and
  transformers minor versions and :data:`CACHE_FORMAT`) and the exact request: for a
  log-likelihood the token ids and continuation length from ``lm.encode_pair``, for a generation
  the prompt ids from ``lm.generation_ids``, the stop strings and the token budget. Prompt text
  never enters the key, only what the model is given. A model whose weights cannot be identified
  (no revision and no weights hash) is never cached: guessing could serve another model's answers.
* **Storage.** One SQLite file (stdlib ``sqlite3``) in WAL mode with a busy timeout, one
  connection per process, so that xdist workers read and write it at once. Each chunk of answers
  is committed before the next chunk is scored, and chunks are sized to take about
  :data:`COMMIT_SECONDS` of model time (measured on the chunks before), so a killed run loses at most
  about that much work, however slow the model.
* **Damage.** Every row carries a SHA-256 of its key and value; a row that fails it is warned
  about, recomputed and overwritten, never served. A file SQLite calls damaged is moved aside to
  ``<name>.corrupt`` (under a lock file, so one process does it) and a fresh cache is started; a
  file that is not kensa's (no SQLite header, or a SQLite database of something else) is left
  alone and the run goes on uncached. Any SQLite error later in the run turns the cache off for
  the rest of that process with a warning; the scores are computed, never lost.

:class:`CachedLM` wraps a backend with the same contract (:mod:`kensa.backends.contract`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from kensa.backends.contract import GenerationRequest, GenerationResult, LoglikelihoodResult, Progress
from kensa.backends.identity import minor
from kensa.errors import KensaError
from kensa.faults import fault_point
from kensa.run.chunks import context_runs, next_chunk_size, take_chunk

CACHE_FORMAT = 2
"""Part of every key: bump it when the scoring code changes what a request's answer is, or how it is
stored (2: a generation is stored with its stop reason and token counts)."""
SCHEMA_VERSION = 1
APPLICATION_ID = 0x6B656E73  # "kens": marks a SQLite file as a kensa response cache
CHUNK_SIZE = 256
"""The most requests per backend call between commits (a run of requests sharing a context is never split)."""
FIRST_CHUNK = 4
"""The first chunk's size, before any timing is known."""
BUSY_TIMEOUT_S = 120.0
SQLITE_HEADER = b"SQLite format 3\x00"
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_IN_BATCH = 500  # keys per SELECT ... IN (...), well under SQLite's variable limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key BLOB PRIMARY KEY,      -- sha256 of (model fingerprint, kind, exact request)
    model TEXT NOT NULL,       -- the model fingerprint's digest (models.fingerprint)
    kind TEXT NOT NULL,        -- loglikelihood | generate
    value TEXT NOT NULL,
    checksum BLOB NOT NULL,    -- sha256(key || value)
    created REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS models (
    fingerprint TEXT PRIMARY KEY,
    description TEXT NOT NULL  -- the fingerprint's fields, as JSON
);
"""


class ResponseCacheWarning(UserWarning):
    """The response cache was damaged, foreign or unusable; the run goes on, computing instead."""


class CacheUnavailable(Exception):
    """Why a model's responses cannot be cached (the message is shown to the user)."""


def _warn(message: str) -> None:
    warnings.warn(message, ResponseCacheWarning, stacklevel=3)


# -- keys ------------------------------------------------------------------------------------------

def model_fingerprint(info: Mapping[str, Any]) -> dict[str, str]:
    """What a model's answers depend on, from the backend's ``info``. Raises :class:`CacheUnavailable`
    when the weights (or an adapter's) cannot be identified."""
    identity = info.get("identity") or {}
    revision = str(identity.get("revision") or "")
    weights = str(identity.get("weights_sha256") or "")
    name = identity.get("name") or info.get("source") or "the model"
    # A branch or tag name ("main") moves with the repository: only a commit names fixed weights.
    commit = str(identity.get("commit") or "") or (revision if _COMMIT.match(revision) else "")
    served = str(identity.get("served_model") or "")  # a server's URL, model id and root: all kensa can see
    if not weights and not commit and not served:
        why = f"its revision {revision!r} is not a commit hash" if revision else "it has no revision"
        raise CacheUnavailable(f"model {name!r}: {why} and no weights hash: its weights cannot be identified")
    if info.get("peft") and not identity.get("adapter_sha256"):
        raise CacheUnavailable(f"model {name!r}: the adapter {info.get('peft')!r} has no hash")
    libs = info.get("libraries") or {}
    device = str(info.get("device") or "unknown")
    decoding = {"decoding": json.dumps(info["decoding"], sort_keys=True, ensure_ascii=False)} \
        if info.get("decoding") else {}  # the seq2seq backend's beams, penalties and bad words
    return {**decoding,
        "format": str(CACHE_FORMAT),
        "backend": str(info.get("backend") or "unknown"),
        "revision": commit or revision,
        "weights_sha256": weights,
        "config_sha256": str(identity.get("config_sha256") or ""),  # when the backend records one
        "tokenizer_sha256": str(identity.get("tokenizer_sha256") or ""),
        "tokenizer_class": str(info.get("tokenizer_class") or ""),
        "adapter_sha256": str(identity.get("adapter_sha256") or ""),
        "dtype": str(info.get("dtype") or "unknown"),
        "quantization": str(info.get("quantization") or "none"),
        "device": "cuda" if device.startswith("cuda") else device,
        "torch": minor(str(libs.get("torch", "unknown"))),
        "transformers": minor(str(libs.get("transformers", "unknown"))),
        # Only where a backend records them, so that the HF backend's keys stay as they were.
        **({"backend_version": minor(str(info["backend_version"]))} if info.get("backend_version") else {}),
        **({"served_model": served} if served else {}),
    }


def fingerprint_digest(fingerprint: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(fingerprint), sort_keys=True).encode()).hexdigest()


def _key(*parts: Any) -> bytes:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":"), ensure_ascii=False).encode()).digest()


def loglikelihood_key(model: str, ids: Sequence[int], n: int) -> bytes:
    return _key(model, "loglikelihood", [int(i) for i in ids], int(n))


def generation_key(model: str, ids: Sequence[int], until: Sequence[str], max_new_tokens: int) -> bytes:
    return _key(model, "generate", [int(i) for i in ids], list(until), int(max_new_tokens))


def encode_loglikelihood(result: LoglikelihoodResult) -> str:
    """float.hex: the log-probability comes back bit for bit."""
    return json.dumps([float(result.logprob).hex(), bool(result.is_greedy), int(result.num_tokens)])


def decode_loglikelihood(value: str) -> LoglikelihoodResult:
    logprob, greedy, n = json.loads(value)
    if not isinstance(logprob, str) or not isinstance(greedy, bool) or type(n) is not int:
        raise ValueError(f"not a log-likelihood record: {value!r}")
    return LoglikelihoodResult(logprob=float.fromhex(logprob), is_greedy=greedy, num_tokens=n)


def encode_generation(result: GenerationResult) -> str:
    """The text and how it ended; the model time is not stored (a served answer cost none)."""
    return json.dumps([result.text, result.stop_reason, int(result.prompt_tokens), int(result.generated_tokens)],
                      ensure_ascii=False)


def decode_generation(value: str) -> GenerationResult:
    text, reason, prompt_tokens, generated = json.loads(value)
    if not isinstance(text, str) or type(prompt_tokens) is not int or type(generated) is not int:
        raise ValueError(f"not a generation record: {value!r}")
    return GenerationResult(text=text, stop_reason=reason, prompt_tokens=prompt_tokens, generated_tokens=generated)


def checksum(key: bytes, value: str) -> bytes:
    return hashlib.sha256(key + value.encode("utf-8")).digest()


# -- the file --------------------------------------------------------------------------------------

@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (POSIX); elsewhere no lock, and damage is not moved aside."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class _Damaged(Exception):
    pass


class _Foreign(Exception):
    pass


class ResponseCache:
    """One SQLite response cache, one connection per process. When it cannot be used, ``usable`` is
    False, ``problem`` says why (it was warned about) and every lookup misses."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.usable = False
        self.problem: str | None = None
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._models: set[str] = set()
        self._open()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r}{'' if self.usable else ', unusable'})"

    # -- opening ---------------------------------------------------------------------------
    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One process at a time checks the file, moves a damaged one aside and creates the tables.
            with _file_lock(self.path.with_name(self.path.name + ".lock")):
                try:
                    self._conn = self._connect()
                except _Damaged as exc:
                    moved = self._move_aside()
                    if moved is None:
                        self._disable(f"is damaged ({exc}) and could not be moved aside; running without the "
                                      "response cache (delete the file)")
                        return
                    _warn(f"kensa: response cache {self.path} is damaged ({exc}); moved it to {moved} and "
                          "started a fresh one")
                    self._conn = self._connect()
        except (_Foreign, _Damaged) as exc:
            self._disable(f"{exc}; running without the response cache")
            return
        except (OSError, sqlite3.Error) as exc:
            self._disable(f"cannot be opened ({type(exc).__name__}: {exc}); running without the response cache")
            return
        self.usable = True

    def _connect(self) -> sqlite3.Connection:
        if self.path.is_file() and self.path.stat().st_size:
            with self.path.open("rb") as f:
                head = f.read(len(SQLITE_HEADER))
            if head != SQLITE_HEADER[: len(head)]:
                raise _Foreign("is not a SQLite database (left untouched; delete it or pick another "
                               "--response-cache)")
            if len(head) < len(SQLITE_HEADER):
                raise _Damaged("truncated to a few bytes")
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            try:
                app_id = conn.execute("PRAGMA application_id").fetchone()[0]
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                check = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
            except sqlite3.DatabaseError as exc:
                raise _Damaged(f"{type(exc).__name__}: {exc}") from None
            if tables and app_id != APPLICATION_ID:
                raise _Foreign("is a SQLite database but not a kensa response cache (left untouched)")
            if tables and version != SCHEMA_VERSION:
                raise _Foreign(f"has schema version {version}, this kensa writes {SCHEMA_VERSION} (left "
                               "untouched; delete it to start afresh)")
            if check != ["ok"]:
                raise _Damaged("quick_check: " + " ".join("; ".join(map(str, check[:3])).split()))
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a committed chunk survives a killed process
            if not tables:
                conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA application_id = {APPLICATION_ID}; "
                                   f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        except BaseException:
            conn.close()
            raise
        return conn

    def _move_aside(self) -> Path | None:
        """Rename the damaged file (and its WAL files, which belong to it) to ``<name>.corrupt``."""
        try:
            import fcntl  # noqa: F401  # only where the lock above was real
        except ImportError:  # pragma: no cover
            return None
        target = self.path.with_name(self.path.name + ".corrupt")
        try:
            for suffix in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    os.replace(side, target.with_name(target.name + suffix))
            os.replace(self.path, target)
        except OSError:
            return None
        return target

    def _disable(self, problem: str) -> None:
        self.usable = False
        self.problem = problem
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        _warn(f"kensa: response cache {self.path} {problem}")

    def _connection(self) -> sqlite3.Connection | None:
        if self._pid != os.getpid():
            raise RuntimeError("a ResponseCache is used in the process that opened it; open one per process")
        return self._conn if self.usable else None

    # -- reading and writing ---------------------------------------------------------------
    def get_many(self, keys: Sequence[bytes]) -> tuple[dict[bytes, str], int]:
        """The stored values of ``keys`` that pass their checksum, and how many rows failed it."""
        conn = self._connection()
        found: dict[bytes, str] = {}
        damaged = 0
        if conn is None:
            return found, 0
        unique = list(dict.fromkeys(keys))
        try:
            for start in range(0, len(unique), _IN_BATCH):
                batch = unique[start: start + _IN_BATCH]
                rows = conn.execute(f"SELECT key, value, checksum FROM responses WHERE key IN "
                                    f"({','.join('?' * len(batch))})", batch).fetchall()
                for key, value, digest in rows:
                    if isinstance(value, str) and checksum(key, value) == digest:
                        found[key] = value
                    else:
                        damaged += 1
        except sqlite3.Error as exc:
            self._disable(f"failed to read ({type(exc).__name__}: {exc}); running without it from here on")
            return {}, 0
        if damaged:
            _warn(f"kensa: response cache {self.path}: {damaged} stored responses failed their checksum; "
                  "they are ignored, recomputed and overwritten")
        return found, damaged

    def put_many(self, model: Mapping[str, str] | str, kind: str, items: Sequence[tuple[bytes, str]]) -> None:
        """Store ``(key, value)`` pairs and commit (one transaction)."""
        conn = self._connection()
        if conn is None or not items:
            return
        digest = model if isinstance(model, str) else fingerprint_digest(model)
        now = time.time()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if not isinstance(model, str) and digest not in self._models:
                    conn.execute("INSERT OR IGNORE INTO models VALUES (?, ?)",
                                 (digest, json.dumps(dict(model), sort_keys=True)))
                    self._models.add(digest)
                conn.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                                 [(k, digest, kind, v, checksum(k, v), now) for k, v in items])
                fault_point("cache-commit")  # the kill sweep kills here: a transaction never committed
                conn.execute("COMMIT")
                fault_point("cache-committed")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            self._disable(f"failed to write ({type(exc).__name__}: {exc}); running without it from here on")

    def count(self) -> int:
        conn = self._connection()
        return 0 if conn is None else conn.execute("SELECT count(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
        self._conn = None
        self.usable = False


# -- the wrapper -----------------------------------------------------------------------------------

class CachedLM:
    """A backend with a response cache in front: the same interface as ``HFCausalLM`` (every other
    attribute is the inner model's). Hits are served from the cache; misses go to the backend in
    chunks, each stored and committed before the next. ``computed`` and ``from_cache`` count this
    wrapper's requests. With ``cache=None``, or a model the cache cannot identify, it only counts."""

    def __init__(self, inner: Any, cache: ResponseCache | None, *, chunk_size: int | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.inner = inner
        self.cache = cache
        self.chunk_size = chunk_size
        """The most requests per chunk (default :data:`CHUNK_SIZE`); chunks are also sized by time."""
        self.clock = clock
        self.computed = 0
        self.from_cache = 0
        self.problem: str | None = None
        self.fingerprint: dict[str, str] | None = None
        self.model_key = ""
        if cache is not None:
            try:
                self.fingerprint = model_fingerprint(inner.info)
                self.model_key = fingerprint_digest(self.fingerprint)
            except CacheUnavailable as exc:
                self.problem = str(exc)
                _warn(f"kensa: response cache off for this model: {exc}")

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not yet set (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"CachedLM({self.inner!r}, {self.cache!r})"

    @property
    def caching(self) -> bool:
        return self.cache is not None and self.cache.usable and self.fingerprint is not None

    def loglikelihood(self, requests: Sequence[tuple[str, str]],
                      progress: Progress | None = None) -> list[LoglikelihoodResult]:
        if not self.caching:
            self.computed += len(requests)
            return self.inner.loglikelihood(requests, progress)
        encoded = [self.inner.encode_pair(c, x) for c, x in requests]
        keys = [loglikelihood_key(self.model_key, ids, n) for ids, n in encoded]

        def decode(value: str, i: int) -> LoglikelihoodResult:
            result = decode_loglikelihood(value)
            if result.num_tokens != encoded[i][1]:
                raise ValueError(f"{result.num_tokens} tokens stored, {encoded[i][1]} requested")
            return result

        return self._run(requests, keys, "loglikelihood", decode, encode_loglikelihood,
                         self.inner.loglikelihood, [c for c, _ in requests], progress)

    def generate_until(self, requests: Sequence[GenerationRequest],
                       progress: Progress | None = None) -> list[GenerationResult]:
        if not self.caching:
            self.computed += len(requests)
            return self.inner.generate_until(requests, progress)
        keys = [generation_key(self.model_key, self.inner.generation_ids(r), tuple(r.until), r.max_new_tokens)
                for r in requests]

        def decode(value: str, i: int) -> GenerationResult:
            result = decode_generation(value)
            if result.prompt_tokens != len(self.inner.generation_ids(requests[i])):
                raise ValueError(f"{result.prompt_tokens} prompt tokens stored for another prompt length")
            return result

        return self._run(requests, keys, "generate", decode, encode_generation, self.inner.generate_until, None,
                         progress)

    def _run(self, requests: Sequence[Any], keys: list[bytes], kind: str, decode: Callable[[str, int], Any],
             encode: Callable[[Any], str], compute: Callable[..., list[Any]], contexts: list[str] | None,
             progress: Progress | None) -> list[Any]:
        assert self.cache is not None
        total = len(requests)
        stored, _ = self.cache.get_many(keys)
        out: list[Any] = [None] * total
        misses = []
        bad = 0
        for i, key in enumerate(keys):
            value = stored.get(key)
            if value is not None:
                try:
                    out[i] = decode(value, i)
                    continue
                except (ValueError, TypeError):
                    bad += 1
            misses.append(i)
        if bad:
            _warn(f"kensa: response cache {self.cache.path}: {bad} stored {kind} responses could not be read; "
                  "they are recomputed and overwritten")
        done = total - len(misses)
        self.from_cache += done
        if progress and done:
            progress(done, total)
        largest = self.chunk_size or CHUNK_SIZE
        runs, pos, size = context_runs(misses, contexts), 0, min(FIRST_CHUNK, largest)
        while pos < len(runs):
            chunk, pos = take_chunk(runs, pos, size)
            base = done

            def inner_progress(d: int, _t: int, base: int = base) -> None:
                if progress:
                    progress(base + d, total)

            started = self.clock()
            results = compute([requests[i] for i in chunk], inner_progress if progress else None)
            size = next_chunk_size(self.clock() - started, len(chunk), largest)
            if len(results) != len(chunk):
                raise KensaError(f"{getattr(self.inner, 'name', 'the model')} returned {len(results)} "
                                   f"results for {len(chunk)} requests")
            for i, r in zip(chunk, results, strict=True):
                out[i] = r
            self.cache.put_many(self.fingerprint or self.model_key, kind,
                                [(keys[i], encode(r)) for i, r in zip(chunk, results, strict=True)])
            self.computed += len(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
        return out
