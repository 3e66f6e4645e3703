"""kensa.gate.thresholds: the TOML file and the per-item outcomes beside it.

Round trips first, then every kind of bad input. A bad file must raise ThresholdsError whose message names the
file and the key (or the items file and the line): each error test asserts on both, on the exception's ``path`` and
``key`` attributes, and on the words that say what is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from kensa.gate.thresholds import (
    Entry,
    Items,
    MetricBaseline,
    Thresholds,
    ThresholdsError,
    load_items,
    load_thresholds,
    write_items,
    write_thresholds,
)
from tests.helpers import GATE_BASELINE as BASE
from tests.helpers import GATE_ENV as ENV
from tests.helpers import GATE_FEW as FEW
from tests.helpers import GATE_KNOWN as KNOWN
from tests.helpers import GATE_SHA as SHA
from tests.helpers import GATE_TID as TID
from tests.helpers import GATE_TID2 as TID2

E = f'entries."{TID}"'  # how an error names the entry's table
ITEMS = f"{BASE}/{TID}.jsonl"


# -- factories -----------------------------------------------------------------------------------

def metric_table(value: float = 0.95, **over: Any) -> dict[str, Any]:
    return {"value": value, "n": 40, "stderr": 0.0349, "direction": "higher", "rule": "paired", "anchor": value,
            **over}


def entry_table(**over: Any) -> dict[str, Any]:
    table = {"task": "jcommonsenseqa", "task_version": "1.1", "prompt_version": "0.3", "num_fewshot": 3,
             "limit": 200, "n": 40, "data_sha256": SHA, "fewshot_sha256": FEW, "kind": "multiple_choice",
             "items": ITEMS, "updated": "2026-11-23T21:17:22Z", "weights_sha256": "c" * 64,
             "environment": dict(ENV), "metrics": {"acc": metric_table(), "acc_norm": metric_table(0.9)}}
    table.update(over)
    return table


def document(**over: Any) -> dict[str, Any]:
    doc = {"schema_version": 1, "baseline": BASE,
           "model": {"name": "org/model-v1", "revision": "", "weights_sha256": "c" * 64},
           "environment": dict(ENV),
           "provenance": {"command": "pytest suites --thresholds-update", "git_sha": "0" * 40,
                          "date": "2026-11-23T21:17:22Z", "kensa_version": "0.1.0"},
           "entries": {TID: entry_table()}}
    doc.update(over)
    return doc


def write_doc(tmp_path: Path, doc: dict[str, Any], name: str = BASE) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    return path


def load(path: Path, baseline: str = BASE) -> Thresholds:
    return load_thresholds(path, baseline, KNOWN)


def load_error(path: Path, baseline: str = BASE) -> ThresholdsError:
    with pytest.raises(ThresholdsError) as info:
        load(path, baseline)
    return info.value


def assert_names(err: ThresholdsError, path: Path, key: str | None, *words: str) -> None:
    """The message names the file and the key, and says what is wrong."""
    msg = str(err)
    assert err.path == str(path)
    assert err.key == key
    assert msg.startswith(f"{path}: ")
    if key is not None:
        assert key in msg
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"


def make_entry(n: int = 4, *, task_id: str = TID, metrics: tuple[str, ...] = ("acc", "acc_norm"),
               **over: Any) -> Entry:
    fields = dict(task_id=task_id, task="jcommonsenseqa", task_version="1.1", prompt_version="0.3", num_fewshot=3,
                  n=n, data_sha256=SHA, kind="multiple_choice", updated="2026-11-23T21:17:22Z",
                  metrics={m: MetricBaseline(value=0.5, n=n, stderr=0.25, anchor=0.5) for m in metrics},
                  limit=None, fewshot_sha256=FEW, items=f"{BASE}/{task_id}.jsonl", weights_sha256=None,
                  environment=dict(ENV))
    fields.update(over)
    return Entry(**fields)


# -- round trips ---------------------------------------------------------------------------------

def sample_thresholds(path: Path, order: tuple[str, ...] = (TID, TID2)) -> Thresholds:
    entries = {
        TID: make_entry(40, metrics=("acc", "acc_norm"), limit=200, weights_sha256="c" * 64),
        TID2: Entry(task_id=TID2, task="jcommonsenseqa", task_version="1.1", prompt_version="0.2", num_fewshot=0,
                    n=7, data_sha256=SHA, kind="multiple_choice", updated="2026-11-24T08:00:00Z",
                    metrics={"acc": MetricBaseline(value=3 / 7, n=7, direction="lower", rule="stderr", stderr=0.2,
                                                   anchor=4 / 7, abs_floor=0.01, hard_limit=0.2)}),
    }
    return Thresholds(path=path, baseline=BASE, entries={tid: entries[tid] for tid in order},
                      model={"name": "org/model-v1", "revision": "abc"}, environment=dict(ENV),
                      provenance={"command": "pytest suites --thresholds-update", "date": "2026-11-24T08:00:00Z"})


def test_write_then_load_gives_equal_thresholds(tmp_path):
    th = sample_thresholds(tmp_path / f"{BASE}.toml")
    assert write_thresholds(th) == th.path
    loaded = load(th.path)
    assert loaded == th
    # The optional fields that were None come back as None (TOML has no null: they are left out).
    assert loaded.entries[TID2].limit is None and loaded.entries[TID2].items is None
    assert loaded.entries[TID2].fewshot_sha256 is None and loaded.entries[TID2].environment == {}
    assert loaded.entries[TID].metrics["acc"].abs_floor is None


def test_written_file_is_deterministic_and_sorted(tmp_path):
    a = sample_thresholds(tmp_path / "a" / f"{BASE}.toml", order=(TID, TID2))
    b = sample_thresholds(tmp_path / "b" / f"{BASE}.toml", order=(TID2, TID))
    write_thresholds(a)
    first = a.path.read_bytes()
    write_thresholds(a)
    assert a.path.read_bytes() == first  # same object, same bytes
    write_thresholds(b)
    assert b.path.read_bytes() == first  # insertion order of the entries does not matter
    text = first.decode("utf-8")
    assert text.startswith("# kensa thresholds for the baseline 'org-model'")
    assert text.index(f'[entries."{TID2}"]') < text.index(f'[entries."{TID}"]')  # "...-0.2" sorts first
    assert "null" not in text and "None" not in text
    # The atomic write leaves no temporary file behind.
    assert sorted(p.name for p in a.path.parent.iterdir()) == [f"{BASE}.toml"]


def test_the_readme_example_loads(tmp_path):
    doc = document()
    th = load(write_doc(tmp_path, doc))
    e = th.entries[TID]
    assert (e.task_version, e.prompt_version, e.num_fewshot, e.limit, e.n) == ("1.1", "0.3", 3, 200, 40)
    assert e.metrics["acc"] == MetricBaseline(value=0.95, n=40, direction="higher", rule="paired", stderr=0.0349,
                                              anchor=0.95)
    assert th.environment == ENV and th.schema_version == 1


def test_write_items_then_load_items_round_trips(tmp_path):
    entry = make_entry(4)
    items = Items(keys=[101, "q-2", "質問3", 4], values={"acc": [1.0, 0.0, 1.0, 1.0], "acc_norm": [0.0, 0.0, 1.0, 1.0]})
    path = write_items(tmp_path, entry.items, entry, items)
    assert path == tmp_path / ITEMS
    assert load_items(tmp_path, entry, tmp_path / f"{BASE}.toml") == items
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"task_id": TID, "n": 4, "data_sha256": SHA, "metrics": ["acc", "acc_norm"]}
    assert json.loads(lines[3]) == {"doc_id": 2, "key": "質問3", "acc": 1.0, "acc_norm": 1.0}
    assert "質問3" in lines[3]  # written as UTF-8, not \u escapes
    before = path.read_bytes()
    write_items(tmp_path, entry.items, entry, items)
    assert path.read_bytes() == before


# -- the TOML file: every problem names the file and the key -------------------------------------

def test_malformed_toml_names_the_file_and_the_line(tmp_path):
    path = tmp_path / f"{BASE}.toml"
    path.write_text('schema_version = 1\nbaseline = "org-model"\n[entries\n', encoding="utf-8")
    assert_names(load_error(path), path, None, "malformed TOML", "line 3")


def test_a_file_that_is_not_utf8_is_an_error(tmp_path):
    path = tmp_path / f"{BASE}.toml"
    path.write_bytes(b'schema_version = 1\nbaseline = "org-\xff\xfemodel"\n')
    assert_names(load_error(path), path, None, "not UTF-8")


def test_unknown_top_level_key(tmp_path):
    path = write_doc(tmp_path, document(basline="org-model"))
    assert_names(load_error(path), path, "basline", "unknown key", "baseline")


@pytest.mark.parametrize("typo", ["num_fewshots", "Task", "limits"])
def test_unknown_entry_key_is_not_ignored(tmp_path, typo):
    doc = document()
    doc["entries"][TID][typo] = 3
    path = write_doc(tmp_path, doc)
    assert_names(load_error(path), path, f"{E}.{typo}", "unknown key", "num_fewshot")


def test_unknown_metric_key_is_not_ignored(tmp_path):
    doc = document()
    doc["entries"][TID]["metrics"]["acc"]["vlaue"] = 0.95
    path = write_doc(tmp_path, doc)
    assert_names(load_error(path), path, f"{E}.metrics.acc.vlaue", "unknown key", "value")


def test_unknown_task_id(tmp_path):
    doc = document(entries={"jcommonsenseqa-9.9-0.1": entry_table()})
    path = write_doc(tmp_path, doc)
    assert_names(load_error(path), path, 'entries."jcommonsenseqa-9.9-0.1"', "unknown task id", TID)


def test_unknown_metric_for_a_known_task(tmp_path):
    doc = document()
    doc["entries"][TID]["metrics"]["f1"] = metric_table()
    path = write_doc(tmp_path, doc)
    assert_names(load_error(path), path, f"{E}.metrics.f1", "unknown metric", TID, "acc, acc_norm")


@pytest.mark.parametrize("where", ["task_version", "n", "data_sha256", "task", "kind", "updated", "num_fewshot",
                                   "prompt_version", "metrics.acc.value", "metrics.acc.n", "metrics.acc.direction",
                                   "metrics.acc.rule"])
def test_missing_required_field(tmp_path, where):
    doc = document()
    table = doc["entries"][TID]
    *parents, last = where.split(".")
    for p in parents:
        table = table[p]
    del table[last]
    path = write_doc(tmp_path, doc)
    assert_names(load_error(path), path, f"{E}.{where}", "missing")


@pytest.mark.parametrize("metrics", [{}, None])
def test_an_entry_without_metrics_is_an_error(tmp_path, metrics):
    doc = document()
    if metrics is None:
        del doc["entries"][TID]["metrics"]
    else:
        doc["entries"][TID]["metrics"] = metrics
    path = write_doc(tmp_path, doc)
    assert_names(load_error(path), path, f"{E}.metrics", "missing", "at least one metric")


@pytest.mark.parametrize(("where", "value", "words"), [
    ("n", "40", ("expected int", "str '40'")),
    ("num_fewshot", 3.0, ("expected int", "float 3.0")),
    ("n", True, ("expected int", "bool True")),
    ("data_sha256", 12, ("expected str", "int 12")),
    ("limit", "200", ("expected int or float",)),
    ("environment", "cpu", ("expected dict",)),
    ("metrics.acc.value", True, ("expected int or float", "bool True")),
    ("metrics.acc.value", "0.95", ("expected int or float", "str '0.95'")),
    ("metrics.acc.n", 40.0, ("expected int", "float 40.0")),
    ("metrics.acc.stderr", "0.03", ("expected int or float",)),
    ("metrics.acc.direction", 1, ("expected str",)),
])
def test_wrong_type(tmp_path, where, value, words):
    doc = document()
    table = doc["entries"][TID]
    *parents, last = where.split(".")
    for p in parents:
        table = table[p]
    table[last] = value
    path = write_doc(tmp_path, doc)
    assert_names(load_error(path), path, f"{E}.{where}", *words)


def test_an_entry_or_metric_that_is_not_a_table(tmp_path):
    path = write_doc(tmp_path, document(entries={TID: 3}))
    assert_names(load_error(path), path, E, "expected a table")
    doc = document()
    doc["entries"][TID]["metrics"]["acc"] = 0.95
    path = write_doc(tmp_path, doc)
    assert_names(load_error(path), path, f"{E}.metrics.acc", "expected a table")


@pytest.mark.parametrize(("key", "value"), [("entries", 3), ("model", "org/model"), ("environment", [1]),
                                            ("provenance", "x")])
def test_top_level_tables_must_be_tables(tmp_path, key, value):
    path = write_doc(tmp_path, document(**{key: value}))
    assert_names(load_error(path), path, key, "expected a table")


@pytest.mark.parametrize(("name", "value"), [("abs_floor", -0.01), ("hard_limit", -1), ("stderr", -0.1),
                                             ("abs_floor", float("inf")), ("stderr", float("nan"))])
def test_negative_or_non_finite_tolerance(tmp_path, name, value):
    doc = document()
    doc["entries"][TID]["metrics"]["acc"][name] = value
    path = write_doc(tmp_path, doc)
    assert_names(load_error(path), path, f"{E}.metrics.acc.{name}", "must be a finite number >= 0")


@pytest.mark.parametrize("literal", ["nan", "inf", "-inf"])
def test_non_finite_value(tmp_path, literal):
    path = write_doc(tmp_path, document())
    text = path.read_text(encoding="utf-8")
    assert text.count("value = 0.95\n") == 1
    path.write_text(text.replace("value = 0.95\n", f"value = {literal}\n"), encoding="utf-8")
    assert_names(load_error(path), path, f"{E}.metrics.acc.value", "is not a finite number")


@pytest.mark.parametrize(("where", "value", "words"), [
    ("direction", "up", ("'up'", "higher, lower")),
    ("rule", "bootstrap", ("'bootstrap'", "paired, stderr")),
])
def test_bad_direction_or_rule(tmp_path, where, value, words):
    doc = document()
    doc["entries"][TID]["metrics"]["acc"][where] = value
    path = write_doc(tmp_path, doc)
    assert_names(load_error(path), path, f"{E}.metrics.acc.{where}", *words)


def test_metric_n_must_be_positive(tmp_path):
    doc = document()
    doc["entries"][TID]["n"] = 0
    for m in doc["entries"][TID]["metrics"].values():
        m["n"] = 0
    path = write_doc(tmp_path, doc)
    assert_names(load_error(path), path, f"{E}.metrics.acc.n", "must be at least 1")


def test_metric_n_different_from_entry_n(tmp_path):
    doc = document()
    doc["entries"][TID]["metrics"]["acc_norm"]["n"] = 39
    path = write_doc(tmp_path, doc)
    assert_names(load_error(path), path, f"{E}.metrics.acc_norm.n", "39 differs from the entry's n (40)")


@pytest.mark.parametrize(("version", "words"), [
    (2, ("2 is newer than this kensa reads (1)", "upgrade kensa")),
    (0, ("0 is not a valid version",)),
    (-1, ("-1 is not a valid version",)),
    ("1", ("missing or not an integer", "'1'")),
    (True, ("missing or not an integer",)),
    (1.0, ("missing or not an integer",)),
])
def test_schema_version(tmp_path, version, words):
    path = write_doc(tmp_path, document(schema_version=version))
    assert_names(load_error(path), path, "schema_version", *words)


def test_missing_schema_version(tmp_path):
    doc = document()
    del doc["schema_version"]
    path = write_doc(tmp_path, doc)
    assert_names(load_error(path), path, "schema_version", "missing or not an integer", "None")


def test_baseline_name_must_match_the_file_name(tmp_path):
    path = write_doc(tmp_path, document(baseline="org-model-v2"))
    assert_names(load_error(path), path, "baseline", "'org-model-v2' does not match the file name",
                 "expected 'org-model'")
    doc = document()
    del doc["baseline"]
    path = write_doc(tmp_path, doc)
    assert_names(load_error(path), path, "baseline", "None does not match")


def test_a_file_is_never_half_read(tmp_path):
    """A bad second entry fails the whole file; nothing of the good first one is returned."""
    doc = document(entries={TID2: entry_table(prompt_version="0.2"), TID: entry_table(n="40")})
    path = write_doc(tmp_path, doc)
    assert_names(load_error(path), path, f"{E}.n", "expected int")


# -- per-item outcomes -----------------------------------------------------------------------------

SOURCE_NAME = f"{BASE}.toml"


def write_lines(tmp_path: Path, lines: list[Any]) -> Path:
    """Write an items file from JSON-able objects (or raw strings, written as they are)."""
    path = tmp_path / ITEMS
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def header(**over: Any) -> dict[str, Any]:
    return {"task_id": TID, "n": 4, "data_sha256": SHA, "metrics": ["acc", "acc_norm"], **over}


def rows(n: int = 4) -> list[dict[str, Any]]:
    return [{"doc_id": i, "key": 100 + i, "acc": float(i % 2), "acc_norm": 1.0} for i in range(n)]


def items_error(tmp_path: Path, entry: Entry) -> ThresholdsError:
    with pytest.raises(ThresholdsError) as info:
        load_items(tmp_path, entry, tmp_path / SOURCE_NAME)
    return info.value


def test_valid_items_load(tmp_path):
    write_lines(tmp_path, [header(), *rows()])
    got = load_items(tmp_path, make_entry(4), tmp_path / SOURCE_NAME)
    assert got == Items([100, 101, 102, 103], {"acc": [0.0, 1.0, 0.0, 1.0], "acc_norm": [1.0] * 4})


def test_missing_items_file_names_the_toml_and_the_items_key(tmp_path):
    err = items_error(tmp_path, make_entry(4))
    assert_names(err, tmp_path / SOURCE_NAME, f"{E}.items", str(tmp_path / ITEMS), "does not exist")


def test_items_header_with_another_data_hash(tmp_path):
    path = write_lines(tmp_path, [header(data_sha256="f" * 64), *rows()])
    err = items_error(tmp_path, make_entry(4))
    assert_names(err, path, "line 1: data_sha256", "'" + "f" * 64 + "'", "does not match the entry",
                 str(tmp_path / SOURCE_NAME), SHA)


def test_items_header_with_another_task_id(tmp_path):
    path = write_lines(tmp_path, [header(task_id=TID2), *rows()])
    assert_names(items_error(tmp_path, make_entry(4)), path, "line 1: task_id", repr(TID2), f"expected {TID!r}")


@pytest.mark.parametrize("count", [3, 5, 0])
def test_items_count_differs_from_entry_n(tmp_path, count):
    path = write_lines(tmp_path, [header(), *rows(count)])
    err = items_error(tmp_path, make_entry(4))
    assert_names(err, path, None, f"holds {count} items", "n = 4", str(tmp_path / SOURCE_NAME))


@pytest.mark.parametrize("bad", ['{"doc_id": 2, "key": 102, "acc": 1.0,', "", "not json"])
def test_malformed_json_line_names_the_line_number(tmp_path, bad):
    lines: list[Any] = [header(), *rows()]
    lines[3] = bad  # the third item is on line 4
    path = write_lines(tmp_path, lines)
    assert_names(items_error(tmp_path, make_entry(4)), path, "line 4", "malformed JSON")


@pytest.mark.parametrize("first", ["", "[1, 2]", "{oops"])
def test_a_bad_header_names_line_1(tmp_path, first):
    path = write_lines(tmp_path, [first, *rows()])
    err = items_error(tmp_path, make_entry(4))
    assert_names(err, path, "line 1")


def test_an_empty_items_file_names_line_1(tmp_path):
    path = tmp_path / ITEMS
    path.parent.mkdir(parents=True)
    path.write_text("", encoding="utf-8")
    assert_names(items_error(tmp_path, make_entry(4)), path, "line 1", "expected a header object")


@pytest.mark.parametrize("order", [[0, 2, 1, 3], [1, 2, 3, 4], [0, 1, 1, 3]])
def test_doc_id_out_of_order(tmp_path, order):
    lines = [header(), *rows()]
    for row, doc_id in zip(lines[1:], order):
        row["doc_id"] = doc_id
    path = write_lines(tmp_path, lines)
    first_bad = next(i for i, d in enumerate(order) if d != i)
    assert_names(items_error(tmp_path, make_entry(4)), path, f"line {first_bad + 2}", f"expected doc_id {first_bad}")


def test_a_row_that_is_not_an_object(tmp_path):
    path = write_lines(tmp_path, [header(), *rows()[:2], [2, 102, 1.0, 1.0], rows()[3]])
    assert_names(items_error(tmp_path, make_entry(4)), path, "line 4", "expected doc_id 2")


@pytest.mark.parametrize(("value", "shown"), [("1", "'1'"), (True, "True"), (None, "None"), ("NaN", "nan"),
                                              ([1], "[1]")])
def test_non_numeric_metric_value_names_line_and_field(tmp_path, value, shown):
    lines = [header(), *rows()]
    if value == "NaN":  # JSON's NaN literal, which Python's json reads as float('nan')
        lines[3] = '{"doc_id": 2, "key": 102, "acc": 0.0, "acc_norm": NaN}'
        field = "acc_norm"
    else:
        lines[3]["acc"] = value
        field = "acc"
    path = write_lines(tmp_path, lines)
    assert_names(items_error(tmp_path, make_entry(4)), path, f"line 4, field {field!r}", "expected a finite number",
                 shown)


def test_a_missing_metric_in_a_row_names_line_and_field(tmp_path):
    lines = [header(), *rows()]
    del lines[2]["acc_norm"]
    path = write_lines(tmp_path, lines)
    assert_names(items_error(tmp_path, make_entry(4)), path, "line 3, field 'acc_norm'", "got None")


def test_items_only_read_the_entrys_metrics(tmp_path):
    """An entry gating only acc reads only acc; extra fields in the rows are not an error."""
    write_lines(tmp_path, [header(), *rows()])
    got = load_items(tmp_path, make_entry(4, metrics=("acc",)), tmp_path / SOURCE_NAME)
    assert got.values == {"acc": [0.0, 1.0, 0.0, 1.0]}

