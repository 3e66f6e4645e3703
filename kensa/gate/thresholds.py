"""Threshold files: ``thresholds/<baseline>.toml`` and the per-item outcomes beside it.

A file belongs to one *baseline* (a model line, e.g. ``org-model``), not to the candidate
being gated. It holds, per task id (``jcommonsenseqa-1.1-0.3``), what was measured (task
and prompt version, k, limit, n, the data's SHA-256) and, per metric, the baseline value
with its n, stderr, direction and rule. The outcomes of every document live in
``thresholds/<baseline>/<task-id>.jsonl`` so the gate can run a paired test on the same
documents. Every problem in these files raises :class:`ThresholdsError`, naming the file
and the key (or line); a file is never half-read.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kensa.errors import KensaError
from kensa.paths import write_atomic

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA_VERSION = 1
DIRECTIONS = ("higher", "lower")
RULES = ("paired", "stderr")
TOP_KEYS = {"schema_version", "baseline", "model", "environment", "provenance", "entries"}
ENTRY_FIELDS = {"task": str, "task_version": str, "prompt_version": str, "num_fewshot": int, "n": int,
                "data_sha256": str, "kind": str, "updated": str}
ENTRY_OPTIONAL = {"limit": (int, float), "fewshot_sha256": str, "items": str, "weights_sha256": str,
                  "environment": dict, "metrics": dict}
METRIC_FIELDS = {"value": (int, float), "n": int, "direction": str, "rule": str}
METRIC_OPTIONAL = {"stderr": (int, float), "anchor": (int, float), "abs_floor": (int, float),
                   "hard_limit": (int, float)}


class ThresholdsError(KensaError):
    """A thresholds file or its per-item outcomes are bad. Names the file and the key or line."""

    def __init__(self, path: Path | str, key: str | None, message: str):
        self.path = str(path)
        self.key = key
        super().__init__(f"{path}" + (f": {key}" if key else "") + f": {message}")


@dataclass
class MetricBaseline:
    value: float
    n: int
    direction: str = "higher"
    rule: str = "paired"
    stderr: float | None = None
    anchor: float | None = None
    """The value first recorded; raising keeps it, so drift against it stays visible."""
    abs_floor: float | None = None
    """Per-entry override of the smallest drop that may fail (metric units)."""
    hard_limit: float | None = None
    """Per-entry override of the drop that fails whatever p says (metric units, n >= 300)."""


@dataclass
class Entry:
    task_id: str
    task: str
    task_version: str
    prompt_version: str
    num_fewshot: int
    n: int
    data_sha256: str
    kind: str
    updated: str
    metrics: dict[str, MetricBaseline]
    limit: float | None = None
    fewshot_sha256: str | None = None
    items: str | None = None
    """Per-item outcomes, relative to the thresholds directory."""
    weights_sha256: str | None = None
    environment: dict[str, str] = field(default_factory=dict)


@dataclass
class Thresholds:
    path: Path
    baseline: str
    entries: dict[str, Entry] = field(default_factory=dict)
    model: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION


def thresholds_path(directory: Path, baseline: str) -> Path:
    return directory / f"{baseline}.toml"


# -- reading -----------------------------------------------------------------------------------

def _check_fields(path: Path, where: str, table: Mapping[str, Any], required: Mapping[str, Any],
                  optional: Mapping[str, Any]) -> None:
    for key in table:
        if key not in required and key not in optional:
            known = ", ".join(sorted({*required, *optional}))
            raise ThresholdsError(path, f"{where}.{key}", f"unknown key (known: {known})")
    for key, types in {**required, **optional}.items():
        if key not in table:
            if key in required:
                raise ThresholdsError(path, f"{where}.{key}", "missing")
            continue
        value = table[key]
        wanted = types if isinstance(types, tuple) else (types,)
        if isinstance(value, bool) or not isinstance(value, wanted):
            names = " or ".join(t.__name__ for t in wanted)
            raise ThresholdsError(path, f"{where}.{key}", f"expected {names}, got {type(value).__name__} {value!r}")


def _metric(path: Path, where: str, table: Any) -> MetricBaseline:
    if not isinstance(table, dict):
        raise ThresholdsError(path, where, "expected a table")
    _check_fields(path, where, table, METRIC_FIELDS, METRIC_OPTIONAL)
    m = MetricBaseline(**{k: table[k] for k in table})
    if not math.isfinite(m.value):
        raise ThresholdsError(path, f"{where}.value", f"{m.value!r} is not a finite number")
    if m.n < 1:
        raise ThresholdsError(path, f"{where}.n", f"{m.n} must be at least 1")
    if m.direction not in DIRECTIONS:
        raise ThresholdsError(path, f"{where}.direction", f"{m.direction!r}: expected one of {', '.join(DIRECTIONS)}")
    if m.rule not in RULES:
        raise ThresholdsError(path, f"{where}.rule", f"{m.rule!r}: expected one of {', '.join(RULES)}")
    for name in ("stderr", "abs_floor", "hard_limit"):
        value = getattr(m, name)
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ThresholdsError(path, f"{where}.{name}", f"{value!r} must be a finite number >= 0")
    return m


def _entry(path: Path, task_id: str, table: Any, known: Mapping[str, Sequence[str]]) -> Entry:
    where = f'entries."{task_id}"'
    if task_id not in known:
        raise ThresholdsError(path, where, f"unknown task id (known: {', '.join(sorted(known))})")
    if not isinstance(table, dict):
        raise ThresholdsError(path, where, "expected a table")
    _check_fields(path, where, table, ENTRY_FIELDS, ENTRY_OPTIONAL)
    if not table.get("metrics"):
        raise ThresholdsError(path, f"{where}.metrics", "missing (an entry gates at least one metric)")
    metrics = {}
    for name, mt in table["metrics"].items():
        if name not in known[task_id]:
            raise ThresholdsError(path, f"{where}.metrics.{name}",
                                  f"unknown metric for {task_id} (known: {', '.join(known[task_id])})")
        metrics[name] = _metric(path, f"{where}.metrics.{name}", mt)
        if metrics[name].n != table["n"]:
            raise ThresholdsError(path, f"{where}.metrics.{name}.n", f"{metrics[name].n} differs from the entry's n "
                                                                      f"({table['n']})")
    fields = {k: v for k, v in table.items() if k != "metrics"}
    return Entry(task_id=task_id, metrics=metrics, **fields)


def load_thresholds(path: Path, baseline: str, known: Mapping[str, Sequence[str]]) -> Thresholds:
    """Read and check a thresholds file. ``known`` maps every task id to its metric names."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ThresholdsError(path, None, f"malformed TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ThresholdsError(path, None, f"not UTF-8: {exc}") from None
    version = doc.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ThresholdsError(path, "schema_version", f"missing or not an integer: {version!r}")
    if version > SCHEMA_VERSION:
        raise ThresholdsError(path, "schema_version", f"{version} is newer than this kensa reads ({SCHEMA_VERSION}); "
                                                      "upgrade kensa")
    if version < 1:
        raise ThresholdsError(path, "schema_version", f"{version} is not a valid version")
    for key in doc:  # after the version: a newer schema's new keys say "upgrade", not "unknown key"
        if key not in TOP_KEYS:
            raise ThresholdsError(path, key, f"unknown key (known: {', '.join(sorted(TOP_KEYS))})")
    if doc.get("baseline") != baseline:
        raise ThresholdsError(path, "baseline", f"{doc.get('baseline')!r} does not match the file name "
                                                f"(expected {baseline!r})")
    for key in ("model", "environment", "provenance", "entries"):
        if not isinstance(doc.get(key, {}), dict):
            raise ThresholdsError(path, key, "expected a table")
    entries = {tid: _entry(path, tid, t, known) for tid, t in doc.get("entries", {}).items()}
    return Thresholds(path=path, baseline=baseline, entries=entries, model=doc.get("model", {}),
                      environment=doc.get("environment", {}), provenance=doc.get("provenance", {}),
                      schema_version=version)


@dataclass(frozen=True)
class Items:
    """Per-document outcomes of one entry, in the run's doc order."""

    keys: list[Any]
    values: dict[str, list[Any]]
    """Per metric, one number per doc, or ``[gold, pred]`` per doc for a corpus metric."""
    seconds: list[float | None] | None = None
    """Each doc's model seconds, for a timed task (the quiz's latency gate); None per doc that the response
    cache served, None altogether for a task that keeps no times."""
    batches: list[list[int] | None] | None = None
    """Each doc's backend batches (the questions whose time was measured together), where the backend says."""


def load_items(directory: Path, entry: Entry, source: Path) -> Items:
    """Read an entry's per-item outcomes; they must match the entry's n, data hash and metrics."""
    assert entry.items is not None
    path = directory / entry.items
    if not path.is_file():
        raise ThresholdsError(source, f'entries."{entry.task_id}".items', f"{path} does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ThresholdsError(path, None, f"not UTF-8: {exc}") from None
    try:
        header = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError as exc:
        raise ThresholdsError(path, "line 1", f"malformed JSON: {exc.msg}") from None
    if not isinstance(header, dict):
        raise ThresholdsError(path, "line 1", "expected a header object (task_id, n, data_sha256, metrics)")
    if header.get("data_sha256") != entry.data_sha256:
        raise ThresholdsError(path, "line 1: data_sha256", f"{header.get('data_sha256')!r} does not match the entry "
                                                           f"in {source} ({entry.data_sha256!r})")
    if header.get("task_id") != entry.task_id:
        raise ThresholdsError(path, "line 1: task_id", f"{header.get('task_id')!r}, expected {entry.task_id!r}")
    keys: list[Any] = []
    values: dict[str, list[Any]] = {m: [] for m in entry.metrics}
    seconds: list[float | None] = []
    batches: list[list[int] | None] = []
    for lineno, line in enumerate(lines[1:], start=2):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ThresholdsError(path, f"line {lineno}", f"malformed JSON: {exc.msg}") from None
        if not isinstance(row, dict) or row.get("doc_id") != lineno - 2:
            raise ThresholdsError(path, f"line {lineno}", f"expected doc_id {lineno - 2}")
        keys.append(row.get("key"))
        for m in entry.metrics:
            v = row.get(m)
            if not _item_value_ok(v) and not (v is None and _partial(m)):
                raise ThresholdsError(path, f"line {lineno}, field {m!r}",
                                      f"expected a finite number (or [gold, pred] for a corpus metric, pred null when "
                                      f"the output was unparseable), got {v!r}")
            values[m].append([x if x is None or isinstance(x, str) else float(x) for x in v] if isinstance(v, list)
                             else None if v is None else float(v))
        t = row.get("seconds")
        if t is not None and not (_number(t) and t >= 0):
            raise ThresholdsError(path, f"line {lineno}, field 'seconds'", f"expected seconds >= 0 or null, got {t!r}")
        seconds.append(None if t is None else float(t))
        b = row.get("batches")
        if b is not None and not (isinstance(b, list) and b and all(isinstance(x, int) and x >= 0 for x in b)):
            raise ThresholdsError(path, f"line {lineno}, field 'batches'", f"expected batch numbers or null, got {b!r}")
        batches.append(b)
    if len(keys) != entry.n:
        raise ThresholdsError(path, None, f"holds {len(keys)} items, the entry in {source} says n = {entry.n}")
    return Items(keys, values, seconds if any(t is not None for t in seconds) else None,
                 batches if any(b is not None for b in batches) else None)


def _partial(metric: str) -> bool:
    """Whether a doc may have no value for ``metric`` (null: an empty output has no hallucination rate)."""
    from kensa.metrics.core import METRICS

    spec = METRICS.get(metric)
    return spec is not None and spec.partial


def _number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _item_value_ok(v: Any) -> bool:
    """A per-doc value (0/1, F1, ...) or, for a corpus metric such as MCC, the doc's ``[gold, pred]``; a pred
    is null where the output could not be parsed (JSTS), which the corpus metric leaves out and counts; a whole
    value is null where the doc has none (the hallucination rate of an empty output). A
    text corpus metric (BLEU) keeps ``[reference, output]`` as two strings."""
    if isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v):
        return True
    return _number(v) or isinstance(v, list) and len(v) == 2 and _number(v[0]) and (v[1] is None or _number(v[1]))


# -- writing -----------------------------------------------------------------------------------

def _drop_none(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}  # TOML has no null


def to_document(th: Thresholds) -> dict[str, Any]:
    entries = {}
    for tid in sorted(th.entries):
        e = asdict(th.entries[tid])
        e.pop("task_id")
        metrics = {name: _drop_none(m) for name, m in e.pop("metrics").items()}
        env = e.pop("environment")
        entries[tid] = {**_drop_none(e), "environment": env, "metrics": metrics}
    return {"schema_version": th.schema_version, "baseline": th.baseline, "model": th.model,
            "environment": th.environment, "provenance": th.provenance, "entries": entries}


HEADER = ("# kensa thresholds for the baseline {baseline!r}: reviewed like code (see thresholds/README.md).\n"
          "# Written by `pytest ... --baseline {baseline} --thresholds-update`; per-item outcomes are in {baseline}/.\n")


def write_thresholds(th: Thresholds) -> Path:
    import tomli_w

    write_atomic(th.path, HEADER.format(baseline=th.baseline) + tomli_w.dumps(to_document(th)))
    return th.path


def write_items(directory: Path, relpath: str, entry: Entry, items: Items) -> Path:
    path = directory / relpath
    header = {"task_id": entry.task_id, "n": entry.n, "data_sha256": entry.data_sha256, "metrics": list(entry.metrics)}
    lines = [json.dumps(header, ensure_ascii=False)]
    for i, key in enumerate(items.keys):
        row = {"doc_id": i, "key": key, **{m: items.values[m][i] for m in entry.metrics}}
        if items.seconds is not None:  # a timed task: the baseline of the latency gate
            row["seconds"] = None if items.seconds[i] is None else round(items.seconds[i], 6)
            if items.batches is not None and items.batches[i] is not None:  # which times were measured together
                row["batches"] = items.batches[i]
        lines.append(json.dumps(row, ensure_ascii=False))
    write_atomic(path, "\n".join(lines) + "\n")
    return path
