"""BLEU for Japanese with sacrebleu's ``ja-mecab`` tokenizer.

sacrebleu tokenizes with MeCab and **IPAdic** from the ``ipadic`` package (it asserts the IPA
dictionary's size, 392,126 entries, and that no user dictionary is loaded); kensa's other MeCab
tokens (ROUGE, hallucination, JSQuAD F1) come from fugashi with **unidic-lite**, a different
dictionary. :func:`tokenizer_dictionary` reports which file this BLEU uses, and the signature
(``tok:ja-mecab-0.996-IPA``, the sacrebleu version, smoothing) goes into every result.

Corpus BLEU is computed from each pair's sufficient statistics (n-gram matches and totals, lengths),
summed and scored by sacrebleu itself, exactly as ``corpus_score`` does; the statistics of a
(reference, hypothesis) pair are cached, so the gate's paired bootstrap, which rescored the corpus
thousands of times, re-tokenizes nothing. ``tests/unit/metrics/test_metrics_qa.py`` checks both paths agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def bleu_metric() -> Any:
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize="ja-mecab")


@lru_cache(maxsize=1)
def sentence_metric() -> Any:
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize="ja-mecab", effective_order=True)


def signature() -> str:
    """sacrebleu's signature of the corpus BLEU, e.g. ``nrefs:1|case:mixed|eff:no|tok:ja-mecab-0.996-IPA|smooth:exp|version:2.6.0``."""
    metric = bleu_metric()
    if getattr(metric, "_ref_cache", None) is None and not getattr(metric, "n_refs", None):
        metric.corpus_score(["。"], [["。"]])  # the signature names the reference count: one
    return str(metric.get_signature())


def tokenizer_dictionary() -> dict[str, Any]:
    """The MeCab dictionary behind ``ja-mecab``: its file, size and charset (IPAdic, 392,126 entries)."""
    info = bleu_metric().tokenizer.tagger.dictionary_info()
    return {"filename": info.filename, "size": int(info.size), "charset": info.charset}


def tokenize(text: str) -> str:
    """The text as BLEU sees it: IPAdic MeCab tokens joined by spaces."""
    return bleu_metric().tokenizer(text.rstrip())


@lru_cache(maxsize=1 << 16)
def _pair_stats(reference: str, hypothesis: str) -> tuple[int, ...]:
    metric = bleu_metric()
    return tuple(int(x) for x in metric._extract_corpus_statistics([hypothesis], [[reference]])[0])


def corpus_bleu(references: Sequence[Any], hypotheses: Sequence[Any]) -> float:
    """Corpus BLEU (0-100) of one hypothesis per reference. An unparsed hypothesis (None) counts as empty."""
    if len(references) != len(hypotheses) or not len(references):
        raise ValueError(f"need as many hypotheses as references, got {len(hypotheses)} and {len(references)}")
    total = None
    for ref, hyp in zip(references, hypotheses, strict=True):
        stats = _pair_stats(str(ref), "" if hyp is None else str(hyp))
        total = list(stats) if total is None else [a + b for a, b in zip(total, stats, strict=True)]
    return float(bleu_metric()._compute_score_from_stats(total).score)


def sentence_bleu(reference: str, hypothesis: str) -> float:
    """Sentence BLEU (0-100, effective order, sacrebleu's default exponential smoothing): per sample, not gated."""
    return float(sentence_metric().sentence_score(hypothesis, [reference]).score)


def provenance() -> dict[str, Any]:
    """What the QA suite's text metrics depend on, for the results: the BLEU signature and each metric's
    MeCab dictionary (IPAdic for BLEU, unidic-lite for ROUGE and hallucination)."""
    from kensa.metrics.hallucination import dictionary

    return {"bleu_signature": signature(), "bleu_dictionary": tokenizer_dictionary(),
            "rouge_dictionary": dictionary(), "hallucination_dictionary": dictionary()}
