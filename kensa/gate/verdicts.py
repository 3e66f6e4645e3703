"""The release gate: compare one run of one task with its baseline entry, metric by metric.

The verdict is paired and one-sided (docs/gate.md, "The verdict", explains each rule):

* exact McNemar on 0/1 items, a seeded paired permutation test on continuous items, a paired
  bootstrap on corpus statistics; the unpaired ``z`` fallback only when no items were stored;
* Holm's step-down over every gated metric of the session (:func:`finalize`);
* fail when the Holm-adjusted p < alpha **and** the drop >= ``abs_floor``; fail whatever p says
  when n >= 300 and the drop >= the hard limit;
* the minimum detectable drop (MDE) at 80 % power; "underpowered" when it exceeds 2 x abs_floor;
* a missing entry, a stale one, or a run in another environment is never compared.

A test cannot know the other tests' p-values, so :func:`fails_now` applies Holm's first step
(p * m < alpha, with m the session's family size): any metric it fails, Holm fails too. The
controller's :func:`finalize` then runs the full step-down, which can fail more rows: ones
whose tests passed (Holm's later steps are more lenient than the first, and skipped tests make
the family smaller than m). The session then fails too, and the report says which rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from kensa.gate.fingerprint import incomparable
from kensa.gate.thresholds import (
    Entry,
    Items,
    Thresholds,
    ThresholdsError,
    load_items,
    load_thresholds,
    thresholds_path,
)
from kensa.metrics.core import METRICS, metric_spec


def _stats() -> Any:
    from kensa.gate import stats  # numpy and scipy cost most of a second; collecting tests needs neither

    return stats


# Defaults, each explained in docs/gate.md ("The verdict").
ALPHA = 0.05
POWER = 0.8
HARD_LIMIT_POINTS = 5.0
HARD_LIMIT_MIN_N = 300
GPU_FLOOR_POINTS = {"multiple_choice": 0.5, "generation": 1.0}
PLANNING_DISCORDANCE = 0.10
"""Share of docs a real regression flips, assumed for the MDE when the run flips fewer."""
SEED = 20240601
EPS = 1e-9
"""Slack, relative to the metric's scale, when comparing a drop with a limit: 0.70 - 0.65 is
0.04999999999999993 in floating point, and a 5-point drop must meet a 5-point limit."""

HAND_LOWERED = "lowered outside --thresholds-update"
"""A threshold that went down since the git base without the update flow (:mod:`kensa.gate.history`)."""
FAILING = ("fail", "fail (hard limit)", "missing", "stale", "incomparable", "error", HAND_LOWERED)


@dataclass(frozen=True)
class GateSettings:
    alpha: float = ALPHA
    family_size: int = 1
    """m: how many metrics the session gates (known at collection), for Holm's first step and the MDE."""
    accept_env_change: bool = False
    update_command: str = "pytest suites --model {model} --baseline {baseline} --thresholds-update"
    """The command that (re)writes an entry; ``{model}`` and ``{baseline}`` are filled in."""


@dataclass(frozen=True)
class RunRecord:
    """What one test measured, as the gate and the updater read it (built from the test's summary)."""

    model: str
    baseline: str
    task_id: str
    task: str
    task_version: str
    prompt_version: str
    num_fewshot: int
    limit: float | None
    n: int
    data_sha256: str
    fewshot_sha256: str | None
    kind: str
    metrics: Mapping[str, float]
    gated: tuple[str, ...]
    items: Items
    environment: Mapping[str, str]
    identity: Mapping[str, str]
    clusters: list[Any] | None = None
    """Each doc's cluster (JSQuAD: its paragraph), flipped together by the permutation test."""

    @classmethod
    def from_summary(cls, s: Mapping[str, Any]) -> RunRecord:
        """From a test's summary (see ``TaskRun.summary``) plus the model, baseline and fingerprints."""
        fewshot = s["data"].get("fewshot") or {}
        return cls(model=s["model"], baseline=s["baseline"], task_id=s["task_id"], task=s["task"],
                   task_version=str(s["version"]), prompt_version=s["prompt_version"],
                   num_fewshot=s["num_fewshot"], limit=s.get("limit"), n=s["n"],
                   data_sha256=s["data"]["eval"]["sha256"] or "", fewshot_sha256=fewshot.get("sha256"),
                   kind=s["kind"], metrics=s["metrics"], gated=tuple(s["gated"]),
                   items=Items(list(s["items"]["keys"]), {k: list(v) for k, v in s["items"]["values"].items()},
                               s["items"].get("seconds"), s["items"].get("batches")),
                   environment=s["environment"], identity=s["identity"], clusters=s["items"].get("clusters"))


@dataclass
class Check:
    """One row of the gate table: one model, task and metric."""

    model: str
    baseline: str
    task_id: str
    metric: str
    status: str
    message: str = ""
    n: int | None = None
    score: float | None = None
    stderr: float | None = None
    base: float | None = None
    delta: float | None = None
    """score - baseline (its sign is the metric's own, whatever the direction)."""
    drop: float | None = None
    """How much worse, positive = worse (direction-aware)."""
    method: str | None = None
    p: float | None = None
    p_gain: float | None = None
    p_holm: float | None = None
    mde: float | None = None
    abs_floor: float | None = None
    hard_limit: float | None = None
    flips: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status in FAILING

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Check:
        return cls(**d)




# -- preconditions -------------------------------------------------------------------------------

class BaselineStore:
    """Threshold files and their items, read once per session and checked as they are read."""

    def __init__(self, directory: Path, known: Mapping[str, Sequence[str]]):
        self.directory = directory
        self.known = known
        self._files: dict[str, Thresholds | None] = {}
        self._items: dict[tuple[str, str], Items] = {}

    def path(self, baseline: str) -> Path:
        return thresholds_path(self.directory, baseline)

    def get(self, baseline: str) -> Thresholds | None:
        """The file, or None when it does not exist. A bad file raises ThresholdsError."""
        if baseline not in self._files:
            path = self.path(baseline)
            self._files[baseline] = load_thresholds(path, baseline, self.known) if path.is_file() else None
        return self._files[baseline]

    def items(self, th: Thresholds, entry: Entry) -> Items | None:
        if entry.items is None:
            return None
        key = (th.baseline, entry.task_id)
        if key not in self._items:
            self._items[key] = load_items(self.directory, entry, th.path)
        return self._items[key]


def stale_reasons(entry: Entry, run: RunRecord) -> list[str]:
    """What differs between what the entry measured and what this run measured."""
    pairs = [("task version", entry.task_version, run.task_version),
             ("prompt version", entry.prompt_version, run.prompt_version),
             ("num_fewshot", entry.num_fewshot, run.num_fewshot), ("limit", entry.limit, run.limit),
             ("n", entry.n, run.n), ("eval data sha256", entry.data_sha256, run.data_sha256),
             ("few-shot pool sha256", entry.fewshot_sha256 or "", run.fewshot_sha256 or "")]
    # Hashes are compared whole and shown by their first 12 characters.
    out = [f"{name} {str(a)[:12] if 'sha' in name else a} -> {str(b)[:12] if 'sha' in name else b}"
           for name, a, b in pairs if a != b]
    missing = [m for m in run.gated if m not in entry.metrics]
    if missing:
        out.append(f"no baseline for metric(s) {', '.join(missing)}")
    return out


def _rows(run: RunRecord, status: str, message: str, **extra: Any) -> list[Check]:
    return [Check(run.model, run.baseline, run.task_id, m, status, message, n=run.n,
                  score=run.metrics.get(m), stderr=run.metrics.get(f"{m}_stderr"), **extra) for m in run.gated]


def precheck(store: BaselineStore, run: RunRecord, settings: GateSettings) -> tuple[Entry | None, list[Check]]:
    """The entry to compare with, or error rows: missing file or entry, stale entry, other environment."""
    hint = settings.update_command.format(model=run.model, baseline=run.baseline)
    try:
        th = store.get(run.baseline)
    except ThresholdsError as exc:
        return None, _rows(run, "error", str(exc))
    if th is None:
        return None, _rows(run, "missing", f"no thresholds file {store.path(run.baseline)}; create it with `{hint}`, "
                                           "review it and commit it")
    entry = th.entries.get(run.task_id)
    if entry is None:
        return None, _rows(run, "missing", f"{th.path} has no entry for {run.task_id}; create one with `{hint}`")
    # Another QA model answered the round trip: incomparable first (the baseline may not gate the round trip at
    # all, which would read as stale), and --accept-env-change cannot compare it.
    qa_changed = [c for c in incomparable(entry.environment, run.environment) if c.startswith("qa_model ")]
    if qa_changed:
        return entry, _rows(run, "incomparable", f"{th.path} entry {run.task_id}: the round trip was answered by "
                                                 f"another QA model ({'; '.join(qa_changed)}); re-baseline with "
                                                 f"`{hint}` and the same --qa-model")
    reasons = stale_reasons(entry, run)
    if reasons:
        return entry, _rows(run, "stale", f"{th.path} entry {run.task_id} is stale ({'; '.join(reasons)}): it "
                                          f"measured something else. Re-baseline with `{hint}`")
    changed = incomparable(entry.environment, run.environment)
    if changed and not settings.accept_env_change:
        return entry, _rows(run, "incomparable", f"{th.path} entry {run.task_id} was measured in another environment "
                                                 f"({'; '.join(changed)}); re-baseline with `{hint}`, or compare "
                                                 "anyway with --accept-env-change (`python -m kensa doctor` "
                                                 "lists what differs for every baseline)")
    return entry, []


# -- comparison ----------------------------------------------------------------------------------

def default_abs_floor(kind: str, device: str, n: int, scale: float) -> float:
    """One item on CPU (runs are deterministic there); on GPU 0.5 points (log-likelihood) or 1.0 (generation)."""
    if device == "cpu":
        return scale / n
    return GPU_FLOOR_POINTS.get(kind, 1.0) * scale / 100


CORPUS_RESAMPLES = 2000
"""Resamples of the paired bootstrap for corpus metrics: each recomputes the metric twice."""


def corpus_statistic(name: str) -> Any:
    """The metric as a function of resampled ``[gold, pred]`` rows, for the paired bootstrap."""
    compute = getattr(metric_spec(name), "compute", None)
    if compute is None:
        raise ValueError(f"corpus metric {name!r} has no compute function in kensa.metrics")
    return lambda rows: compute(rows[:, 0], rows[:, 1])


def _tests(base: Sequence[Any], cand: Sequence[Any], how: str, direction: str, name: str,
           clusters: Sequence[Any] | None = None) -> tuple[Any, Any]:
    """(drop test, gain test) on paired items; ``clusters`` (continuous items only) are flipped together."""
    if how == "corpus":
        stat = corpus_statistic(name)
        return (_stats().bootstrap(base, cand, statistic=stat, direction=direction, n_resamples=CORPUS_RESAMPLES,
                                seed=SEED),
                _stats().bootstrap(cand, base, statistic=stat, direction=direction, n_resamples=CORPUS_RESAMPLES,
                                seed=SEED))
    if how == "binary":
        return (_stats().mcnemar(base, cand, direction=direction, alternative="drop"),
                _stats().mcnemar(base, cand, direction=direction, alternative="gain"))
    if how == "continuous":
        return (_stats().permutation(base, cand, clusters=clusters, direction=direction, alternative="drop",
                                     seed=SEED),
                _stats().permutation(base, cand, clusters=clusters, direction=direction, alternative="gain",
                                     seed=SEED))
    raise ValueError(f"no paired test for per-item values of kind {how!r}")


def compare(entry: Entry, base_items: Items | None, run: RunRecord, settings: GateSettings,
            store_path: Path) -> list[Check]:
    """Per-metric checks of a comparable run against its entry (Holm is applied later)."""
    out = []
    m = max(settings.family_size, 1)
    level = settings.alpha / m
    if base_items is not None and list(base_items.keys) != list(run.items.keys):
        first = next(i for i, (a, b) in enumerate(zip(base_items.keys, run.items.keys)) if a != b) \
            if len(base_items.keys) == len(run.items.keys) else None
        where = f"doc {first}: {base_items.keys[first]!r} vs {run.items.keys[first]!r}" if first is not None \
            else f"{len(base_items.keys)} vs {len(run.items.keys)} docs"
        return _rows(run, "error", f"{store_path}: the stored items of {run.task_id} are not this run's documents "
                                   f"({where}); re-baseline with "
                                   f"`{settings.update_command.format(model=run.model, baseline=run.baseline)}`")
    for name in run.gated:
        spec, mb = metric_spec(name), entry.metrics[name]
        score = run.metrics[name]
        se = run.metrics.get(f"{name}_stderr")
        sign = 1.0 if mb.direction == "higher" else -1.0
        drop = sign * (mb.value - score)
        floor = mb.abs_floor if mb.abs_floor is not None else default_abs_floor(
            run.kind, run.environment.get("device", "cpu"), run.n, spec.scale)
        hard = mb.hard_limit if mb.hard_limit is not None else HARD_LIMIT_POINTS * spec.scale / 100
        check = Check(run.model, run.baseline, run.task_id, name, "pass", n=run.n, score=score, stderr=se,
                      base=mb.value, delta=score - mb.value, drop=drop, abs_floor=floor, hard_limit=hard)
        cand = run.items.values[name]
        if base_items is not None and mb.rule == "paired":
            base = base_items.values[name]
            clusters = run.clusters
            if spec.items != "corpus" and (None in base or None in cand):
                # A doc without a value on either side (an empty output has no hallucination rate) is left out.
                keep = [i for i, (a, b) in enumerate(zip(base, cand)) if a is not None and b is not None]
                base, cand = [base[i] for i in keep], [cand[i] for i in keep]
                clusters = [clusters[i] for i in keep] if clusters is not None else None
                if not keep:
                    check.message = "no doc has a value in both runs: not compared"
                    out.append(check)
                    continue
            t_drop, t_gain = _tests(base, cand, spec.items, mb.direction, name, clusters)
            check.method, check.p, check.p_gain = t_drop.method, t_drop.p_value, t_gain.p_value
            check.details = {k: v for k, v in t_drop.detail.items() if isinstance(v, (int, float, str))}
            if spec.items == "binary":
                psi = max(sum(1 for a, b in zip(base, cand) if a != b) / run.n, PLANNING_DISCORDANCE)
                check.mde = _stats().mde_binary(run.n, psi, alpha=level, power=POWER) * spec.scale
            elif spec.items == "corpus":
                # The bootstrap's standard error of the difference is 0 when the run equals the baseline, so
                # plan as for continuous items from the baseline's own stderr; with neither (a constant
                # predictor, or a metric without stderr) the power cannot be estimated: MDE = inf.
                se_diff = t_drop.detail.get("se", math.nan)
                se_plan = max(se_diff if math.isfinite(se_diff) else 0.0,
                              math.sqrt(2 * PLANNING_DISCORDANCE) * (mb.stderr or 0.0))
                z = _stats().one_sided_z(level) + _stats().one_sided_z(1 - POWER)
                check.mde = z * se_plan if se_plan > 0 else math.inf
            else:
                sd_base = (mb.stderr or 0.0) * math.sqrt(run.n)
                sd = max(t_drop.sd_diff, math.sqrt(2 * PLANNING_DISCORDANCE) * sd_base)
                # A constant difference and a baseline with no spread (EM 100 on every doc) leave nothing to
                # plan from: the power cannot be estimated (inf), never "any drop is seen" (0).
                check.mde = _stats().mde_continuous(run.n, sd, alpha=level, power=POWER) if sd > 0 else math.inf
            check.flips = sum(1 for a, b in zip(base, cand) if _got_worse(a, b, sign))
        else:
            t_drop = _stats().z_unpaired(mb.value, mb.stderr or 0.0, score, se or 0.0, direction=mb.direction)
            t_gain = _stats().z_unpaired(score, se or 0.0, mb.value, mb.stderr or 0.0, direction=mb.direction)
            check.method, check.p, check.p_gain = t_drop.method, t_drop.p_value, t_gain.p_value
            combined = math.sqrt((mb.stderr or 0.0) ** 2 + (se or 0.0) ** 2)
            check.mde = (_stats().one_sided_z(level) + _stats().one_sided_z(1 - POWER)) * combined
            check.message = "no per-item outcomes stored: unpaired z fallback"
        out.append(check)
    changed = incomparable(entry.environment, run.environment)
    if changed:  # only reached with --accept-env-change
        for c in out:
            note = f"environment changed ({'; '.join(changed)}), compared under --accept-env-change"
            c.message = "; ".join(filter(None, [c.message, note]))
    return [_verdict(c, settings.alpha, c.p) for c in out]


def _verdict(c: Check, alpha: float, p_adjusted: float | None) -> Check:
    """The status of a compared row given its (adjusted) p-value."""
    if c.p is None:
        return c
    assert c.drop is not None and c.abs_floor is not None and c.hard_limit is not None
    slack = EPS * metric_spec(c.metric).scale if c.metric in METRICS else EPS
    if c.n is not None and c.n >= HARD_LIMIT_MIN_N and c.drop >= c.hard_limit - slack:
        status = "fail (hard limit)"
    elif p_adjusted is not None and p_adjusted < alpha and c.drop >= c.abs_floor - slack:
        status = "fail"
    elif -c.drop >= c.abs_floor - slack and c.p_gain is not None and c.p_gain < alpha:
        status = "raise baseline"
    elif c.mde is not None and c.mde > 2 * c.abs_floor:
        status = "underpowered"
    else:
        status = "pass"
    return replace(c, status=status)


def fails_now(checks: Sequence[Check], settings: GateSettings) -> list[Check]:
    """The rows a test can fail on its own: errors, the hard limit, and Holm's first step (p * m < alpha)."""
    m = max(settings.family_size, 1)
    out = []
    for c in checks:
        if c.p is None:
            if c.failed:
                out.append(c)
            continue
        bound = min(1.0, c.p * m)  # an upper bound on the Holm-adjusted p
        decided = _verdict(replace(c, p_holm=bound), settings.alpha, bound)
        if decided.failed:
            out.append(decided)
    return out


def finalize(checks: Sequence[Check], alpha: float, family_size: int = 0) -> list[Check]:
    """Holm over every compared row of the session, then each row's final status. ``family_size`` is the
    number of metrics the session set out to gate: when tests were lost (a worker died), the missing
    comparisons count as p = 1, so the family is never silently smaller than planned."""
    compared = [i for i, c in enumerate(checks) if c.p is not None]
    if not compared:  # nothing to correct (and no reason to import scipy, e.g. under --collect-only)
        return list(checks)
    missing = max(0, family_size - len(compared))
    adjusted = _stats().holm([checks[i].p for i in compared] + [1.0] * missing)[: len(compared)]
    out = list(checks)
    for i, p in zip(compared, adjusted):
        out[i] = _verdict(replace(checks[i], p_holm=p), alpha, p)
    return out


def _got_worse(before: Any, after: Any, sign: float) -> bool:
    """A doc got worse: a lower per-doc value, or for a corpus metric a right prediction turned wrong."""
    if isinstance(before, list):
        return before[0] == before[1] and after[0] != after[1]
    return sign * (before - after) > 0


# -- the flip report -----------------------------------------------------------------------------

def flips(base_items: Items, samples: Sequence[Mapping[str, Any]], metrics: Sequence[str],
          directions: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The documents that got worse against the baseline, per metric, with the run's prompt and output.
    ``directions`` (default: each metric's spec) says whether higher or lower is better."""
    if directions is None:
        directions = {m: metric_spec(m).direction for m in metrics}
    out = []
    for name in metrics:
        sign = 1.0 if directions.get(name, "higher") == "higher" else -1.0
        for s, before in zip(samples, base_items.values[name]):
            if before is None or s.get(name, 0.0) is None:
                continue  # no value on one side (an empty output's hallucination rate)
            after = [s.get("gold_value", s["gold"]), s["pred"]] if isinstance(before, list) else float(s[name])
            if _got_worse(before, after, sign):
                record = {"metric": name, "doc_id": s["doc_id"], "key": base_items.keys[s["doc_id"]],
                          "baseline": before, "candidate": after}
                record.update({k: s[k] for k in ("prompt", "continuations", "loglikelihoods", "generation",
                                                 "pred", "gold") if k in s})
                out.append(record)
    return out


# -- rows for an updating run, and model-against-model ------------------------------------------

def rows_for_changes(old: Thresholds, runs: Sequence[RunRecord], changes: Sequence[Any]) -> list[Check]:
    """One row per metric of each updated (or refused) entry, with the old value as the baseline."""
    by_task = {r.task_id: r for r in runs}
    out = []
    for ch in changes:
        run = by_task[ch.task_id]
        entry = old.entries.get(ch.task_id)
        for name in run.gated:
            base = entry.metrics[name].value if entry is not None and name in entry.metrics else None
            score = run.metrics[name]
            out.append(Check(run.model, run.baseline, run.task_id, name, ch.status, ch.detail, n=run.n, score=score,
                             stderr=run.metrics.get(f"{name}_stderr"), base=base,
                             delta=None if base is None else score - base))
    return out


@dataclass(frozen=True)
class Pairwise:
    """``--model A --model B``: B - A on the same documents, with a two-sided paired p-value."""

    task_id: str
    metric: str
    model_a: str
    model_b: str
    n: int
    a: float
    b: float
    delta: float
    method: str
    p: float


def compare_models(a: RunRecord, b: RunRecord) -> list[Pairwise]:
    if list(a.items.keys) != list(b.items.keys):
        raise ValueError(f"{a.task_id}: {a.model} and {b.model} scored different documents")
    out = []
    for name in a.gated:
        spec = metric_spec(name)
        xa, xb = a.items.values[name], b.items.values[name]
        if spec.items == "binary":
            t = _stats().mcnemar(xa, xb, direction=spec.direction, alternative="two-sided")
        elif spec.items == "corpus":  # two one-sided bootstraps make a two-sided p
            t_drop, t_gain = _tests(xa, xb, "corpus", spec.direction, name)
            t = replace(t_drop, p_value=min(1.0, 2 * min(t_drop.p_value, t_gain.p_value)))
        else:
            both = [i for i, (x, y) in enumerate(zip(xa, xb)) if x is not None and y is not None]  # see compare()
            if not both:
                continue
            xa, xb = [xa[i] for i in both], [xb[i] for i in both]
            t = _stats().permutation(xa, xb, direction=spec.direction, alternative="two-sided", seed=SEED)
        out.append(Pairwise(a.task_id, name, a.model, b.model, a.n, a.metrics[name], b.metrics[name],
                            b.metrics[name] - a.metrics[name], t.method, t.p_value))
    return out
