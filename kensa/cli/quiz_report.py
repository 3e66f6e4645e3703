"""``python -m kensa quiz report DIR... [--out quiz.md] [--plot quiz.png]``: the QMA tables across runs and machines.

Each quiz session leaves its records in ``<results-dir>/<model>/quiz.jsonl``; this merges any number of results
folders (one per machine, say) into the seed's layout: one table per genre, Model | Environment | Score | Latency,
sorted by score (see :mod:`kensa.report.quiz`). A genre measured under different budgets or stops is refused with
the reason.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kensa.errors import DataError, WriteError


def report_command(args: argparse.Namespace) -> int:
    from kensa.paths import write_atomic
    from kensa.report.quiz import QuizReportError, quiz_figure, quiz_markdown, read_records

    try:
        records = read_records([Path(d).expanduser() for d in args.folders])
        text = quiz_markdown(records)
    except (DataError, QuizReportError) as exc:
        print(f"kensa quiz report: {exc}", file=sys.stderr)
        return 2
    try:
        if args.out:
            print(write_atomic(Path(args.out), text))
        else:
            sys.stdout.write(text)
        if args.plot:
            print(quiz_figure(records, Path(args.plot)), file=sys.stderr if not args.out else sys.stdout)
    except (WriteError, OSError) as exc:
        print(f"kensa quiz report: {exc}", file=sys.stderr)
        return 2
    return 0


def add_parser(quiz: argparse._SubParsersAction) -> None:
    r = quiz.add_parser("report", help="merge the quiz records of results folders into the QMA tables (one per genre)")
    r.add_argument("folders", nargs="+", metavar="DIR", help="results folders (each holds <model>/quiz.jsonl)")
    r.add_argument("--out", metavar="quiz.md", help="write the tables here (default: print them)")
    r.add_argument("--plot", metavar="quiz.png", help="also draw score against seconds per question")
    r.set_defaults(func=report_command)
