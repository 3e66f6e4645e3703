"""The generation loop: greedy continuations of prepared prompts, scored per doc by the task."""

from __future__ import annotations

import time

from kensa.backends.contract import GeneratingModel, GenerationRequest, Progress
from kensa.data import Split
from kensa.errors import KensaError
from kensa.metrics.core import METRICS, aggregate
from kensa.run.records import TaskRun
from kensa.tasks.base import GenerationTask, TaskVariant
from kensa.tasks.render import prepare_generation


def evaluate_generation(variant: TaskVariant, lm: GeneratingModel, eval_split: Split, pool: Split | None, k: int,
                        limit: float | None = None, progress: Progress | None = None) -> TaskRun:
    start = time.perf_counter()
    task = variant.task
    assert isinstance(task, GenerationTask)
    docs = prepare_generation(variant, eval_split, pool, k, limit, lm)
    requests = [GenerationRequest(d.prompt, d.until, d.max_new_tokens) for d in docs]
    generations = lm.generate_until(requests, progress)
    if len(generations) != len(requests):
        raise KensaError(f"{lm.name} returned {len(generations)} generations for {len(requests)} requests")
    samples, per_doc = [], []
    for d, generated in zip(docs, generations, strict=True):
        text = generated.text
        scores = dict(task.score(text, d.row, lm))
        missing = [m for m in (*task.metrics, *task.reported) if m not in scores and not _is_corpus(m)]
        if missing:
            raise KensaError(f"task {task.name}: score() gave no {missing} for doc {d.doc_id}")
        # A corpus metric reads each doc's (gold, pred); the sample's ``gold`` stays the list of gold answers.
        per_doc.append({**scores, "gold": scores.get("gold_value")} if "gold_value" in scores else scores)
        sample = {
            "task": variant.task_id, "doc_id": d.doc_id, "doc": d.row, "prompt": d.prompt, "until": list(d.until),
            "max_new_tokens": d.max_new_tokens, "generation": text, "gold": d.golds,
        }
        sample.update(scores)
        sample.update(fewshot_ids=d.shot_ids, shots=d.shots)
        # What the answer cost (None when the response cache served it) and how it ended.
        sample.update(seconds=generated.seconds, first_token_seconds=generated.first_token_seconds,
                      generated_tokens=generated.generated_tokens, stop_reason=generated.stop_reason)
        samples.append(sample)
    id_field = task.dataset.id_field
    return TaskRun(
        task_id=variant.task_id, task=task.name, version=task.version,
        prompt_version=variant.template.version, num_fewshot=k, n=len(docs),
        metrics=aggregate(per_doc, (*task.metrics, *task.reported)), samples=samples,
        data={"eval": eval_split.provenance(), "fewshot": pool.provenance() if pool else None},
        seconds=time.perf_counter() - start, requests=len(requests), kind=task.kind, limit=limit,
        item_keys=[d.row.get(id_field, d.doc_id) if id_field else d.doc_id for d in docs],
        per_doc=per_doc,
        clusters=[task.clusters(d.row) for d in docs] if task.clusters is not None else None,
    )


def _is_corpus(name: str) -> bool:
    """A metric over the whole corpus (a correlation, a count) has no per-doc value."""
    spec = METRICS.get(name)
    return spec is not None and spec.items == "corpus"
