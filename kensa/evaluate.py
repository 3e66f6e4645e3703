"""Run one task variant against one model: build prompts, score, aggregate, keep every sample."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kensa.data import Split
from kensa.metrics import METRICS, aggregate, multiple_choice_scores
from kensa.sampling import StratifiedSampler, draw_shots, shuffled
from kensa.tasks.base import TaskVariant

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class LoglikelihoodResult:
    logprob: float
    """Sum of the continuation tokens' log-probabilities."""
    is_greedy: bool
    """Whether every continuation token was the argmax (harness ``is_greedy``)."""
    num_tokens: int


class LanguageModel(Protocol):
    name: str

    def loglikelihood(
        self, requests: Sequence[tuple[str, str]], progress: Progress | None = None
    ) -> list[LoglikelihoodResult]: ...


@dataclass(frozen=True)
class PreparedDoc:
    doc_id: int
    """Position in the shuffled order, as the harness numbers docs."""
    row: dict[str, Any]
    prompt: str
    continuations: list[str]
    gold: int
    shot_ids: list[Any]


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

    def items(self, metrics: Sequence[str]) -> dict[str, Any]:
        """Per-doc values of ``metrics`` in doc order, for the paired gate. A corpus metric (MCC, F1
        over classes, a correlation) has no per-doc value: its items are each doc's ``[gold, pred]``."""
        rows = self.per_doc if self.per_doc is not None else self.samples

        def values(m: str) -> list[Any]:
            if all(m in r for r in rows):
                return [float(r[m]) for r in rows]
            return [[r["gold"], r["pred"]] for r in rows]
        out: dict[str, Any] = {"keys": list(self.item_keys), "values": {m: values(m) for m in metrics}}
        if self.clusters is not None:
            out["clusters"] = list(self.clusters)
        return out

    def summary(self, gated: Sequence[str] = ()) -> dict[str, Any]:
        """Everything but the samples (and the per-doc values of the gated metrics): small enough to
        travel from an xdist worker."""
        return {
            "task_id": self.task_id, "task": self.task, "version": self.version, "kind": self.kind,
            "prompt_version": self.prompt_version, "num_fewshot": self.num_fewshot, "n": self.n,
            "limit": self.limit, "metrics": self.metrics, "data": self.data, "seconds": self.seconds,
            "requests": self.requests, "gated": list(gated), "items": self.items(gated),
        }


def shot_drawer(variant: TaskVariant, pool: Split | None) -> Callable[[Any, int], list[Any]]:
    """``draw(rnd, k)``: the harness's ``rnd.sample`` from the pool, or its stratified sampler where the
    task uses one (strata = the rendered targets, harness doc_to_target, grouped once per pool)."""
    pool_rows = pool.rows if pool is not None else []
    if variant.task.stratified:
        return StratifiedSampler(pool_rows, lambda r: variant.template.render_target(variant.view(r))).draw

    def draw(rnd, k):
        return draw_shots(rnd, pool_rows, k)
    return draw


def prepare(variant: TaskVariant, eval_split: Split, pool: Split | None, k: int,
            limit: float | None) -> list[PreparedDoc]:
    """Prompts for every doc, with the harness's shuffle and shot draws."""
    task, template = variant.task, variant.template
    rnd, docs = shuffled(eval_split.rows, limit)
    draw = shot_drawer(variant, pool)
    id_field = task.dataset.id_field
    prepared = []
    for doc_id, row in enumerate(docs):
        shots = draw(rnd, k)
        prompt = template.context([variant.view(s) for s in shots], variant.view(row))
        prepared.append(PreparedDoc(
            doc_id=doc_id, row=dict(row), prompt=prompt, continuations=variant.choices(row),
            gold=task.gold(row), shot_ids=[s.get(id_field) if id_field else None for s in shots],
        ))
    return prepared


def evaluate_multiple_choice(variant: TaskVariant, lm: LanguageModel, eval_split: Split, pool: Split | None,
                             k: int, limit: float | None = None, progress: Progress | None = None) -> TaskRun:
    start = time.perf_counter()
    docs = prepare(variant, eval_split, pool, k, limit)
    requests = [(d.prompt, c) for d in docs for c in d.continuations]
    results = lm.loglikelihood(requests, progress)
    if len(results) != len(requests):
        raise RuntimeError(f"{lm.name} returned {len(results)} results for {len(requests)} requests")
    samples, per_doc = [], []
    pos = 0
    for d in docs:
        chunk = results[pos: pos + len(d.continuations)]
        pos += len(d.continuations)
        lls = [r.logprob for r in chunk]
        scores = multiple_choice_scores(lls, d.continuations, d.gold, strict=variant.task.strict_acc)
        per_doc.append({**scores, "gold": d.gold})
        samples.append({
            "task": variant.task_id, "doc_id": d.doc_id, "doc": d.row, "prompt": d.prompt,
            "continuations": d.continuations, "loglikelihoods": lls,
            "is_greedy": [r.is_greedy for r in chunk], "num_tokens": [r.num_tokens for r in chunk],
            "pred": scores["pred"], "pred_norm": scores["pred_norm"], "gold": d.gold,
            "acc": scores["acc"], "acc_norm": scores["acc_norm"], "fewshot_ids": d.shot_ids,
        })
    task = variant.task
    return TaskRun(
        task_id=variant.task_id, task=task.name, version=task.version,
        prompt_version=variant.template.version, num_fewshot=k, n=len(docs),
        metrics=aggregate(per_doc, task.metrics), samples=samples,
        data={"eval": eval_split.provenance(), "fewshot": pool.provenance() if pool else None},
        seconds=time.perf_counter() - start, requests=len(requests), kind=task.kind, limit=limit,
        item_keys=[d.row.get(task.dataset.id_field, d.doc_id) if task.dataset.id_field else d.doc_id for d in docs],
    )


def evaluate_variant(variant: TaskVariant, lm: Any, eval_split: Split, pool: Split | None, k: int,
                     limit: float | None = None, progress: Progress | None = None) -> TaskRun:
    """Score one task variant, whatever its kind."""
    if variant.task.kind == "generation":
        from kensa.generation import evaluate_generation

        return evaluate_generation(variant, lm, eval_split, pool, k, limit, progress)
    return evaluate_multiple_choice(variant, lm, eval_split, pool, k, limit, progress)


def integrity_problems(run: TaskRun, expected_docs: int) -> list[str]:
    """What is wrong with a run's numbers, if anything: a lost doc, a non-finite or positive
    log-likelihood, a prediction that is not a choice, a metric outside [0, 1]."""
    import math

    problems = []
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
