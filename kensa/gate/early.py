"""The sequential gate applied to one test: after each look, stop the task when every gated metric is decided.

:class:`EarlyStop` is handed to the run loop (``kensa.run.evaluate_variant(stop=..., looks=...)``); after each
look it pairs the run so far with the baseline's stored items (the same documents, in the same shuffled order)
and applies :func:`kensa.gate.sequential.run_task` to every gated metric with per-document values (0/1 or graded).
The task stops at the first look where a metric FAILs, or where every gated metric has PASSed. Corpus metrics
(Pearson r, MCC, BLEU) are not sums over documents: a task that gates one runs in full, its other metrics decided
sequentially and the corpus metric by the fixed test. A task whose documents share contexts (clusters: JSQuAD's
paragraphs) runs in full on the fixed, cluster-aware test. :meth:`EarlyStop.rows` gives the gate's rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kensa.gate import sequential
from kensa.gate.thresholds import Entry, Items
from kensa.gate.verdicts import PLANNING_DISCORDANCE, Check, GateSettings, RunRecord, default_abs_floor
from kensa.metrics.core import metric_spec

SEQUENTIAL_ITEMS = ("binary", "continuous")
METHOD = "sequential (LD O'Brien-Fleming fail, Pocock pass)"
NOT_TESTED = "not tested (task stopped early)"
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
            if spec.items not in SEQUENTIAL_ITEMS or mb.rule != "paired" or name not in base_items.values:
                self.full.append(name)
                continue
            # Default margin: the full task's MDE at the planning discordance (0-1 scale; see docs).
            margin = (margins or {}).get(name)
            margin = margin / spec.scale if margin is not None else sequential.default_margin(
                run.n, PLANNING_DISCORDANCE, level)
            floor = mb.abs_floor if mb.abs_floor is not None else default_abs_floor(
                run.kind, run.environment.get("device", "cpu"), run.n, spec.scale)
            design = sequential.Design(run.n, level, margin, looks=looks, early_pass=early_pass)
            self.metrics.append(_Metric(name, design, spec.scale, mb.direction, floor / spec.scale))
        self.results: dict[str, sequential.SequentialResult] = {}
        self.scored = 0

    @property
    def active(self) -> bool:
        return bool(self.metrics)

    def _decide(self, metric: _Metric, cand: Sequence[float]) -> sequential.SequentialResult | None:
        base = self.base_items.values[metric.name][: len(cand)]
        try:
            return sequential.run_task(base, cand, metric.design, scale=metric.scale, min_fail_drop=metric.floor,
                                       direction=metric.direction)
        except ValueError as exc:
            if "score on to look" in str(exc):
                return None
            raise

    def __call__(self, run: Any) -> bool:
        """After a look: True when the task can stop (a metric failed, or every gated metric passed)."""
        keys = list(run.item_keys)
        if keys != list(self.base_items.keys[: len(keys)]):
            first = next(i for i, (a, b) in enumerate(zip(keys, self.base_items.keys)) if a != b)
            raise ValueError(f"the baseline's stored items are not this run's documents at doc {first} "
                             f"({self.base_items.keys[first]!r} vs {keys[first]!r})")
        self.scored = run.n
        if run.clusters is not None and self.metrics:
            # Documents that share a context (JSQuAD's paragraphs) are not independent: the per-document variance
            # would understate the noise and spend more than alpha. Such a task runs in full on the fixed,
            # cluster-aware test.
            self.full += [m.name for m in self.metrics]
            self.metrics = []
            return False
        items = run.items([m.name for m in self.metrics])["values"]
        for metric in self.metrics:
            if metric.name not in self.results:
                decided = self._decide(metric, items[metric.name])
                if decided is not None:
                    self.results[metric.name] = decided
        if any(r.decision == "fail" for r in self.results.values()):
            return True
        return not self.full and len(self.results) == len(self.metrics)

    def finish(self, run: Any) -> None:
        """After the loop: a task that ran in full gets its last-look decisions (no-op when it stopped early)."""
        self.scored = run.n
        if run.n == self.n and len(self.results) < len(self.metrics):
            items = run.items([m.name for m in self.metrics])["values"]
            for metric in self.metrics:
                if metric.name not in self.results:
                    result = self._decide(metric, items[metric.name])
                    assert result is not None  # the last look always decides
                    self.results[metric.name] = result

    @property
    def stopped_early(self) -> bool:
        return self.scored < self.n

    def report(self) -> dict[str, Any]:
        """What the results say about this task: documents scored, the stopping look and why, per metric."""
        stop_look = next((i + 1 for i, s in enumerate(self.sizes) if s == self.scored), len(self.sizes))
        return {"scored": self.scored, "n": self.n, "stopped_early": self.stopped_early, "look": stop_look,
                "looks": len(self.sizes), "full_metrics": list(self.full), "early_pass": self.early_pass,
                "metrics": {name: r.to_dict() for name, r in self.results.items()}}

    def rows(self, record: RunRecord, fixed: Sequence[Check]) -> list[Check]:
        """The gate's rows: sequential verdicts (p None: Holm leaves them alone, the alpha split is Bonferroni's),
        then the fixed test's rows for the corpus metrics of a task that ran in full."""
        out = []
        for metric in self.metrics:
            r = self.results[metric.name]
            base = self.base_items.values[metric.name][: r.scored]
            cand = record.items.values[metric.name][: r.scored]
            base_value, cand_value = sum(base) / len(base), sum(cand) / len(cand)
            sign = 1.0 if metric.direction == "higher" else -1.0
            out.append(Check(record.model, record.baseline, record.task_id, metric.name, r.decision,
                             f"sequential: {r.reason}; {r.scored} of {r.n} docs scored"
                             + ("" if self.early_pass else f"; {EARLY_PASS_OFF}"),
                             n=r.scored, score=cand_value, base=base_value, delta=cand_value - base_value,
                             drop=sign * (base_value - cand_value), method=METHOD,
                             mde=r.margin * metric.scale, abs_floor=metric.floor * metric.scale,
                             details={"sequential": r.to_dict() | {"stopped_early": r.scored < r.n}}))
        by_metric = {c.metric: c for c in fixed}
        for name in self.full:
            if self.stopped_early:
                out.append(Check(record.model, record.baseline, record.task_id, name, NOT_TESTED,
                                 f"a corpus metric needs every document; the task stopped after {self.scored} of "
                                 f"{self.n} docs because another metric failed", n=self.scored))
            else:
                out.append(by_metric[name])
        return out
