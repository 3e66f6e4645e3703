"""The sequential gate applied to one test: after each look, stop the task when every gated metric is decided.

:class:`EarlyStop` is handed to the run loop (``kensa.run.evaluate_variant(stop=..., looks=...)``); after each
look it pairs the run so far with the baseline's stored items (the same documents, in the same shuffled order)
and decides every gated metric: per-document values (0/1 or graded) by :func:`kensa.gate.sequential.run_task`;
corpus metrics (Pearson r, MCC, macro-F1, BLEU) by the paired-bootstrap Wald test of
:mod:`kensa.gate.sequential_wald`, and per-document values of documents that share a context (clusters: JSQuAD's
paragraphs) by its cluster-robust one, both against the same boundaries. The task stops at the first look where a
metric FAILs, or where every gated metric has PASSed. :meth:`EarlyStop.rows` gives the gate's rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kensa.gate import sequential, sequential_wald
from kensa.gate.thresholds import Entry, Items
from kensa.gate.verdicts import PLANNING_DISCORDANCE, Check, GateSettings, RunRecord, default_abs_floor
from kensa.metrics.core import metric_spec

SEQUENTIAL_ITEMS = ("binary", "continuous")
METHOD = "sequential (LD O'Brien-Fleming fail, Pocock pass)"
NOT_TESTED = "not tested (task stopped early)"
CORPUS_METHOD = "sequential paired bootstrap (LD O'Brien-Fleming fail, Pocock pass)"
CLUSTER_METHOD = "sequential cluster-robust (LD O'Brien-Fleming fail, Pocock pass)"
EARLY_PASS_OFF = "early PASS off: --gate-pooled pools every document of each task that does not fail"


def parse_margins(text: str | None) -> dict[str, float]:
    """``--gate-margin acc=0.02,exact_match=2``: the PASS margin per metric, in the metric's own units."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, sep, value = part.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not name or not number > 0 or not math.isfinite(number):
            raise ValueError(f"{part!r}: expected METRIC=VALUE with a positive VALUE in the metric's units")
        metric_spec(name)  # an unknown metric raises here, naming it
        out[name] = number
    return out


@dataclass
class _Metric:
    name: str
    design: sequential.Design
    scale: float
    direction: str
    floor: float  # abs_floor on the 0-1 scale
    corpus: bool = False
    partial: bool = False  # docs may lack a value (None): decided on the Wald path, those docs left out
    unit_se: float = 0.0  # corpus metrics: the baseline's bootstrap SE on all N documents (metric units)


class EarlyStop:
    """One test's sequential gate: ``stop(run)`` after each look; ``sizes`` are the looks (cumulative docs)."""

    def __init__(self, entry: Entry, base_items: Items, run: RunRecord, settings: GateSettings, *,
                 margins: Mapping[str, float] | None = None, looks: int = sequential.DEFAULT_LOOKS,
                 early_pass: bool = True):
        self.entry, self.base_items, self.settings = entry, base_items, settings
        self.early_pass = early_pass  # False under --gate-pooled: stop early only to FAIL (kensa.gate.pooled)
        self.n = run.n
        self.sizes = sequential.look_sizes(run.n, looks)
        level = settings.alpha / max(settings.family_size, 1)
        self.metrics: list[_Metric] = []
        self.full: list[str] = []  # gated metrics that need every document (corpus metrics)
        for name in run.gated:
            spec, mb = metric_spec(name), entry.metrics[name]
            corpus = spec.items == "corpus"
            if (spec.items not in SEQUENTIAL_ITEMS and not corpus) or mb.rule != "paired" \
                    or name not in base_items.values:
                self.full.append(name)
                continue
            unit_se = sequential_wald.baseline_se(name, base_items.values[name]) if corpus else 0.0
            margin = (margins or {}).get(name)
            if margin is not None:
                margin /= spec.scale
            elif corpus:
                # Default margin: the full task's MDE as the fixed gate plans a corpus metric, from the
                # baseline's own bootstrap SE; a baseline without spread leaves nothing to plan from.
                margin = sequential_wald.corpus_margin(unit_se / spec.scale, level, run.n, PLANNING_DISCORDANCE)
                if not margin > 0:
                    self.full.append(name)
                    continue
            else:  # the full task's MDE at the planning discordance (0-1 scale; see docs)
                margin = sequential.default_margin(run.n, PLANNING_DISCORDANCE, level)
            floor = mb.abs_floor if mb.abs_floor is not None else default_abs_floor(
                run.kind, run.environment.get("device", "cpu"), run.n, spec.scale)
            design = sequential.Design(run.n, level, margin, looks=looks, early_pass=early_pass)
            self.metrics.append(_Metric(name, design, spec.scale, mb.direction, floor / spec.scale, corpus=corpus,
                                        unit_se=unit_se, partial=spec.partial))
        self.looks: dict[str, list[sequential_wald.WaldLook]] = {}
        self.clustered = False
        self.results: dict[str, sequential.SequentialResult] = {}
        self.scored = 0

    @property
    def active(self) -> bool:
        return bool(self.metrics)

    def _decide(self, metric: _Metric, values: Sequence[Any], clusters: Sequence[Any] | None) \
            -> sequential.SequentialResult | None:
        if metric.corpus or metric.partial or clusters is not None:
            return self._decide_wald(metric, values, clusters)
        base = self.base_items.values[metric.name][: len(values)]
        try:
            return sequential.run_task(base, values, metric.design, scale=metric.scale, min_fail_drop=metric.floor,
                                       direction=metric.direction)
        except ValueError as exc:
            if "score on to look" in str(exc):
                return None
            raise

    def _decide_wald(self, metric: _Metric, values: Sequence[Any], clusters: Sequence[Any] | None) \
            -> sequential.SequentialResult | None:
        """Corpus metrics (paired bootstrap) and clustered documents (sandwich SE): one Wald look per look size."""
        looks = self.looks.setdefault(metric.name, [])
        base = self.base_items.values[metric.name]
        sign = 1.0 if metric.direction == "higher" else -1.0
        for size in metric.design.sizes[len(looks):]:
            if size > len(values):
                break
            if metric.corpus:
                looks.append(sequential_wald.corpus_look(
                    metric.name, base[:size], values[:size], direction=metric.direction, scale=metric.scale,
                    unit_se=metric.unit_se, n_total=self.n, clusters=clusters))
            else:  # clustered, or with docs that lack a value (left out, as the fixed gate does)
                labels = clusters[:size] if clusters is not None else range(size)
                kept = [(sign * (float(a) - float(b)) / metric.scale, g)
                        for a, b, g in zip(base[:size], values[:size], labels) if a is not None and b is not None]
                if not kept:
                    kept = [(0.0, 0)]  # no doc has a value on both sides yet: no evidence either way
                drops, groups = zip(*kept)
                looks.append(replace(sequential_wald.cluster_look(drops, groups), scored=size))
        if not looks:
            return None
        what = "bootstrap SE" if metric.corpus else "cluster-robust SE" if clusters is not None else "SE"
        return sequential_wald.run_looks(looks, metric.design, min_fail_drop=metric.floor, what=what)

    def _update(self, run: Any) -> None:
        if run.clusters is not None:
            self.clustered = True
        items = run.items([m.name for m in self.metrics])["values"]
        for metric in self.metrics:
            if metric.name not in self.results:
                decided = self._decide(metric, items[metric.name], run.clusters)
                if decided is not None:
                    self.results[metric.name] = decided

    def __call__(self, run: Any) -> bool:
        """After a look: True when the task can stop (a metric failed, or every gated metric passed)."""
        keys = list(run.item_keys)
        if keys != list(self.base_items.keys[: len(keys)]):
            first = next(i for i, (a, b) in enumerate(zip(keys, self.base_items.keys)) if a != b)
            raise ValueError(f"the baseline's stored items are not this run's documents at doc {first} "
                             f"({self.base_items.keys[first]!r} vs {keys[first]!r})")
        self.scored = run.n
        self._update(run)
        if any(r.decision == "fail" for r in self.results.values()):
            return True
        return not self.full and len(self.results) == len(self.metrics)

    def finish(self, run: Any) -> None:
        """After the loop: a task that ran in full gets its last-look decisions (no-op when it stopped early)."""
        self.scored = run.n
        if run.n == self.n and len(self.results) < len(self.metrics):
            self._update(run)
            assert len(self.results) == len(self.metrics)  # the last look always decides

    @property
    def stopped_early(self) -> bool:
        return self.scored < self.n

    def report(self) -> dict[str, Any]:
        """What the results say about this task: documents scored, the stopping look and why, per metric."""
        stop_look = next((i + 1 for i, s in enumerate(self.sizes) if s == self.scored), len(self.sizes))
        return {"scored": self.scored, "n": self.n, "stopped_early": self.stopped_early, "look": stop_look,
                "looks": len(self.sizes), "full_metrics": list(self.full), "early_pass": self.early_pass,
                "metrics": {name: r.to_dict() | {"test": self._test(name)} for name, r in self.results.items()}}

    def _test(self, name: str) -> str:
        metric = next(m for m in self.metrics if m.name == name)
        if metric.corpus:
            return "paired bootstrap"
        return "cluster-robust" if self.clustered else "wald, docs without a value left out" if metric.partial \
            else "paired sums"

    def rows(self, record: RunRecord, fixed: Sequence[Check]) -> list[Check]:
        """The gate's rows: sequential verdicts (p None: Holm leaves them alone, the alpha split is Bonferroni's),
        then the fixed test's rows for the corpus metrics of a task that ran in full."""
        out = []
        for metric in self.metrics:
            r = self.results.get(metric.name)
            if r is None:  # another metric failed first: the task stopped before this one was decided
                out.append(Check(record.model, record.baseline, record.task_id, metric.name, NOT_TESTED,
                                 f"the task stopped after {self.scored} of {self.n} docs because another metric "
                                 "failed", n=self.scored))
                continue
            if metric.corpus:
                look = self.looks[metric.name][r.look - 1]
                base_value, cand_value, method = look.base, look.cand, CORPUS_METHOD
            else:
                pairs = [(a, b) for a, b in zip(self.base_items.values[metric.name][: r.scored],
                                                record.items.values[metric.name][: r.scored])
                         if a is not None and b is not None] or [(0.0, 0.0)]
                base_value, cand_value = (sum(side) / len(pairs) for side in zip(*pairs))
                method = CLUSTER_METHOD if self.clustered else METHOD
            sign = 1.0 if metric.direction == "higher" else -1.0
            out.append(Check(record.model, record.baseline, record.task_id, metric.name, r.decision,
                             f"sequential: {r.reason}; {r.scored} of {r.n} docs scored"
                             + ("" if self.early_pass else f"; {EARLY_PASS_OFF}"),
                             n=r.scored, score=cand_value, base=base_value, delta=cand_value - base_value,
                             drop=sign * (base_value - cand_value), method=method,
                             mde=r.margin * metric.scale, abs_floor=metric.floor * metric.scale,
                             details={"sequential": r.to_dict() | {"stopped_early": r.scored < r.n}}))
        by_metric = {c.metric: c for c in fixed}
        for name in self.full:
            if self.stopped_early:
                out.append(Check(record.model, record.baseline, record.task_id, name, NOT_TESTED,
                                 f"tested on every document only (no sequential design: no paired items or no "
                                 f"baseline spread); the task stopped after {self.scored} of {self.n} docs because "
                                 "another metric failed", n=self.scored))
            else:
                out.append(by_metric[name])
        return out
