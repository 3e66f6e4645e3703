"""Document order and few-shot sampling, call for call as in the jp-stable harness.

The harness shuffles the eval docs with ``random.Random(42)`` and then passes *the same*
generator to the few-shot sampler for each doc in shuffled order. Shots therefore depend on
a doc's position, and reproducing a published prompt needs the same sequence of calls.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from kensa.errors import OptionError

T = TypeVar("T")

SEED = 42


def resolve_limit(limit: float | None, n: int) -> int:
    """``--limit``: an int keeps the first N shuffled docs; a float below 1 keeps that fraction."""
    if limit is None:
        return n
    if limit <= 0:
        raise OptionError("--limit", f"{limit!r}: must be positive")
    if limit < 1:
        return int(n * limit)
    return min(n, int(limit))


def shuffled(docs: Sequence[T], limit: float | None = None, seed: int = SEED) -> tuple[random.Random, list[T]]:
    """Shuffle a copy of ``docs`` and cut it to ``limit``; return the generator for the shots too."""
    rnd = random.Random(seed)
    order = list(docs)
    rnd.shuffle(order)
    return rnd, order[: resolve_limit(limit, len(order))]


def draw_shots(rnd: random.Random, pool: Sequence[T], k: int) -> list[T]:
    """``rnd.sample(pool, k)``; no draw at all for k=0, as in the harness."""
    if k == 0:
        return []
    if k > len(pool):
        raise OptionError("--num-fewshot", f"k={k} but the few-shot pool has only {len(pool)} docs")
    return rnd.sample(list(pool), k)
