"""Data loading: every bad row is a DataError naming file, row (1-based line) and field.

Files are written in the exact JGLUE JCommonsenseQA JSON Lines format
(``{"q_id": .., "question": .., "choice0".."choice4": .., "label": int}``, one object a line),
as described in shared/data/jglue/README.md. Also covers the shipped fixtures, the real
shared data (skipped when absent) and the Hub code path against a local directory.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from kensa.data import DataSource, find_local_file, load_split, read_hub, read_jsonl
from kensa.errors import DataError
from kensa.tasks.jglue.jcommonsenseqa import TASK
from tests.helpers import REPO

SPEC = TASK.dataset
SHARED_DATA = REPO.parent / "shared" / "data"


def row(q_id: int, label: int = 2, **changes) -> dict:
    r = {"q_id": q_id, "question": "電子レンジで温めるものは何？", "choice0": "弁当", "choice1": "自転車",
         "choice2": "靴", "choice3": "鍵", "choice4": "傘", "label": label}
    r.update(changes)
    return r


def line(r) -> str:
    return json.dumps(r, ensure_ascii=False)


def write_lines(tmp_path: Path, lines: list[str], name: str = "valid-v1.3.json") -> Path:
    d = tmp_path / "jglue" / "jcommonsenseqa"
    d.mkdir(parents=True, exist_ok=True)
    path = d / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def data_error(path: Path) -> DataError:
    with pytest.raises(DataError) as info:
        split = read_jsonl(SPEC, path)
        TASK.check_rows(split)
    return info.value


# --- good file ------------------------------------------------------------------------------


def test_good_file_reads_rows_version_and_hash(tmp_path):
    rows = [row(8939, 0), row(8940, 4)]
    path = write_lines(tmp_path, [line(r) for r in rows])
    split = read_jsonl(SPEC, path)
    assert split.rows == rows
    assert split.source == str(path)
    assert split.version == "1.3"
    assert split.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert split.provenance()["rows"] == 2
    TASK.check_rows(split)


def test_q_id_may_be_a_string(tmp_path):
    path = write_lines(tmp_path, [line(row("abc"))])
    assert read_jsonl(SPEC, path).rows[0]["q_id"] == "abc"


# --- malformed rows -------------------------------------------------------------------------


def test_malformed_json_names_file_and_line(tmp_path):
    path = write_lines(tmp_path, [line(row(1)), line(row(2)), '{"q_id": 3, "question": "x",', line(row(4))])
    err = data_error(path)
    assert str(path) in str(err)
    assert "row 3" in str(err)
    assert "malformed JSON" in str(err)
    assert err.row == 3


def test_missing_field_names_field_and_row(tmp_path):
    bad = row(2)
    del bad["choice3"]
    path = write_lines(tmp_path, [line(row(1)), line(bad)])
    err = data_error(path)
    assert (err.row, err.field) == (2, "choice3")
    assert "'choice3'" in str(err) and "row 2" in str(err) and str(path) in str(err)


def test_label_as_string_is_an_error(tmp_path):
    path = write_lines(tmp_path, [line(row(1, label="2"))])
    err = data_error(path)
    assert (err.row, err.field) == (1, "label")
    assert "'2'" in str(err) and "str" in str(err)


def test_label_true_is_an_error(tmp_path):
    """JSON true is a Python bool, which is an int subclass; it must not pass as label 1."""
    path = write_lines(tmp_path, [line(row(1)), line(row(2)), line(row(3, label=True))])
    err = data_error(path)
    assert (err.row, err.field) == (3, "label")
    assert "bool" in str(err)


def test_q_id_false_is_an_error(tmp_path):
    path = write_lines(tmp_path, [line(row(False))])
    assert data_error(path).field == "q_id"


@pytest.mark.parametrize("value", [None, 2.0, ["弁当"], 3])
def test_choice_of_wrong_type_is_an_error(tmp_path, value):
    path = write_lines(tmp_path, [line(row(1, choice1=value))])
    err = data_error(path)
    assert (err.row, err.field) == (1, "choice1")


def test_row_that_is_not_an_object(tmp_path):
    path = write_lines(tmp_path, [line(row(1)), "[1, 2, 3]"])
    err = data_error(path)
    assert err.row == 2 and "JSON object" in str(err)


def test_label_out_of_range_is_caught_by_task_checks(tmp_path):
    path = write_lines(tmp_path, [line(row(1)), line(row(2, label=7))])
    split = read_jsonl(SPEC, path)  # the type is right; the range is the task's business
    with pytest.raises(DataError) as info:
        TASK.check_rows(split)
    err = info.value
    assert (err.row, err.field) == (2, "label")
    assert "row 2" in str(err) and "'label'" in str(err) and "7" in str(err) and str(path) in str(err)


@pytest.mark.parametrize("label", [-1, 5])
def test_label_just_outside_range(tmp_path, label):
    path = write_lines(tmp_path, [line(row(1, label=label))])
    assert data_error(path).field == "label"


def test_empty_choice_is_an_error(tmp_path):
    """acc_norm divides by the choice's length, so an empty choice must be refused up front."""
    path = write_lines(tmp_path, [line(row(1)), line(row(2)), line(row(3, choice1=""))])
    err = data_error(path)
    assert err.row == 3
    assert "empty" in str(err) and "row 3" in str(err)


def test_empty_file_is_an_error(tmp_path):
    path = write_lines(tmp_path, ["", "  "])
    err = data_error(path)
    assert str(path) in str(err) and "no rows" in str(err)


# --- blank lines ----------------------------------------------------------------------------


def test_blank_lines_are_skipped_but_counted(tmp_path):
    path = write_lines(tmp_path, ["", line(row(1)), "   ", line(row(2)), "", "{not json"])
    err = data_error(path)
    assert err.row == 6 and "row 6" in str(err)


def test_blank_lines_do_not_make_rows(tmp_path):
    path = write_lines(tmp_path, [line(row(1)), "", line(row(2)), ""])
    assert [r["q_id"] for r in read_jsonl(SPEC, path).rows] == [1, 2]


def test_bad_field_after_blank_line_reports_file_line(tmp_path):
    bad = row(2)
    del bad["question"]
    path = write_lines(tmp_path, [line(row(1)), "", "", line(bad)])
    err = data_error(path)
    assert (err.row, err.field) == (4, "question")


def test_task_check_after_blank_line_reports_file_line(tmp_path):
    """A label out of range on line 3 (after a blank line 1) must say row 3, like the type checks do."""
    path = write_lines(tmp_path, ["", line(row(1)), line(row(2, label=9))])
    err = data_error(path)
    assert err.field == "label"
    assert err.row == 3, str(err)


# --- finding files --------------------------------------------------------------------------


def test_newest_version_wins(tmp_path):
    for v in ("1.1", "1.3", "1.2"):
        write_lines(tmp_path, [line(row(1))], name=f"valid-v{v}.json")
    found = find_local_file(tmp_path, "jglue/jcommonsenseqa/valid-v*.json")
    assert found.name == "valid-v1.3.json"


def test_versions_compare_as_numbers(tmp_path):
    for v in ("1.9", "1.10"):
        write_lines(tmp_path, [line(row(1))], name=f"valid-v{v}.json")
    assert find_local_file(tmp_path, "jglue/jcommonsenseqa/valid-v*.json").name == "valid-v1.10.json"


def test_load_split_picks_newest_and_reads_it(tmp_path):
    write_lines(tmp_path, [line(row(1))], name="valid-v1.1.json")
    write_lines(tmp_path, [line(row(2)), line(row(3))], name="valid-v1.3.json")
    split = load_split(SPEC, "validation", DataSource.local(tmp_path))
    assert [r["q_id"] for r in split.rows] == [2, 3]
    assert split.version == "1.3"


def test_missing_file_names_the_pattern(tmp_path):
    (tmp_path / "jglue" / "jcommonsenseqa").mkdir(parents=True)
    with pytest.raises(DataError) as info:
        load_split(SPEC, "validation", DataSource.local(tmp_path))
    assert "jglue/jcommonsenseqa/valid-v*.json" in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_task_load_with_empty_dir_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"valid-v\*\.json"):
        TASK.load(DataSource.local(tmp_path))


# --- shipped fixtures and real data ---------------------------------------------------------


def test_fixtures_load_and_pass_checks():
    eval_split, pool = TASK.load(DataSource.fixtures())
    assert len(eval_split.rows) == 40 and len(pool.rows) == 20
    assert eval_split.source.endswith("fixtures/jglue/jcommonsenseqa/valid-v1.3.json")
    assert pool.source.endswith("fixtures/jglue/jcommonsenseqa/train-v1.3.json")
    assert {r["label"] for r in eval_split.rows} == {0, 1, 2, 3, 4}
    assert not {r["q_id"] for r in eval_split.rows} & {r["q_id"] for r in pool.rows}


def test_real_jglue_data():
    """The JGLUE v1.3 copy in ../shared/data: row counts, labels and checksums from its README."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"no shared data at {SHARED_DATA} (the JGLUE copy lives next to the repo)")
    eval_split, pool = TASK.load(DataSource.local(SHARED_DATA))
    assert len(eval_split.rows) == 1119
    assert len(pool.rows) == 8939
    assert eval_split.version == pool.version == "1.3"
    assert dict(collections.Counter(r["label"] for r in eval_split.rows)) == {0: 216, 1: 237, 2: 240, 3: 228, 4: 198}
    sums = dict(reversed(ln.split()) for ln in (SHARED_DATA / "jglue" / "SHA256SUMS").read_text().splitlines() if ln)
    assert eval_split.sha256 == sums["jcommonsenseqa/valid-v1.3.json"]
    assert pool.sha256 == sums["jcommonsenseqa/train-v1.3.json"]


# --- Hub code path, on a local directory laid out like a Hub dataset repo ---------------------


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def write_hub_repo(root: Path, splits: dict[str, list[dict]]) -> Path:
    (root / "data").mkdir(parents=True)
    for name, rows in splits.items():
        (root / "data" / f"{name}.jsonl").write_text("".join(line(r) + "\n" for r in rows), encoding="utf-8")
    return root


def test_read_hub_from_local_repo_dir(tmp_path, offline):
    valid = [row(8939, 0), row(8940, 3, question="寒い日に首に巻くものは何？")]
    train = [row(0, 1), row(1, 2), row(2, 4)]
    repo = write_hub_repo(tmp_path / "repo", {"validation": valid, "train": train})
    spec = dataclasses.replace(SPEC, hub_id=str(repo))
    split = read_hub(spec, "validation")
    assert split.rows == valid
    assert split.source == f"hub:{repo}[validation]"
    assert split.source.startswith("hub:")
    assert read_hub(spec, "train").rows == train
    eval_split, pool = dataclasses.replace(TASK, dataset=spec).load(DataSource.hub())
    assert (len(eval_split.rows), len(pool.rows)) == (2, 3)


def test_read_hub_maps_split_names(tmp_path, offline):
    repo = write_hub_repo(tmp_path / "repo", {"validation": [row(1)], "train": [row(2), row(3)]})
    spec = dataclasses.replace(SPEC, hub_id=str(repo), hub_splits={"validation": "train"})
    split = read_hub(spec, "validation")
    assert [r["q_id"] for r in split.rows] == [2, 3]
    assert split.source == f"hub:{repo}[train]"


def test_read_hub_bad_row_names_source_and_row(tmp_path, offline):
    """A key missing from one JSON line comes back from datasets as None, which must not pass."""
    bad = row(2)
    del bad["choice4"]
    repo = write_hub_repo(tmp_path / "repo", {"validation": [row(1), bad], "train": [row(3)]})
    spec = dataclasses.replace(SPEC, hub_id=str(repo))
    with pytest.raises(DataError) as info:
        read_hub(spec, "validation")
    assert info.value.field == "choice4" and info.value.row == 2
    assert str(info.value).startswith(f"hub:{repo}[validation], row 2")


def test_read_hub_unloadable_is_a_data_error(tmp_path, offline):
    spec = dataclasses.replace(SPEC, hub_id=str(tmp_path / "no-such-repo"))
    with pytest.raises(DataError) as info:
        read_hub(spec, "validation")
    assert str(info.value).startswith(f"hub:{tmp_path / 'no-such-repo'}[validation]")


def test_read_hub_without_hub_id():
    with pytest.raises(DataError, match="--data-dir"):
        read_hub(dataclasses.replace(SPEC, hub_id=None), "validation")
