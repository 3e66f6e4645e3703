"""Latency accounting from the backend contract's per-request model time, never from a clock around the cache.

Each answer a backend computes carries ``seconds`` (its share of its batch's model time) and, for a
generation, ``first_token_seconds`` where the backend can tell; the run loops copy them into each sample
(a multiple-choice question's time is the sum over its choices). An answer the response cache served has
no time (``seconds`` None): it is counted as ``cached`` and left out of every latency number, and the
report says so. Model load time is reported apart (``info["load_seconds"]``), never inside a category,
and :func:`warm_up` runs one untimed batch per model before anything is measured.

Tokens per second alone cannot be compared across Japanese tokenizers (the same answer is 3 tokens in one
and 12 in another), so characters per second of the generated text are reported beside them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from kensa.backends.contract import GenerationRequest
from kensa.data import Split
from kensa.tasks.base import TaskVariant
from kensa.tasks.render import prepare, prepare_generation

WARM_UP_ROWS = 8
"""Rows of the warm-up batch when the model's batch size is ``auto``."""


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), ``q`` in [0, 100]."""
    if not values:
        raise ValueError("percentile of no values")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True)
class Latency:
    """One test's latency: per question, over the questions the model actually answered."""

    n: int
    timed: int
    cached: int
    """Answers the response cache served: no model time, left out of every number below."""
    total_seconds: float
    mean_seconds: float | None
    p50_seconds: float | None
    p95_seconds: float | None
    generated_tokens: int | None = None
    generated_chars: int | None = None
    tokens_per_second: float | None = None
    chars_per_second: float | None = None
    first_token_seconds: float | None = None
    """Mean time to the first generated token, where the backend can tell (None otherwise)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Latency:
        return cls(**d)


def latency_of(samples: Sequence[Mapping[str, Any]], kind: str) -> Latency:
    """Latency of one test's samples (``kind``: ``generation`` or ``multiple_choice``)."""
    timed = [s for s in samples if s.get("seconds") is not None]
    seconds = [float(s["seconds"]) for s in timed]
    total = float(sum(seconds))
    out: dict[str, Any] = dict(
        n=len(samples), timed=len(timed), cached=len(samples) - len(timed), total_seconds=total,
        mean_seconds=total / len(seconds) if seconds else None,
        p50_seconds=percentile(seconds, 50) if seconds else None,
        p95_seconds=percentile(seconds, 95) if seconds else None)
    if kind == "generation":
        tokens = sum(int(s.get("generated_tokens") or 0) for s in timed)
        chars = sum(len(s.get("generation") or "") for s in timed)
        firsts = [float(s["first_token_seconds"]) for s in timed
                  if s.get("first_token_seconds") is not None and math.isfinite(s["first_token_seconds"])]
        out.update(generated_tokens=tokens, generated_chars=chars,
                   tokens_per_second=tokens / total if total > 0 else None,
                   chars_per_second=chars / total if total > 0 else None,
                   first_token_seconds=sum(firsts) / len(firsts) if firsts else None)
    return Latency(**out)


def warm_up(lm: Any, variant: TaskVariant, eval_split: Split) -> float:
    """One untimed batch of this variant's own requests, of both kinds, straight to the backend (never the
    response cache: a served answer warms nothing). Returns its wall seconds, for the report."""
    backend = getattr(lm, "inner", lm)
    size = getattr(backend, "batch_size", None) or (lm.info or {}).get("batch_size")
    rows = int(size) if str(size).isdigit() else WARM_UP_ROWS
    start = time.perf_counter()
    docs = prepare(variant, eval_split, None, 0, rows) if variant.task.kind == "multiple_choice" else None
    if docs is not None:
        backend.loglikelihood([(d.prompt, c) for d in docs for c in d.continuations])
    else:
        gen = prepare_generation(variant, eval_split, None, 0, rows, lm)
        backend.generate_until([GenerationRequest(d.prompt, d.until, d.max_new_tokens) for d in gen])
    return time.perf_counter() - start
