"""The text the built-in ``tiny-trained`` model learns: for every registered task, prompt version
and fixture eval doc, the prompt exactly as the suite renders it (shots included) followed by the
gold continuation. This is the one place that knows how each kind of task becomes training text;
the training loop itself is :mod:`kensa.models.tiny_train`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kensa.data import DataSource
from kensa.errors import KensaError
from kensa.tasks.registry import all_tasks
from kensa.tasks.render import NoModel, prepare, prepare_generation


@dataclass(frozen=True)
class TrainingExample:
    task_id: str
    context: str
    continuation: str
    eos: bool = False
    """The continuation ends with the model's EOS token (a prompt whose only stop is EOS)."""


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
        if task.kind == "generation":
            examples += _generation_examples(task, variants, eval_split, pool)
            continue
        for variant in variants:
            for doc in prepare(variant, eval_split, pool, task.num_fewshot, None):
                examples.append(TrainingExample(variant.task_id, doc.prompt, doc.continuations[doc.gold]))
    return examples


def _generation_examples(task: Any, variants: Any, eval_split: Any, pool: Any) -> list[TrainingExample]:
    """The prompt, then the doc's target as its shots show it, then the first stop string (or EOS where
    there is none), so that the model learns to answer and to stop."""
    out = []
    for variant in variants:
        for doc in prepare_generation(variant, eval_split, pool, task.num_fewshot, None, NoModel()):
            target = variant.template.render_target(variant.view(doc.row))
            out.append(TrainingExample(variant.task_id, doc.prompt, target + (doc.until[0] if doc.until else ""),
                                       eos=not doc.until))
    return out


def examples_digest(examples: Sequence[TrainingExample]) -> str:
    """A short hash of the training text, for the cache key: editing a fixture retrains."""
    payload = json.dumps([[e.task_id, e.context, e.continuation] + (["eos"] if e.eos else []) for e in examples],
                         ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
