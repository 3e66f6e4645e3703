"""JaSQuAD exact match and F1 (spec §4.1) against hand-worked cases, and their properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kensa.metrics.jasquad import exact_match, f1, normalize_answer, squad_scores, tokens

pytest.importorskip("fugashi")


@pytest.mark.parametrize(("pred", "gold", "em"), [
    ("東京都", "東京都", 1.0),
    ("  東京都 ", "東京都", 1.0),          # whitespace fix strips the ends
    ("東京都。", "東京都", 0.0),           # EM keeps punctuation
    ("ＡＢＣ", "ABC", 1.0),                # neologdn: full-width ASCII -> half-width
    ("ｶﾀｶﾅ", "カタカナ", 1.0),            # neologdn: half-width kana -> full-width
    ("東京😀", "東京", 1.0),               # emoji removed
    ("Tokyo", "tokyo", 0.0),               # no lower-casing
])
def test_exact_match_normalises_like_the_harness(pred, gold, em):
    assert exact_match(pred, gold) == em


def test_f1_counts_common_mecab_morphemes():
    assert tokens("東京都に住む") == ["東京", "都", "に", "住む"]
    # common {東京, 都} = 2; P = 2/4, R = 2/2; F1 = 2 * 0.5 * 1 / 1.5 = 2/3
    assert f1("東京都に住む", "東京都") == pytest.approx(2 / 3)
    assert f1("東京都。", "東京都") == 1.0   # the one-character "。" token is dropped before F1
    assert f1("大阪", "東京") == 0.0
    # the best gold answer counts, on a 0-100 scale
    assert squad_scores("大阪", ["東京", "大阪"]) == {"exact_match": 100.0, "f1": 100.0}
    assert squad_scores("東京都に住む", ["大阪", "東京都"]) == {"exact_match": 0.0, "f1": pytest.approx(200 / 3)}
    with pytest.raises(ValueError, match="at least one gold"):
        squad_scores("x", [])


JAPANESE = st.text(alphabet=st.sampled_from(list("東京都大阪にはのをがでとへ住むカタナｶﾀﾅＡＢ12３ 　。、")), max_size=12)


@settings(max_examples=150)
@given(JAPANESE, JAPANESE)
def test_f1_is_symmetric_and_bounded_and_em_is_reflexive(a, b):
    assert 0.0 <= f1(a, b) <= 1.0
    assert f1(a, b) == pytest.approx(f1(b, a))
    assert exact_match(a, a) == 1.0
    if tokens(a):
        assert f1(a, a) == 1.0
    assert normalize_answer(a) == " ".join(normalize_answer(a).split())
