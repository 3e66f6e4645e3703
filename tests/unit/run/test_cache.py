"""The response cache (kensa/cache.py) against a fake backend that counts what it is asked to compute."""

from __future__ import annotations

import math
import multiprocessing
import os
import sqlite3
from pathlib import Path

import pytest

from kensa.backends.contract import GenerationRequest, LoglikelihoodResult
from kensa.cli.options import default_response_cache, parse_response_cache
from kensa.errors import OptionError
from kensa.run.cache import (
    CachedLM,
    CacheUnavailable,
    ResponseCache,
    ResponseCacheWarning,
    model_fingerprint,
)
from kensa.run.chunks import chunk_runs
from tests.helpers import generated

WEIGHTS_A = "a" * 64
WEIGHTS_B = "b" * 64


def info(weights: str = WEIGHTS_A, revision: str = "", **changes) -> dict:
    base = {
        "backend": "hf", "dtype": "float32", "device": "cpu", "quantization": None, "peft": None,
        "tokenizer_class": "FakeTokenizer", "batch_size": 4, "max_length": 64,
        "identity": {"name": "fake", "source": "/models/fake", "revision": revision, "weights_sha256": weights,
                     "tokenizer_sha256": "c" * 64},
        "libraries": {"torch": "2.13.0+cpu", "transformers": "5.23.1"},
    }
    base.update(changes)
    return base


class FakeLM:
    """Answers depend on the request and on the weights hash, so two 'models' answer differently."""

    name = "fake"
    max_length = 64
    max_gen_toks = 16

    def __init__(self, weights: str = WEIGHTS_A, **info_changes):
        self.info = info(weights, **info_changes)
        self.ll_calls: list[list[tuple[str, str]]] = []
        self.gen_calls: list[list[GenerationRequest]] = []
        self.salt = int(weights[:8], 16) % 1000 if weights else 0

    def tok_encode(self, text: str) -> list[int]:
        return [ord(ch) for ch in text]

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], int]:
        cont = self.tok_encode(continuation)
        if not cont:
            raise ValueError("empty continuation")
        return (self.tok_encode(context) + cont)[-(self.max_length + 1):], len(cont)

    def loglikelihood(self, requests, progress=None):
        self.ll_calls.append(list(requests))
        out = []
        for i, (c, x) in enumerate(requests):
            ids, n = self.encode_pair(c, x)
            # an awkward float: its decimal form does not round-trip through a short repr
            out.append(LoglikelihoodResult(-math.pi * sum(ids) / 7919 - self.salt / 3, sum(ids) % 2 == 0, n))
            if progress:
                progress(i + 1, len(requests))
        return out

    def generation_ids(self, request: GenerationRequest) -> list[int]:
        return self.tok_encode(request.context)[-max(1, self.max_length - request.max_new_tokens):]

    def generate_until(self, requests, progress=None):
        self.gen_calls.append(list(requests))
        if progress:
            progress(len(requests), len(requests))
        return [generated(f"{r.context[-2:]}|{'/'.join(r.until)}|{r.max_new_tokens}|{self.salt}|日本語",
                          len(self.generation_ids(r))) for r in requests]

    @property
    def computed_ll(self) -> int:
        return sum(len(c) for c in self.ll_calls)


def mc_requests(docs: int = 6, choices: int = 3, tag: str = "") -> list[tuple[str, str]]:
    return [(f"{tag}question {d}: ", f"answer {d}.{c}") for d in range(docs) for c in range(choices)]


@pytest.fixture
def cache_path(tmp_path) -> Path:
    return tmp_path / "responses.sqlite"


@pytest.fixture
def cache(cache_path):
    c = ResponseCache(cache_path)
    assert c.usable, c.problem
    yield c
    c.close()


# -- hits, misses, counts ------------------------------------------------------------------------

def test_second_call_is_served_from_the_cache_with_exactly_the_same_results(cache):
    requests = mc_requests()
    reference = FakeLM().loglikelihood(requests)
    inner = FakeLM()
    lm = CachedLM(inner, cache)
    first = lm.loglikelihood(requests)
    assert (lm.computed, lm.from_cache, inner.computed_ll) == (18, 0, 18)
    second = lm.loglikelihood(requests)
    assert (lm.computed, lm.from_cache, inner.computed_ll) == (18, 18, 18)
    assert first == second == reference  # floats compared exactly


def test_only_the_misses_are_computed(cache):
    inner = FakeLM()
    lm = CachedLM(inner, cache)
    lm.loglikelihood(mc_requests(4))
    before = len(inner.ll_calls)
    more = mc_requests(6)
    result = lm.loglikelihood(more)
    assert [r for call in inner.ll_calls[before:] for r in call] == more[12:]
    assert (lm.computed, lm.from_cache) == (18, 12)
    assert result == FakeLM().loglikelihood(more)


def test_a_new_process_reads_what_an_earlier_one_wrote(cache_path):
    requests = mc_requests()
    first = ResponseCache(cache_path)
    CachedLM(FakeLM(), first).loglikelihood(requests)
    first.close()
    second = ResponseCache(cache_path)
    inner = FakeLM()
    lm = CachedLM(inner, second)
    assert lm.loglikelihood(requests) == FakeLM().loglikelihood(requests)
    assert inner.ll_calls == [] and lm.from_cache == len(requests)
    second.close()


def test_extreme_floats_round_trip_bit_for_bit(cache):
    values = [-0.0, -5e-324, -(0.1 + 0.2), -1 / 3, -1e300, -math.inf, math.nextafter(-1.0, 0.0)]

    class Extreme(FakeLM):
        def loglikelihood(self, requests, progress=None):
            self.ll_calls.append(list(requests))
            return [LoglikelihoodResult(values[i], i % 2 == 1, 1) for i in range(len(requests))]

    requests = [("ctx", str(i)) for i in range(len(values))]
    CachedLM(Extreme(), cache).loglikelihood(requests)
    inner = Extreme()
    got = CachedLM(inner, cache).loglikelihood(requests)
    assert inner.ll_calls == []
    assert [r.logprob.hex() for r in got] == [v.hex() for v in values]
    assert [r.is_greedy for r in got] == [i % 2 == 1 for i in range(len(values))]


def test_other_attributes_pass_through_to_the_inner_model(cache):
    inner = FakeLM()
    lm = CachedLM(inner, cache)
    assert lm.max_length == 64 and lm.name == "fake" and lm.info is inner.info
    assert lm.tok_encode("ab") == [97, 98]
    with pytest.raises(AttributeError):
        lm.no_such_attribute  # noqa: B018


def test_cache_off_only_counts(cache_path):
    inner = FakeLM()
    lm = CachedLM(inner, None)
    lm.loglikelihood(mc_requests())
    lm.loglikelihood(mc_requests())
    assert (lm.computed, lm.from_cache, inner.computed_ll) == (36, 0, 36)
    assert not cache_path.exists()


# -- the key -------------------------------------------------------------------------------------

def test_models_that_differ_only_in_weights_never_share_answers(cache):
    requests = mc_requests()
    a, b = FakeLM(WEIGHTS_A), FakeLM(WEIGHTS_B)
    assert {k: v for k, v in a.info.items() if k != "identity"} == {k: v for k, v in b.info.items()
                                                                     if k != "identity"}
    CachedLM(a, cache).loglikelihood(requests)
    lm_b = CachedLM(b, cache)
    got = lm_b.loglikelihood(requests)
    assert (lm_b.computed, lm_b.from_cache) == (len(requests), 0)
    assert got == FakeLM(WEIGHTS_B).loglikelihood(requests) != FakeLM(WEIGHTS_A).loglikelihood(requests)
    again = CachedLM(FakeLM(WEIGHTS_A), cache)
    assert again.loglikelihood(requests) == FakeLM(WEIGHTS_A).loglikelihood(requests) and again.computed == 0


@pytest.mark.parametrize("change", [
    {"dtype": "bfloat16"}, {"quantization": "8bit"}, {"device": "cuda:0"}, {"backend": "vllm"},
    {"libraries": {"torch": "2.14.0", "transformers": "5.23.1"}},
    {"libraries": {"torch": "2.13.0+cpu", "transformers": "5.24.0"}},
    {"identity": {"name": "fake", "revision": "", "weights_sha256": WEIGHTS_A, "tokenizer_sha256": "d" * 64}},
    {"peft": "adapter", "identity": {"name": "fake", "revision": "", "weights_sha256": WEIGHTS_A,
                                     "tokenizer_sha256": "c" * 64, "adapter_sha256": "e" * 64}},
], ids=lambda c: next(iter(c)) if "peft" not in c else "adapter")
def test_every_fingerprint_field_separates_the_answers(cache, change):
    CachedLM(FakeLM(), cache).loglikelihood(mc_requests())
    other = FakeLM()
    other.info.update(change)
    lm = CachedLM(other, cache)
    lm.loglikelihood(mc_requests())
    assert (lm.computed, lm.from_cache) == (18, 0)


def test_patch_versions_and_the_model_name_share_answers(cache):
    CachedLM(FakeLM(), cache).loglikelihood(mc_requests())
    other = FakeLM()
    other.info["libraries"] = {"torch": "2.13.1", "transformers": "5.23.9"}
    other.info["identity"] = dict(other.info["identity"], name="renamed", source="/elsewhere")
    other.info["load_seconds"] = 12.5
    lm = CachedLM(other, cache)
    lm.loglikelihood(mc_requests())
    assert (lm.computed, lm.from_cache) == (0, 18)


def test_a_model_without_revision_or_weights_hash_is_never_cached(cache):
    inner = FakeLM(weights="")
    with pytest.raises(CacheUnavailable, match="it has no revision and no weights hash"):
        model_fingerprint(inner.info)
    with pytest.warns(ResponseCacheWarning, match="response cache off for this model: .*cannot be identified"):
        lm = CachedLM(inner, cache)
    lm.loglikelihood(mc_requests())
    lm.loglikelihood(mc_requests())
    assert (lm.computed, lm.from_cache, inner.computed_ll) == (36, 0, 36)
    assert cache.count() == 0


def test_a_commit_alone_identifies_the_weights_but_a_branch_name_does_not(cache):
    lm = CachedLM(FakeLM(weights="", revision="0123abcd" * 5), cache)
    lm.loglikelihood(mc_requests())
    lm.loglikelihood(mc_requests())
    assert (lm.computed, lm.from_cache) == (18, 18)
    other = CachedLM(FakeLM(weights="", revision="4567cdef" * 5), cache)
    other.loglikelihood(mc_requests())
    assert (other.computed, other.from_cache) == (18, 0)
    with pytest.warns(ResponseCacheWarning, match="its revision 'main' is not a commit hash and no weights hash"):
        branch = CachedLM(FakeLM(weights="", revision="main"), cache)
    assert not branch.caching


def test_an_adapter_without_a_hash_is_never_cached(cache):
    with pytest.warns(ResponseCacheWarning, match="adapter 'some/adapter' has no hash"):
        lm = CachedLM(FakeLM(peft="some/adapter"), cache)
    assert not lm.caching


def test_generation_keys_include_the_stop_strings_and_the_budget(cache):
    inner = FakeLM()
    lm = CachedLM(inner, cache)
    base = GenerationRequest("prompt text", ("\n",), 8)
    variants = [base, GenerationRequest("prompt text", ("\n", "。"), 8), GenerationRequest("prompt text", (), 8),
                GenerationRequest("prompt text", ("\n",), 9), GenerationRequest("other prompt", ("\n",), 8)]
    first = lm.generate_until(variants)
    assert lm.computed == 5 and lm.from_cache == 0 and len(set(first)) == 5
    again = lm.generate_until([*variants, base])
    assert again == [*first, first[0]] == FakeLM().generate_until([*variants, base])
    assert (lm.computed, lm.from_cache, sum(map(len, inner.gen_calls))) == (5, 6, 5)


def test_generation_and_loglikelihood_never_share_a_key(cache):
    lm = CachedLM(FakeLM(), cache)
    lm.loglikelihood([("ctx", "x")])
    lm.generate_until([GenerationRequest("ctxx", (), 1)])
    assert lm.computed == 2


# -- damage --------------------------------------------------------------------------------------

def _filled(path: Path, n_docs: int = 200) -> list[tuple[str, str]]:
    requests = mc_requests(n_docs, 5, tag="a long shared prompt " * 5)
    c = ResponseCache(path)
    CachedLM(FakeLM(), c).loglikelihood(requests)
    c.close()
    return requests


def test_a_truncated_file_is_moved_aside_and_never_served(cache_path):
    requests = _filled(cache_path)
    size = cache_path.stat().st_size
    assert size > 50_000
    with cache_path.open("r+b") as f:
        f.truncate(size // 2)
    with pytest.warns(ResponseCacheWarning, match=r"is damaged .*moved it to .*responses\.sqlite\.corrupt"):
        c = ResponseCache(cache_path)
    assert c.usable and c.count() == 0
    assert cache_path.with_name("responses.sqlite.corrupt").stat().st_size == size // 2
    inner = FakeLM()
    lm = CachedLM(inner, c)
    assert lm.loglikelihood(requests) == FakeLM().loglikelihood(requests)
    assert (lm.computed, lm.from_cache) == (len(requests), 0)
    c.close()


def test_a_damaged_page_found_by_quick_check_is_moved_aside(cache_path):
    requests = _filled(cache_path)
    page = cache_path.read_bytes()[16:18]
    page_size = int.from_bytes(page, "big")
    with cache_path.open("r+b") as f:  # a b-tree page's header (its cell content offset) scribbled over
        f.seek(page_size * 10 + 5)
        f.write(b"\xff\x13\x77\x00")
    with sqlite3.connect(cache_path) as db:  # the file still opens: only quick_check sees the damage
        assert db.execute("PRAGMA quick_check").fetchall() != [("ok",)]
    db.close()
    with pytest.warns(ResponseCacheWarning, match=r"is damaged \(quick_check: .*moved it to"):
        c = ResponseCache(cache_path)
    lm = CachedLM(FakeLM(), c)
    assert lm.loglikelihood(requests) == FakeLM().loglikelihood(requests) and lm.from_cache == 0
    c.close()


def test_a_file_of_garbage_bytes_is_left_alone_and_the_run_goes_on_uncached(cache_path):
    garbage = bytes(range(256)) * 64
    cache_path.write_bytes(garbage)
    with pytest.warns(ResponseCacheWarning, match="is not a SQLite database .*running without the response cache"):
        c = ResponseCache(cache_path)
    assert not c.usable
    inner = FakeLM()
    lm = CachedLM(inner, c)
    requests = mc_requests()
    assert lm.loglikelihood(requests) == FakeLM().loglikelihood(requests)
    lm.loglikelihood(requests)
    assert (lm.computed, lm.from_cache) == (36, 0)
    assert cache_path.read_bytes() == garbage  # not ours: never moved, never written


def test_garbage_after_a_sqlite_header_is_damage(cache_path):
    cache_path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 64)
    with pytest.warns(ResponseCacheWarning, match="is damaged .*moved it to"):
        c = ResponseCache(cache_path)
    assert c.usable
    c.close()


def test_another_programs_sqlite_database_is_left_alone(cache_path):
    with sqlite3.connect(cache_path) as other:
        other.execute("CREATE TABLE mine (x)")
    other.close()
    with pytest.warns(ResponseCacheWarning, match="not a kensa response cache"):
        c = ResponseCache(cache_path)
    assert not c.usable
    with sqlite3.connect(cache_path) as other:
        assert [r[0] for r in other.execute("SELECT name FROM sqlite_master")] == ["mine"]
    other.close()


def test_a_tampered_row_is_detected_recomputed_and_overwritten(cache_path):
    requests = mc_requests()
    first = ResponseCache(cache_path)
    CachedLM(FakeLM(), first).loglikelihood(requests)
    first.close()
    with sqlite3.connect(cache_path) as db:
        key, value = db.execute("SELECT key, value FROM responses ORDER BY key LIMIT 1").fetchone()
        tampered = value.replace(value[3:9], "0" * 6)
        assert tampered != value
        db.execute("UPDATE responses SET value = ? WHERE key = ?", (tampered, key))
    db.close()
    c = ResponseCache(cache_path)
    inner = FakeLM()
    lm = CachedLM(inner, c)
    with pytest.warns(ResponseCacheWarning, match="1 stored responses failed their checksum"):
        got = lm.loglikelihood(requests)
    assert got == FakeLM().loglikelihood(requests)
    assert (lm.computed, lm.from_cache, len(inner.ll_calls[0])) == (1, len(requests) - 1, 1)
    again = CachedLM(FakeLM(), c)
    assert again.loglikelihood(requests) == got and again.computed == 0  # overwritten with the right value
    c.close()


def test_damage_found_during_the_run_turns_the_cache_off_with_a_warning(cache_path):
    requests = _filled(cache_path)
    c = ResponseCache(cache_path)
    assert c.usable
    with cache_path.open("r+b") as f:  # another program scribbles over the b-tree pages
        f.seek(4096)
        f.write(bytes(range(256)) * 256)
    c._conn.execute("PRAGMA shrink_memory")  # as in a long run: the pages are read from the file again
    inner = FakeLM()
    lm = CachedLM(inner, c)
    with pytest.warns(ResponseCacheWarning, match="failed to read .*DatabaseError.*running without it"):
        got = lm.loglikelihood(requests)
    assert got == FakeLM().loglikelihood(requests) and lm.computed == len(requests)
    assert not c.usable and not lm.caching
    c.close()


def test_a_cache_locked_past_the_busy_timeout_turns_off_with_a_warning(cache_path, monkeypatch):
    monkeypatch.setattr("kensa.run.cache.BUSY_TIMEOUT_S", 0.2)
    c = ResponseCache(cache_path)
    other = sqlite3.connect(cache_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a stuck writer
    lm = CachedLM(FakeLM(), c)
    with pytest.warns(ResponseCacheWarning, match="failed to write .*database is locked.*running without it"):
        got = lm.loglikelihood(mc_requests())
    other.execute("ROLLBACK")
    other.close()
    assert got == FakeLM().loglikelihood(mc_requests()) and lm.computed == 18 and not c.usable
    c.close()


# -- chunks, progress, resume --------------------------------------------------------------------

def test_chunks_never_split_a_run_of_requests_sharing_a_context():
    contexts = ["a"] * 3 + ["b"] * 5 + ["c"] * 2 + ["a"] * 2
    chunks = chunk_runs(range(12), contexts, 4)
    assert chunks == [[0, 1, 2], [3, 4, 5, 6, 7], [8, 9, 10, 11]]
    assert chunk_runs(range(10), None, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert chunk_runs([], contexts, 4) == []


def test_the_backend_gets_whole_docs_in_chunks_around_the_hits(cache):
    requests = mc_requests(docs=20, choices=3)
    warm = FakeLM()
    CachedLM(warm, cache).loglikelihood(requests[1::4])  # scattered hits inside docs
    inner = FakeLM()
    lm = CachedLM(inner, cache, chunk_size=7)
    assert lm.loglikelihood(requests) == FakeLM().loglikelihood(requests)
    assert len(inner.ll_calls) > 3
    contexts_per_call = [{c for c, _ in call} for call in inner.ll_calls]
    for i, ctxs in enumerate(contexts_per_call):
        for later in contexts_per_call[i + 1:]:
            assert not ctxs & later, "a doc's requests were split across chunks"
    assert all(len(call) <= 7 for call in inner.ll_calls)


def test_progress_counts_hits_as_done_and_reaches_the_total(cache):
    requests = mc_requests(docs=10, choices=4)
    CachedLM(FakeLM(), cache).loglikelihood(requests[:8])
    seen: list[tuple[int, int]] = []
    lm = CachedLM(FakeLM(), cache, chunk_size=8)
    lm.loglikelihood(requests, lambda done, total: seen.append((done, total)))
    assert seen[0] == (8, 40) and seen[-1] == (40, 40)
    assert all(t == 40 for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    gen_seen: list[tuple[int, int]] = []
    reqs = [GenerationRequest(f"p{i}", (), 4) for i in range(5)]
    lm.generate_until(reqs[:2])
    lm.generate_until(reqs, lambda d, t: gen_seen.append((d, t)))
    assert gen_seen[0] == (2, 5) and gen_seen[-1] == (5, 5)


def test_a_killed_run_keeps_every_committed_chunk(cache_path):
    requests = mc_requests(docs=12, choices=2)

    class Dies(FakeLM):
        def loglikelihood(self, requests, progress=None):
            if len(self.ll_calls) == 2:
                raise KeyboardInterrupt  # the third chunk never finishes
            return super().loglikelihood(requests, progress)

    c = ResponseCache(cache_path)
    dying = Dies()
    with pytest.raises(KeyboardInterrupt):
        CachedLM(dying, c, chunk_size=6).loglikelihood(requests)
    c.close()
    assert dying.computed_ll == 4 + 6  # the first chunk (FIRST_CHUNK requests), then one of chunk_size
    c = ResponseCache(cache_path)
    inner = FakeLM()
    lm = CachedLM(inner, c, chunk_size=6)
    assert lm.loglikelihood(requests) == FakeLM().loglikelihood(requests)
    assert (lm.computed, lm.from_cache) == (14, 10)
    c.close()


# -- processes -----------------------------------------------------------------------------------

def _writer(path: str, start: int, barrier) -> None:
    cache = ResponseCache(path)
    assert cache.usable, cache.problem
    lm = CachedLM(FakeLM(), cache, chunk_size=4)
    requests = [(f"doc {d} ", f"choice {c}") for d in range(start, start + 400) for c in range(2)]
    barrier.wait()
    lm.loglikelihood(requests)  # 200 commits, overlapping the other writer's
    cache.close()


def _two_writers_at_once(cache_path) -> list[int | None]:
    """Two processes run ``_writer`` on one file, released together; their exit codes."""
    ctx = multiprocessing.get_context("spawn")  # torch may be loaded in this process: never fork it
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(str(cache_path), start, barrier)) for start in (0, 200)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    return [p.exitcode for p in procs]


def test_two_processes_writing_one_file_at_once_lose_nothing(cache_path):
    assert _two_writers_at_once(cache_path) == [0, 0]
    requests = [(f"doc {d} ", f"choice {c}") for d in range(600) for c in range(2)]
    c = ResponseCache(cache_path)
    assert c.count() == len(requests)
    inner = FakeLM()
    assert CachedLM(inner, c).loglikelihood(requests) == FakeLM().loglikelihood(requests)
    assert inner.ll_calls == []
    c.close()


def test_two_processes_opening_a_damaged_file_at_once_share_one_fresh_cache(cache_path):
    _filled(cache_path)
    with cache_path.open("r+b") as f:
        f.truncate(cache_path.stat().st_size // 2)
    assert _two_writers_at_once(cache_path) == [0, 0]
    assert cache_path.with_name("responses.sqlite.corrupt").exists()
    c = ResponseCache(cache_path)
    assert c.count() == 600 * 2  # one process moved the file aside; neither wrote into the moved one
    c.close()


# -- the option ----------------------------------------------------------------------------------

def test_response_cache_option(tmp_path, monkeypatch):
    monkeypatch.setenv("KENSA_CACHE_DIR", str(tmp_path / "kc"))
    monkeypatch.delenv("KENSA_RESPONSE_CACHE", raising=False)
    assert parse_response_cache(None) == default_response_cache() == tmp_path / "kc" / "responses.sqlite"
    assert parse_response_cache("off") is None and parse_response_cache("OFF") is None
    assert parse_response_cache(str(tmp_path / "x" / "r.sqlite")) == tmp_path / "x" / "r.sqlite"
    with pytest.raises(OptionError, match=r"--response-cache: '.*' is a directory; give a file, e\.g\. "):
        parse_response_cache(str(tmp_path))
    (tmp_path / "file").write_text("")
    with pytest.raises(OptionError, match="--response-cache: '.*file/r.sqlite': .*file is not a directory"):
        parse_response_cache(str(tmp_path / "file" / "r.sqlite"))
    with pytest.raises(OptionError, match="--response-cache: '': expected a file path or off"):
        parse_response_cache("")
    monkeypatch.setenv("KENSA_RESPONSE_CACHE", "off")
    assert parse_response_cache(None) is None
    assert parse_response_cache(str(tmp_path / "r.sqlite")) == tmp_path / "r.sqlite"  # the option wins
    monkeypatch.setenv("KENSA_RESPONSE_CACHE", str(tmp_path / "env.sqlite"))
    assert parse_response_cache(None) == tmp_path / "env.sqlite"
    monkeypatch.setenv("KENSA_RESPONSE_CACHE", str(tmp_path))
    with pytest.raises(OptionError, match="^KENSA_RESPONSE_CACHE: '.*' is a directory"):
        parse_response_cache(None)


def test_a_cache_is_used_only_in_the_process_that_opened_it(cache):
    cache._pid = os.getpid() + 1
    with pytest.raises(RuntimeError, match="open one per process"):
        cache.get_many([b"x"])
    cache._pid = os.getpid()


# -- commits on a time bound ----------------------------------------------------------------------

class SlowLM(FakeLM):
    """Each request costs ``per_request`` seconds on a fake clock: the cache's timing sees model time
    without a test that waits."""

    def __init__(self, clock, per_request: float):
        super().__init__()
        self.clock, self.per_request = clock, per_request

    def loglikelihood(self, requests, progress=None):
        self.clock.now += self.per_request * len(requests)
        return super().loglikelihood(requests, progress)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("per_request", "chunk_size"), [(2.0, None), (0.3, None), (2.0, 1000), (0.01, None)])
def test_a_chunk_takes_about_the_commit_interval_whatever_the_chunk_size(cache, per_request, chunk_size):
    """A killed run loses at most the chunk in flight: after the first, every chunk is sized to take
    about COMMIT_SECONDS of model time, from the time per request the chunks before took."""
    from kensa.run.cache import CHUNK_SIZE, FIRST_CHUNK
    from kensa.run.chunks import COMMIT_SECONDS

    clock = FakeClock()
    inner = SlowLM(clock, per_request)
    lm = CachedLM(inner, cache, chunk_size=chunk_size, clock=clock)
    lm.loglikelihood(mc_requests(docs=300, choices=1))
    sizes = [len(c) for c in inner.ll_calls]
    assert sizes[0] == FIRST_CHUNK and sum(sizes) == 300
    largest = chunk_size or CHUNK_SIZE
    for size in sizes[1:-1]:
        assert size == min(largest, max(1, int(COMMIT_SECONDS / per_request)))
    assert max(size * per_request for size in sizes[1:]) <= COMMIT_SECONDS + 1e-9 or max(sizes[1:]) == 1


def test_chunks_keep_a_shared_prompt_whole_even_when_time_says_smaller(cache):
    clock = FakeClock()
    inner = SlowLM(clock, 10.0)  # slower than the commit interval per request
    lm = CachedLM(inner, cache, clock=clock)
    lm.loglikelihood(mc_requests(docs=3, choices=4))
    assert [len(c) for c in inner.ll_calls] == [4, 4, 4]  # one doc (its four choices) per chunk
