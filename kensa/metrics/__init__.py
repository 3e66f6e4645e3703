"""Metrics, which never touch a model: :mod:`.core` (accuracy, the class-balanced and correlation metrics,
every metric's spec and the aggregation), :mod:`.jasquad` (the harness's JaSQuAD exact match and F1),
:mod:`.rouge` (ROUGE on model or MeCab tokens), :mod:`.bleu_ja` (sacrebleu's BLEU with ``ja-mecab``),
:mod:`.qa_text` (the QA suite's answer normalisation, exact match and character F1) and :mod:`.hallucination`
(content words found in none of an output's sources)."""
