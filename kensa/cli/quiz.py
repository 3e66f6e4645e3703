"""The quiz's options (``--quiz-data``, ``--gate-latency``) and ``python -m kensa quiz convert``.

``python -m kensa quiz convert IN --eval OUT.jsonl --train OUT.jsonl [--seed N] [--category NAME]``
turns a JAQKET v1 JSON Lines file (20 candidates) or an AI王 TSV (no candidates) into five numbered
choices and writes the seed's evaluation and training formats, so that one file feeds both kensa
(``--quiz-data``) and Axolotl; it prints how the gold positions came out.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kensa.errors import DataError, OptionError
from kensa.tasks.quiz import convert
from kensa.tasks.quiz.formats import detect_format, read_aio_tsv, read_jaqket_v1


@dataclass(frozen=True)
class QuizOptions:
    files: tuple[Path, ...] = ()
    """``--quiz-data``: the sets to score instead of the data source's own."""
    gate_latency: float | None = None
    """``--gate-latency PCT``: the tolerated rise in seconds per question, in percent; None: off."""
    environment: str = ""
    """``--environment NAME``: the machine's name in the quiz tables (default: the host name)."""


def parse_quiz_options(files: Sequence[str], gate_latency: str | None, *, gate_mode: str,
                       environment: str | None = None) -> QuizOptions:
    paths = []
    for text in files:
        path = Path(os.path.expanduser(text))
        if not path.is_file():
            raise OptionError("--quiz-data", f"{text!r}: no such file")
        try:
            detect_format(path)
        except DataError as exc:
            raise OptionError("--quiz-data", f"{text!r}: {exc}") from None
        paths.append(path.resolve())
    pct = None
    if gate_latency is not None:
        try:
            pct = float(gate_latency)
        except ValueError:
            raise OptionError("--gate-latency", f"{gate_latency!r}: expected a percentage, e.g. 50") from None
        if not math.isfinite(pct) or pct < 0:
            raise OptionError("--gate-latency", f"{gate_latency!r}: must be a percentage of 0 or more")
        if gate_mode != "on":
            raise OptionError("--gate-latency", "needs the gate on (it reads the baseline's per-question times)")
    if environment is not None and not environment.strip():
        raise OptionError("--environment", "an empty name: give the machine's name, e.g. dev5")
    return QuizOptions(tuple(paths), pct, (environment or "").strip())


def convert_command(args: argparse.Namespace) -> int:
    path = Path(args.input).expanduser()
    try:
        if not path.is_file():
            raise DataError(str(path), None, "no such file")
        fmt = detect_format(path)
        if fmt == "jaqket_v1":
            rows = [convert.draw_from_candidates(r, args.seed) for r in read_jaqket_v1(path)[0]]
            how = f"five of the 20 candidates drawn per qid ({convert.DRAW_VERSION}, seed {args.seed})"
        elif fmt == "aio_tsv":
            rows = convert.draw_from_answers(read_aio_tsv(path)[0], args.seed)
            how = (f"four distractors drawn per qid from the file's other answers ({convert.DRAW_VERSION}, "
                   f"seed {args.seed}): drawn, not curated")
        else:
            raise DataError(str(path), None, f"is in the {fmt!r} format; convert reads JAQKET v1 JSON Lines or the "
                                             "AI王 TSV")
    except DataError as exc:
        print(f"kensa quiz convert: {exc}", file=sys.stderr)
        return 2
    if args.category:
        rows = [{**r, "category": args.category} for r in rows]
    if not args.eval and not args.train:
        print("kensa quiz convert: give --eval OUT and/or --train OUT", file=sys.stderr)
        return 2
    if args.eval:
        n = convert.write_jsonl(Path(args.eval), (convert.eval_record(r) for r in rows))
        print(f"{args.eval}: {n} questions in the evaluation format")
    if args.train:
        n = convert.write_jsonl(Path(args.train), (convert.train_record(r) for r in rows))
        print(f"{args.train}: {n} questions in the training format")
    balance = convert.position_balance(rows)
    print(f"{path.name}: {how}; {balance.line()}")
    if balance.p_value < 0.01:
        print("kensa quiz convert: WARNING: the gold positions are uneven (p < 0.01)", file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quiz", help="quiz data: convert JAQKET v1 or the AI王 TSV to five numbered choices; score "
                                    "generations made elsewhere; merge results folders into the QMA tables")
    quiz = p.add_subparsers(dest="quiz_command", required=True)
    c = quiz.add_parser("convert", help="write the seed's evaluation and/or training format from JAQKET v1 JSON Lines "
                                        "or an AI王 TSV")
    c.add_argument("input", help="dev1_questions.json (JAQKET v1) or aio_01_dev1.txt (AI王 TSV), ...")
    c.add_argument("--eval", metavar="OUT", help="write the evaluation format here (JSON Lines)")
    c.add_argument("--train", metavar="OUT", help="write the training format here (JSON Lines, for Axolotl)")
    c.add_argument("--seed", type=int, default=0, help="the draw's seed (per qid; default 0)")
    c.add_argument("--category", help="a category to write on every record (the files carry none)")
    c.set_defaults(func=convert_command)
    from kensa.cli import quiz_report, quiz_score

    quiz_score.add_parser(quiz)
    quiz_report.add_parser(quiz)
