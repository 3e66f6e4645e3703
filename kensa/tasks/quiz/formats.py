"""Reading quiz files into one row schema, checking every record as it is read.

Formats (``detect_format`` tells them apart by name and content):

* ``eval``: the seed's evaluation format, a JSON array or JSON Lines of ``{"instruction": "以下の問題について、
  0, 1, 2, 3, 4から選んで答えてください。\\n問題: …\\n", "input": "0: …\\n…\\n4: …\\n\\n\\n", "output": "2: …"}``
  plus an optional ``category`` (and ``qid``);
* ``train``: the seed's training format, ``{"instruction": "…の選択肢から選んで答えてください。\\n\\n問題: …\\n選択肢\\n\\n
  0: …\\n…\\n\\n\\n### 回答:\\n", "output": "2: …"}`` (optional ``category``, ``qid``);
* ``jaqket_v1``: JAQKET v1 / AI王 第1回 JSON Lines (``qid``, ``question``, ``answer_entity``, ``answer_candidates``
  with 20 entries, ``qtype``): 20-way; :mod:`.convert` draws five choices from it;
* ``aio_tsv``: the AI王 TSV of cl-tohoku/quiz-datasets (header line, tab-separated, no quoting): open answers;
* ``jmmlu``: a JMMLU CSV (``question, A, B, C, D, answer``; no header; usually a UTF-8 BOM).

The row schema (one dict per question): ``qid``, ``question``, ``choices`` (empty for an open answer),
``gold`` (index, -1 for an open answer), ``answers`` (the gold answer texts), ``category``, ``source``
(``file, record N``). A record that cannot be parsed raises :class:`~kensa.errors.DataError` naming the
file, the record (1-based; the line for line-based files) and the field: a choice count that differs from
the declared one, an output naming no choice or one that does not exist, two identical choices, an empty
category, a JMMLU row with a missing or invalid answer letter.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

from kensa.errors import DataError

UNCATEGORISED = "未分類"
JAQKET_CANDIDATES = 20

_HEAD = re.compile(r"(?P<labels>\d+(?:\s*[,、]\s*\d+)+)(?P<train>の選択肢)?から選んで答えてください。")
_CHOICE_LINE = re.compile(r"^(\d+)\s*[:：]\s?(.*)$")
_OUTPUT = re.compile(r"^\s*(\d+)\s*[:：]\s*(.*?)\s*$", re.DOTALL)
_TRAIN_BODY = re.compile(r"\n問題[:：] ?(?P<question>.*?)\n選択肢\n(?P<choices>.*?)\n*### 回答[:：]\n?$", re.DOTALL)
_EVAL_BODY = re.compile(r"\n問題[:：] ?(?P<question>.*?)\n*$", re.DOTALL)


def same_text(text: str) -> str:
    """What makes two choices "identical": the same text after NFKC, whitespace ignored."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def sha256_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _decode(raw: bytes, source: str, bom: bool = False) -> str:
    try:
        return raw.decode("utf-8-sig" if bom else "utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(source, raw[: exc.start].count(b"\n") + 1, f"not UTF-8 (byte {exc.start})") from None


# -- numbered choices, as the seed writes them ------------------------------------------------------

def declared_labels(instruction: str, source: str, record: int) -> tuple[list[int], bool]:
    """The labels the instruction offers (``0, 1, 2, 3, 4``) and whether it is the training wording."""
    m = _HEAD.search(instruction)
    if m is None:
        raise DataError(source, record, "no '0, 1, 2, 3, 4から選んで答えてください。' (or '…の選択肢から…') in it",
                        field="instruction")
    labels = [int(x) for x in re.split(r"\s*[,、]\s*", m.group("labels"))]
    if labels != list(range(len(labels))):
        raise DataError(source, record, f"the labels {labels} are not 0, 1, ..., n-1", field="instruction")
    return labels, bool(m.group("train"))


def parse_choice_lines(block: str, source: str, record: int, field: str) -> list[str]:
    """``0: text`` lines, numbered from 0 without a gap; blank lines around them are ignored."""
    choices = []
    for line in block.strip("\n").split("\n"):
        if not line.strip():
            continue
        m = _CHOICE_LINE.match(line)
        if m is None:
            raise DataError(source, record, f"{line!r} is not a numbered choice 'N: text'", field=field)
        if int(m.group(1)) != len(choices):
            raise DataError(source, record, f"choice {m.group(1)} where {len(choices)} was expected", field=field)
        choices.append(m.group(2).strip())
    return choices


def check_choices(choices: list[str], declared: int, source: str, record: int, field: str) -> None:
    if len(choices) != declared:
        raise DataError(source, record, f"{len(choices)} choices, but {declared} are declared", field=field)
    seen: dict[str, int] = {}
    for i, c in enumerate(choices):
        if not c.strip():
            raise DataError(source, record, f"choice {i} is empty", field=field)
        key = same_text(c)
        if key in seen:
            raise DataError(source, record, f"choices {seen[key]} and {i} are identical ({c!r})", field=field)
        seen[key] = i


def gold_of_output(output: Any, choices: list[str], source: str, record: int) -> int:
    """The choice ``output`` names: ``2: クリオネ`` (number and text must agree), or the text alone."""
    if not isinstance(output, str) or not output.strip():
        raise DataError(source, record, f"expected the answer as 'N: text', got {output!r}", field="output")
    given, output = output, unicodedata.normalize("NFKC", output)  # a full-width １ is 1, as in a model's answer
    m = _OUTPUT.match(output)
    bare = re.fullmatch(r"\s*(\d+)\s*", output)
    if bare is not None and not any(same_text(c) == same_text(output) for c in choices):
        m = bare  # the label alone: "1"
    if m is not None:
        index = int(m.group(1))
        if index >= len(choices):
            raise DataError(source, record, f"{given!r} names choice {index}, which does not exist (0-{len(choices) - 1})",
                            field="output")
        if m.groups()[1:] and m.group(2) and same_text(m.group(2)) != same_text(choices[index]):
            raise DataError(source, record, f"{given!r} names choice {index}, but choice {index} is "
                                            f"{choices[index]!r}", field="output")
        return index
    matches = [i for i, c in enumerate(choices) if same_text(c) == same_text(output)]
    if not matches:
        raise DataError(source, record, f"{given!r} names no choice", field="output")
    return matches[0]


def category_of(record: dict[str, Any], source: str, index: int) -> str:
    if "category" not in record:
        return UNCATEGORISED
    value = record["category"]
    if not isinstance(value, str) or not value.strip():
        raise DataError(source, index, f"an empty category ({value!r}); leave the field out for none", field="category")
    return value.strip()


def _text_field(record: dict[str, Any], name: str, source: str, index: int) -> str:
    value = record.get(name)
    if not isinstance(value, str):
        raise DataError(source, index, "missing" if name not in record else f"expected a string, got {value!r}",
                        field=name)
    return value


def _qid(record: dict[str, Any], path: Path, index: int) -> str:
    qid = record.get("qid", record.get("id"))
    return str(qid) if isinstance(qid, (str, int)) and not isinstance(qid, bool) else f"{path.stem}-{index}"


def seed_record(record: Any, path: Path, index: int) -> dict[str, Any]:
    """One evaluation- or training-format record (``input`` present or not) as a row."""
    source = str(path)
    if not isinstance(record, dict):
        raise DataError(source, index, f"expected a JSON object, got {type(record).__name__}")
    instruction = _text_field(record, "instruction", source, index)
    labels, _ = declared_labels(instruction, source, index)
    alpaca_train = record.get("input") == "" and _TRAIN_BODY.search(instruction) is not None
    if "input" in record and not alpaca_train:  # an Alpaca record with an empty input may be the training format
        text = _text_field(record, "input", source, index)
        if not text.strip():
            raise DataError(source, index, "empty, and the instruction holds no choices either ('問題: …\\n選択肢\\n"
                                           "0: …\\n### 回答:' of the training format)", field="input")
        body = _EVAL_BODY.search(instruction[_HEAD.search(instruction).end():])  # type: ignore[union-attr]
        if body is None:
            raise DataError(source, index, "no '問題: …' after the instruction", field="instruction")
        choices = parse_choice_lines(text, source, index, "input")
        field = "input"
    else:
        body = _TRAIN_BODY.search(instruction)
        if body is None:
            raise DataError(source, index, "no '問題: …\\n選択肢\\n…### 回答:' in it (training format), and no "
                                           "'input' field (evaluation format)", field="instruction")
        choices = parse_choice_lines(body.group("choices"), source, index, "instruction")
        field = "instruction"
    question = body.group("question").strip()
    if not question:
        raise DataError(source, index, "empty question", field="instruction")
    if len(choices) != len(labels):  # the prompt is the record's own text: its labels must be its choices'
        raise DataError(source, index, f"declares the labels {', '.join(map(str, labels))}, but the {field} has "
                                       f"{len(choices)} choices", field="instruction")
    check_choices(choices, len(labels), source, index, field)
    gold = gold_of_output(record.get("output"), choices, source, index)
    # The record's own text is kept: prompts 0.1 and 0.2 render it byte for byte.
    return {"qid": _qid(record, path, index), "question": question, "choices": choices, "gold": gold,
            "answers": [choices[gold]], "category": category_of(record, source, index),
            "source": f"{path.name}, record {index}", "instruction": instruction,
            "input": record["input"] if field == "input" else None}


def json_records(path: Path) -> tuple[list[tuple[int, Any]], bytes]:
    """(record number, object) pairs of a JSON array or a JSON Lines file (numbered from 1; for JSON
    Lines the number is the line), and the raw bytes."""
    raw = path.read_bytes()
    source = str(path)
    text = _decode(raw, source, bom=True)
    if not text.lstrip().startswith("["):
        try:  # one object, pretty-printed over several lines as the seed shows its records
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, dict):
            return [(1, whole)], raw
    if text.lstrip().startswith("["):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(source, exc.lineno, f"malformed JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(doc, list):
            raise DataError(source, None, f"expected a JSON array of records, got {type(doc).__name__}")
        out = list(enumerate(doc, start=1))
    else:
        out = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                out.append((lineno, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataError(source, lineno, f"malformed JSON: {exc.msg} at column {exc.colno}") from None
    if not out:
        raise DataError(source, None, "the file holds no records")
    return out, raw


def read_seed(path: Path) -> tuple[list[dict[str, Any]], bytes]:
    records, raw = json_records(path)
    return [seed_record(obj, path, i) for i, obj in records], raw


# -- JAQKET v1, AI王 TSV, JMMLU ---------------------------------------------------------------------

def read_jaqket_v1(path: Path) -> tuple[list[dict[str, Any]], bytes]:
    """JAQKET v1 records as 20-choice rows in the file's own candidate order (``convert`` draws five);
    ``_`` (the cloze mark) is removed from the question as both public loaders do."""
    records, raw = json_records(path)
    source = str(path)
    rows = []
    for line, obj in records:
        if not isinstance(obj, dict):
            raise DataError(source, line, f"expected a JSON object, got {type(obj).__name__}")
        qid = _text_field(obj, "qid", source, line)
        question = _text_field(obj, "question", source, line).replace("_", "").strip()
        answer = _text_field(obj, "answer_entity", source, line)
        candidates = obj.get("answer_candidates")
        if not isinstance(candidates, list) or not all(isinstance(c, str) for c in candidates):
            raise DataError(source, line, f"expected a list of strings, got {candidates!r}", field="answer_candidates")
        check_choices(candidates, JAQKET_CANDIDATES, source, line, "answer_candidates")
        if not question:
            raise DataError(source, line, "empty question", field="question")
        if answer not in candidates:
            raise DataError(source, line, f"qid {qid}: answer_entity {answer!r} is not among its answer_candidates",
                            field="answer_entity")
        rows.append({"qid": qid, "question": question, "choices": list(candidates),
                     "gold": candidates.index(answer), "answers": [answer],
                     "category": category_of(obj, source, line), "source": f"{path.name}, line {line}",
                     "qtype": obj.get("qtype")})
    return rows, raw


AIO_COLUMNS = ("qid", "competition", "timestamp", "section", "number", "original_question", "original_answer",
               "original_additional_info")
AIO_HEADER = "\t".join(AIO_COLUMNS)


def read_aio_tsv(path: Path) -> tuple[list[dict[str, Any]], bytes]:
    """The AI王 TSV: open-answer rows; ``original_additional_info`` holds further accepted answers
    (comma-separated, e.g. ``N型, N``)."""
    raw = path.read_bytes()
    source = str(path)
    lines = _decode(raw, source, bom=True).split("\n")
    header = lines[0].rstrip("\r").split("\t") if lines else []
    if tuple(header) != AIO_COLUMNS:
        raise DataError(source, 1, f"expected the header {AIO_HEADER!r}, got {lines[0][:200]!r}")
    rows, seen = [], set()
    for lineno, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != len(AIO_COLUMNS):
            raise DataError(source, lineno, f"expected {len(AIO_COLUMNS)} tab-separated columns, got {len(cols)}")
        rec = dict(zip(AIO_COLUMNS, cols))
        for name in ("qid", "original_question", "original_answer"):
            if not rec[name].strip():
                raise DataError(source, lineno, "empty", field=name)
        if rec["qid"] in seen:
            raise DataError(source, lineno, f"qid {rec['qid']} appears twice", field="qid")
        seen.add(rec["qid"])
        extra = [a.strip() for a in re.split(r"[,、]", rec["original_additional_info"]) if a.strip()]
        rows.append({"qid": rec["qid"], "question": rec["original_question"].strip(), "choices": [], "gold": -1,
                     "answers": [rec["original_answer"].strip(), *extra], "category": UNCATEGORISED,
                     "source": f"{path.name}, line {lineno}"})
    if not rows:
        raise DataError(source, None, "the file holds no questions")
    return rows, raw


JMMLU_LETTERS = "ABCD"


def read_jmmlu(path: Path, skip: frozenset[int] = frozenset()) -> tuple[list[dict[str, Any]], bytes, list[int]]:
    """A JMMLU CSV (BOM or not, standard CSV quoting): four-choice rows, the subject as ``category``.
    ``skip``: row numbers known to be defective upstream (reviewed, listed in :mod:`.sets`), left out and
    returned as the third value so the caller can report them."""
    raw = path.read_bytes()
    source = str(path)
    text = _decode(raw, source, bom=True)
    rows, skipped = [], []
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise DataError(source, None, f"malformed CSV: {exc}") from None
    for number, rec in enumerate(records, start=1):
        if not rec or not any(x.strip() for x in rec):
            continue
        if len(rec) != 6:
            raise DataError(source, number, f"expected 6 fields (question, A, B, C, D, answer), got {len(rec)}")
        if number in skip:
            skipped.append(number)
            continue
        question, choices, letter = rec[0].strip(), [c.strip() for c in rec[1:5]], rec[5].strip()
        if not question:
            raise DataError(source, number, "empty question", field="question")
        if len(letter) != 1 or letter not in JMMLU_LETTERS:
            raise DataError(source, number, f"{rec[5]!r} is not an answer letter A-D" if letter else "missing",
                            field="answer")
        check_choices(choices, 4, source, number, "A-D")
        gold = JMMLU_LETTERS.index(letter)
        rows.append({"qid": f"{path.stem}-{number}", "question": question, "choices": choices, "gold": gold,
                     "answers": [choices[gold]], "category": path.stem, "source": f"{path.name}, row {number}"})
    if not rows and not skipped:
        raise DataError(source, None, "the file holds no rows")
    return rows, raw, skipped


def detect_format(path: Path) -> str:
    """The format of a quiz file, by its name and first record; an error names what was expected."""
    source = str(path)
    if path.suffix.lower() == ".csv":
        return "jmmlu"
    head = path.read_bytes()[:4096]
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    if text.startswith("qid\tcompetition"):
        return "aio_tsv"
    first = text.lstrip()
    if first.startswith(("{", "[")):
        if '"answer_candidates"' in text:
            return "jaqket_v1"
        if '"instruction"' in text:
            return "eval" if '"input"' in text else "train"
    raise DataError(source, None, "not a quiz file kensa knows: expected JSON (Lines) records of the seed's evaluation "
                                  "or training format, JAQKET v1 JSON Lines, the AI王 TSV or a JMMLU CSV")
