"""Document order and few-shot sampling, call for call as in the jp-stable harness.

The harness shuffles the eval docs with ``random.Random(42)`` and then passes *the same*
generator to the few-shot sampler for each doc in shuffled order. Shots therefore depend on
a doc's position, and reproducing a published prompt needs the same sequence of calls.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, TypeVar

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


class StratifiedSampler:
    """The harness's ``_stratified_fewshot_examples`` (JNLI >= 1.3, JCoLA 0.2), call for call.

    Strata are the pool docs grouped by ``key`` (the rendered target, e.g. ``"含意"`` or ``" はい"``)
    in first-seen order, with ratio = group size / pool size. For each draw of k:
    n_t = floor(ratio_t * k); while the n_t sum to less than k, the stratum with the smallest n_t
    (the first in insertion order on ties) gets one more; then ``rnd.sample(group_t, n_t)`` per
    stratum in insertion order, and one ``rnd.shuffle`` of the lot.
    """

    def __init__(self, pool: Sequence[T], key) -> None:
        self.groups: dict[Any, list[T]] = {}
        for doc in pool:
            self.groups.setdefault(key(doc), []).append(doc)
        self.ratios = {t: len(g) / len(pool) for t, g in self.groups.items()} if pool else {}
        self.size = len(pool)

    def counts(self, k: int) -> dict[Any, int]:
        n = {t: int(r * k) for t, r in self.ratios.items()}
        for _ in range(k - sum(n.values())):
            t = min(n, key=n.get)
            n[t] += 1
        return n

    def draw(self, rnd: random.Random, k: int) -> list[T]:
        if k == 0:
            return []
        if k > self.size:
            raise OptionError("--num-fewshot", f"k={k} but the few-shot pool has only {self.size} docs")
        samples: list[T] = []
        for t, n in self.counts(k).items():
            if n > len(self.groups[t]):
                raise OptionError("--num-fewshot", f"k={k} needs {n} shots with target {t!r} but the pool "
                                                   f"has only {len(self.groups[t])}")
            samples.extend(rnd.sample(self.groups[t], n))
        rnd.shuffle(samples)
        return samples
