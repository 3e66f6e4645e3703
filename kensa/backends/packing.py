"""Shared-prompt packing for log-likelihood requests: each distinct context runs through the model once.

A multiple-choice doc asks for ``log P(choice | prompt)`` for every choice, and the prompt (a few
hundred tokens with its shots) is the same each time while the choices are a few tokens. Scoring
each (prompt, choice) pair as its own row pushes the prompt through the model once per choice.
Here the requests that share their context token ids become one packed row::

    [ context ][ choice 1 minus its last token ][ choice 2 minus its last token ] ...

with a block attention mask (the context is causal; each choice sees the whole context and itself,
never another choice) and position ids that restart at ``len(context)`` for every choice. Each
choice's tokens then see exactly the keys and positions they would see in a row of their own, so
the log-likelihoods equal the one-row-per-request path up to float rounding. The last token of a
choice is never an input (nothing is predicted from it), so a one-token choice costs nothing but
its gather from the context's last position.

Rows are left-padded so that every row of a batch ends at the same column: the positions whose
logits are needed are then the last ``keep`` columns, and the model computes its vocabulary
projection for those only (``logits_to_keep``). Pure data handling; torch is imported lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Pack:
    """One packed row: a context and the continuations scored against it."""

    context: tuple[int, ...]
    continuations: list[tuple[int, ...]] = field(default_factory=list)
    owners: list[list[int]] = field(default_factory=list)
    """For each continuation, the request indices it answers (identical requests are scored once)."""

    @property
    def length(self) -> int:
        """Input tokens of the row: the context plus every continuation but its last token."""
        return len(self.context) + sum(len(c) - 1 for c in self.continuations)

    @property
    def keep(self) -> int:
        """How many trailing positions need logits: the context's last one and every continuation input."""
        return 1 + sum(len(c) - 1 for c in self.continuations)


def build_packs(encoded: Sequence[tuple[Sequence[int], int]], max_row: int) -> list[Pack]:
    """Group requests ``(ids, n)`` (ids = context + continuation, the last ``n`` the continuation) by
    their context ids. A group whose row would exceed ``max_row`` tokens is split over several rows;
    a single request always gets a row, however long. Packs come longest first."""
    by_context: dict[tuple[int, ...], dict[tuple[int, ...], list[int]]] = {}
    for i, (ids, n) in enumerate(encoded):
        if not 1 <= n < len(ids):
            raise ValueError(f"request {i}: {n} continuation tokens out of {len(ids)} leave no context")
        context, continuation = tuple(ids[:-n]), tuple(ids[-n:])
        by_context.setdefault(context, {}).setdefault(continuation, []).append(i)
    packs: list[Pack] = []
    for context, conts in by_context.items():
        pack = Pack(context)
        for cont, owners in conts.items():
            if pack.continuations and pack.length + len(cont) - 1 > max_row:
                packs.append(pack)
                pack = Pack(context)
            pack.continuations.append(cont)
            pack.owners.append(owners)
        packs.append(pack)
    packs.sort(key=lambda p: -p.length)
    return packs


@dataclass
class PackedBatch:
    """Model inputs for a batch of packs, and where each continuation's log-probs are read."""

    input_ids: object
    attention_mask: object
    """``(batch, 1, width, width)`` bool, True where a query may attend to a key."""
    position_ids: object
    keep: int
    rows: object
    """For every scored token, its row in the batch ..."""
    columns: object
    """... its column within the last ``keep`` columns ..."""
    targets: object
    """... and the token id whose log-probability is read there."""
    spans: list[tuple[int, int, list[int]]]
    """Per continuation: (first scored token, number of tokens, request indices), in scored-token order."""


def collate(packs: Sequence[Pack], pad_id: int, device=None) -> PackedBatch:
    """Left-pad ``packs`` into one batch with the block mask and restarted positions."""
    import torch

    width = max(p.length for p in packs)
    keep = max(p.keep for p in packs)
    ids = torch.full((len(packs), width), pad_id, dtype=torch.long)
    segment = torch.full((len(packs), width), -1, dtype=torch.long)  # -1 pad, 0 context, j+1 continuation j
    positions = torch.zeros((len(packs), width), dtype=torch.long)
    rows: list[int] = []
    columns: list[int] = []
    targets: list[int] = []
    spans: list[tuple[int, int, list[int]]] = []
    for r, pack in enumerate(packs):
        offset = width - pack.length
        n_ctx = len(pack.context)
        ids[r, offset: offset + n_ctx] = torch.tensor(pack.context)
        segment[r, offset: offset + n_ctx] = 0
        positions[r, offset: offset + n_ctx] = torch.arange(n_ctx)
        col = offset + n_ctx
        last_context = offset + n_ctx - 1
        for j, (cont, owners) in enumerate(zip(pack.continuations, pack.owners)):
            inputs = cont[:-1]
            if inputs:
                ids[r, col: col + len(inputs)] = torch.tensor(inputs)
                segment[r, col: col + len(inputs)] = j + 1
                positions[r, col: col + len(inputs)] = torch.arange(n_ctx, n_ctx + len(inputs))
            # Token t of the continuation is predicted at the context's last column (t = 0) or at
            # the column of input token t - 1 of this continuation's own segment.
            spans.append((len(targets), len(cont), owners))
            source = [last_context] + list(range(col, col + len(inputs)))
            rows.extend([r] * len(cont))
            columns.extend(c - (width - keep) for c in source)
            targets.extend(cont)
            col += len(inputs)
    q = segment[:, :, None]
    k = segment[:, None, :]
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    # A real token sees the context and its own segment; a pad sees only pads (so no row is empty).
    visible = ((k == 0) & (q >= 0)) | (k == q)
    mask = (visible & causal)[:, None, :, :]
    return PackedBatch(
        input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device), keep=keep,
        rows=torch.tensor(rows, device=device), columns=torch.tensor(columns, device=device),
        targets=torch.tensor(targets, device=device), spans=spans,
    )
