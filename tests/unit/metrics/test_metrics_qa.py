"""QA-suite metrics against hand-computed values, and which MeCab dictionary each one uses."""

from __future__ import annotations

import math
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kensa.metrics.qa_text import char_f1, ends_as_question, exact_match, normalise_v1

# -- BLEU (sacrebleu ja-mecab) ---------------------------------------------------------------------------

def test_bleu_on_two_short_pairs_worked_by_hand():
    from kensa.metrics.bleu_ja import corpus_bleu

    # hyp 今日 は 天気 が 良い です ね (7 tokens), ref the same without ね (6): precisions 6/7, 5/6, 4/5, 3/4,
    # brevity penalty 1: BLEU = (6/7 * 5/6 * 4/5 * 3/4) ** (1/4) = (3/7) ** 0.25 = 80.91.
    assert corpus_bleu(["今日 は 天気 が 良い です"], ["今日 は 天気 が 良い です ね"]) == pytest.approx(
        100 * (3 / 7) ** 0.25, abs=1e-9)
    # Swapped: the hypothesis is shorter, precisions 6/6 .. 3/3, brevity penalty exp(1 - 7/6).
    assert corpus_bleu(["今日 は 天気 が 良い です ね"], ["今日 は 天気 が 良い です"]) == pytest.approx(
        100 * math.exp(1 - 7 / 6), abs=1e-9)
    assert corpus_bleu(["山梨県の県庁所在地はどこですか？"], ["山梨県の県庁所在地はどこですか？"]) == pytest.approx(100.0)


def test_corpus_bleu_from_cached_statistics_equals_sacrebleus_corpus_score():
    from sacrebleu.metrics import BLEU

    from kensa.metrics.bleu_ja import corpus_bleu

    refs = ["みどり町の名物は何か。", "青葉鉄道の全長は何キロか。", "館長は誰か。", "休館日は何曜日か。"]
    hyps = ["みどり町の名物は何ですか？", "青葉鉄道は何キロか。", "", "休館日は何曜日か。"]
    want = BLEU(tokenize="ja-mecab").corpus_score(hyps, [refs]).score
    assert corpus_bleu(refs, hyps) == pytest.approx(want, abs=1e-9)


def test_bleu_uses_ipadic_and_records_its_signature():
    import ipadic

    from kensa.metrics.bleu_ja import signature, tokenize, tokenizer_dictionary

    info = tokenizer_dictionary()
    assert info["filename"].startswith(ipadic.DICDIR) and info["size"] == 392126
    assert "tok:ja-mecab-" in signature() and signature().endswith("-IPA|smooth:exp|version:2.6.0")
    # IPAdic keeps 深海魚 whole; unidic-lite (ROUGE, hallucination) splits it: two dictionaries, two answers.
    assert tokenize("深海魚は、深海に住む") == "深海魚 は 、 深海 に 住む"


def test_rouge_and_hallucination_use_unidic_lite():
    import unidic_lite

    from kensa.metrics.hallucination import dictionary
    from kensa.metrics.rouge import MecabTokenizer

    assert dictionary()["filename"].startswith(unidic_lite.DICDIR)
    assert MecabTokenizer().tokenize("深海魚は、深海に住む") == ["深海", "魚", "は", "、", "深海", "に", "住む"]


# -- ROUGE ------------------------------------------------------------------------------------------

def test_rouge_on_a_short_pair_worked_by_hand():
    from kensa.metrics.rouge import qa_rouge

    # cand 今日 は わるい 天気 だ (5), ref 今日 は 天気 だ (4). ROUGE-1: 4 common, P 4/5, R 1, F 8/9.
    # ROUGE-2: cand bigrams 4, ref 3, common (今日 は), (天気 だ): P 1/2, R 2/3, F 4/7. ROUGE-L: LCS 4, F 8/9.
    got = qa_rouge("今日 は 天気 だ", "今日 は わるい 天気 だ")
    assert got == pytest.approx({"rouge1_ja": 800 / 9, "rouge2_ja": 400 / 7, "rougeL_ja": 800 / 9})


def test_rouge_scores_japanese_where_rouge_scores_default_tokenizer_gives_zero():
    from rouge_score import rouge_scorer

    from kensa.metrics.rouge import qa_rouge

    text = "山梨県の県庁所在地はどこですか？"
    assert rouge_scorer.RougeScorer(["rougeL"]).score(text, text)["rougeL"].fmeasure == 0.0
    assert qa_rouge(text, text)["rougeL_ja"] == 100.0


# -- char F1, EM, the normaliser, the question form ------------------------------------------------------

def test_char_f1_worked_by_hand():
    # 甲府市 vs 甲府: common 2, P 2/2, R 2/3, F 0.8.
    assert char_f1("甲府", "甲府市") == pytest.approx(80.0)
    # 四十キロ vs 四キロメートル: multiset common {四, キ, ロ} = 3; P 3/4, R 3/7, F = 6/11.
    assert char_f1("四十キロ", "四キロメートル") == pytest.approx(100 * 6 / 11)
    assert char_f1("", "甲府市") == 0.0 and char_f1("甲府 市", "甲府市") == 100.0


def test_exact_match_after_the_normaliser():
    assert exact_match("１９６４年", "1964年") == 100.0  # NFKC
    assert exact_match("ｶﾚｰﾗｲｽ", "カレーライス") == 100.0  # half-width katakana
    assert exact_match("甲府\n市", "甲府市") == 100.0  # newlines removed
    assert exact_match("Kofu", "kofu") == 0.0  # no lower-casing


def _may_compose(c: str) -> bool:
    """NFKC maps ``c`` to text with a combining mark or a conjoining Hangul jamo (゛ U+309B -> " " + U+3099,
    ﾞ U+FF9E -> U+3099, ´ U+00B4 -> " " + U+0301, ﾡ U+FFA1 -> U+11A8, ...): 2,741 characters below U+30000."""
    return any(unicodedata.combining(x) or unicodedata.category(x) in ("Mn", "Mc", "Me") or "\u1100" <= x <= "\u11ff"
               for x in unicodedata.normalize("NFKC", c))


MAY_COMPOSE = [chr(c) for c in range(0x30000) if not 0xD800 <= c < 0xE000 and _may_compose(chr(c))]


# Outside MAY_COMPOSE, 400,000 random strings (seeded; half from kana, ASCII and full/half-width forms) found
# no counterexample; with it, hypothesis found one in CI ("Ï´").
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters=MAY_COMPOSE), max_size=30))
def test_normaliser_is_idempotent_and_f1_of_itself_is_100(text):
    once = normalise_v1(text)
    assert normalise_v1(once) == once
    assert "\n" not in once and "\r" not in once
    assert char_f1(text, text) == 100.0


def test_normaliser_1_is_not_idempotent_where_removed_spaces_let_marks_compose():
    """Version 1 is the users' preprocessing (NFKC, then neologdn) and keeps its known flaw: neologdn drops a
    space that NFKC left before a combining mark, or between kana and a half-width voiced mark, and the mark
    then sits after a character a second NFKC would compose it with. So "か゛" does not match "が". Fixing
    it would be a new normaliser version (ending in NFKC), not a change to this one."""
    assert {"\u309b", "\u309c", "\uff9e", "\uff9f", "\u00b4"} <= set(MAY_COMPOSE) and "が" not in MAY_COMPOSE
    assert normalise_v1("か゛") == "か\u3099" and normalise_v1(normalise_v1("か゛")) == "が"
    assert exact_match("か゛", "が") == 0.0
    assert normalise_v1("か ﾞ") == "か\u3099"  # the half-width mark after a space
    assert normalise_v1("Ï´") == "Ï\u0301" and normalise_v1("Ï\u0301") == "\u1e2e"


@given(st.text(max_size=20), st.text(max_size=20))
def test_char_f1_is_symmetric_and_bounded(a, b):
    assert char_f1(a, b) == pytest.approx(char_f1(b, a))
    assert 0.0 <= char_f1(a, b) <= 100.0


@pytest.mark.parametrize("text, ok", [("山梨県の県庁所在地はどこですか？", True), ("どこか。", True), ("何ですか?", True),
                                      ("甲府市です。", False), ("", False), ("何キロか 。", True)])
def test_question_form(text, ok):
    assert ends_as_question(text) is ok


# -- hallucination -------------------------------------------------------------------------------------

def test_the_definitions_own_examples():
    from kensa.metrics.hallucination import hallucination

    assert hallucination("今日はわるい天気だ", ["今日は天気だ"]).hallucinated == ["わるい"]
    assert hallucination("今日は天気だ", ["今日はわるい天気だ"]).hallucinated == []
    assert hallucination("今日はわるい天気だ", ["今日はよい天気だ"]).hallucinated == ["わるい"]
    # adding the word to a source supports it
    assert hallucination("今日はわるい天気だ", ["今日は天気だ", "わるい予報"]).hallucinated == []


def test_question_words_and_the_lenient_lemma_variant():
    from kensa.metrics.hallucination import hallucination, lemma_hallucination

    context, answer = "山梨県の県庁所在地は甲府市です。", "甲府市"
    assert hallucination("山梨県の県庁所在地はどこですか", [context, answer]).hallucinated == []
    h = hallucination("長野県の県庁所在地はどこですか", [context, answer])
    assert h.hallucinated == ["長野"] and h.words == 5 and h.rate == pytest.approx(20.0)
    # どう is an adverb (a content word): without the stop words every such question would be flagged
    assert hallucination("湖面はどうなるか", ["湖面が凍る"], stop_words=()).hallucinated == ["どう"]
    assert hallucination("湖面はどうなるか", ["湖面が凍る"]).hallucinated == []
    # The lenient variant (reported, not gated) accepts a lemma match and a substring of a source; the
    # users' definition compares surfaces of tokens and accepts neither.
    assert lemma_hallucination("いつ開かれるか", ["毎年開く祭り"]).hallucinated == []
    assert hallucination("いつ開かれるか", ["毎年開く祭り"]).hallucinated == ["開か"]
    assert lemma_hallucination("菜が咲く", ["菜の花が咲く"]).hallucinated == []
    assert hallucination("菜が咲く", ["菜の花が咲く"]).hallucinated == ["菜"]
    assert lemma_hallucination("", ["何か"]).rate is None


def test_gated_bleu_compares_normalised_text_and_raw_bleu_is_reported_beside_it():
    from kensa.metrics.core import metric_spec

    # A JSQuAD question ends in a full-width ？; a model trained on normalised targets writes ?.
    refs, hyps = ["山梨県の県庁所在地はどこですか？", "ひかり駅は１９６４年に開業した"], ["山梨県の県庁所在地はどこですか?",
                                                                   "ひかり駅は1964年に開業した"]
    assert metric_spec("bleu").compute(refs, hyps) == pytest.approx(100.0)
    assert metric_spec("bleu_raw").compute(refs, hyps) < 90.0
    assert metric_spec("bleu_raw").compute(refs, refs) == pytest.approx(100.0)
