"""When a generated row has produced one of its stop strings, found by decoding only a tail window.

Decoding a row's whole generation at every step costs the square of its budget (27% of
``generate_until`` at batch 32 x 256 new tokens on tiny-llama). A stop string that first appears
at step t must overlap the text that step t changed: the new token's text, and at most the few
replacement characters before it that a byte-fallback piece completes. So it lies within the
last ``longest stop + len(new token's text) + UNSTABLE + 1`` characters (the 1: the new token's
own decode may have lost its leading space). The window is widened until its decoded text holds
that many characters (or it covers the whole generation).

A window never starts inside a run of byte-fallback pieces (``<0xE3>``...): the byte-fallback
decoder decodes a whole run at once and turns every byte of an invalid run into U+FFFD, so a run
cut in the middle would decode differently from the full text. Its first characters may still
differ (a decoder may strip the first piece's leading space), which ``UNSTABLE`` allows for. A
stop string containing U+FFFD is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from typing import Any

UNSTABLE = 4
"""Characters at a window's start that may differ from the full decode (a stripped leading space;
the rest is margin)."""
BYTES_PER_CHAR = 4
"""The most pieces one character can take (UTF-8 bytes under byte fallback)."""
_BYTE_PIECE = re.compile(r"<0x[0-9A-Fa-f]{2}>")


class StopChecker:
    """``hit(tokens)``: whether ``decode(tokens)`` contains a stop string, given that ``decode(tokens[:-1])``
    did not. Called once per generated token of a row, in order."""

    def __init__(self, stops: Sequence[str], decode: Callable[[list[int]], str],
                 byte_pieces: Collection[int] = frozenset()):
        self.byte_pieces = byte_pieces
        """The ids of byte-fallback pieces (:func:`byte_piece_ids`)."""
        self.stops = tuple(s for s in stops if s)
        for s in self.stops:
            if "\ufffd" in s:
                raise ValueError(f"stop string {s!r} contains U+FFFD, which a cut byte sequence also decodes to")
        self.decode = decode
        self.longest = max((len(s) for s in self.stops), default=0)
        self.decoded_tokens = 0
        """Tokens decoded so far, summed over calls (for the bench's cost accounting)."""

    def hit(self, tokens: Sequence[int]) -> bool:
        if not self.stops:
            return False
        n = len(tokens)
        width = min(n, BYTES_PER_CHAR * self.longest + UNSTABLE)
        needed = None
        while True:
            start = n - width
            while 0 < start and tokens[start] in self.byte_pieces and tokens[start - 1] in self.byte_pieces:
                start -= 1  # back to the start of the byte run
            width = n - start
            text = self.decode(list(tokens[start:]))
            self.decoded_tokens += width
            if any(s in text for s in self.stops):
                return True
            if width == n:
                return False
            if needed is None:
                last = self.decode([tokens[-1]])
                self.decoded_tokens += 1
                needed = self.longest + len(last) + UNSTABLE + 1
            if len(text) >= needed:
                return False
            width = min(n, 2 * width)


def byte_piece_ids(tokenizer: Any) -> frozenset[int]:
    """The ids of a tokenizer's byte-fallback pieces, named ``<0x00>`` to ``<0xFF>`` by SentencePiece
    and by ``tokenizers``' byte-fallback models (a byte-level BPE has none: it decodes bytes as such)."""
    vocab = tokenizer.get_vocab()
    return frozenset(i for piece, i in vocab.items() if _BYTE_PIECE.fullmatch(piece))


def first_stop(tokens: Sequence[int], stops: Sequence[str], decode: Callable[[list[int]], str],
               byte_pieces: Collection[int] = frozenset()) -> int | None:
    """The number of tokens after which ``decode`` first shows a stop string, checking token by token
    with the window (None: never). The reference for it is :func:`first_stop_full`."""
    checker = StopChecker(stops, decode, byte_pieces)
    for t in range(1, len(tokens) + 1):
        if checker.hit(tokens[:t]):
            return t
    return None


def first_stop_full(tokens: Sequence[int], stops: Sequence[str], decode: Callable[[list[int]], str]) -> int | None:
    """The same by decoding the whole prefix at every step: what the window must agree with."""
    live = [s for s in stops if s]
    for t in range(1, len(tokens) + 1):
        text = decode(list(tokens[:t]))
        if any(s in text for s in live):
            return t
    return None
