"""Five numbered choices from JAQKET v1 candidates or from other AI王 answers, and the seed's two formats.

* :func:`draw_from_candidates` (JAQKET v1, 20 candidates): the gold plus four of its other candidates,
  drawn with a generator seeded by ``(seed, qid)`` and shuffled. The file's candidate order is never
  used (in JAQKET's training file the answer sits among the first five): the other candidates are
  sorted before the draw, so a permuted candidate list gives the same five in the same order.
* :func:`draw_from_answers` (the AI王 TSV, no candidates): the gold plus four *other questions'* answers
  from the same file, drawn the same way, never one that normalises to an accepted answer of the
  question itself. These distractors are drawn, not curated, and the results say so.
* :func:`position_balance`: how often the gold lands on each position, with a chi-square test of
  evenness (a report line for real files; a test on the fixtures).
* :func:`eval_record` and :func:`train_record`: a row in the seed's evaluation and training formats, so
  that one converted file feeds both kensa and Axolotl.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kensa.errors import DataError
from kensa.tasks.quiz.answers import normalize_answer
from kensa.tasks.quiz.formats import UNCATEGORISED

DRAW_VERSION = "mc5-1.0"
"""Part of every drawn set's identity: bump it when a draw would come out differently."""
CHOICES = 5


def qid_random(seed: int, qid: str) -> random.Random:
    """A generator that depends only on the seed and the question's id (stable across runs and files)."""
    digest = hashlib.sha256(f"{seed}:{qid}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _five(gold: str, others: Sequence[str], rnd: random.Random) -> tuple[list[str], int]:
    picked = rnd.sample(sorted(others), CHOICES - 1)
    choices = [gold, *picked]
    rnd.shuffle(choices)
    return choices, choices.index(gold)


def draw_from_candidates(row: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """A JAQKET v1 row (20 candidates, gold among them) as a five-choice row."""
    gold = row["choices"][row["gold"]]
    others = [c for i, c in enumerate(row["choices"]) if i != row["gold"]]
    if len(others) < CHOICES - 1:
        raise DataError(row["source"], None, f"qid {row['qid']}: {len(others) + 1} candidates, need {CHOICES}",
                        field="answer_candidates")
    choices, index = _five(gold, others, qid_random(seed, row["qid"]))
    return {**row, "choices": choices, "gold": index, "answers": [gold], "drawn": f"{DRAW_VERSION} seed {seed}"}


def draw_from_answers(rows: Sequence[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Open-answer rows of one file as five-choice rows whose distractors are other questions' answers."""
    pool = {normalize_answer(r["answers"][0]): r["answers"][0] for r in rows}  # one spelling per answer
    out = []
    for r in rows:
        own = {normalize_answer(a) for a in r["answers"]}
        others = [text for key, text in pool.items() if key not in own]
        if len(others) < CHOICES - 1:
            raise DataError(r["source"], None, f"qid {r['qid']}: the file has only {len(others)} other distinct "
                                               f"answers to draw distractors from; {CHOICES - 1} are needed")
        choices, index = _five(r["answers"][0], others, qid_random(seed, r["qid"]))
        out.append({**r, "choices": choices, "gold": index, "answers": [r["answers"][0]],
                    "drawn": f"{DRAW_VERSION} seed {seed}"})
    return out


@dataclass(frozen=True)
class Balance:
    counts: list[int]
    p_value: float
    """Chi-square test against equal counts (scipy.stats.chisquare); small = uneven."""

    def line(self) -> str:
        spread = ", ".join(f"{i}: {c}" for i, c in enumerate(self.counts))
        return f"gold positions {spread} (chi-square against even: p = {self.p_value:.3f})"


def position_balance(rows: Iterable[dict[str, Any]], n: int = CHOICES) -> Balance:
    from scipy.stats import chisquare

    counts = [0] * n
    for r in rows:
        counts[r["gold"]] += 1
    p = float(chisquare(counts).pvalue) if sum(counts) else 1.0
    return Balance(counts, p)


def _labels(n: int) -> str:
    return ", ".join(str(i) for i in range(n))


def _block(choices: Sequence[str]) -> str:
    return "\n".join(f"{i}: {c}" for i, c in enumerate(choices))


def eval_record(row: dict[str, Any]) -> dict[str, Any]:
    """The seed's evaluation format (``category`` when the row has one)."""
    out = {"instruction": f"以下の問題について、{_labels(len(row['choices']))}から選んで答えてください。\n"
                          f"問題: {row['question']}\n",
           "input": _block(row["choices"]) + "\n\n\n",
           "output": f"{row['gold']}: {row['choices'][row['gold']]}"}
    return _extras(out, row)


def train_record(row: dict[str, Any]) -> dict[str, Any]:
    """The seed's training format: question and choices inside the instruction, which ends in ``### 回答:``."""
    out = {"instruction": f"以下の問題について、{_labels(len(row['choices']))}の選択肢から選んで答えてください。\n\n"
                          f"問題: {row['question']}\n選択肢\n\n{_block(row['choices'])}\n\n\n### 回答:\n",
           "output": f"{row['gold']}: {row['choices'][row['gold']]}"}
    return _extras(out, row)


def _extras(out: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    if row.get("category") and row["category"] != UNCATEGORISED:
        out["category"] = row["category"]
    out["qid"] = row["qid"]
    return out


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)
