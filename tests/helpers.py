"""Helpers shared by kensa's self-tests (importable; fixtures live in conftest.py): paths, model loading, fake
backends, gate factories, file damage for the fuzz tests and the scratch copy the guide tests work in.

A test module imports from here, never from another test module (tests/project/test_layers.py checks it)."""

from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def generated(text: str, prompt_tokens: int = 0, reason: str = "stop"):
    """What a fake backend's ``generate_until`` returns for ``text`` (the backend contract's result)."""
    from kensa.backends.contract import GenerationResult

    return GenerationResult(text=text, stop_reason=reason, prompt_tokens=prompt_tokens, generated_tokens=len(text))


REQUIRE_VLLM = "KENSA_REQUIRE_VLLM"


def skip_unless_required(reason: str) -> None:
    """Skip with ``reason``, or fail with it where ``KENSA_REQUIRE_VLLM=1`` (set by CI, which installs vLLM): a
    promised component that is missing must not turn a run green by skipping."""
    import os

    import pytest

    if os.environ.get(REQUIRE_VLLM, "") not in ("", "0"):
        pytest.fail(f"{reason} ({REQUIRE_VLLM}={os.environ[REQUIRE_VLLM]}: vLLM and the served-model tests are "
                    "required here; `make vllm` installs vLLM)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def vllm_or_skip() -> None:
    """The vLLM and served-model tests' precondition: a Python with vllm (:func:`kensa.backends.vllm.vllm_python`)."""
    from kensa.backends.vllm import vllm_python
    from kensa.errors import ModelLoadError

    try:
        vllm_python()
    except ModelLoadError as exc:
        skip_unless_required(f"vLLM is not installed here: {exc}")


def load_tiny(name: str = "tiny", args: str = ""):
    """Load a tiny model on CPU through the same path as ``--model NAME --model-args ARGS``."""
    from kensa.backends.args import parse_model_args
    from kensa.models import load_model, resolve_model

    return load_model(resolve_model(name, parse_model_args(args)), "cpu")


# Shared by the gate's unit tests: one baseline, two task ids, hashes and an environment fingerprint.
GATE_BASELINE = "org-model"
GATE_TID = "jcommonsenseqa-1.1-0.3"
GATE_TID2 = "jcommonsenseqa-1.1-0.2"
GATE_KNOWN = {GATE_TID: ("acc", "acc_norm"), GATE_TID2: ("acc", "acc_norm")}
GATE_SHA = "a" * 64
GATE_FEW = "b" * 64
GATE_ENV = {"backend": "hf", "device": "cpu", "dtype": "float32", "quantization": "none", "torch": "2.13.0+cpu",
            "transformers": "5.23.0", "batch_size": "4"}


def tiered(variants) -> list:
    """``variants`` as pytest params: the first prompt version of each task runs in the default tier (``make test``,
    CI); the task's other versions are marked ``slow`` (``make test-all``). A task's versions share its loading,
    scoring and backend code and differ only in the template, which the prompt snapshots pin."""
    import pytest

    seen, params = set(), []
    for v in variants:
        key = (v.task.name, v.task.version)
        params.append(pytest.param(v, id=v.task_id, marks=(pytest.mark.slow,) if key in seen else ()))
        seen.add(key)
    return params


def crosscheck_tasks():
    """Every registered task for the peer cross-checks and the packed-scoring equivalence, with one quiz category
    (アニメ) standing for the five: the quiz categories share their prompts and code and differ only in their
    questions, and all five would add minutes of generation to these checks."""
    from kensa.tasks import all_tasks

    return [t for t in all_tasks() if t.suite != "quiz" or "_anime_" in t.name]


# -- fake backends ------------------------------------------------------------------------------------


class ScoringLM:
    """Scores each (context, continuation) with a function; records the requests."""

    name = "fake"

    def __init__(self, score):
        self.score = score
        self.requests = []

    def loglikelihood(self, requests, progress=None):
        from kensa.backends.contract import LoglikelihoodResult

        self.requests.extend(requests)
        return [LoglikelihoodResult(self.score(c, x), False, 1) for c, x in requests]


class CharLM:
    """A generating model whose tokens are characters (``tok_decode`` inverts ``tok_encode``); answers each request
    with ``answer(request)`` (default: nothing); records the requests."""

    name = "chars"
    kind, bad_words, info = "causal", (), {}  # the rest of what a run loop reads of a backend
    max_gen_toks = 256

    def __init__(self, answer=None, max_length: int = 1 << 20):
        self.answer = answer or (lambda request: "")
        self.max_length = max_length
        self.requests = []

    def tok_encode(self, text):
        return [ord(c) for c in text]

    def tok_decode(self, ids):
        return "".join(map(chr, ids))

    def tokenize(self, text):
        return list(text)

    def generate_until(self, requests, progress=None):
        self.requests.extend(requests)
        return [generated(self.answer(r)) for r in requests]


class PromptLM:
    """A generating model whose output for each prompt comes from ``answer(prompt)``; records the requests."""

    name = "fake-gen"
    kind, bad_words, info = "causal", (), {}  # the rest of what a run loop reads of a backend
    max_length = 2048
    max_gen_toks = 256

    def __init__(self, answer):
        self.answer = answer
        self.requests = []

    def tok_encode(self, text):
        return list(text.encode("utf-8"))

    def tokenize(self, text):
        return list(text)

    def generate_until(self, requests, progress=None):
        self.requests.extend(requests)
        return [generated(self.answer(r.context)) for r in requests]


def answering(variant, rows, outputs):
    """An ``answer(prompt)`` that gives ``outputs[i]`` for the prompt whose query is ``rows[i]``."""
    queries = [variant.template.render_text(variant.view(r)) for r in rows]

    def answer(prompt):
        (i,) = [i for i, q in enumerate(queries) if prompt.endswith(q)]
        return outputs[i]
    return answer


class RequestLM:
    """Answers from a table: the AQG model's question or the QA model's answer (``answer(request)``), with a stop
    reason; records the requests in ``asked``."""

    name = "fake"
    max_length = 4096
    max_gen_toks = 64

    def __init__(self, kind, answer, reason="eos", bad_words=()):
        self.kind, self.answer, self.reason, self.bad_words = kind, answer, reason, bad_words
        self.asked = []
        self.info = {"identity": {"name": "fake"}}

    def tok_encode(self, text):
        return list(text.encode())

    def tokenize(self, text):
        return list(text)

    def generate_until(self, requests, progress=None):
        self.asked += requests
        return [generated(self.answer(r), reason=self.reason) for r in requests]


def run_generation(task, version: str, lm, qa_lm=None):
    """``task``'s prompt version ``version`` on its fixtures with ``lm`` (and ``qa_lm`` for a round trip), zero-shot."""
    from kensa.data import DataSource
    from kensa.run.generation import evaluate_generation

    variant = next(v for v in task.variants() if v.template.version == version)
    eval_split, pool = task.load(DataSource.fixtures())
    return evaluate_generation(variant, lm, eval_split, pool, 0, qa_lm=qa_lm)


class TimedLM:
    """Answers every choice with its index as log-likelihood and every generation with choice 2; the model
    time of request k (in arrival order) is ``factor * (k % 5 + 1) / 100`` seconds."""

    name = "fake"
    kind, bad_words = "causal", ()  # the rest of what a run loop reads of a backend
    max_length = 4096
    max_gen_toks = 32
    batch_size = 4

    def __init__(self, factor: float = 1.0):
        self.factor = factor
        self.calls = 0
        self.info = {"batch_size": 4, "backend": "fake"}

    def _t(self, k: int) -> float:
        return self.factor * (k % 5 + 1) / 100

    def tok_encode(self, text):
        return list(text.encode())

    def tokenize(self, text):
        return list(text)

    def encode_pair(self, context, continuation):
        return self.tok_encode(context + continuation), len(self.tok_encode(continuation))

    def generation_ids(self, request):
        return self.tok_encode(request.context)

    def loglikelihood(self, requests, progress=None):
        from kensa.backends.contract import LoglikelihoodResult

        self.calls += 1
        return [LoglikelihoodResult(-float(len(c)), False, 1, seconds=self._t(k), batch=k // 20)
                for k, (_, c) in enumerate(requests)]

    def generate_until(self, requests, progress=None):
        from kensa.backends.contract import GenerationResult

        self.calls += 1
        return [GenerationResult(text="2: 答え", stop_reason="stop", prompt_tokens=len(self.tok_encode(r.context)),
                                 generated_tokens=4, seconds=self._t(k), first_token_seconds=self._t(k) / 2,
                                 batch=k // 4)
                for k, r in enumerate(requests)]


# -- the gate's factories -----------------------------------------------------------------------------

GATE_MODEL = "org/model-v2"
LATENCY_ENV = {"hardware": "Test CPU", "device": "cpu", "dtype": "float32", "quantization": "none", "backend": "hf",
               "batch_size": "1", "threads": "1"}


def latency_gate(base, cand, pct=50.0, base_env=LATENCY_ENV, run_env=LATENCY_ENV, family=1, base_batches=None,
                 run_batches=None):
    """The latency verdict of per-question seconds ``cand`` against ``base`` for one fake task."""
    from kensa.gate.latency import compare_latency

    return compare_latency(model="fake", task_id="t", base_seconds=base, run_seconds=cand, base_env=base_env,
                           run_env=run_env, tolerance_pct=pct, alpha=0.05, family_size=family, fix="pytest ...",
                           base_batches=base_batches, run_batches=run_batches)


def run_record(acc: list[float], acc_norm: list[float] | None = None, *, keys: list[Any] | None = None,
               env: dict[str, str] | None = None, metrics: dict[str, float] | None = None,
               gated: tuple[str, ...] = ("acc", "acc_norm"), **over: Any):
    """A JCommonsenseQA run of ``GATE_MODEL`` with these per-item values (means and stderrs computed)."""
    from kensa.gate.thresholds import Items
    from kensa.gate.verdicts import RunRecord

    values = {"acc": list(acc), "acc_norm": list(acc if acc_norm is None else acc_norm)}
    values = {k: v for k, v in values.items() if k in gated}
    n = len(acc)
    agg: dict[str, float] = {}
    for name, xs in values.items():
        mu = sum(xs) / len(xs)
        agg[name] = mu
        agg[f"{name}_stderr"] = math.sqrt(sum((x - mu) ** 2 for x in xs) / (n - 1) / n) if n > 1 else math.nan
    agg.update(metrics or {})
    fields = dict(model=GATE_MODEL, baseline=GATE_BASELINE, task_id=GATE_TID, task="jcommonsenseqa",
                  task_version="1.1", prompt_version="0.3", num_fewshot=3, limit=None, n=n, data_sha256=GATE_SHA,
                  fewshot_sha256=GATE_FEW, kind="multiple_choice", metrics=agg, gated=gated,
                  items=Items(list(range(n)) if keys is None else keys, values),
                  environment=dict(GATE_ENV if env is None else env),
                  identity={"name": GATE_MODEL, "source": "/models/x", "revision": "", "weights_sha256": "c" * 64})
    fields.update(over)
    return RunRecord(**fields)


def entry_for(run, *, items: bool = True, **metric_over: dict[str, Any]):
    """The entry a baseline run would have written; ``acc={"abs_floor": 0.2}`` overrides a metric's fields."""
    from kensa.gate.thresholds import Entry, MetricBaseline

    metrics = {}
    for name in run.gated:
        mb = MetricBaseline(value=run.metrics[name], n=run.n, stderr=run.metrics[f"{name}_stderr"],
                            anchor=run.metrics[name])
        metrics[name] = replace(mb, **metric_over.get(name, {}))
    return Entry(task_id=run.task_id, task=run.task, task_version=run.task_version,
                 prompt_version=run.prompt_version, num_fewshot=run.num_fewshot, n=run.n,
                 data_sha256=run.data_sha256, kind=run.kind, updated="2026-11-23T21:17:22Z", metrics=metrics,
                 limit=run.limit, fewshot_sha256=run.fewshot_sha256,
                 items=f"{GATE_BASELINE}/{run.task_id}.jsonl" if items else None, environment=dict(run.environment))


def gate_rows(base, cand, *, family_size: int = 2, alpha: float = 0.05, **metric_over: dict[str, Any]) -> list:
    """compare() then finalize() over just these rows, as the controller would for a one-test session."""
    from kensa.gate.verdicts import GateSettings, compare, finalize

    entry = entry_for(base, **metric_over)
    rows = compare(entry, base.items, cand, GateSettings(alpha=alpha, family_size=family_size), Path("t.toml"))
    return finalize(rows, alpha)


def by_metric(rows: list) -> dict:
    return {r.metric: r for r in rows}


# -- damaged files for the fuzz tests -----------------------------------------------------------------


def damage(data: bytes, how: str, where: float, junk: bytes) -> bytes:
    """``data`` damaged one way (``how``) at the fraction ``where`` of its length, ``junk`` for the bytes written."""
    cut = int(len(data) * where)
    if how == "cut":
        return data[:cut]
    if how == "flip":
        return data[:cut] + junk + data[cut + len(junk):]
    if how == "invalid-utf8":
        return data[:cut] + b"\xff\xfe\x80" + data[cut:]
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    if how in ("shift_jis", "utf-16"):
        return data.decode("utf-8").encode(how, errors="replace")
    if how == "numbers":  # a value replaced by a huge, negative or non-finite number
        text = data.decode("utf-8")
        return text.replace("= 0.", f"= {junk[0] - 128}e{junk[-1]}", 1).replace("= 1", "= nan", 1).encode()
    if how == "nul":
        return data[:cut] + b"\x00" + data[cut:]
    if how == "type":  # a number where text was, or text where a number was
        text = data.decode("utf-8")
        return (text.replace('"', "", 2) if cut % 2 else text.replace(": 0", ': "zero"', 1)).encode("utf-8")
    if how == "dup-line":
        lines = data.splitlines(keepends=True)
        i = int(len(lines) * where) % max(len(lines), 1)
        return b"".join(lines[: i + 1] + lines[i:])
    if how == "drop-field":
        text = data.decode("utf-8")
        return text.replace("\t", "", 1).replace(',"', ',"x_', 1).encode("utf-8")
    raise AssertionError(how)


# -- a scratch copy of the repository, for the guides followed step by step -----------------------------


GUIDE_BLOCK = re.compile(r"^ *```(\w+)(?: (file|edit)=(\S+))?\n(.*?)^ *```", re.M | re.S)


def guide_steps(guide: Path) -> list[tuple[str, str, str]]:
    """``(kind, path, text)`` per block of a docs guide: ``("file", path, content)``, ``("edit", path, "old|new")``
    or ``("sh", "", command)``."""
    steps = []
    for lang, kind, path, body in GUIDE_BLOCK.findall(guide.read_text(encoding="utf-8")):
        indent = min(len(line) - len(line.lstrip()) for line in body.splitlines() if line.strip())
        text = "\n".join(line[indent:] for line in body.splitlines()) + "\n"
        if kind:
            steps.append((kind, path, text if kind == "file" else text.strip()))
        elif lang == "sh":
            steps.append(("sh", "", text.strip()))
    return steps


def apply(root: Path, kind: str, path: str, text: str) -> None:
    """Write a ``file=`` block, or make an ``edit=`` block's one replacement (``old|new``) in an existing file."""
    target = root / path
    if kind == "file":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return
    old, new = text.split("|")
    before = target.read_text(encoding="utf-8")
    assert before.count(old) == 1, f"{path}: the guide's edit expects {old!r} once"
    target.write_text(before.replace(old, new), encoding="utf-8")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


def run_in_copy(cwd: Path, command: str) -> subprocess.CompletedProcess:
    """``command`` in the scratch copy, whose data packages stand in for the checkout's editable install."""
    argv = shlex.split(command)
    assert argv[0] == "python", command
    shim = cwd.parent / "packages"
    env = dict(os.environ, PYTHONPATH=f"{cwd}{os.pathsep}{shim}", KENSA_RESPONSE_CACHE="off")
    return subprocess.run([sys.executable, *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


def accept_false_alarms(hits: float, sessions: int, alpha: float) -> bool:
    """False alarms consistent with a level-alpha design: at most the binomial 99.9 % quantile (a correct design
    fails this for 0.1 % of seeds)."""
    from scipy import stats

    return hits <= stats.binom.ppf(0.999, sessions, alpha)
