"""The backend contract: what a run loop asks of a model and what it gets back.

This module imports nothing else of kensa. The run loops (:mod:`kensa.run`), the response cache
and the task layer's prompt fitting depend on it; every backend implements it; no backend
imports a run loop. Time spent in the model is part of each result, so that latency can be
reported per request without timing around the cache (an answer the cache served has no
model time: ``seconds`` is None).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called by a backend as requests complete."""

STOP_REASONS = ("stop", "eos", "length")
"""Why a generation ended: a stop string, the end-of-sequence token, or its token budget."""


class LoglikelihoodRequest(NamedTuple):
    """Score ``continuation`` after ``context`` (a plain ``(context, continuation)`` tuple also works)."""

    context: str
    continuation: str


@dataclass(frozen=True)
class LoglikelihoodResult:
    logprob: float
    """Sum of the continuation tokens' log-probabilities."""
    is_greedy: bool
    """Whether every continuation token was the argmax (harness ``is_greedy``)."""
    num_tokens: int
    """Continuation tokens scored."""
    seconds: float | None = None
    """Model time spent on this request (its batch's time shared among the batch's requests);
    None when the answer came from the response cache."""
    batch: int | None = None
    """Which batch of the call computed it (numbered in the order they ran), where the backend says: the
    requests of one batch share one measured time, so a latency test pairs batches, not requests."""


@dataclass(frozen=True)
class GenerationRequest:
    context: str
    until: tuple[str, ...] = ()
    """Stop strings: the text is cut at the first one."""
    max_new_tokens: int = 256


@dataclass(frozen=True)
class GenerationResult:
    text: str
    """The continuation, cut at the first stop string (EOS and what follows it are dropped)."""
    stop_reason: str
    """One of :data:`STOP_REASONS`."""
    prompt_tokens: int
    """Tokens the model was given (after left truncation)."""
    generated_tokens: int
    """Tokens generated up to and including the one that completed the stop (EOS not counted)."""
    seconds: float | None = None
    """Model time spent on this request: the batch's prefill shared among its rows, plus each
    decode step shared among the rows still running. None when the cache served the answer."""
    first_token_seconds: float | None = None
    """Wall time from the start of the request's batch to its first generated token (the
    batch's prefill), or None where the backend cannot tell."""
    batch: int | None = None
    """Which batch of the call computed it, where the backend says (see :class:`LoglikelihoodResult`)."""

    def __post_init__(self) -> None:
        if self.stop_reason not in STOP_REASONS:
            raise ValueError(f"stop_reason {self.stop_reason!r} is not one of {STOP_REASONS}")


class TokenCounter(Protocol):
    """What prompt building needs of a model: its tokenizer and its limits (generation budgets and
    the harness's refit of too-long prompts are counted in the model's own tokens)."""

    max_length: int
    max_gen_toks: int

    def tok_encode(self, text: str) -> list[int]: ...

    def tokenize(self, text: str) -> list[str]: ...


@runtime_checkable
class LoglikelihoodModel(Protocol):
    name: str

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest | tuple[str, str]],
                      progress: Progress | None = None) -> list[LoglikelihoodResult]: ...


@runtime_checkable
class GeneratingModel(Protocol):
    name: str
    max_length: int
    max_gen_toks: int

    def tok_encode(self, text: str) -> list[int]: ...

    def tokenize(self, text: str) -> list[str]: ...

    def generate_until(self, requests: Sequence[GenerationRequest],
                       progress: Progress | None = None) -> list[GenerationResult]: ...


class Backend(LoglikelihoodModel, GeneratingModel, Protocol):
    """A loaded model as the plugin, the run loops and the response cache use it.

    ``encode_pair`` and ``generation_ids`` give the exact token ids a request is answered from:
    the response cache keys on them, never on prompt text. ``info`` describes the model and its
    environment (backend, dtype, device, library versions, identity) for results and the gate.
    This is everything a run loop reads of a model.
    """

    spec: Any
    info: dict[str, Any]
    kind: str
    """``causal`` or ``seq2seq``: which prompts apply to it and how a round-trip question is asked."""
    bad_words: tuple[str, ...]
    """Words its output must not contain (``bad_words=``); every output is checked for them. Empty: none."""

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], int]: ...

    def generation_ids(self, request: GenerationRequest) -> list[int]: ...

    def close(self) -> None: ...


def share_seconds(total: float, weights: Sequence[float]) -> list[float]:
    """Split a batch's model time among its requests in proportion to ``weights`` (equal shares
    when every weight is zero). The shares add up to ``total``."""
    whole = float(sum(weights))
    if whole <= 0:
        return [total / len(weights)] * len(weights) if weights else []
    return [total * w / whole for w in weights]
