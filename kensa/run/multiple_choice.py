"""The multiple-choice loop: every choice of every doc scored by log-likelihood, then aggregated."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from kensa.backends.contract import LoglikelihoodModel, LoglikelihoodRequest, Progress
from kensa.data import Split
from kensa.errors import KensaError
from kensa.metrics.core import aggregate, multiple_choice_scores
from kensa.run.records import TaskRun, number_batches_on
from kensa.tasks.base import TaskVariant
from kensa.tasks.render import prepare


def evaluate_multiple_choice(variant: TaskVariant, lm: LoglikelihoodModel, eval_split: Split, pool: Split | None,
                             k: int, limit: float | None = None, progress: Progress | None = None,
                             stop: Callable[[TaskRun], bool] | None = None,
                             looks: Sequence[int] = ()) -> TaskRun:
    """Score every doc; with ``stop`` and ``looks`` (cumulative doc counts), in looks: after each, ``stop`` sees
    the run so far (a prefix of the shuffled order) and returning True ends the task there."""
    start = time.perf_counter()
    docs = prepare(variant, eval_split, pool, k, limit)
    ends = [e for e in looks if 0 < e < len(docs)] + [len(docs)] if stop is not None else [len(docs)]
    total = sum(len(d.continuations) for d in docs)
    samples: list[dict] = []
    per_doc: list[dict] = []
    done = sent = next_batch = 0
    for end in ends:
        chunk = docs[done:end]
        sent += _score(variant, lm, chunk, samples, per_doc, _offset(progress, sent, total))
        next_batch = number_batches_on(samples[done:], next_batch)  # numbered per task across looks
        done = end
        run = _task_run(variant, docs[:done], samples, per_doc, eval_split, pool, k, limit, start, sent)
        if done < len(docs) and stop is not None and stop(run):
            break
    return run


def _offset(progress: Progress | None, sent: int, total: int) -> Progress | None:
    """Progress of one look's requests, reported as a share of the whole task's."""
    if progress is None:
        return None
    return lambda done, _total: progress(sent + done, total)


def _score(variant: TaskVariant, lm: LoglikelihoodModel, docs: list, samples: list, per_doc: list,
           progress: Progress | None) -> int:
    requests = [LoglikelihoodRequest(d.prompt, c) for d in docs for c in d.continuations]
    if not requests:
        return 0
    results = lm.loglikelihood(requests, progress)
    if len(results) != len(requests):
        raise KensaError(f"{lm.name} returned {len(results)} results for {len(requests)} requests")
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
    return len(requests)


def _task_run(variant: TaskVariant, docs: list, samples: list, per_doc: list, eval_split: Split,
              pool: Split | None, k: int, limit: float | None, start: float, requests: int) -> TaskRun:
    task = variant.task
    return TaskRun(
        task_id=variant.task_id, task=task.name, version=task.version,
        prompt_version=variant.template.version, num_fewshot=k, n=len(docs),
        metrics=aggregate(per_doc, task.metrics), samples=list(samples),
        data={"eval": eval_split.provenance(), "fewshot": pool.provenance() if pool else None},
        seconds=time.perf_counter() - start, requests=requests, kind=task.kind, limit=limit,
        item_keys=[d.row.get(task.dataset.id_field, d.doc_id) if task.dataset.id_field else d.doc_id for d in docs],
    )


def _total_seconds(results) -> float | None:
    times = [r.seconds for r in results]
    return None if any(t is None for t in times) else float(sum(times))
