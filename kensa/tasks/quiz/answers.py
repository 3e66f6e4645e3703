"""Reading a model's answer to a numbered-choice question, and normalising open answers.

:func:`parse_choice` returns the index of the one choice a generated answer names, or None when it
names none or more than one (*unparseable*: scored 0 and counted in the format-failure rate, never
guessed). What it understands, after NFKC (so ``２`` is ``2`` and ``①`` is ``1``):

* the choice's text alone (``クリオネ``), compared after the same normalisation;
* a label, optionally with the choice's text: ``2``, ``2: クリオネ``, ``2. クリオネ``, ``(2)``, ``2番``,
  ``2番目``, ``2です``, optionally after ``答え:``, ``回答：``, ``答えは``, ``正解は`` ...

and it refuses: a label with another choice's text (``2: ミズダコ`` where ミズダコ is choice 0), a label
outside the choices (``7`` of 0-4), a second label or a second choice's text (``2と3``, ``ミズダコかクリオネ``),
and anything that names no choice. A bare number that is both a label and another choice's text
(choices ``["1", "2", "3"]``, answer ``2``) is ambiguous and refused too.

:func:`normalize_answer` is the open-answer normaliser of cl-tohoku/quiz-datasets (``utils/normalize_answer.py``,
as the quiz datasets' authors describe it): NFKC, ～ to 〜, bracketed notes and text after ※ dropped, a tail after
、 or / dropped, 「」『』 unwrapped, spaces squeezed. Written here from that description.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_PREFIX = re.compile(r"^(?:(?:答え|こたえ|回答|解答|正解|正答|選択肢|answer)\s*(?:は|:|：)?\s*)+", re.IGNORECASE)
_LABEL = re.compile(r"^[(\[（【]?(\d+)[)\]）】]?(?!\d|\.\d)\s*(?:番目|番)?")
_AFTER_LABEL = re.compile(r"^\s*[:.、,)\]\-]?\s*")
_TAIL = re.compile(r"(?:です|だ|でしょう|となります|になります)?[。.!！\s]*$")
_NUMBER = re.compile(r"(?<!\d)\d+(?!\d)")


def _norm(text: str) -> str:
    """NFKC, no whitespace at all (a model's spacing is not an answer), lower case for Latin letters."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


def _strip(text: str) -> str:
    s = unicodedata.normalize("NFKC", text).strip()
    s = _PREFIX.sub("", s).strip()
    return _TAIL.sub("", s).strip()


def _mentions(text: str, choices: Sequence[str]) -> tuple[set[int], str]:
    """The choices whose text occurs in ``text`` (a text that only occurs inside a longer matched choice's
    text does not count), and ``text`` with every matched occurrence removed."""
    norm = _norm(text)
    spans: list[tuple[int, int, int]] = []
    for i, choice in enumerate(choices):
        c = _norm(choice)
        if not c:
            continue
        start = norm.find(c)
        while start != -1:
            spans.append((start, start + len(c), i))
            start = norm.find(c, start + 1)
    kept = [s for s in spans if not any(o[0] <= s[0] and s[1] <= o[1] and (o[1] - o[0]) > (s[1] - s[0])
                                        for o in spans)]
    rest = list(norm)
    for a, b, _ in kept:
        for k in range(a, b):
            rest[k] = " "
    return {i for _, _, i in kept}, "".join(rest)


def parse_choice(text: str, choices: Sequence[str]) -> int | None:
    """The index of the one choice ``text`` names, else None (see the module docstring)."""
    n = len(choices)
    s = _strip(text)
    if not s:
        return None
    whole = _norm(s)
    exact = [i for i, c in enumerate(choices) if _norm(c) == whole]
    bare = re.fullmatch(r"[(\[（【]?(\d+)[)\]）】]?(?:番目|番)?", whole)
    if exact:
        if bare is not None and int(bare.group(1)) < n and int(bare.group(1)) != exact[0]:
            return None  # "2" is label 2 and also choice 1's text: ambiguous
        return exact[0]
    named: set[int] = set()
    rest = s
    label = _LABEL.match(s)
    if label is not None:
        index = int(label.group(1))
        if index >= n:
            return None  # a label outside the choices: it names a choice that does not exist
        named.add(index)
        rest = _AFTER_LABEL.sub("", s[label.end():], count=1)
    mentioned, leftover = _mentions(rest, choices)
    named |= mentioned
    # A further label-like number outside any matched choice text ("2と3", "0か1") names another choice.
    named |= {int(m) for m in _NUMBER.findall(leftover) if int(m) < n}
    return named.pop() if len(named) == 1 else None


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
