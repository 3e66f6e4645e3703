"""Quiz sets: which files a session scores, their categories, and one category's questions as a split.

A *set* is one source of questions: the project's fixtures (five QMA genres), JMMLU (``<data-dir>/jmmlu``),
AI王 dev1 and dev2 (``<data-dir>/aio``, scored separately, never pooled: the fine-tuning guide demands both),
or a user's file (``--quiz-data PATH``). Categories come from the data:

* the evaluation and training formats carry ``category`` (a record without one is 未分類);
* a JMMLU subject is its category, grouped to a QMA genre where the mapping is obvious
  (:data:`JMMLU_ACADEMIC` -> 学問, ``miscellaneous`` and ``global_facts`` -> 雑学) and kept as its own
  category otherwise;
* AI王 has no genre labels (the qid prefix names the writer, ``qtype`` the answer type) and no keyword
  classifier is applied: its questions are 未分類.

Test ids are ASCII: a genre has an English slug (:data:`GENRE_SLUGS`), a JMMLU subject keeps its file name,
any other category gets ``x`` + its Punycode.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kensa.data import DataSource, Split
from kensa.errors import DataError
from kensa.tasks.quiz import convert
from kensa.tasks.quiz.formats import (
    UNCATEGORISED,
    detect_format,
    read_aio_tsv,
    read_jaqket_v1,
    read_jmmlu,
    read_seed,
    sha256_of,
)

GENRE_SLUGS = {
    "芸能": "entertainment", "学問": "academic", "雑学": "trivia", "アニメ": "anime", "スポーツ": "sports",
    "アニメ&ゲーム": "anime_games", "アニメ＆ゲーム": "anime_games", "ライフスタイル": "lifestyle", "社会": "society",
    "文系学問": "humanities", "理系学問": "sciences", UNCATEGORISED: "uncategorised",
}

JMMLU_ACADEMIC = frozenset({
    "abstract_algebra", "anatomy", "astronomy", "college_biology", "college_chemistry", "college_computer_science",
    "college_mathematics", "college_medicine", "college_physics", "conceptual_physics", "econometrics",
    "electrical_engineering", "elementary_mathematics", "formal_logic", "high_school_biology",
    "high_school_chemistry", "high_school_computer_science", "high_school_european_history",
    "high_school_geography", "high_school_macroeconomics", "high_school_mathematics",
    "high_school_microeconomics", "high_school_physics", "high_school_psychology", "high_school_statistics",
    "international_law", "japanese_history", "jurisprudence", "logical_fallacies", "machine_learning",
    "medical_genetics", "philosophy", "prehistory", "sociology", "virology", "world_history",
})
"""School and university subjects: 学問. The rest (business, professional, health and society subjects)
is not obviously a QMA genre and stays its own category."""
JMMLU_TRIVIA = frozenset({"miscellaneous", "global_facts"})

JMMLU_DEFECTS = {
    # subject: (the file's SHA-256 prefix in nlp-waseda/JMMLU @762cbf19, rows with two identical choices)
    "anatomy": ("55b6d3f04a0bfcbb", (111,)), "astronomy": ("65457f82cd75a82d", (124,)),
    "business_ethics": ("5c4f7b0f6c3ddc53", (2,)), "conceptual_physics": ("446e38c2b225d741", (47,)),
    "electrical_engineering": ("31606d70a21677d9", (21,)), "elementary_mathematics": ("789049401d72a707", (113,)),
    "formal_logic": ("b2f1b18adb9bcbde", (62,)), "global_facts": ("df0337f3b7d2993f", (51,)),
    "high_school_chemistry": ("5f3c34254eb683bf", (139,)),
    "high_school_computer_science": ("0daf11091874a296", (21,)),
    "high_school_mathematics": ("530acdf4799017fc", (79,)),
    "high_school_microeconomics": ("88835e9ca427a951", (39,)), "high_school_physics": ("e8c7a7768c4dde2d", (99,)),
    "human_sexuality": ("7e97c9371405ed8c", (87,)), "international_law": ("a3ef3d86c6767147", (51,)),
    "marketing": ("fada76ca011b0936", (60,)), "moral_disputes": ("d1e546585e4e00a0", (116, 128)),
    "philosophy": ("e7fef1622d103d65", (30,)), "professional_medicine": ("d00f9ba70cbc51b8", (5,)),
    "professional_psychology": ("a87297a0a25d5943", (10, 60)), "public_relations": ("863faaef55d3dd61", (85,)),
    "virology": ("e4568515e1a8d2e5", (10,)), "world_history": ("1e6824900650098f", (106,)),
    "world_religions": ("8c889d25f6ef0733", (130,)),
}
"""Upstream rows whose choices repeat (26 of 7,097): the gate cannot score them and the parser cannot tell the
two apart. They are left out by file hash and row, listed in the results; any other such row is an error."""


def jmmlu_category(subject: str) -> str:
    if subject in JMMLU_ACADEMIC:
        return "学問"
    if subject in JMMLU_TRIVIA:
        return "雑学"
    return subject


def category_slug(category: str) -> str:
    if category in GENRE_SLUGS:
        return GENRE_SLUGS[category]
    if re.fullmatch(r"[A-Za-z0-9_]+", category):
        return category.lower()
    return "x" + category.encode("punycode").decode("ascii").replace("-", "_").lower()


def file_slug(path: Path) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", path.stem).strip("_").lower()
    return slug or "file"


@dataclass(frozen=True)
class QuizSet:
    slug: str
    """The set's part of a test id: ``fixtures``, ``jmmlu``, ``aio_dev1``, a user file's stem."""
    label: str
    files: tuple[str, ...]
    """Paths relative to the data root (a glob for JMMLU), or absolute paths (``--quiz-data``)."""
    fmt: str
    seed: int = 0
    """The distractor draw's seed (AI王, JAQKET v1)."""

    @property
    def drawn(self) -> str | None:
        """How five choices are made where the file has no curated ones (recorded in the results)."""
        if self.fmt == "aio_tsv":
            return f"distractors drawn from other questions' answers in the same file ({convert.DRAW_VERSION}, " \
                   f"seed {self.seed}), not curated"
        if self.fmt == "jaqket_v1":
            return f"five of the 20 JAQKET candidates drawn ({convert.DRAW_VERSION}, seed {self.seed})"
        return None

    @property
    def modes(self) -> tuple[str, ...]:
        return ("loglik", "gen", "open") if self.fmt == "aio_tsv" else ("loglik", "gen")

    def paths(self, root: Path | None) -> list[Path]:
        out: list[Path] = []
        for f in self.files:
            if Path(f).is_absolute():
                out.append(Path(f))
            elif root is None:
                raise DataError(f, None, "a relative quiz file needs a data directory")
            elif any(ch in f for ch in "*?["):
                out += sorted(root.glob(f))
            else:
                out.append(root / f)
        for p in out:
            if not p.is_file():
                raise DataError(str(p), None, "no such file")
        if not out:
            raise DataError(str((root or Path()) / self.files[0]), None, "no file matches")
        return out


FIXTURE_SET = QuizSet("fixtures", "kensa fixtures (hand-written, five QMA genres)", ("quiz/quiz_eval.json",), "eval")
JMMLU_SET = QuizSet("jmmlu", "JMMLU (CC BY-SA part)", ("jmmlu/*.csv",), "jmmlu")
AIO_SETS = tuple(QuizSet(f"aio_{dev}", f"AI王 第1回 {dev}", (f"aio/aio_01_{dev}.txt",), "aio_tsv")
                 for dev in ("dev1", "dev2"))


def user_sets(paths: list[Path]) -> list[QuizSet]:
    """``--quiz-data`` files: each is its own set, named after its file (``_2``, ... when names repeat)."""
    out, seen = [], {}
    for p in paths:
        fmt = detect_format(p)
        slug = file_slug(p)
        seen[slug] = seen.get(slug, 0) + 1
        if seen[slug] > 1:
            slug = f"{slug}_{seen[slug]}"
        out.append(QuizSet(slug, p.name, (str(p.resolve()),), fmt))
    return out


def session_sets(source: DataSource, quiz_files: list[Path]) -> tuple[list[QuizSet], str]:
    """The sets a session scores, and why there are none when there are none."""
    if quiz_files:
        return user_sets(quiz_files), ""
    if source.kind == "fixtures":
        return [FIXTURE_SET], ""
    if source.kind == "hub" or source.root is None:
        return [], "no quiz data on the Hub: use --data-dir (jmmlu/, aio/) or --quiz-data FILE"
    sets = []
    if any((source.root / "jmmlu").glob("*.csv")):
        sets.append(JMMLU_SET)
    sets += [s for s in AIO_SETS if (source.root / s.files[0]).is_file()]
    if not sets:
        return [], (f"no quiz data under {source.root} (expected jmmlu/*.csv or aio/aio_01_dev1.txt, aio_01_dev2.txt); "
                    "point --quiz-data at a file")
    return sets, ""


@dataclass
class SetData:
    rows: dict[str, list[dict[str, Any]]]
    """Category -> questions, in file order."""
    sha256: dict[str, str]
    """Category -> the identity of what it scores (see :func:`load_set`)."""
    source: str
    left_out: list[str] = field(default_factory=list)


_CACHE: dict[tuple[Any, ...], SetData] = {}


def load_set(qset: QuizSet, root: Path | None) -> SetData:
    """Read a set once per process (files keyed by size and mtime). Each category's ``sha256`` covers its files'
    hashes, the category and, for drawn choices, the draw's version and seed: editing a file, moving a
    question to another category or changing the draw makes the category's thresholds stale."""
    paths = qset.paths(root)
    key = (qset, *((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths))
    if key not in _CACHE:
        _CACHE[key] = _read(qset, paths)
    return _CACHE[key]


def _read(qset: QuizSet, paths: list[Path]) -> SetData:
    rows: list[dict[str, Any]] = []
    hashes: dict[str, str] = {}
    left_out: list[str] = []
    for p in paths:
        if qset.fmt == "jmmlu":
            raw = p.read_bytes()
            sha = sha256_of(raw)
            known = JMMLU_DEFECTS.get(p.stem)
            skip = frozenset(known[1]) if known is not None and sha.startswith(known[0]) else frozenset()
            got, _, skipped = read_jmmlu(p, skip)
            left_out += [f"{p.name} row {n}: two identical choices (upstream defect, listed in kensa)" for n in skipped]
            for r in got:
                r["subject"] = r["category"]
                r["category"] = jmmlu_category(r["category"])
        elif qset.fmt == "aio_tsv":
            got, raw = read_aio_tsv(p)
        elif qset.fmt == "jaqket_v1":
            got, raw = read_jaqket_v1(p)
            got = [convert.draw_from_candidates(r, qset.seed) for r in got]
        else:
            got, raw = read_seed(p)
        hashes[p.name] = sha256_of(raw)
        rows += [{**r, "file": p.name} for r in got]
    by_category: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_category.setdefault(r["category"], []).append(r)
    sha = {}
    for category, members in by_category.items():
        ident = {"files": [[f, hashes[f]] for f in sorted({r["file"] for r in members})], "category": category,
                 "drawn": qset.drawn}
        sha[category] = hashlib.sha256(json.dumps(ident, ensure_ascii=False, sort_keys=True).encode()).hexdigest()
    source = str(paths[0]) if len(paths) == 1 else f"{paths[0].parent}/{{{','.join(p.name for p in paths)}}}"
    return SetData(by_category, sha, source, left_out)


def category_split(qset: QuizSet, category: str, root: Path | None, mode: str) -> Split:
    """One category's questions as a split: open answers for ``open``, five (JMMLU: four) numbered choices
    otherwise (AI王's drawn from the same file's other answers)."""
    data = load_set(qset, root)
    if category not in data.rows:
        raise DataError(data.source, None, f"no question of category {category!r} (categories: "
                                           f"{', '.join(sorted(data.rows))})", field="category")
    rows = data.rows[category]
    if qset.fmt == "aio_tsv" and mode != "open":
        rows = convert.draw_from_answers(rows, qset.seed)
    return Split([dict(r) for r in rows], data.source, None, data.sha256[category], None, "test")


def categories(qset: QuizSet, root: Path | None) -> list[str]:
    """The set's categories: the QMA genres first (in the order of :data:`GENRE_SLUGS`), then the rest sorted."""
    names = list(load_set(qset, root).rows)
    order = list(GENRE_SLUGS)
    return sorted(names, key=lambda c: (order.index(c) if c in order else len(order), c))
