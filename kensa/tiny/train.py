"""Training for the built-in ``tiny-trained`` model, which scores far above chance on every task
variant the suite has, so that a damaged copy of it visibly fails.

The training text is the frozen corpus (:mod:`kensa.tiny.training_corpus`): every prompt as the
suite rendered it when the corpus was frozen, followed by its gold continuation. It is tokenized as
:meth:`kensa.backends.hf_causal.HFCausalLM.encode_pair` does (context and continuation encoded
separately with no special tokens, then concatenated). The loss is on the continuation tokens
only: with the whole text the template tokens swamp the few answer tokens, and it trained far
worse and slower.

The model memorises the fixtures. Its scores say nothing about Japanese, only that the
pipeline and the weights are intact. Torch is imported lazily, as in :mod:`kensa.tiny.build`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kensa.errors import KensaError
from kensa.tiny.training_corpus import TrainingExample


@dataclass(frozen=True)
class TrainRecipe:
    steps: int = 2400
    batch_size: int = 10
    lr: float = 5e-3
    warmup_steps: int = 5
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    threads: int = 1
    """Results depend on the thread count, so it is part of the recipe. One: on a busy shared machine two
    threads waiting for each other at every small op made a build tens of times slower (one thread: the
    same speed as two on an idle machine within a factor of two)."""
    seed: int = 0


def encode(tokenizer: Any, examples: Sequence[TrainingExample], max_length: int) -> list[tuple[list[int], int]]:
    """(input ids, number of continuation tokens) per example, exactly as the HF backend scores them."""
    out = []
    for e in examples:
        ctx = tokenizer.encode(e.context, add_special_tokens=False) if e.context else [tokenizer.eos_token_id]
        cont = tokenizer.encode(e.continuation, add_special_tokens=False)
        if e.eos:  # a prompt that ends at EOS only (the QA suite's causal prompts): learn to emit it
            cont = [*cont, tokenizer.eos_token_id]
        if not cont or len(cont) > max_length:
            raise KensaError(f"tiny-trained: continuation {e.continuation!r} of {e.task_id} encodes to "
                             f"{len(cont)} tokens (must be 1..{max_length})")
        out.append(((ctx + cont)[-(max_length + 1):], len(cont)))
    return out


def _epoch(lengths: Sequence[int], batch_size: int, rnd: random.Random) -> list[list[int]]:
    """Shuffled, then batched by length so that a batch pads little; the batch order is shuffled too."""
    order = list(range(len(lengths)))
    rnd.shuffle(order)
    order.sort(key=lambda i: lengths[i])  # stable: equal lengths keep their shuffled order
    batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    rnd.shuffle(batches)
    return batches


def _batch_loss(model: Any, batch: Sequence[tuple[list[int], int]], pad_id: int):
    import torch

    width = max(len(whole) for whole, _ in batch) - 1
    width = -(-width // 64) * 64  # a few distinct shapes: the first batch of each new width is slow on CPU
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    rows, cols, targets = [], [], []
    for r, (whole, n) in enumerate(batch):
        ids[r, : len(whole) - 1] = torch.tensor(whole[:-1])
        for p in range(len(whole) - 1 - n, len(whole) - 1):  # position p predicts token p + 1
            rows.append(r)
            cols.append(p)
            targets.append(whole[p + 1])
    # No attention mask: padding is on the right, and causal attention never looks right, so the
    # fast causal kernel serves and the real positions are unaffected.
    hidden = model.base_model(input_ids=ids).last_hidden_state
    # The vocabulary projection only where there is a target: on every position it is most of the cost.
    logits = model.get_output_embeddings()(hidden[rows, cols])
    return torch.nn.functional.cross_entropy(logits.float(), torch.tensor(targets))


def train(model: Any, tokenizer: Any, examples: Sequence[TrainingExample], recipe: TrainRecipe) -> list[float]:
    """Train ``model`` in place, deterministically; return the loss of every step.

    Deterministic algorithms and ``recipe.threads`` threads are switched on for the run and the
    caller's settings restored afterwards.
    """
    encoded = encode(tokenizer, examples, model.config.max_position_embeddings)
    with _deterministic(recipe.threads):
        return _train(model, encoded, recipe, lambda batch: _batch_loss(model, batch, tokenizer.pad_token_id))


@contextmanager
def _deterministic(threads: int) -> Iterator[None]:
    """Deterministic algorithms on ``threads`` threads, the caller's settings restored afterwards."""
    import torch

    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled())
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])


def _train(model: Any, encoded: Sequence[tuple[list[int], Any]], recipe: TrainRecipe,
           batch_loss: Callable[[list], Any]) -> list[float]:
    """The training loop of both kinds: ``encoded`` pairs whose first element's length batches them, and the
    loss of a batch of them."""
    import torch

    rnd = random.Random(recipe.seed)
    optimizer, schedule = _optimizer(model, recipe)
    lengths = [len(first) for first, _ in encoded]
    pending: list[list[int]] = []
    losses = []
    model.train()
    for _ in range(recipe.steps):
        if not pending:
            pending = _epoch(lengths, recipe.batch_size, rnd)
        loss = batch_loss([encoded[i] for i in pending.pop()])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    model.eval()
    return losses


# -- seq2seq (tiny-t5-trained) ------------------------------------------------------------------------


def encode_seq2seq(tokenizer: Any, examples: Sequence[TrainingExample],
                   max_length: int) -> list[tuple[list[int], list[int]]]:
    """(source ids, target ids + EOS) per example, the source encoded as the seq2seq backend encodes it."""
    out = []
    for e in examples:
        source = tokenizer(e.context, add_special_tokens=True)["input_ids"][:max_length]
        target = tokenizer.encode(e.continuation, add_special_tokens=False) + [tokenizer.eos_token_id]
        if len(target) < 2:
            raise KensaError(f"tiny-t5-trained: target {e.continuation!r} of {e.task_id} encodes to no tokens")
        out.append((list(source), target))
    return out


def _seq2seq_loss(model: Any, batch: Sequence[tuple[list[int], list[int]]], pad_id: int):
    import torch

    src_w = -(-max(len(s) for s, _ in batch) // 32) * 32  # few distinct shapes
    tgt_w = max(len(t) for _, t in batch)
    ids = torch.full((len(batch), src_w), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), src_w), dtype=torch.long)
    labels = torch.full((len(batch), tgt_w), -100, dtype=torch.long)
    for r, (s, t) in enumerate(batch):
        ids[r, : len(s)] = torch.tensor(s)
        mask[r, : len(s)] = 1
        labels[r, : len(t)] = torch.tensor(t)
    return model(input_ids=ids, attention_mask=mask, labels=labels).loss


def train_seq2seq(model: Any, tokenizer: Any, examples: Sequence[TrainingExample], recipe: TrainRecipe) -> list[float]:
    """Train an encoder-decoder in place on (prompt -> target + EOS), deterministically; the loss of every step."""
    encoded = encode_seq2seq(tokenizer, examples, model.config.n_positions)
    with _deterministic(recipe.threads):
        return _train(model, encoded, recipe, lambda batch: _seq2seq_loss(model, batch, tokenizer.pad_token_id))


def _optimizer(model: Any, recipe: TrainRecipe) -> tuple[Any, Any]:
    """AdamW with a linear warm-up, then cosine decay to zero: both tiny models train with it."""
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=recipe.betas,
                                  weight_decay=recipe.weight_decay)

    def lr_factor(step: int) -> float:
        warm = min(1.0, (step + 1) / recipe.warmup_steps) if recipe.warmup_steps else 1.0
        return warm * 0.5 * (1 + math.cos(math.pi * step / recipe.steps))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
