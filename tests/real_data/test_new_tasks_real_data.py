"""The new tasks on the real data in ``shared/data`` (skipped where it is absent): every row loads
and passes the row checks, and every prompt version renders with its shots."""

from __future__ import annotations

import pytest

from kensa.data import DataSource
from kensa.tasks import get_task
from kensa.tasks.render import prepare
from tests.helpers import SHARED_DATA


def need(path: str):
    if not (SHARED_DATA / path).exists():
        pytest.skip(f"real data {path} not found under {SHARED_DATA} (it sits beside the repo on the project's machines)")
    return DataSource.local(SHARED_DATA)


@pytest.mark.parametrize("version", ["1.1", "1.3"])
def test_jnli_valid(version):
    source = need("jglue/jnli/valid-v1.3.json")
    task = get_task("jnli", version)
    with pytest.warns(UserWarning, match="'test' split"):
        eval_split, pool = task.load(source)
    assert len(eval_split.rows) == 2434
    assert pool.source.endswith("jnli/test-v1.3.json") and len(pool.rows) == 2508
    golds = [task.gold(r) for r in eval_split.rows]
    assert set(golds) == {0, 1, 2}
    for variant in task.variants():
        docs = prepare(variant, eval_split, pool, 3, 20)
        assert len(docs) == 20 and all(d.prompt.startswith(variant.template.description) for d in docs)
        assert all(len(d.shot_ids) == 3 for d in docs)


def test_jcola_in_domain_valid():
    source = need("jcola/in_domain_valid-v1.0.json")
    task = get_task("jcola")
    eval_split, pool = task.load(source)
    assert len(eval_split.rows) == 865 and len(pool.rows) == 6919
    assert sum(r["label"] for r in eval_split.rows) == 726
    for variant in task.variants():
        docs = prepare(variant, eval_split, pool, 3, 20)
        # 6919 train rows, 16.6% unacceptable: floors 2 and 0, +1 to unacceptable -> 2 + 1 per prompt
        assert all(d.continuations == [" いいえ", " はい"] for d in docs)
        assert all(" いいえ" in d.prompt for d in docs)


def test_xwinograd_959_rows():
    source = need("xwinograd/dataset.jp.tsv")
    task = get_task("xwinograd_ja")
    eval_split, pool = task.load(source)
    assert pool is None and len(eval_split.rows) == 959
    answers = [r["answer"] for r in eval_split.rows]
    assert answers.count("1") == 466 and answers.count("2") == 493
    (variant,) = task.variants()
    docs = prepare(variant, eval_split, None, 0, None)
    assert all(d.prompt == "" and d.continuations[0] != d.continuations[1] for d in docs)


def test_marc_ja_without_data_is_a_clear_error():
    source = need("jglue/jnli")
    if (SHARED_DATA / "jglue" / "marc_ja").exists():
        pytest.skip("this shared/data has MARC-ja")
    from kensa.errors import DataError

    with pytest.raises(DataError, match="MARC-ja is no longer distributed"):
        get_task("marc_ja").load(source)
