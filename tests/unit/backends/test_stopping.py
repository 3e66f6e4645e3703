"""The windowed stop check (kensa.backends.stopping) against decoding the whole generation every step.

The tokenizer is the tiny models' SentencePiece model with byte fallback: kanji outside its
vocabulary and emoji become 3-4 byte pieces, so a stop string can straddle pieces that decode to
U+FFFD until the character is complete.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kensa.backends.stopping import BYTES_PER_CHAR, UNSTABLE, StopChecker, byte_piece_ids, first_stop, first_stop_full

pytest.importorskip("transformers")

# Common characters (in the tiny vocabulary), rare kanji and emoji (byte fallback), and separators.
ALPHABET = list("あいうえおかきくけこのはをにでした。、日本東京質問回答") + list("鬱鑿麤龘𠮷") + \
    ["😀", "🍣", "ｱ", "Ａ", "１", "\n", " ", "#", "<", "N", "L", ">", "a", "b"]
texts = st.text(alphabet=ALPHABET, min_size=1, max_size=40)
stops = st.text(alphabet=ALPHABET, min_size=1, max_size=8)


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    from kensa.tiny.build import build_spm

    return AutoTokenizer.from_pretrained(build_spm())


@pytest.fixture(scope="module")
def pieces(tok):
    return byte_piece_ids(tok)


def test_the_tokenizer_falls_back_to_bytes(tok, pieces):
    ids = tok.encode("鬱😀", add_special_tokens=False)
    assert len(ids) >= 7 and set(ids) <= pieces and len(pieces) == 256
    assert tok.decode(ids[:2]) == "\ufffd" * 2  # a cut character decodes to replacement characters
    # The byte-fallback decoder decodes a run of byte pieces at once: cut in the middle, the whole run
    # is invalid, and the complete emoji after the cut is lost too. So a window must not cut a run.
    assert tok.decode(ids[1:]) == "\ufffd" * (len(ids) - 1)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, extra=st.lists(stops, min_size=1, max_size=3), data=st.data())
def test_the_window_stops_at_the_same_token_as_a_full_decode(tok, pieces, text, extra, data):
    tokens = tok.encode(text, add_special_tokens=False)
    assume(tokens)
    decoded = tok.decode(tokens)
    # Half the time a stop string is cut from the generated text itself, so that it does occur.
    start = data.draw(st.integers(0, max(0, len(decoded) - 1)))
    size = data.draw(st.integers(1, 8))
    inside = decoded[start:start + size]
    candidates = [*extra, inside] if data.draw(st.booleans()) and "\ufffd" not in inside else extra
    candidates = [s for s in candidates if "\ufffd" not in s]
    assume(candidates)
    assert first_stop(tokens, candidates, tok.decode, pieces) == first_stop_full(tokens, candidates, tok.decode)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(st.one_of(st.integers(0, 2615), st.integers(4, 259)), min_size=1, max_size=60), stop=stops)
def test_the_window_agrees_on_arbitrary_piece_sequences(tok, pieces, ids, stop):
    """Random ids: cut byte sequences anywhere, special pieces, leading spaces."""
    assume("\ufffd" not in stop)
    assert first_stop(ids, [stop], tok.decode, pieces) == first_stop_full(ids, [stop], tok.decode)


def test_a_long_generation_decodes_a_window_not_the_whole_text(tok):
    tokens = tok.encode("日本の東京で質問に回答した。" * 40, add_special_tokens=False)[:256]
    checker = StopChecker(["###", "\n\n"], tok.decode, byte_piece_ids(tok))
    for t in range(1, len(tokens) + 1):
        assert not checker.hit(tokens[:t])
    # Each step decodes one window of 4 pieces per character of the longest stop, plus the margin
    # and the new piece on its own: 17 here, against 128.5 on average for the whole generation.
    assert checker.decoded_tokens <= len(tokens) * (BYTES_PER_CHAR * 3 + UNSTABLE + 1)
    assert checker.decoded_tokens < len(tokens) * (len(tokens) + 1) // 2 / 7


def test_no_stop_strings_never_stop_and_empty_ones_are_ignored(tok):
    checker = StopChecker(["", ""], tok.decode)
    assert not checker.hit(tok.encode("あ", add_special_tokens=False))
    assert first_stop([1, 2, 3], [], tok.decode) is None


def test_a_stop_string_with_a_replacement_character_is_refused(tok):
    with pytest.raises(ValueError, match="U\\+FFFD"):
        StopChecker(["\ufffd"], tok.decode)
