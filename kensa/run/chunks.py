"""How the response cache cuts a call's requests into chunks, each committed before the next is scored.

A run of requests sharing a context is never split between chunks (the backend scores a shared prompt
once), and chunks are sized by time: each takes about :data:`COMMIT_SECONDS` of model time, measured on
the chunks before, so a killed run loses at most about that much work however slow the model.
"""

from __future__ import annotations

from collections.abc import Sequence

COMMIT_SECONDS = 5.0
"""Chunks are sized to take about this long, from the model time per request of the chunks before."""


def context_runs(indices: Sequence[int], contexts: Sequence[str] | None) -> list[list[int]]:
    """Consecutive indices whose requests share a context (the backend scores a shared prompt once, so a
    run is never split between chunks); without ``contexts``, one index per run."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and contexts is not None and contexts[runs[-1][-1]] == contexts[i]:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def take_chunk(runs: Sequence[list[int]], start: int, size: int) -> tuple[list[int], int]:
    """Whole runs from ``runs[start]`` on, up to about ``size`` indices (at least one run); the chunk and
    the next start."""
    chunk: list[int] = []
    pos = start
    while pos < len(runs) and (not chunk or len(chunk) + len(runs[pos]) <= size):
        chunk.extend(runs[pos])
        pos += 1
    return chunk, pos


def chunk_runs(indices: Sequence[int], contexts: Sequence[str] | None, size: int) -> list[list[int]]:
    """Cut ``indices`` into chunks of about ``size``, never splitting a run of a shared context."""
    runs, chunks, pos = context_runs(indices, contexts), [], 0
    while pos < len(runs):
        chunk, pos = take_chunk(runs, pos, size)
        chunks.append(chunk)
    return chunks


def next_chunk_size(seconds: float, requests: int, largest: int, target: float = COMMIT_SECONDS) -> int:
    """How many requests the next chunk gets so that it takes about ``target`` seconds."""
    if seconds <= 0 or requests <= 0:
        return largest
    return max(1, min(largest, int(target * requests / seconds)))
