"""The snapshot text helpers and the tokenizer probe set: readable quoting, and a probe file that is
checked like any other data file."""

from __future__ import annotations

import pytest

from kensa.errors import DataError
from kensa.report.snapshot_text import PROBES_FILE, load_probes, quote, quote_lines


def test_japanese_stays_japanese_and_invisible_characters_show():
    assert quote("含意") == '"含意"'
    assert quote("a\tb\u3000c ") == '"a\\tb\\u3000c "'
    assert quote_lines("一\n二") == ['  "一\\n"', '  "二"']


def test_the_probe_set_loads_and_covers_what_the_issue_lists():
    probes = load_probes()
    assert len({p.id for p in probes}) == len(probes) >= 40
    texts = "".join(p.text for p in probes)
    for needed in ("<NL>", "</s>", "\u3000", "\r\n", "\t", "々", "〜", "ｶ", "含意", " はい", "http"):
        assert needed in texts, needed


@pytest.mark.parametrize(("line", "message"), [
    ('{"id": "x", "covers": "c"', r"probes.jsonl, row 1: malformed JSON"),
    ('{"id": "x", "covers": "c", "text": 3}', r"row 1, field 'text': must be a string"),
    ('{"id": "x", "covers": "c", "text": "a"}\n{"id": "x", "covers": "c", "text": "b"}', r"row 2, field 'id'"),
])
def test_a_bad_probe_file_names_the_row_and_field(tmp_path, line, message):
    path = tmp_path / "probes.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_probes(path)
    assert PROBES_FILE.is_file()
