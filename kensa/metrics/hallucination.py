"""Hallucination: the share of an output's content words found in neither its sources (the context and,
for question generation, the intended answer).

* Content words are nouns, verbs, adjectives, adjectival nouns (形状詞) and adverbs by UniDic's first
  part of speech, from fugashi with **unidic-lite** (kensa's MeCab dictionary); words UniDic marks as
  not independent (非自立可能: する, ある, いる, こと, ...) are function words here.
* Words are compared by lemma; a word whose lemma UniDic cannot give (an unknown word) falls back to
  its surface form.
* A word is supported when its lemma is among the sources' lemmas, or when its surface occurs as a
  substring of the sources (a compound the tagger splits differently in the two texts).
* A stop-word list, by default the question words (何, どこ, いつ, 誰, ...), is never counted: every
  generated question holds one and no context does.

Both texts pass the QA normaliser first (NFKC, neologdn). Each sample keeps its hallucinated words
(surface forms, in order); the rate is hallucinated / content words, 0 when there are no content words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from kensa.metrics.qa_text import normalise_v1

CONTENT_POS = frozenset({"名詞", "動詞", "形容詞", "形状詞", "副詞"})
FUNCTION_POS2 = frozenset({"非自立可能"})
QUESTION_WORDS = frozenset({
    "何", "なに", "なん", "何処", "どこ", "何時", "いつ", "誰", "だれ", "どれ", "どの", "何故", "なぜ", "どう",
    "如何", "どんな", "幾つ", "いくつ", "いくら", "幾", "幾ら", "どちら", "どっち", "どなた", "何方", "何れ",
})
"""The default stop words: interrogatives, by surface and by UniDic lemma (どこ's lemma is 何処)."""


@lru_cache(maxsize=1)
def tagger():
    import fugashi  # MeCab with unidic-lite

    return fugashi.Tagger()


@dataclass(frozen=True)
class Word:
    surface: str
    lemma: str
    """UniDic's lemma, or the surface form where it has none (an unknown word)."""


def content_words(text: str, stop_words: Iterable[str] = QUESTION_WORDS) -> list[Word]:
    stops = frozenset(stop_words)
    out = []
    for node in tagger()(normalise_v1(text)):
        feature = node.feature
        if feature.pos1 not in CONTENT_POS or feature.pos2 in FUNCTION_POS2:
            continue
        lemma = feature.lemma or node.surface
        if node.surface in stops or lemma in stops:
            continue
        out.append(Word(node.surface, lemma))
    return out


@dataclass(frozen=True)
class Hallucination:
    words: int
    """Content words in the output."""
    hallucinated: list[str]
    """Surface forms of the content words found in no source, in order."""

    @property
    def rate(self) -> float:
        return len(self.hallucinated) / self.words if self.words else 0.0


def hallucination(output: str, sources: Sequence[str], stop_words: Iterable[str] = QUESTION_WORDS) -> Hallucination:
    """Which content words of ``output`` no source supports (see the module docstring)."""
    stops = frozenset(stop_words)
    words = content_words(output, stops)
    lemmas = {n.feature.lemma or n.surface for s in sources for n in tagger()(normalise_v1(s))}
    joined = "\n".join(normalise_v1(s) for s in sources)
    found = [w.surface for w in words if w.lemma not in lemmas and w.surface not in joined]
    return Hallucination(len(words), found)


def dictionary() -> dict[str, object]:
    """The MeCab dictionary behind these words (unidic-lite's ``sys.dic``)."""
    info = tagger().dictionary_info[0]
    return {"filename": info["filename"], "size": int(info["size"]), "charset": info["charset"]}
