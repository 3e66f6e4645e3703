"""How a task becomes training text for the trained tiny models: for every registered task, prompt version
and eval doc, the prompt exactly as the suite renders it (shots included) followed by the gold continuation.

The models learn from a frozen copy of this text (:mod:`kensa.tiny.training_corpus`), written by
``python -m kensa tiny --freeze-corpus VERSION``; the same rendering tells a run which of its prompts that
copy lacks. The training loop itself is :mod:`kensa.tiny.train`.
"""

from __future__ import annotations

from typing import Any

from kensa.data import DataSource
from kensa.errors import KensaError
from kensa.tasks.registry import all_tasks
from kensa.tasks.render import NoModel, prepare, prepare_generation
from kensa.tiny.training_corpus import TrainingExample


def training_examples(source: Any = None, kind: str = "causal") -> list[TrainingExample]:
    """One example per registered task variant for models of ``kind`` (``causal``: every variant not
    written for seq2seq models only; ``seq2seq``: the variants written for seq2seq models) and eval doc
    of ``source`` (default: the fixtures)."""
    source = source or DataSource.fixtures()
    examples = []
    for task in all_tasks():
        if task.kind not in ("generation", "multiple_choice"):
            raise KensaError(f"tiny-trained: no training text for task {task.name!r} of kind {task.kind!r}; "
                             "teach kensa.tasks.training_text.training_examples that kind")
        variants = [v for v in task.variants() if v.trained_for(kind)]
        if not variants:
            continue
        eval_split, pool = task.load(source)
        for variant in variants:
            examples += variant_examples(variant, eval_split, pool, task.num_fewshot)
    return examples


def variant_examples(variant: Any, eval_split: Any, pool: Any, k: int,
                     limit: float | None = None) -> list[TrainingExample]:
    """One variant's examples. A generation prompt is followed by the doc's target as its shots show it, then
    the first stop string (or EOS where there is none), so that the model learns to answer and to stop."""
    if variant.task.kind == "generation":
        out = []
        for doc in prepare_generation(variant, eval_split, pool, k, limit, NoModel()):
            target = variant.template.render_target(variant.view(doc.row))
            out.append(TrainingExample(variant.task_id, doc.prompt, target + (doc.until[0] if doc.until else ""),
                                       eos=not doc.until))
        return out
    return [TrainingExample(variant.task_id, doc.prompt, doc.continuations[doc.gold])
            for doc in prepare(variant, eval_split, pool, k, limit)]
