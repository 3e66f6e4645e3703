"""``python -m kensa hallucination --candidate TEXT --reference TEXT [--reference TEXT ...] [--stop-words W ...]
[--json]``: the users' ``check_hallucination`` as a command (:mod:`kensa.metrics.hallucination`).

Prints the hallucinated words of the candidate, one per line (nothing when there are none); with ``--json``
one object, ``{"hallucinated": [...], "rate": R, "empty": false}``, the rate on 0-100 and null for an empty
candidate. ``--stop-words`` replaces the default stop words (the question words).
"""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser("hallucination", help="the content words of a text found in no reference (the users' "
                                             "check_hallucination)")
    p.add_argument("--candidate", required=True, help="the generated text to check")
    p.add_argument("--reference", required=True, action="append", metavar="TEXT",
                   help="a source the candidate may use (the context, the answer); repeat for several")
    p.add_argument("--stop-words", nargs="+", default=None, metavar="W",
                   help="words never counted (default: the question words 何, どこ, いつ, 誰, ...)")
    p.add_argument("--json", action="store_true", help='print {"hallucinated": [...], "rate": R}')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kensa.metrics.hallucination import QUESTION_WORDS, hallucination

    stops = QUESTION_WORDS if args.stop_words is None else frozenset(args.stop_words)
    h = hallucination(args.candidate, args.reference, stops)
    if args.json:
        print(json.dumps({"hallucinated": h.hallucinated, "rate": h.rate, "empty": h.empty}, ensure_ascii=False))
    else:
        for word in h.hallucinated:
            print(word)
    return 0
