"""Reading a model's answer to a numbered-choice question, and normalising open answers.

:func:`read_choice` reads the answer from the **start of the generation's first non-empty line** (after NFKC, so
``２`` is ``2`` and ``①`` is ``1``), after an optional answer prefix (``答え:``, ``回答：``, ``答えは``, ``正解は`` ...):

* a label, optionally with the same choice's text: ``2``, ``2: クリオネ``, ``2. クリオネ``, ``(2)``, ``2番``,
  ``2番目です``; the label must end there (``2:``, ``2 ``, ``2。``, ``2です``), so ``3月ごろ`` or ``1医者`` is no label;
* or one choice's text: ``クリオネ``, ``クリオネです。``

What follows the answer on the line is ignored (a verbose answer ``2: クリオネです。理由は…`` counts), unless it
names a second choice straight after it (``2と3``, ``2, 3``, ``ミズダコかクリオネ``), or the label comes with another
choice's text (``2: ミズダコ`` where ミズダコ is choice 0), or the label does not exist (``7`` of 0-4), or the next line
is another numbered choice (the model echoing the list). A bare number that is both a label and another choice's
text (choices ``["1", "2", "3"]``, answer ``2``) is ambiguous. All of these are *unparseable* (scored 0), never
guessed. A generation whose first line names no choice but whose later text names exactly one (by its text, by a
label at a line's start or after ``答えは``) is unparseable too, and flagged ``late``: a format failure, counted
apart from one that names nothing, so a report separates format from knowledge. A label-like number inside
the text (``第4問``, ``件区見1医者``) names nothing.

:func:`normalize_answer` is the open-answer normaliser of cl-tohoku/quiz-datasets (``utils/normalize_answer.py``,
as the quiz datasets' authors describe it): NFKC, ～ to 〜, bracketed notes and text after ※ dropped, a tail after
、 or / dropped, 「」『』 unwrapped, spaces squeezed. Written here from that description. Open answers are read from
the first non-empty line.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

_PREFIX = re.compile(r"^(?:(?:答え|こたえ|回答|解答|正解|正答|選択肢|answer)\s*(?:は|:|：)?\s*)+", re.IGNORECASE)
_LABEL = re.compile(r"^[(\[（【]?(\d+)[)\]）】]?(?:番目|番)?")
_LABEL_END = re.compile(r"^(?:$|[\s:.,、，)\]】。!?！？\-]|です|だ|でしょう|となります|になります)")
_AFTER_LABEL = re.compile(r"^\s*[:.、,)\]\-]?\s*")
_TAIL = re.compile(r"(?:です|だ|でしょう|となります|になります)?[。.!！\s]*$")
_JOINER = re.compile(r"^[\s,、，/・&]*(?:と|か|や|or|and|または|及び|および)?[\s,、，/・&]*", re.IGNORECASE)
_LATE_LABEL = re.compile(r"(?:答え|回答|解答|正解|正答|answer)\s*(?:は|:)\s*[(\[【]?(\d+)(?!\d|\.\d)", re.IGNORECASE)


@dataclass(frozen=True)
class Reading:
    """What a generation answered: ``choice`` (None: unparseable) and, when unparseable, the one choice its
    later text names (``late``), if any."""

    choice: int | None
    late: int | None = None


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _key(text: str) -> str:
    """A choice's text as compared: NFKC, no whitespace (a model's spacing is not an answer), Latin lower case."""
    return re.sub(r"\s+", "", _nfkc(text)).lower()


def _first_line(text: str) -> tuple[str, list[str]]:
    lines = [line.strip() for line in _nfkc(text).split("\n") if line.strip()]
    return (lines[0], lines[1:]) if lines else ("", [])


def _text_at_start(s: str, choices: Sequence[str]) -> tuple[int | None, str]:
    """The choice whose text ``s`` starts with (the longest, so 東京都 is not 東京), and what follows it."""
    squeezed = _key(s)
    best, best_len = None, 0
    for i, c in enumerate(choices):
        k = _key(c)
        if k and squeezed.startswith(k) and len(k) > best_len:
            best, best_len = i, len(k)
    if best is None:
        return None, s
    # Walk ``s`` to the end of the matched text (whitespace in ``s`` is skipped by ``_key``).
    seen, pos = 0, 0
    while pos < len(s) and seen < best_len:
        seen += len(_key(s[pos])) if s[pos].strip() else 0
        pos += 1
    return best, s[pos:]


def _label_at_start(s: str) -> tuple[int | None, str]:
    m = _LABEL.match(s)
    if m is None or _LABEL_END.match(s[m.end():]) is None or re.match(r"^\.\d", s[m.end():]):
        return None, s
    return int(m.group(1)), s[m.end():]


def _names_another(rest: str, own: int, choices: Sequence[str]) -> bool:
    """Does ``rest`` (what follows an answer) start, after a joiner like と/か/、, with a second choice?"""
    s = _JOINER.sub("", rest, count=1)
    if not s:
        return False
    label, _ = _label_at_start(s)
    if label is not None and label != own and label < len(choices):
        return True
    text, _ = _text_at_start(s, choices)
    return text is not None and text != own


def _read_line(line: str, choices: Sequence[str]) -> int | None:
    """The choice the start of one line names (see the module docstring), else None."""
    n = len(choices)
    s = _PREFIX.sub("", line).strip()
    if not s:
        return None
    by_text, after_text = _text_at_start(s, choices)
    label, after_label = _label_at_start(s)
    if by_text is not None:
        if label is not None and label < n and label != by_text:
            return None  # "2" is label 2 and also choice 1's text: ambiguous
        return None if _names_another(after_text, by_text, choices) else by_text
    if label is None or label >= n:
        return None  # no answer at the start, or a label that does not exist
    rest = _AFTER_LABEL.sub("", after_label, count=1)
    with_text, after = _text_at_start(rest, choices)
    if with_text is not None:
        if with_text != label:
            return None  # a label with another choice's text
        rest = after
    return None if _names_another(rest, label, choices) else label


def _mentions(text: str, choices: Sequence[str]) -> set[int]:
    """The choices whose text occurs anywhere in ``text`` (not counting one inside a longer matched choice)."""
    norm = _key(text)
    spans = []
    for i, choice in enumerate(choices):
        c = _key(choice)
        start = norm.find(c) if c else -1
        while start != -1:
            spans.append((start, start + len(c), i))
            start = norm.find(c, start + 1)
    return {i for a, b, i in spans if not any(o[0] <= a and b <= o[1] and (o[1] - o[0]) > (b - a) for o in spans)}


def read_choice(text: str, choices: Sequence[str]) -> Reading:
    """The answer ``text`` gives, read strictly (see the module docstring)."""
    first, others = _first_line(text)
    choice = _read_line(first, choices)
    if choice is not None and others:
        label, after = _label_at_start(others[0])
        if label is not None and label != choice and label < len(choices) and re.match(r"^\s*[:.]", after):
            return Reading(None)  # "0: …\n1: …": the model echoes the list of choices
    if choice is not None:
        return Reading(choice)
    later = {c for line in others if (c := _read_line(line, choices)) is not None}
    later |= {int(m) for m in _LATE_LABEL.findall(_nfkc(text)) if int(m) < len(choices)}
    later |= _mentions(text, choices)
    return Reading(None, later.pop() if len(later) == 1 else None)


def parse_choice(text: str, choices: Sequence[str]) -> int | None:
    """The index of the choice ``text`` answers at the start of its first line, else None."""
    return read_choice(text, choices).choice


_BRACKETS = re.compile(r"【[^】]*】|\([^)]*\)|\[[^\]]*\]")
_QUOTES = re.compile(r"^[「『](.*)[」』]$")


def normalize_answer(text: str) -> str:
    """An open answer in the form AI王's answers are compared in (see the module docstring)."""
    s = unicodedata.normalize("NFKC", text.replace("～", "〜"))
    s = _BRACKETS.sub("", s)
    s = s.split("※")[0]
    s = re.split(r"[、/]", s)[0]
    s = s.strip()
    m = _QUOTES.match(s)
    if m:
        s = m.group(1)
    return re.sub(r"\s+", " ", s).strip()


def open_answer_correct(generation: str, answers: Sequence[str]) -> bool:
    """Normalised exact match of the generation's first line against any gold answer."""
    first = generation.strip().split("\n")[0]
    got = normalize_answer(_TAIL.sub("", _PREFIX.sub("", unicodedata.normalize("NFKC", first).strip())))
    return bool(got) and any(got == normalize_answer(a) for a in answers)
