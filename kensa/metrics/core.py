"""Metrics and their standard errors, computed as the harness computes them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def argmax(values: Sequence[float]) -> int:
    """Index of the largest value; the first one on ties (like ``numpy.argmax``)."""
    if not values:
        raise ValueError("argmax of an empty sequence")
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def mean(xs: Sequence[float]) -> float:
    if not xs:
        raise ValueError("mean of no values")
    return sum(xs) / len(xs)


def mean_stderr(xs: Sequence[float]) -> float:
    """Sample standard deviation (ddof=1) over sqrt(n); NaN when n < 2, where it is undefined."""
    n = len(xs)
    if n < 2:
        return math.nan
    mu = mean(xs)
    var = sum((x - mu) ** 2 for x in xs) / (n - 1)
    return math.sqrt(var / n)


def multiple_choice_scores(loglikelihoods: Sequence[float], choices: Sequence[str], gold: int,
                           strict: bool = False) -> dict[str, float]:
    """``acc`` (argmax of summed log-probs) and ``acc_norm`` (divided by the choice's length in characters).

    ``strict``: ``acc`` is 1 only when the gold choice's log-likelihood is *strictly* greater than
    every other one, so a tie scores 0 (XWinograd, JBLiMP); otherwise a tie goes to the first index.
    ``pred`` is the argmax either way.
    """
    if len(loglikelihoods) != len(choices):
        raise ValueError(f"{len(loglikelihoods)} log-likelihoods for {len(choices)} choices")
    pred = argmax(loglikelihoods)
    if strict:
        won = all(loglikelihoods[gold] > ll for i, ll in enumerate(loglikelihoods) if i != gold)
        normed = [ll / len(c) for ll, c in zip(loglikelihoods, choices, strict=True)]
        return {"pred": pred, "pred_norm": argmax(normed), "acc": 1.0 if won else 0.0,
                "acc_norm": 1.0 if argmax(normed) == gold else 0.0}
    # An empty choice would divide by zero; the harness would crash there, we refuse earlier.
    normed = [ll / len(c) for ll, c in zip(loglikelihoods, choices, strict=True)]
    return {
        "pred": pred,
        "pred_norm": argmax(normed),
        "acc": 1.0 if pred == gold else 0.0,
        "acc_norm": 1.0 if argmax(normed) == gold else 0.0,
    }


def aggregate(per_doc: Sequence[dict[str, float]], names: Sequence[str]) -> dict[str, float]:
    """Each metric in the harness's key order: a per-doc metric gives ``{name: mean, name_stderr:
    stderr}``; a corpus metric (``METRICS[name].items == "corpus"``) is computed from every doc's
    ``gold`` and ``pred``, with ``name_stderr`` only where the harness has one (MCC: bootstrap)."""
    out: dict[str, float] = {}
    for name in names:
        spec = METRICS.get(name)
        if spec is not None and spec.items == "corpus":
            assert spec.compute is not None, name
            golds = [d["gold"] for d in per_doc]
            preds = [d["pred"] for d in per_doc]
            out[name] = float(spec.compute(golds, preds))
            if spec.bootstrap_stderr:
                out[f"{name}_stderr"] = bootstrap_stderr(spec.compute, golds, preds)
            continue
        # None: the doc has no value for this metric (an empty output has no hallucination rate); with no
        # value at all the score is 0 (the metric that counts those docs, ``empty``, is gated beside it).
        xs = [d[name] for d in per_doc if d[name] is not None] or [0.0] * bool(per_doc)
        out[name] = spec.reduce(xs) if spec is not None and spec.reduce is not None else mean(xs)
        out[f"{name}_stderr"] = mean_stderr(xs)
    return out


# --- corpus metrics over (gold, pred) pairs, as the harness's sklearn calls compute them ---------


def _confusion(golds: Sequence[int], preds: Sequence[int]) -> np.ndarray:
    """Confusion matrix (rows gold, columns pred) over the labels seen in either, sorted (sklearn's)."""
    g, p = np.asarray(golds, dtype=np.int64), np.asarray(preds, dtype=np.int64)
    if g.shape != p.shape or g.ndim != 1 or g.size == 0:
        raise ValueError(f"need equal, non-empty gold and pred lists, got {g.shape} and {p.shape}")
    labels = np.union1d(g, p)
    gi, pi = np.searchsorted(labels, g), np.searchsorted(labels, p)
    k = labels.size
    return np.bincount(gi * k + pi, minlength=k * k).reshape(k, k)


def balanced_accuracy(golds: Sequence[int], preds: Sequence[int]) -> float:
    """Harness ``balanced_mean`` over ``(acc, gold)``: per gold class (in first-seen order) the mean
    accuracy, then the plain mean of the classes. Classes only predicted, never gold, do not count."""
    if len(golds) != len(preds) or len(golds) == 0:
        raise ValueError("need equal, non-empty gold and pred lists")
    by_class: dict[int, list[float]] = {}
    for g, p in zip(golds, preds, strict=True):
        by_class.setdefault(int(g), []).append(1.0 if g == p else 0.0)
    avgs = [sum(v) / len(v) for v in by_class.values()]
    return sum(avgs) / len(avgs)


def matthews_corrcoef(golds: Sequence[int], preds: Sequence[int]) -> float:
    """``sklearn.metrics.matthews_corrcoef(golds, preds)`` (multiclass R_K; 0.0 when undefined)."""
    c = _confusion(golds, preds).astype(np.float64)
    t_sum, p_sum = c.sum(axis=1), c.sum(axis=0)
    n_correct, n = np.trace(c), c.sum()
    cov_ytyp = n_correct * n - np.dot(t_sum, p_sum)
    cov_ypyp = n * n - np.dot(p_sum, p_sum)
    cov_ytyt = n * n - np.dot(t_sum, t_sum)
    if cov_ypyp * cov_ytyt == 0:
        return 0.0
    return float(cov_ytyp / np.sqrt(cov_ytyt * cov_ypyp))


def macro_f1(golds: Sequence[int], preds: Sequence[int]) -> float:
    """``sklearn.metrics.f1_score(golds, preds, average="macro")``: the unweighted mean of each label's
    F1 = 2tp / (2tp + fp + fn) over the labels seen in gold or pred (0 for a label with no tp, fp, fn)."""
    c = _confusion(golds, preds).astype(np.float64)
    tp = np.diag(c)
    fp, fn = c.sum(axis=0) - tp, c.sum(axis=1) - tp
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1.mean())


def _parsed_pairs(golds: Sequence[Any], preds: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The (gold, pred) pairs whose prediction was parsed; an unparseable one (None or NaN) is left out."""
    g = np.asarray(golds, dtype=np.float64)
    p = np.asarray([np.nan if x is None else x for x in preds], dtype=np.float64)
    keep = np.isfinite(p)
    return g[keep], p[keep]


def _correlation(kind: str, golds: Sequence[Any], preds: Sequence[Any]) -> float:
    """``scipy.stats.pearsonr`` / ``spearmanr`` over the parsed pairs; 0.0 when undefined (fewer than 3
    parsed outputs, or a constant side), as MCC is 0.0 when undefined: no association can be shown."""
    g, p = _parsed_pairs(golds, preds)
    if g.size < 3 or np.all(g == g[0]) or np.all(p == p[0]):
        return 0.0
    from scipy import stats  # lazy: collection must not pay for scipy

    r = (stats.pearsonr if kind == "pearson" else stats.spearmanr)(g, p)[0]
    return float(r) if math.isfinite(r) else 0.0


def pearson(golds: Sequence[Any], preds: Sequence[Any]) -> float:
    return _correlation("pearson", golds, preds)


def spearman(golds: Sequence[Any], preds: Sequence[Any]) -> float:
    return _correlation("spearman", golds, preds)


def count_unparseable(golds: Sequence[Any], preds: Sequence[Any]) -> float:
    """How many outputs could not be read as a prediction: reported, never turned into a number."""
    return float(sum(1 for x in preds if x is None or (isinstance(x, float) and math.isnan(x))))


def _corpus_bleu(golds: Sequence[Any], preds: Sequence[Any]) -> float:
    """The QA suite's gated BLEU: both sides through the QA normaliser first, as every QA metric compares."""
    from kensa.metrics.bleu_ja import corpus_bleu  # lazy: sacrebleu and MeCab only when a QA suite runs
    from kensa.metrics.qa_text import normalise_v1

    return corpus_bleu([normalise_v1(str(g)) for g in golds], [None if p is None else normalise_v1(str(p)) for p in preds])


def _corpus_bleu_raw(golds: Sequence[Any], preds: Sequence[Any]) -> float:
    from kensa.metrics.bleu_ja import corpus_bleu

    return corpus_bleu(golds, preds)


def _rouge_mid(values: Sequence[float]) -> float:
    from kensa.metrics.rouge import bootstrap_mid  # lazy: rouge_score and nltk only when XL-Sum runs

    return bootstrap_mid(values)


BOOTSTRAP_ITERS = 2000
BOOTSTRAP_SEED = 1234


def bootstrap_stderr(metric: Callable[[Sequence[int], Sequence[int]], float], golds: Sequence[int],
                     preds: Sequence[int], iters: int = BOOTSTRAP_ITERS, seed: int = BOOTSTRAP_SEED) -> float:
    """Standard error of a corpus metric: the sample sd (ddof=1) of the metric over ``iters`` resamples
    of the docs with replacement. Seeded and vectorised (numpy); the harness draws 100,000 resamples
    with python's ``random`` instead, so the value agrees with its ``mcc_stderr`` only to about 2
    significant digits, never bit for bit. MCC's resamples are computed in one batch."""
    g, p = np.asarray(golds, dtype=np.int64), np.asarray(preds, dtype=np.int64)
    n = g.size
    if n < 2:
        return math.nan
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(iters, n))
    if metric is matthews_corrcoef:
        values = _mcc_batch(g[idx], p[idx])
    else:
        values = np.array([metric(g[i], p[i]) for i in idx])
    return float(np.std(values, ddof=1))


def _mcc_batch(g: np.ndarray, p: np.ndarray) -> np.ndarray:
    """MCC of each row of ``g``/``p`` (shape (B, n)), as :func:`matthews_corrcoef` computes one."""
    labels = np.union1d(g, p)
    k = labels.size
    b = g.shape[0]
    code = np.searchsorted(labels, g) * k + np.searchsorted(labels, p) + (np.arange(b) * k * k)[:, None]
    c = np.bincount(code.ravel(), minlength=b * k * k).reshape(b, k, k).astype(np.float64)
    t_sum, p_sum = c.sum(axis=2), c.sum(axis=1)
    n = c.sum(axis=(1, 2))
    n_correct = np.trace(c, axis1=1, axis2=2)
    cov_ytyp = n_correct * n - (t_sum * p_sum).sum(axis=1)
    cov_ypyp = n * n - (p_sum * p_sum).sum(axis=1)
    cov_ytyt = n * n - (t_sum * t_sum).sum(axis=1)
    denom = cov_ytyt * cov_ypyp
    return np.divide(cov_ytyp, np.sqrt(denom, where=denom > 0, out=np.ones_like(denom)),
                     out=np.zeros_like(denom), where=denom > 0)


@dataclass(frozen=True)
class MetricSpec:
    """How a metric is read by the gate: its direction, its scale and the shape of its per-item values."""

    name: str
    direction: str = "higher"
    """``higher`` or ``lower`` is better."""
    scale: float = 1.0
    """1.0 for a 0–1 score, 100.0 for a 0–100 score: "one point" is ``scale / 100``."""
    items: str = "binary"
    """``binary`` (0/1 per doc: exact McNemar), ``continuous`` (paired permutation) or ``corpus``
    (a statistic over all docs, such as a correlation: paired bootstrap)."""
    compute: Callable[[Sequence[int], Sequence[int]], float] | None = None
    """For a ``corpus`` metric over each doc's ``[gold, pred]``: the metric of (golds, preds)."""
    bootstrap_stderr: bool = False
    """Whether the results carry ``<name>_stderr`` from a bootstrap (the harness has one for MCC only)."""
    minimum: float = 0.0
    """The lowest valid value (MCC: -1)."""
    maximum: float | None = None
    """The highest valid value; None: ``scale`` (a count has no upper bound: ``math.inf``)."""
    partial: bool = False
    """Whether a doc may have no value (None: an empty output has no hallucination rate); such docs are left out
    of the mean and of the gate's pairs."""
    reduce: Callable[[Sequence[float]], float] | None = None
    """How per-doc values become the reported score; None: their mean (XL-Sum: a bootstrap median)."""

    @property
    def upper(self) -> float:
        return self.scale if self.maximum is None else self.maximum


METRICS = {spec.name: spec for spec in (
    MetricSpec("acc"),
    MetricSpec("acc_norm"),
    MetricSpec("balanced_acc", items="corpus", compute=balanced_accuracy),
    MetricSpec("mcc", items="corpus", compute=matthews_corrcoef, bootstrap_stderr=True, minimum=-1.0),
    MetricSpec("macro_f1", items="corpus", compute=macro_f1),
    # Generation metrics, on the harness's scales.
    MetricSpec("exact_match", scale=100.0, items="continuous"),
    MetricSpec("f1", scale=100.0, items="continuous"),
    # XL-Sum: per-doc ROUGE-2 F x 100, reported as rouge_score's BootstrapAggregator median (spec 4.2).
    MetricSpec("rouge2", scale=100.0, items="continuous", reduce=_rouge_mid),
    MetricSpec("rouge2_mecab", scale=100.0, items="continuous", reduce=_rouge_mid),
    MetricSpec("pearson", items="corpus", compute=pearson, minimum=-1.0),
    MetricSpec("spearman", items="corpus", compute=spearman, minimum=-1.0),
    MetricSpec("unparseable", direction="lower", items="corpus", compute=count_unparseable, maximum=math.inf),
    # The quiz's format-failure rate: the share of answers that named no choice or several (reported, not gated).
    MetricSpec("unparseable_rate", direction="lower"),
    # ... and the share whose answer came only after the first line (a format failure, not a wrong answer).
    MetricSpec("late_answer_rate", direction="lower"),
    # Every generation task: the share of outputs that used their whole token budget (no EOS, no stop string).
    MetricSpec("unterminated", direction="lower"),
    # The QA suite (kensa.tasks.qa): char F1 and ROUGE F x 100 per doc; corpus BLEU (sacrebleu ja-mecab) over
    # each doc's [reference, output], with the gate's paired bootstrap; shares of outputs per check.
    MetricSpec("char_f1", scale=100.0, items="continuous"),
    MetricSpec("bleu", scale=100.0, items="corpus", compute=_corpus_bleu),
    MetricSpec("bleu_raw", scale=100.0, items="corpus", compute=_corpus_bleu_raw),  # reported beside it, not gated
    MetricSpec("rouge1_ja", scale=100.0, items="continuous"),  # the mean, unlike XL-Sum's bootstrap median
    MetricSpec("rouge2_ja", scale=100.0, items="continuous"),
    MetricSpec("rougeL_ja", scale=100.0, items="continuous"),
    # Hallucination (kensa.metrics.hallucination), 0-100: the rate over non-empty outputs, the share of them with
    # any hallucinated word, the lenient lemma variant, and the share of empty outputs (left out of the others).
    MetricSpec("hallucination", direction="lower", scale=100.0, items="continuous", partial=True),
    MetricSpec("hallucinated", direction="lower", scale=100.0, items="continuous", partial=True),
    MetricSpec("hallucination_lemma", direction="lower", scale=100.0, items="continuous", partial=True),
    MetricSpec("empty", direction="lower", scale=100.0, items="continuous"),
    MetricSpec("roundtrip_f1", scale=100.0, items="continuous"),
    MetricSpec("roundtrip_em", scale=100.0, items="continuous"),
    MetricSpec("question_form"),
    MetricSpec("answer_leak", direction="lower"),
    MetricSpec("copies", direction="lower"),
    MetricSpec("bad_word_violations", direction="lower", items="continuous", maximum=math.inf, reduce=sum),
)}


def metric_spec(name: str) -> MetricSpec:
    if name not in METRICS:
        raise KeyError(f"metric {name!r} has no MetricSpec in kensa.metrics.METRICS")
    return METRICS[name]
