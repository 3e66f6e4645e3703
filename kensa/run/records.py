"""What one test produced (:class:`TaskRun`) and the checks on its numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kensa.metrics.core import METRICS


def number_batches_on(samples: Sequence[dict[str, Any]], first: int) -> int:
    """Shift the ``batches`` of one look's new samples by ``first``, the next free number: a backend numbers its
    batches per call from 0, and a task scored in looks (--gate-sequential) makes a call per look, so without it
    two looks' batch 0 would read as one batch (the latency gate joins questions that share a number). Returns the
    next free number after these samples."""
    top = first - 1
    for s in samples:
        if s.get("batches") is not None:
            s["batches"] = [b + first for b in s["batches"]]
            top = max([top, *s["batches"]])
    return top + 1


@dataclass
class TaskRun:
    """What one test produced: metrics, per-sample records and provenance."""

    task_id: str
    task: str
    version: str
    prompt_version: str
    num_fewshot: int
    n: int
    metrics: dict[str, float]
    samples: list[dict[str, Any]] = field(repr=False)
    data: dict[str, Any]
    seconds: float
    requests: int
    kind: str = "multiple_choice"
    limit: float | None = None
    item_keys: list[Any] = field(default_factory=list, repr=False)
    """Each doc's own id (``q_id``), or its position when the dataset has none: pairs items with a baseline's."""
    per_doc: list[dict[str, Any]] | None = field(default=None, repr=False)
    """What each doc contributed to the metrics (values, and ``gold``/``pred`` for corpus metrics);
    None: read them from the samples (multiple choice keeps them there)."""
    clusters: list[Any] | None = field(default=None, repr=False)
    """Each doc's cluster for the paired test (JSQuAD: questions on one paragraph), or None."""

    def items(self, metrics: Sequence[str], seconds: bool = False) -> dict[str, Any]:
        """Per-doc values of ``metrics`` in doc order, for the paired gate. A corpus metric (MCC, F1
        over classes, a correlation) has no per-doc value: its items are each doc's ``[gold, pred]``.
        ``seconds``: also each doc's model seconds (None where the response cache served it)."""
        rows = self.per_doc if self.per_doc is not None else self.samples

        def values(m: str) -> list[Any]:
            if all(m in r for r in rows):  # None: the doc has no value (an empty output's hallucination rate)
                return [None if r[m] is None else float(r[m]) for r in rows]
            return [[r["gold"], r["pred"]] for r in rows]
        out: dict[str, Any] = {"keys": list(self.item_keys), "values": {m: values(m) for m in metrics}}
        if self.clusters is not None:
            out["clusters"] = list(self.clusters)
        if seconds:
            out["seconds"] = [s.get("seconds") for s in self.samples]
            out["batches"] = [s.get("batches") for s in self.samples]
        return out

    def summary(self, gated: Sequence[str] = (), seconds: bool = False) -> dict[str, Any]:
        """Everything but the samples (and the per-doc values of the gated metrics): small enough to
        travel from an xdist worker. ``seconds``: the items carry each doc's model seconds (a timed task)."""
        return {
            "task_id": self.task_id, "task": self.task, "version": self.version, "kind": self.kind,
            "prompt_version": self.prompt_version, "num_fewshot": self.num_fewshot, "n": self.n,
            "limit": self.limit, "metrics": self.metrics, "data": self.data, "seconds": self.seconds,
            "requests": self.requests, "gated": list(gated), "items": self.items(gated, seconds),
        }


def integrity_problems(run: TaskRun, expected_docs: int) -> list[str]:
    """What is wrong with a run's numbers, if anything: a lost doc, a non-finite or positive
    log-likelihood, a prediction that is not a choice, a metric outside [0, 1]."""
    import math

    problems = []
    early = run.data.get("sequential") or {}
    if early.get("stopped_early"):  # the sequential gate ended the task at a look: that look's docs are expected
        if early.get("n") != expected_docs:
            problems.append(f"{run.task_id}: the sequential gate planned {early.get('n')} docs, expected {expected_docs}")
        expected_docs = early.get("scored", -1)
    if run.n != expected_docs or len(run.samples) != expected_docs:
        problems.append(f"{run.task_id}: scored {run.n} docs ({len(run.samples)} samples), expected {expected_docs}")
    for s in run.samples:
        if run.kind == "generation":
            if not isinstance(s.get("generation"), str):
                problems.append(f"{run.task_id} doc {s['doc_id']}: no generated text")
            continue
        bad = [ll for ll in s["loglikelihoods"] if not math.isfinite(ll) or ll > 1e-4]
        if bad:
            problems.append(f"{run.task_id} doc {s['doc_id']}: log-likelihoods {bad} are not finite and <= 0")
        if not 0 <= s["pred"] < len(s["continuations"]):
            problems.append(f"{run.task_id} doc {s['doc_id']}: prediction {s['pred']} is not a choice")
    for name in run.metrics:
        value = run.metrics[name]
        if name.endswith("_stderr"):
            continue
        spec = METRICS.get(name)
        low, high = (spec.minimum, spec.upper) if spec is not None else (0.0, 1.0)
        if not low <= value <= high:
            problems.append(f"{run.task_id}: {name}={value} is outside [{low:g}, {high:g}]")
    return problems
