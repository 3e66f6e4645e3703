"""Run one generation task variant against one model: prompts, greedy continuations, per-doc scores.

The harness's order of events is kept, because the few-shot draws depend on it: docs are shuffled
with ``random.Random(42)`` and the same generator draws every doc's shots in that order; a task that
refits a too-long prompt with fewer shots draws again from the same generator (JAQKET v2 0.2, MGSM
at HEAD), so one doc's refit changes the shots of every doc after it, as in the harness.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kensa.data import Split
from kensa.errors import KensaError
from kensa.evaluate import Progress, TaskRun, shot_drawer
from kensa.metrics import METRICS, aggregate
from kensa.sampling import shuffled
from kensa.tasks.base import GenerationTask, TaskVariant


class GeneratingModel(Protocol):
    """What the generation loop needs of a backend (``kensa.models.hf.HFCausalLM`` has it)."""

    name: str
    max_length: int
    max_gen_toks: int

    def tok_encode(self, text: str) -> list[int]: ...

    def tokenize(self, text: str) -> list[str]: ...

    def generate_until(self, requests: Sequence[Any], progress: Progress | None = None) -> list[str]: ...


class NoModel:
    """Stands in for a model where prompts are rendered without one (training text, prompt snapshots): no
    length limit, so no prompt is refit and the shots are those a long-context model gets."""

    name = "no-model"
    max_length = 1 << 30
    max_gen_toks = 256

    def tok_encode(self, text: str) -> list[int]:
        return list(text.encode())  # only lengths are asked for; bytes never undercount tokens

    def tokenize(self, text: str) -> list[str]:
        return list(text)


@dataclass(frozen=True)
class GenerationDoc:
    doc_id: int
    row: dict[str, Any]
    prompt: str
    until: tuple[str, ...]
    max_new_tokens: int
    golds: list[str]
    shot_ids: list[Any]
    shots: int
    """How many shots the prompt holds (fewer than k when a too-long prompt was refit)."""


def prepare_generation(variant: TaskVariant, eval_split: Split, pool: Split | None, k: int, limit: float | None,
                       lm: GeneratingModel) -> list[GenerationDoc]:
    """Prompts, stop strings and generation budgets for every doc, in the harness's shuffled order."""
    task, template = variant.task, variant.template
    assert isinstance(task, GenerationTask)
    rnd, docs = shuffled(eval_split.rows, limit)
    draw = shot_drawer(variant, pool)
    until = tuple(task.until(template))
    id_field = task.dataset.id_field
    out = []
    for doc_id, row in enumerate(docs):
        max_new = task.max_new_tokens(row, lm) if task.max_new_tokens is not None else lm.max_gen_toks
        budget = lm.max_length - max_new
        query = variant.view(row)
        shots = draw(rnd, k)
        prompt = template.context([variant.view(s) for s in shots], query)
        if task.fit == "resample":
            # The harness's fewshot_context retry: k, k-1, ... shots, each drawn afresh from the shared rnd.
            kk = k
            while len(lm.tok_encode(prompt)) > budget and kk > 0:
                kk -= 1
                shots = draw(rnd, kk)
                prompt = template.context([variant.view(s) for s in shots], query)
        elif callable(task.fit):
            prompt = task.fit(prompt, template, budget, lm)
        out.append(GenerationDoc(
            doc_id=doc_id, row=dict(row), prompt=prompt, until=until, max_new_tokens=max_new,
            golds=list(task.golds(row)), shot_ids=[s.get(id_field) if id_field else None for s in shots],
            shots=len(shots),
        ))
    return out


def evaluate_generation(variant: TaskVariant, lm: GeneratingModel, eval_split: Split, pool: Split | None, k: int,
                        limit: float | None = None, progress: Progress | None = None) -> TaskRun:
    from kensa.models.hf import GenerationRequest

    start = time.perf_counter()
    task = variant.task
    assert isinstance(task, GenerationTask)
    docs = prepare_generation(variant, eval_split, pool, k, limit, lm)
    requests = [GenerationRequest(d.prompt, d.until, d.max_new_tokens) for d in docs]
    generations = lm.generate_until(requests, progress)
    if len(generations) != len(requests):
        raise KensaError(f"{lm.name} returned {len(generations)} generations for {len(requests)} requests")
    samples, per_doc = [], []
    for d, text in zip(docs, generations, strict=True):
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
