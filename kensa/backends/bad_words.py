"""Bad words: text the output must not contain, turned into every token sequence that spells it.

``bad_words_ids`` in transformers blocks exact id sequences only, and a word has many spellings in
a subword vocabulary: ``山梨`` can be one piece, ``山`` + ``梨``, ``▁山梨``, the end of ``の山`` followed
by ``梨県``, or byte-fallback pieces. :func:`spelling_sequences` lists every *minimal* sequence whose
decoded bytes contain the word: the word starts inside the first token and ends inside the last,
the tokens between spell it exactly. Blocking the last token of each such sequence after its prefix
blocks every way to write the word, whatever came before.

Tokens are compared as the bytes they add to the text: SentencePiece pieces with ``▁`` as a space
and ``<0xAB>`` as one byte, byte-level BPE pieces through the GPT-2 byte alphabet, other pieces as
their UTF-8 text. Special tokens spell nothing. :func:`count_violations` is the string check on the
output that backs the id blocking up (a normalising decoder could still write a word).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from kensa.errors import OptionError

MAX_SEQUENCES = 50_000
"""Per word. A word with more spellings than this is refused: blocking it would slow every decoding
step, and a word that common is better caught by the string check alone."""
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's ``bytes_to_unicode``, inverted: the character a byte-level BPE writes for each byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def _is_byte_level(tokenizer: Any) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    decoder = json.loads(backend.to_str()).get("decoder") or {}
    parts = decoder.get("decoders", [decoder]) if decoder.get("type") == "Sequence" else [decoder]
    return any(p.get("type") == "ByteLevel" for p in parts if isinstance(p, dict))


def token_bytes(tokenizer: Any) -> dict[int, bytes]:
    """Each ordinary (non-special) token id -> the bytes it adds to decoded text."""
    special = set(tokenizer.all_special_ids)
    vocab = tokenizer.get_vocab()
    byte_level = _is_byte_level(tokenizer)
    alphabet = _byte_level_alphabet() if byte_level else {}
    out: dict[int, bytes] = {}
    for piece, i in vocab.items():
        if i in special:
            continue
        match = _BYTE_PIECE.fullmatch(piece)
        if match:
            out[i] = bytes([int(match.group(1), 16)])
        elif byte_level:
            if all(c in alphabet for c in piece):
                out[i] = bytes(alphabet[c] for c in piece)
        else:
            out[i] = piece.replace("\u2581", " ").encode("utf-8")
    return {i: b for i, b in out.items() if b}


def spelling_sequences(word: str, pieces: dict[int, bytes], limit: int = MAX_SEQUENCES) -> list[list[int]]:
    """Every minimal token sequence whose bytes contain ``word`` (see the module docstring)."""
    target = word.encode("utf-8")
    n = len(target)
    if n == 0:
        return []
    exact: dict[bytes, list[int]] = {}
    ends_with: dict[int, list[int]] = {i: [] for i in range(1, n)}  # i: token ends with target[:i]
    starts_with: dict[int, list[int]] = {j: [] for j in range(1, n)}  # j: token starts with target[j:]
    whole: list[list[int]] = []
    for tid, b in pieces.items():
        if target in b:
            whole.append([tid])
        exact.setdefault(b, []).append(tid)
        for i in range(1, n):
            if b.endswith(target[:i]):
                ends_with[i].append(tid)
            if b.startswith(target[n - i:]):
                starts_with[n - i].append(tid)
    out = list(whole)

    # middles[(i, j)]: exact spellings of target[i:j] by one or more whole tokens (memoised).
    memo: dict[tuple[int, int], list[list[int]]] = {}

    def middles(i: int, j: int) -> list[list[int]]:
        if i == j:
            return [[]]
        if (i, j) in memo:
            return memo[(i, j)]
        found: list[list[int]] = []
        for k in range(i + 1, j + 1):
            for tid in exact.get(target[i:k], ()):
                for rest in middles(k, j):
                    found.append([tid, *rest])
                    if len(found) > limit:
                        raise _TooMany
        memo[(i, j)] = found
        return found

    try:
        for i, firsts in ends_with.items():
            if not firsts:
                continue
            for j in range(i, n):
                lasts = starts_with[j]
                if not lasts:
                    continue
                for middle in middles(i, j):
                    for first in firsts:
                        for last in lasts:
                            out.append([first, *middle, last])
                            if len(out) > limit:
                                raise _TooMany
    except _TooMany:
        raise OptionError("bad_words", f"{word!r} can be written in more than {limit} token sequences with this "
                                       "tokenizer; give a longer, more specific word") from None
    return out


class _TooMany(Exception):
    pass


def bad_words_ids(tokenizer: Any, words: Iterable[str], option: str = "--model-args bad_words") -> list[list[int]]:
    """Every spelling of every word, for ``generate(bad_words_ids=...)``. A word that no token sequence
    spells (only unknown characters, or whitespace) is an error naming the option and the word."""
    pieces = token_bytes(tokenizer)
    out: list[list[int]] = []
    for word in words:
        found = spelling_sequences(word, pieces)
        if not found:
            raise OptionError(option, f"{word!r} tokenizes to nothing with this model's tokenizer (no token "
                                      "sequence spells it), so it cannot be blocked")
        out += found
    return [list(s) for s in dict.fromkeys(tuple(s) for s in out)]


def count_violations(text: str, words: Sequence[str]) -> dict[str, int]:
    """How often each bad word occurs in ``text`` (overlapping occurrences counted); words not found are left out."""
    found = {}
    for word in words:
        count = sum(1 for i in range(len(text)) if text.startswith(word, i))
        if count:
            found[word] = count
    return found
