"""Hallucination: the content words of an output that occur as no word of its sources (the context and,
for question generation, the intended answer), as the users' ``check_hallucination`` defines it.

* Words are MeCab tokens from fugashi with **unidic-lite** (kensa's MeCab dictionary), after the QA
  normaliser (version 1: newlines removed, NFKC, neologdn) on both sides.
* Content words are nouns, verbs, adjectives, adjectival nouns (形状詞) and adverbs by UniDic's first
  part of speech; words UniDic marks as not independent (非自立可能: する, ある, いる, こと, ...) are
  function words here.
* A content word is supported only when its **surface form** is the surface of a token of a source: a
  spelling variant (わるい for 悪い, 表記ゆれ) or a paraphrase is hallucinated, and so is a word that
  is only part of a source token (京都 against 東京都's 東京 + 都).
* Undecodable output counts: a token holding U+FFFD (or a control, surrogate, private-use or
  unassigned character) is a hallucinated word whatever its part of speech.
* A stop-word list, by default the question words (何, どこ, いつ, 誰, ...), is never counted, in the
  rate's numerator or its denominator: every generated question holds one and no context does.

Per output: the hallucinated words (surfaces, in order) and the rate, hallucinated / content words x
100 (0 when there are none). An empty output has no rate (None): the suite counts it in ``empty``.

:func:`lemma_hallucination` is the earlier, more lenient variant (words compared by UniDic lemma, a
word that is a substring of a source supported), kept as the reported, ungated ``hallucination_lemma``.
"""

from __future__ import annotations

import unicodedata
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
UNDECODABLE_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn"})


@lru_cache(maxsize=1)
def tagger():
    import fugashi  # MeCab with unidic-lite

    return fugashi.Tagger()


def undecodable(surface: str) -> bool:
    """Whether a token is (part of) text that did not decode: U+FFFD, or a control, surrogate,
    private-use or unassigned character."""
    return any(c == "\ufffd" or unicodedata.category(c) in UNDECODABLE_CATEGORIES for c in surface)


def _stopped(node, stops: frozenset[str]) -> bool:
    return node.surface in stops or (node.feature.lemma or node.surface) in stops


def _content(node) -> bool:
    return node.feature.pos1 in CONTENT_POS and node.feature.pos2 not in FUNCTION_POS2


def content_words(text: str, stop_words: Iterable[str] = QUESTION_WORDS) -> list[str]:
    """The surfaces of ``text``'s content words (and undecodable tokens), stop words left out."""
    stops = frozenset(stop_words)
    return [n.surface for n in tagger()(normalise_v1(text))
            if (undecodable(n.surface) or _content(n)) and not _stopped(n, stops)]


def source_tokens(sources: Sequence[str]) -> set[str]:
    """The surface of every token of every source (any part of speech), after the normaliser."""
    return {n.surface for s in sources for n in tagger()(normalise_v1(s))}


@dataclass(frozen=True)
class Hallucination:
    words: int
    """Content words in the output (stop words left out)."""
    hallucinated: list[str]
    """Surfaces of the content words that are no source token, in order."""
    empty: bool = False
    """The output is empty after the normaliser (and stripping whitespace): it has no rate."""

    @property
    def rate(self) -> float | None:
        """Hallucinated / content words x 100; 0 with no content words; None for an empty output."""
        if self.empty:
            return None
        return 100.0 * len(self.hallucinated) / self.words if self.words else 0.0


def hallucination(output: str, sources: Sequence[str], stop_words: Iterable[str] = QUESTION_WORDS) -> Hallucination:
    """The users' ``check_hallucination``: which content words of ``output`` are no token of ``sources``."""
    stops = frozenset(stop_words)
    if not normalise_v1(output).strip():
        return Hallucination(0, [], empty=True)
    words = content_words(output, stops)
    known = source_tokens(sources)
    return Hallucination(len(words), [w for w in words if undecodable(w) or w not in known])


def lemma_hallucination(output: str, sources: Sequence[str],
                        stop_words: Iterable[str] = QUESTION_WORDS) -> Hallucination:
    """The lenient variant: words compared by UniDic lemma (an unknown word by its surface), and a word
    that occurs as a substring of the joined sources supported."""
    stops = frozenset(stop_words)
    if not normalise_v1(output).strip():
        return Hallucination(0, [], empty=True)
    nodes = [n for n in tagger()(normalise_v1(output)) if _content(n) and not _stopped(n, stops)]
    lemmas = {n.feature.lemma or n.surface for s in sources for n in tagger()(normalise_v1(s))}
    joined = "\n".join(normalise_v1(s) for s in sources)
    found = [n.surface for n in nodes if (n.feature.lemma or n.surface) not in lemmas and n.surface not in joined]
    return Hallucination(len(nodes), found)


def dictionary() -> dict[str, object]:
    """The MeCab dictionary behind these words (unidic-lite's ``sys.dic``)."""
    info = tagger().dictionary_info[0]
    return {"filename": info["filename"], "size": int(info["size"]), "charset": info["charset"]}
