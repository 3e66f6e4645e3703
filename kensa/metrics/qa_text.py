"""Answer normalisation, exact match and character F1 for the QA suite (``kensa.tasks.qa``).

The normaliser is versioned, because a score means nothing without it and users' pipelines change
it: version ``1`` is the users' TSV preprocessing (newlines removed, Unicode NFKC, then
``neologdn.normalize``; no lower-casing, no punctuation removal). Exact match compares normalised
strings. Character F1 counts the characters the normalised strings share (as a multiset, whitespace
left out), the character-level F1 JGLUE's JSQuAD baselines report; it needs no tokenizer, so no
dictionary choice can move it. Per question the best score over its gold answers counts, on a 0-100
scale like the harness's JSQuAD metrics.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence


def normalise_v1(text: str) -> str:
    import neologdn

    text = text.replace("\r", "").replace("\n", "")
    return neologdn.normalize(unicodedata.normalize("NFKC", text))


NORMALISERS: dict[str, Callable[[str], str]] = {"1": normalise_v1}
"""Normaliser version -> function. A new rule is a new version; an old version never changes."""


def normaliser(version: str) -> Callable[[str], str]:
    if version not in NORMALISERS:
        raise KeyError(f"no normaliser version {version!r} (known: {', '.join(NORMALISERS)})")
    return NORMALISERS[version]


def exact_match(prediction: str, gold: str, normalise: Callable[[str], str] = normalise_v1) -> float:
    return 100.0 * (normalise(prediction) == normalise(gold))


def char_f1(prediction: str, gold: str, normalise: Callable[[str], str] = normalise_v1) -> float:
    """F1 over the characters (a multiset, whitespace left out) of the normalised strings, 0-100."""
    pred = [c for c in normalise(prediction) if not c.isspace()]
    ref = [c for c in normalise(gold) if not c.isspace()]
    if not pred and not ref:
        return 100.0
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 100.0 * 2 * precision * recall / (precision + recall)


def best(metric: Callable[..., float], prediction: str, golds: Sequence[str],
         normalise: Callable[[str], str] = normalise_v1) -> float:
    if not golds:
        raise ValueError("a question needs at least one gold answer")
    return max(metric(prediction, g, normalise) for g in golds)


def ends_as_question(text: str) -> bool:
    """The question-form check: after trailing whitespace and a closing 。 or ．, the text ends with
    ？, ? or か (JSQuAD writes both 「…どこか。」 and 「…どこですか？」)."""
    stripped = text.rstrip()
    while stripped and stripped[-1] in "。．.":
        stripped = stripped[:-1].rstrip()
    return stripped.endswith(("？", "?", "か"))
