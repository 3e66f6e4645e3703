"""The multiple-choice loop: every choice of every doc scored by log-likelihood, then aggregated."""

from __future__ import annotations

import time

from kensa.backends.contract import LoglikelihoodModel, LoglikelihoodRequest, Progress
from kensa.data import Split
from kensa.errors import KensaError
from kensa.metrics.core import aggregate, multiple_choice_scores
from kensa.run.records import TaskRun
from kensa.tasks.base import TaskVariant
from kensa.tasks.render import prepare


def evaluate_multiple_choice(variant: TaskVariant, lm: LoglikelihoodModel, eval_split: Split, pool: Split | None,
                             k: int, limit: float | None = None, progress: Progress | None = None) -> TaskRun:
    start = time.perf_counter()
    docs = prepare(variant, eval_split, pool, k, limit)
    requests = [LoglikelihoodRequest(d.prompt, c) for d in docs for c in d.continuations]
    results = lm.loglikelihood(requests, progress)
    if len(results) != len(requests):
        raise KensaError(f"{lm.name} returned {len(results)} results for {len(requests)} requests")
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
            # The doc's model time (its choices' shares); None when the response cache served any of them.
            "seconds": _total_seconds(chunk),
            # The backend batches that computed its choices (their times were measured together), if it says.
            "batches": None if any(r.batch is None for r in chunk) else sorted({r.batch for r in chunk}),
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


def _total_seconds(results) -> float | None:
    times = [r.seconds for r in results]
    return None if any(t is None for t in times) else float(sum(times))
