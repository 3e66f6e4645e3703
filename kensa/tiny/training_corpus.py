"""The frozen training text of the trained tiny models: committed files, not a function of the task registry.

``data/corpus/training-<version>-<kind>.jsonl`` holds one example a line: a prompt exactly as the suite
rendered it (shots included) when that version was frozen, and its gold continuation (``causal``:
``tiny-trained``; ``seq2seq``: ``tiny-t5-trained``). Adding a task or editing a fixture changes nothing
here, so the trained models and every threshold entry measured on them stay as they are; a prompt the
corpus lacks is reported by :func:`coverage` instead. ``python -m kensa tiny --freeze-corpus VERSION``
writes a new version from today's registry (:mod:`kensa.tasks.training_text` renders it); a version, once
written, never changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from kensa.errors import DataError, KensaError

TRAINING_CORPUS_VERSION = "v1"
"""The corpus the trained tiny models learn from. A new version changes their weights: rebuild and ship
them (``python -m kensa tiny --rebuild NAME --ship``) and regenerate their thresholds."""
KINDS = ("causal", "seq2seq")


@dataclass(frozen=True)
class TrainingExample:
    task_id: str
    context: str
    continuation: str
    eos: bool = False
    """The continuation ends with the model's EOS token (a prompt whose only stop is EOS)."""


def corpus_file(kind: str, version: str = TRAINING_CORPUS_VERSION) -> Path:
    """The committed corpus file of ``kind`` (package data, located through importlib.resources)."""
    if kind not in KINDS:
        raise KensaError(f"training corpus: unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    return Path(str(resources.files("kensa.tiny") / "data" / "corpus" / f"training-{version}-{kind}.jsonl"))


def dumps(examples: Iterable[TrainingExample]) -> str:
    """The file's text: one JSON object a line, keys sorted, non-ASCII kept (readable in a diff)."""
    lines = []
    for e in examples:
        row = {"task_id": e.task_id, "context": e.context, "continuation": e.continuation}
        if e.eos:
            row["eos"] = True
        lines.append(json.dumps(row, ensure_ascii=False, sort_keys=True))
    return "".join(line + "\n" for line in lines)


def read_corpus(path: Path) -> list[TrainingExample]:
    """The examples of a corpus file; a malformed line is an error naming the file, the line and the field."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise KensaError(f"training corpus {path}: cannot be read ({exc})") from exc
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DataError(str(path), number, f"not JSON ({exc})") from exc
        if not isinstance(row, dict):
            raise DataError(str(path), number, "not a JSON object")
        for field in ("task_id", "context", "continuation"):
            if not isinstance(row.get(field), str):
                raise DataError(str(path), number, "missing or not a string", field)
        unknown = set(row) - {"task_id", "context", "continuation", "eos"}
        if unknown:
            raise DataError(str(path), number, f"unknown keys {sorted(unknown)}")
        if not isinstance(row.get("eos", False), bool):
            raise DataError(str(path), number, "not true or false", "eos")
        out.append(TrainingExample(row["task_id"], row["context"], row["continuation"], row.get("eos", False)))
    return out


@lru_cache(maxsize=4)
def training_examples(kind: str, version: str = TRAINING_CORPUS_VERSION) -> tuple[TrainingExample, ...]:
    """The committed examples the trained tiny model of ``kind`` learns from."""
    return tuple(read_corpus(corpus_file(kind, version)))


def examples_digest(examples: Sequence[TrainingExample]) -> str:
    """A short hash of the training text, in the trained models' cache keys and manifest."""
    payload = json.dumps([[e.task_id, e.context, e.continuation] + (["eos"] if e.eos else []) for e in examples],
                         ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def write_version(directory: Path, version: str, by_kind: dict[str, Sequence[TrainingExample]]) -> list[Path]:
    """Write one corpus version (a file per kind) into ``directory``. A version already there with other
    text is refused: a frozen version never changes (freeze a new one)."""
    from kensa.paths import write_atomic

    texts = {kind: dumps(by_kind[kind]) for kind in KINDS}
    paths = {kind: Path(directory) / f"training-{version}-{kind}.jsonl" for kind in KINDS}
    changed = [p.name for kind, p in paths.items() if p.is_file() and p.read_text(encoding="utf-8") != texts[kind]]
    if changed:
        raise KensaError(f"training corpus {version} exists in {directory} with other text ({', '.join(changed)}): "
                         "a frozen version never changes; freeze a new version")
    for kind, path in paths.items():
        write_atomic(path, texts[kind])
    return list(paths.values())


@dataclass(frozen=True)
class Coverage:
    """How much of a task variant's prompts a trained tiny model saw in training."""

    task_id: str
    corpus: str
    docs: int
    absent: int
    variant_absent: bool
    """The corpus has no example of this task id at all (a task or prompt version added after freezing)."""

    def as_dict(self) -> dict[str, object]:
        return {"corpus": self.corpus, "docs": self.docs, "absent": self.absent,
                "variant_absent": self.variant_absent}

    def message(self, model: str) -> str | None:
        """A line for the user, or None when every prompt was in the corpus."""
        if self.variant_absent:
            return (f"{self.task_id}: absent from {model}'s training corpus {self.corpus} (added after it was "
                    f"frozen): {model} never saw these prompts, so its scores here are not a trained model's")
        if self.absent:
            return (f"{self.task_id}: {self.absent} of {self.docs} prompts are not in {model}'s training corpus "
                    f"{self.corpus} (other data, shots or fixtures than it was frozen from)")
        return None


def coverage(kind: str, task_id: str, rendered: Sequence[TrainingExample],
             version: str = TRAINING_CORPUS_VERSION) -> Coverage:
    """Which of ``rendered`` (the variant's prompts and gold continuations as this run renders them) the
    corpus of ``kind`` holds."""
    known = _index(kind, version)
    mine = known.get(task_id)
    absent = sum(1 for e in rendered if mine is None or (e.context, e.continuation) not in mine)
    return Coverage(task_id, version, len(rendered), absent, mine is None)


@lru_cache(maxsize=4)
def _index(kind: str, version: str) -> dict[str, frozenset[tuple[str, str]]]:
    by_task: dict[str, set[tuple[str, str]]] = {}
    for e in training_examples(kind, version):
        by_task.setdefault(e.task_id, set()).add((e.context, e.continuation))
    return {task_id: frozenset(pairs) for task_id, pairs in by_task.items()}
