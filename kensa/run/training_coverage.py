"""Which of a run's prompts a trained tiny model learned: its training corpus is frozen, so a task or
prompt version added later (or a fixture edited since) is one it never saw, and its scores there are not
a trained model's. The run says so, in the task's provenance and as a warning."""

from __future__ import annotations

import warnings
from typing import Any

from kensa.data import Split
from kensa.tasks.base import TaskVariant


class TrainingCorpusWarning(UserWarning):
    """A trained tiny model ran prompts that its frozen training corpus lacks."""


def trained_tiny_model(lm: Any) -> str | None:
    """The trained tiny model ``lm`` is (by name, or a copy of its shipped weights at another path), or None."""
    from kensa.tiny.build import MODELS
    from kensa.tiny.shipped import shipped_name_of

    spec = getattr(lm, "spec", None)  # a test's fake model has none
    if spec is None:
        return None
    recipe = MODELS.get(spec.source) if spec.kind == "tiny" else None
    if recipe is not None and recipe.train is not None:
        return recipe.name
    return shipped_name_of((lm.info.get("identity") or {}).get("weights_sha256") or "")


def record_coverage(variant: TaskVariant, lm: Any, eval_split: Split, pool: Split | None, k: int,
                    limit: float | None, data: dict[str, Any]) -> None:
    """For a trained tiny model: ``data["training_corpus"]`` (the corpus version, docs scored, docs absent from
    it, whether the whole variant is), and a warning when any are absent. Other models: nothing."""
    name = trained_tiny_model(lm)
    if name is None:
        return
    from kensa.tasks.training_text import variant_examples
    from kensa.tiny.build import kind_of
    from kensa.tiny.training_corpus import coverage

    found = coverage(kind_of(name), variant.task_id, variant_examples(variant, eval_split, pool, k, limit))
    data["training_corpus"] = {"model": name, **found.as_dict()}
    message = found.message(name)
    if message:
        warnings.warn(TrainingCorpusWarning(f"kensa: {message}"), stacklevel=2)
