"""``python -m kensa quiz score FILE [--out OUT.jsonl]``: rescore generations made elsewhere, exactly as the suite.

FILE holds records of the seed's evaluation (or training) format, JSON Lines, a JSON array or one object, each
with a ``generation`` field: what a model answered (through an API, another harness, an earlier run). Every record
is read by the suite's reader (a bad one is an error naming file, record and field) and its generation scored by
the suite's own :func:`~kensa.tasks.quiz.tasks.score_choice`, so the printed numbers are the suite's: per
category n, accuracy, and the unparseable and late-answer rates. ``--out`` writes each row's reading (the choice
read, a late answer, the verdict), to audit the rules row by row.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kensa.errors import DataError, WriteError
from kensa.report.results import format_table
from kensa.tasks.quiz.formats import json_records, seed_record
from kensa.tasks.quiz.sets import GENRE_SLUGS
from kensa.tasks.quiz.tasks import score_choice

HEADER = ["category", "n", "accuracy", "unparseable", "late_answer"]


def verdict(scores: dict[str, Any]) -> str:
    if scores["acc"] == 1.0:
        return "correct"
    if scores["late"] is not None:
        return "late"
    return "unparseable" if scores["extracted"] is None else "wrong"


def score_file(path: Path) -> list[dict[str, Any]]:
    """One row per record: the record's id, category and gold, its generation, and the suite's scores."""
    records, _ = json_records(path)
    out = []
    for index, obj in records:
        row = seed_record(obj, path, index)
        generation = obj.get("generation")
        if not isinstance(generation, str):
            raise DataError(str(path), index, "missing: the model's answer to score" if "generation" not in obj
                            else f"expected a string, got {generation!r}", field="generation")
        scores = score_choice(generation, row, None)
        out.append({"qid": row["qid"], "category": row["category"], "source": row["source"], "gold": row["gold"],
                    "generation": generation, "answer": scores["extracted"], "late": scores["late"],
                    "verdict": verdict(scores), "acc": scores["acc"], "unparseable": scores["unparseable_rate"],
                    "late_answer": scores["late_answer_rate"]})
    return out


def _cell(part: list[dict[str, Any]], key: str) -> str:
    hits = sum(r[key] for r in part)
    return f"{hits / len(part)} ({int(hits)}/{len(part)})"


def table(rows: list[dict[str, Any]]) -> list[str]:
    order = list(GENRE_SLUGS)
    categories = sorted({r["category"] for r in rows}, key=lambda c: (order.index(c) if c in order else len(order), c))
    lines = []
    for category in [*categories, "all"]:
        part = rows if category == "all" else [r for r in rows if r["category"] == category]
        lines.append([category, str(len(part)), _cell(part, "acc"), _cell(part, "unparseable"),
                      _cell(part, "late_answer")])
    return format_table(lines, HEADER)


def score_command(args: argparse.Namespace) -> int:
    path = Path(args.input).expanduser()
    try:
        if not path.is_file():
            raise DataError(str(path), None, "no such file")
        rows = score_file(path)
    except DataError as exc:
        print(f"kensa quiz score: {exc}", file=sys.stderr)
        return 2
    for line in table(rows):
        print(line)
    if args.out:
        from kensa.paths import write_atomic

        try:
            out = write_atomic(Path(args.out), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        except (WriteError, OSError) as exc:
            print(f"kensa quiz score: {exc}", file=sys.stderr)
            return 2
        print(f"{out}: {len(rows)} rows (answer read, late answer, verdict)")
    return 0


def add_parser(quiz: argparse._SubParsersAction) -> None:
    s = quiz.add_parser("score", help="rescore generations made elsewhere (records with a 'generation' field) as the "
                                      "suite does: per category n, accuracy, unparseable and late-answer rates")
    s.add_argument("input", help="records in the evaluation format, each with a 'generation' (JSON Lines or JSON)")
    s.add_argument("--out", metavar="OUT.jsonl", help="write each row's reading and verdict here")
    s.set_defaults(func=score_command)
