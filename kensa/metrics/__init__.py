"""Metrics: ``core`` (accuracy, the class-balanced and correlation metrics, their specs),
``jasquad`` (the harness's JaSQuAD exact match and F1), ``rouge`` (ROUGE on model or MeCab tokens)."""
