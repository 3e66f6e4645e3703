"""Greedy decoding of a left-padded batch with a KV cache, each row stopping on its own.

``model.generate`` keeps every row in the batch until the last one stops, so a batch with one
long answer costs the model time of all its rows for every step. Here a finished row leaves the
batch (its rows of the KV cache are dropped) once enough rows have finished to make the copy
worth it, and the stop strings are checked on a tail window (:mod:`kensa.backends.stopping`).
Every step's time is shared among the rows still running, so each request carries the model
time it cost (the contract's ``seconds``), and the prefill time is each row's time to its first
token.

The inputs a step gets are those ``generate`` gives a decoder-only model: the attention mask of
every column so far, position ids counted over the mask, and the cache from the step before. So
each row's tokens are those ``generate`` picks (``tests/unit/backends/test_hf_backend.py`` checks it).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kensa.backends.stopping import StopChecker

COMPACT_SHARE = 0.25
"""Drop finished rows from the batch once they are at least this share of it: dropping copies the
whole KV cache, about what one decode step reads."""


@dataclass
class RowOutcome:
    tokens: list[int]
    """Generated tokens up to the one that completed a stop string or used the budget (EOS excluded)."""
    stop_reason: str
    seconds: float
    first_token_seconds: float


@dataclass
class DecodeStats:
    """What one call cost: for the bench and the tests."""

    steps: int = 0
    row_steps: int = 0
    """Rows computed, summed over steps (finished rows still in the batch included)."""
    row_steps_if_kept: int = 0
    """What ``row_steps`` would be if every row stayed in its batch to the end (as in ``generate``)."""
    compactions: int = 0


def greedy_decode(model: Any, prompts: Sequence[Sequence[int]], budgets: Sequence[int],
                  checkers: Sequence[StopChecker], *, eos_id: int | None, pad_id: int, device: Any,
                  keeps_logits: bool = True, stats: DecodeStats | None = None) -> list[RowOutcome]:
    import torch

    stats = stats if stats is not None else DecodeStats()
    steps_before = stats.steps
    cuda = str(device).startswith("cuda")

    def now() -> float:
        if cuda:
            torch.cuda.synchronize(device)
        return time.perf_counter()

    rows = len(prompts)
    width = max(len(p) for p in prompts)
    ids = torch.full((rows, width), pad_id, dtype=torch.long)
    mask = torch.zeros((rows, width), dtype=torch.long)
    for r, p in enumerate(prompts):  # left padding: every prompt ends at the same column
        ids[r, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
        mask[r, width - len(p):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    extra = {"logits_to_keep": 1} if keeps_logits else {}

    start = now()
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **extra)
    cache = out.past_key_values
    picked = out.logits[:, -1, :].float().argmax(-1)
    tokens = picked.tolist()
    prefill = now() - start
    prompt_sizes = [len(p) for p in prompts]
    total = float(sum(prompt_sizes))
    outcomes: list[RowOutcome | None] = [None] * rows
    generated: list[list[int]] = [[] for _ in range(rows)]
    spent = [prefill * n / total for n in prompt_sizes]
    present = list(range(rows))  # the original row of each batch row
    next_position = positions[:, -1] + 1
    can_drop = hasattr(cache, "batch_select_indices")

    while True:
        for b, r in enumerate(present):
            if outcomes[r] is not None:
                continue
            token = tokens[b]
            reason = None
            if eos_id is not None and token == eos_id:
                reason = "eos"
            else:
                generated[r].append(token)
                if checkers[r].hit(generated[r]):
                    reason = "stop"
                elif len(generated[r]) >= budgets[r]:
                    reason = "length"
            if reason is not None:
                outcomes[r] = RowOutcome(generated[r], reason, 0.0, prefill)
        running = [b for b, r in enumerate(present) if outcomes[r] is None]
        if not running:
            break
        if can_drop and len(present) - len(running) >= max(1, COMPACT_SHARE * len(present)):
            keep = torch.tensor(running, device=mask.device)
            cache.batch_select_indices(keep)
            mask, next_position, picked = mask[keep], next_position[keep], picked[keep]
            present = [present[b] for b in running]
            stats.compactions += 1
        step_ids = picked.clone()
        for b, r in enumerate(present):
            if outcomes[r] is not None:
                step_ids[b] = pad_id  # a finished row still in the batch: its output is ignored
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        t0 = now()
        out = model(input_ids=step_ids[:, None], attention_mask=mask, position_ids=next_position[:, None],
                    past_key_values=cache, use_cache=True, **extra)
        cache = out.past_key_values
        picked = out.logits[:, -1, :].float().argmax(-1)
        tokens = picked.tolist()
        step = now() - t0
        next_position = next_position + 1
        active = [r for r in present if outcomes[r] is None]
        for r in active:
            spent[r] += step / len(active)
        stats.steps += 1
        stats.row_steps += len(present)
    stats.row_steps_if_kept += rows * (stats.steps - steps_before)
    for r, outcome in enumerate(outcomes):
        assert outcome is not None
        outcome.seconds = spent[r]
    return outcomes  # type: ignore[return-value]
