"""From task data to prompts: the harness's shuffle, shot draws and prompt fitting, for every kind of task.

The harness's order of events is kept, because the few-shot draws depend on it: docs are shuffled
with ``random.Random(42)`` and the same generator draws every doc's shots in that order; a task that
refits a too-long prompt with fewer shots draws again from the same generator (JAQKET v2 0.2, MGSM
at HEAD), so one doc's refit changes the shots of every doc after it, as in the harness.

The run loops (:mod:`kensa.run`) score what this module prepares; the tiny-trained model's
training text (:mod:`kensa.tasks.training_text`) is rendered here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kensa.backends.contract import TokenCounter
from kensa.data import Split
from kensa.tasks.base import GenerationTask, TaskVariant
from kensa.tasks.sampling import StratifiedSampler, draw_shots, shuffled


@dataclass(frozen=True)
class PreparedDoc:
    doc_id: int
    """Position in the shuffled order, as the harness numbers docs."""
    row: dict[str, Any]
    prompt: str
    continuations: list[str]
    gold: int
    shot_ids: list[Any]


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
                       lm: TokenCounter) -> list[GenerationDoc]:
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
