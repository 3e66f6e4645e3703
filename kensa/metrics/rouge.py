"""ROUGE-2 for XL-Sum-ja, as the jp-stable harness computes it (spec §4.2).

Per doc: ``rouge_score.rouge_scorer.RougeScorer(["rouge2"], tokenizer=T).score(target=summary,
prediction=generation)`` F-measure (no stemming, no sentence splitting). Over docs:
``rouge_score.scoring.BootstrapAggregator()`` with its defaults (1000 resamples drawn with
``np.random.choice``, 95% interval), reported value ``mid.fmeasure * 100``: the bootstrap median of
the mean F, close to but not exactly the mean.

Which tokenizer ``T``: the harness's docstring says MeCab, but ``XLSumJa.LOAD_TOKENIZER = True`` makes
the evaluator replace it with the evaluated model's HF tokenizer, so the published ``rouge2`` is
computed on ``tokenizer.tokenize`` pieces (kensa's ``rouge2``). ``mecab_tokens`` is the documented
intent, the harness's ``MecabTokenizer`` (kensa's ``rouge2_mecab``).

The bootstrap's random draws: the harness calls ``np.random.seed(1234)`` once at the start of
``simple_evaluate`` and nothing on the jp-stable branch draws from numpy's global generator before
the aggregation, so the first XL-Sum aggregation of a harness run starts from the state of
``seed(1234)``. :func:`bootstrap_mid` therefore seeds 1234 right before aggregating (every call: a
kensa result equals a harness run of that one task variant; a second XL-Sum variant in the *same*
harness run would continue the stream and can differ in the last digits) and restores numpy's
global state afterwards, so nothing else in the process sees a change.

rouge_score, numpy's bootstrap and fugashi are imported on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

HARNESS_NUMPY_SEED = 1234
"""``np.random.seed`` of the harness's ``simple_evaluate``."""


class _Tokenizer:
    """The object ``RougeScorer(tokenizer=...)`` wants: anything with ``tokenize(text) -> list[str]``."""

    def __init__(self, tokenize: Callable[[str], list[str]]):
        self._tokenize = tokenize

    def tokenize(self, text: str) -> list[str]:
        return list(self._tokenize(text))


def rouge2_f(target: str, prediction: str, tokenize: Callable[[str], list[str]]) -> float:
    """ROUGE-2 F-measure (0..1) of ``prediction`` against ``target``, bigrams of ``tokenize``'s tokens.

    0.0 when either side has fewer than two tokens (no bigram), as rouge_score scores it."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge2"], tokenizer=_Tokenizer(tokenize))
    return float(scorer.score(target, prediction)["rouge2"].fmeasure)


def mecab_tokens(text: str) -> list[str]:
    """The harness's ``MecabTokenizer.tokenize``: emoji removal, ``neologdn.normalize``, whitespace
    collapsed, then MeCab (fugashi, unidic-lite) wakati split. Punctuation is kept (unlike JaSQuAD F1)."""
    from kensa.metrics.jasquad import _tagger, normalize_answer

    return _tagger().parse(normalize_answer(text)).split()


def bootstrap_mid(values: Sequence[float]) -> float:
    """``BootstrapAggregator().aggregate()[...].mid`` of per-doc scores, numpy seeded as the harness is.

    kensa passes the per-doc F x 100; the aggregator resamples doc indices only (the draws do not
    depend on the values) and takes means and a linearly interpolated percentile, so this equals the
    harness's ``mid.fmeasure * 100`` up to float rounding (~1e-13 relative). numpy's global random
    state is the same after the call as before it."""
    if len(values) == 0:
        raise ValueError("bootstrap_mid of no values")
    import numpy as np
    from rouge_score import scoring

    aggregator = scoring.BootstrapAggregator()
    for v in values:
        # Three equal columns: the matrix has the harness's (n, 3) shape, so its column means are
        # summed in the same order as the harness's fmeasure column.
        aggregator.add_scores({"rouge2": scoring.Score(precision=v, recall=v, fmeasure=v)})
    state = np.random.get_state()
    try:
        np.random.seed(HARNESS_NUMPY_SEED)
        result = aggregator.aggregate()
    finally:
        np.random.set_state(state)
    return float(result["rouge2"].mid.fmeasure)


# -- ROUGE-1/2/L for the QA suite ---------------------------------------------------------------------

QA_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


class MecabTokenizer:
    """The tokenizer object ``RougeScorer(tokenizer=...)`` calls: the QA normaliser (NFKC, neologdn), then
    MeCab morphemes from fugashi with unidic-lite. rouge_score's own tokenizer keeps only ``[a-z0-9]``
    tokens, so Japanese would score 0 without it."""

    def tokenize(self, text: str) -> list[str]:
        from kensa.metrics.jasquad import _tagger
        from kensa.metrics.qa_text import normalise_v1

        return _tagger().parse(normalise_v1(text)).split()


_QA_SCORER = None


def qa_rouge(reference: str, prediction: str) -> dict[str, float]:
    """``rouge1_ja``, ``rouge2_ja`` and ``rougeL_ja``: ROUGE-1, ROUGE-2 and ROUGE-L F-measures (0-100) of ``prediction`` against ``reference`` over MeCab
    tokens (``score(target, prediction)``: the reference goes first)."""
    global _QA_SCORER
    if _QA_SCORER is None:
        from rouge_score import rouge_scorer

        _QA_SCORER = rouge_scorer.RougeScorer(list(QA_ROUGE_TYPES), tokenizer=MecabTokenizer())
    scores = _QA_SCORER.score(reference, prediction)
    return {f"{name}_ja": 100.0 * float(scores[name].fmeasure) for name in QA_ROUGE_TYPES}
