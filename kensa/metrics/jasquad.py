"""Japanese QA metrics: the JaSQuAD exact match and F1 of the jp-stable harness (spec §4.1).

``normalize_answer`` removes emoji, applies ``neologdn.normalize`` and collapses whitespace (no
lower-casing, no punctuation removal). Exact match compares the normalised strings. F1 counts
common MeCab morphemes (fugashi with unidic-lite, as the harness's ``ja`` extra installs),
after dropping tokens that are exactly one punctuation character. Per question the best score
over all gold answers counts; a corpus score is 100 x the mean.

fugashi and neologdn are imported on first use: a suite that never scores Japanese QA pays nothing.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

# The harness's emoji ranges, removed after emoji.is_emoji: faces, symbols, transport, flags, dingbats.
_EMOJI_RANGES = re.compile("[\U0001F600-\U0001F64F\U0001F300-\U0001F5FF\U0001F680-\U0001F6FF"
                           "\U0001F1E0-\U0001F1FF\u2702-\u27B0]+")
# One-character tokens dropped before F1: the harness's list of Japanese punctuation plus string.punctuation.
PUNCTUATION = frozenset("！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕"
                        "〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏.") | frozenset(string.punctuation)


@lru_cache(maxsize=1)
def _tagger():
    import fugashi  # MeCab with unidic-lite's dictionary

    return fugashi.Tagger("-Owakati")


def normalize_answer(text: str) -> str:
    import emoji
    import neologdn

    text = "".join(c for c in text if not emoji.is_emoji(c))
    text = _EMOJI_RANGES.sub("", text)
    text = neologdn.normalize(text)
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    """MeCab morphemes of the normalised text, one-character punctuation dropped."""
    return [t for t in _tagger().parse(normalize_answer(text)).split() if t not in PUNCTUATION]


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    pred, ref = tokens(prediction), tokens(gold)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(metric, prediction: str, golds: Sequence[str]) -> float:
    """The harness scores a question by its best gold answer."""
    if not golds:
        raise ValueError("a question needs at least one gold answer")
    return max(metric(prediction, g) for g in golds)


def squad_scores(prediction: str, golds: Sequence[str]) -> dict[str, float]:
    """Per-question ``exact_match`` and ``f1`` on the harness's 0–100 scale."""
    return {"exact_match": 100.0 * best_over_golds(exact_match, prediction, golds),
            "f1": 100.0 * best_over_golds(f1, prediction, golds)}
