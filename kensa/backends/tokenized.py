"""What every backend that kensa tokenizes for has in common: the exact token ids of a request.

The HF backend, the vLLM backend and served models all score the ids :meth:`TokenizedModel.encode_pair`
and :meth:`TokenizedModel.generation_ids` give (the response cache keys on them), so a request means
the same tokens on every backend. A subclass sets ``spec``, ``tokenizer`` and ``max_length``. The seq2seq
backend shares the token helpers and overrides the two methods (its ids are a source and a target).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kensa.backends.contract import GenerationRequest
from kensa.backends.stopping import byte_piece_ids


class TokenizedModel:
    spec: Any
    tokenizer: Any
    max_length: int
    kind = "causal"
    bad_words: tuple[str, ...] = ()
    _byte_pieces: frozenset[int] | None = None

    def tok_encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def tok_decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def tokenize(self, text: str) -> list[str]:
        """The tokenizer's pieces (XL-Sum's published ROUGE-2 is computed on these)."""
        return self.tokenizer.tokenize(text)

    @property
    def max_gen_toks(self) -> int:
        """The generation budget of a request that names none (``max_gen_toks=``, default 256)."""
        return self.spec.args.max_gen_toks

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], int]:
        """(input ids, number of continuation tokens), left-truncated to the context length: exactly
        what a log-likelihood request scores (the response cache keys on it)."""
        ctx = self.tok_encode(context) if context else [self.tokenizer.eos_token_id]
        cont = self.tok_encode(continuation)
        if not cont:
            raise ValueError(f"continuation {continuation!r} encodes to no tokens")
        if len(cont) > self.max_length:
            raise ValueError(f"continuation of {len(cont)} tokens exceeds the context length {self.max_length}")
        whole = (ctx + cont)[-(self.max_length + 1):]
        return whole, len(cont)

    def generation_ids(self, request: GenerationRequest) -> list[int]:
        """The prompt's token ids as the model sees them: left-truncated so that the budget fits
        (the response cache keys on these, the stop strings and the budget)."""
        keep = max(1, self.max_length - request.max_new_tokens)
        return self.tok_encode(request.context)[-keep:]

    @property
    def byte_pieces(self) -> frozenset[int]:
        """The tokenizer's byte-fallback piece ids, for the windowed stop check (looked up once)."""
        if self._byte_pieces is None:
            self._byte_pieces = byte_piece_ids(self.tokenizer)
        return self._byte_pieces

    def cut_at_stops(self, tokens: Sequence[int], until: Sequence[str]) -> str:
        """The text of generated ``tokens`` cut at the first of ``until``, as every backend reports it."""
        text = self.tokenizer.decode(list(tokens))
        for stop in until:
            text = text.split(stop)[0]
        return text
