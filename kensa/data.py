"""Data loading from three sources: local files laid out like ``shared/data``, the project's
own fixtures (same layout), and a Hugging Face Hub dataset id.

Every row is checked against the task's field list as it is read; a bad row raises a
:class:`~kensa.errors.DataError` that names the file, the row (1-based line) and the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kensa.errors import DataError
from kensa.paths import fixtures_dir

FIXTURES_DIR = fixtures_dir()

_VERSION_RE = re.compile(r"-v(\d+(?:\.\d+)*)\.json$")


@dataclass(frozen=True)
class DatasetSpec:
    """Where a task's data lives and what each row holds."""

    name: str
    local: Mapping[str, str]
    """split -> glob relative to the data dir, e.g. ``jglue/jcommonsenseqa/valid-v*.json``."""
    fields: Mapping[str, type | tuple[type, ...]]
    hub_id: str | None = None
    hub_splits: Mapping[str, str] = field(default_factory=dict)
    """our split name -> the hub's split name, where they differ."""
    id_field: str | None = None
    hub_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Extra ``datasets.load_dataset`` arguments (``name``, ``revision``, ``data_dir``)."""
    reader: Any = None
    """Reads one local file into a :class:`Split` (``reader(spec, path, split)``); default JSON Lines."""
    missing_hint: str = ""
    """Added to the error when ``--data-dir`` has no file for a split (e.g. where to get the data)."""
    fixture_local: Mapping[str, str] = field(default_factory=dict)
    """split -> glob under ``fixtures/`` where a task's own fixtures differ from the dataset's layout (the QA
    suite reads JSQuAD's format from ``fixtures/qa/jsquad/``, leaving the JGLUE JSQuAD fixtures alone)."""


@dataclass(frozen=True)
class DataSource:
    """Which of the three sources to read: ``fixtures``, ``local`` (with a dir) or ``hub``."""

    kind: str
    root: Path | None = None
    pools: tuple[tuple[str, str], ...] = ()
    """Few-shot pool overrides, ``(task name, split name or file path)``: e.g. ``("jnli", "test")``."""

    def pool_for(self, task: str) -> str | None:
        return dict(self.pools).get(task)

    @classmethod
    def fixtures(cls) -> DataSource:
        return cls("fixtures", FIXTURES_DIR)

    @classmethod
    def local(cls, root: str | Path) -> DataSource:
        return cls("local", Path(root))

    @classmethod
    def hub(cls) -> DataSource:
        return cls("hub")

    def describe(self) -> str:
        where = "hub" if self.kind == "hub" else f"{self.kind}:{self.root}"
        return where + "".join(f"; {task} shots from {pool}" for task, pool in self.pools)


@dataclass
class Split:
    """Rows of one split plus where they came from, for provenance in the results."""

    rows: list[dict[str, Any]]
    source: str
    version: str | None = None
    sha256: str | None = None
    lines: list[int] | None = None
    """Each row's 1-based line in the file (blank lines count), for error messages."""
    split: str | None = None
    """Which split of the task this is (e.g. ``train``, or ``test`` as a JNLI few-shot pool)."""

    def line_of(self, index: int) -> int:
        return self.lines[index] if self.lines is not None else index + 1

    def provenance(self) -> dict[str, Any]:
        out = {"source": self.source, "version": self.version, "sha256": self.sha256, "rows": len(self.rows)}
        if self.split is not None:
            out["split"] = self.split
        return out


def check_row(spec: DatasetSpec, row: Any, source: str, lineno: int) -> dict[str, Any]:
    """Check one row against ``spec.fields``; return it unchanged when it is good."""
    if not isinstance(row, dict):
        raise DataError(source, lineno, f"expected a JSON object, got {type(row).__name__}")
    for name, types in spec.fields.items():
        if name not in row:
            raise DataError(source, lineno, "missing", field=name)
        value = row[name]
        wanted = types if isinstance(types, tuple) else (types,)
        # bool is an int in Python, but a JSON true is never a valid label or id here.
        if isinstance(value, bool) and bool not in wanted or not isinstance(value, wanted):
            names = " or ".join(t.__name__ for t in wanted)
            raise DataError(source, lineno, f"expected {names}, got {type(value).__name__} {value!r}", field=name)
    return row


def find_local_file(root: Path, pattern: str) -> Path:
    """The newest-versioned file matching ``pattern`` under ``root`` (``valid-v1.3.json`` beats ``-v1.1``)."""
    matches = sorted(root.glob(pattern), key=_version_key)
    if not matches:
        raise DataError(str(root / pattern), None, "no file matches (is --data-dir laid out like shared/data?)")
    return matches[-1]


def _version_key(path: Path) -> tuple[int, ...]:
    m = _VERSION_RE.search(path.name)
    return tuple(int(p) for p in m.group(1).split(".")) if m else ()


def read_jsonl(spec: DatasetSpec, path: Path, split: str | None = None) -> Split:
    """Read a JSON Lines file (JGLUE's format), checking every row."""
    raw = path.read_bytes()
    rows, lines = [], []
    source = str(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:  # a damaged or re-encoded file: name the line the bad byte is on
        raise DataError(str(path), raw[: exc.start].count(b"\n") + 1, f"not UTF-8 (byte {exc.start})") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(source, lineno, f"malformed JSON: {exc.msg} at column {exc.colno}") from None
        rows.append(check_row(spec, obj, source, lineno))
        lines.append(lineno)
    if not rows:
        raise DataError(source, None, "the file holds no rows")
    m = _VERSION_RE.search(path.name)
    return Split(rows, source, m.group(1) if m else None, hashlib.sha256(raw).hexdigest(), lines, split)


def read_hub(spec: DatasetSpec, split: str, revision: str | None = None) -> Split:
    """Read a split with ``datasets.load_dataset`` (no loading scripts: datasets 4+ dropped them)."""
    if spec.hub_id is None:
        raise DataError(spec.name, None, "this task has no Hub dataset id; use --data-dir")
    import datasets  # lazy: importing datasets costs most of a second

    hub_split = spec.hub_splits.get(split, split)
    source = f"hub:{spec.hub_id}[{hub_split}]"
    try:
        kwargs = {**spec.hub_kwargs, "revision": revision} if revision else dict(spec.hub_kwargs)
        ds = datasets.load_dataset(spec.hub_id, split=hub_split, **kwargs)
    except Exception as exc:  # datasets raises many types; name the source either way
        raise DataError(source, None, f"could not load: {type(exc).__name__}: {exc}") from exc
    rows = [check_row(spec, dict(row), source, i) for i, row in enumerate(ds, start=1)]
    fingerprint = getattr(ds, "_fingerprint", None)
    return Split(rows, source, None, fingerprint, split=split)


def load_split(spec: DatasetSpec, split: str, source: DataSource) -> Split:
    if source.kind == "hub":
        return read_hub(spec, split)
    assert source.root is not None
    if split not in spec.local:
        raise DataError(spec.name, None, f"no local file pattern for split {split!r}")
    pattern = spec.fixture_local.get(split, spec.local[split]) if source.kind == "fixtures" else spec.local[split]
    try:
        path = find_local_file(source.root, pattern)
    except DataError as exc:
        if not spec.missing_hint:
            raise
        raise DataError(exc.source, None, f"no file matches; {spec.missing_hint}") from None
    return (spec.reader or read_jsonl)(spec, path, split=split)
