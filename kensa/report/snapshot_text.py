"""Readable text for snapshot files: quoted strings with every invisible character escaped, and
the tokenizer probe report (ids, pieces, decoded text per probe string, and the chat template).

Japanese stays Japanese; a string is cut into one quoted line per ``\\n``; ``\\t``, ``\\r``,
U+3000 and every other space, zero-width, combining or control character is escaped, and
trailing spaces sit before the closing quote. A literal ``<NL>`` is plain text and shows as
itself. No pytest and no torch here: the tokenizer is whatever object the caller passes.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kensa.errors import DataError
from kensa.paths import fixtures_dir

PROBES_FILE = fixtures_dir() / "tokenizer_probes.jsonl"

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Escaped: spaces other than " " (U+3000, NBSP, ...), format characters (ZWJ, BOM, ...),
# combining marks (dakuten U+3099, variation selectors, ...), controls, unassigned and private use.
_HIDDEN_CATEGORIES = {"Zs", "Zl", "Zp", "Cf", "Cc", "Cs", "Co", "Cn", "Mn", "Me"}

HEADER_NOTE = ("# Strings are in double quotes, one line per \\n; \\t, \\r, \\u3000 and every other invisible "
               "character are escaped.")


def escape_char(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch != " " and unicodedata.category(ch) in _HIDDEN_CATEGORIES:
        code = ord(ch)
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return ch


def quote(text: str) -> str:
    """One line, in double quotes, every invisible character escaped: ``"はい\\u3000\\t"``."""
    return '"' + "".join(escape_char(ch) for ch in text) + '"'


def quote_lines(text: str, indent: str = "  ") -> list[str]:
    """A string as quoted lines, one per ``\\n`` (which stays at the end of its line, escaped)."""
    if text == "":
        return [indent + '""']
    return [indent + quote(part) for part in re.findall(r"[^\n]*\n|[^\n]+", text)]


def quote_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(quote(x) for x in items) + "]"


@dataclass(frozen=True)
class Probe:
    id: str
    covers: str
    text: str


def load_probes(path: Path = PROBES_FILE) -> list[Probe]:
    """The probe set: JSON lines ``{"id", "covers", "text"}``; ids are unique ASCII."""
    probes, seen = [], set()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(str(path), None, f"not UTF-8: {exc}") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(str(path), n, f"malformed JSON: {exc.msg}") from None
        for field in ("id", "covers", "text"):
            if not isinstance(row.get(field), str):
                raise DataError(str(path), n, "must be a string", field=field)
        if not row["id"].isascii() or row["id"] in seen:
            raise DataError(str(path), n, f"{row['id']!r} must be ASCII and unique", field="id")
        seen.add(row["id"])
        probes.append(Probe(row["id"], row["covers"], row["text"]))
    return probes


CHAT_MESSAGES = [
    {"role": "system", "content": "あなたは役立つアシスタントです。"},
    {"role": "user", "content": "日本の首都は？"},
    {"role": "assistant", "content": "東京です。"},
    {"role": "user", "content": "ありがとう\u3000ございます"},
]


def tokenizer_report(tokenizer: Any, probes: list[Probe], title: str) -> str:
    """The snapshot text of one tokenizer: for each probe its ids, pieces and decoded text (as
    the suite encodes: no special tokens added; decoded with and without special tokens), then
    the chat template's rendering when the tokenizer has one."""
    specials = sorted(set(getattr(tokenizer, "all_special_tokens", []) or []))
    lines = [f"# kensa tokenizer snapshot: {title}",
             (f"# class {type(tokenizer).__name__}, fast={bool(getattr(tokenizer, 'is_fast', False))}, "
             f"vocabulary {len(tokenizer)}, special tokens {quote_list(specials)}"),
             "# encode(text, add_special_tokens=False); decode(ids) and decode(ids, skip_special_tokens=True)",
             HEADER_NOTE]
    for p in probes:
        ids = tokenizer.encode(p.text, add_special_tokens=False)
        pieces = tokenizer.convert_ids_to_tokens(ids)
        decoded = tokenizer.decode(ids, skip_special_tokens=False)
        skipped = tokenizer.decode(ids, skip_special_tokens=True)
        lines += ["", f"== {p.id}: {p.covers} ==", "text:", *quote_lines(p.text, "    "),
                  f"ids ({len(ids)}): {ids}", f"pieces: {quote_list(pieces)}"]
        lines.append("decoded: same as text" if decoded == p.text else "decoded (DIFFERS):")
        if decoded != p.text:
            lines += quote_lines(decoded, "    ")
        if skipped != decoded:
            lines += ["decoded, skipping special tokens:", *quote_lines(skipped, "    ")]
    lines += ["", "== chat template =="]
    if getattr(tokenizer, "chat_template", None):
        try:
            rendered = tokenizer.apply_chat_template(CHAT_MESSAGES, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # noqa: BLE001 (a template that rejects a system turn is behaviour too)
            lines.append(f"error: {type(exc).__name__}: {exc}")
        else:
            lines += ["messages: " + json.dumps(CHAT_MESSAGES, ensure_ascii=False), "rendered:",
                      *quote_lines(rendered, "    ")]
    else:
        lines.append("none (the tokenizer has no chat template)")
    return "\n".join(lines) + "\n"
