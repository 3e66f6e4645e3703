"""MGSM-ja on the real url-nlp files in ``shared/data/mgsm``: the readers, and the published harness's
4-shot 0.0 contexts (golden file ``tests/golden/mgsm_0.0_k4.json``, from the jp-stable harness's
``models/cyberagent/cyberagent-open-calm-1b/result.mgsm.json``) rebuilt exactly, all 250 of them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from kensa.data import DataSource
from kensa.tasks.jglue.mgsm import TASK, extract_answer
from kensa.tasks.render import prepare_generation
from tests.helpers import REPO, SHARED_DATA

MGSM = SHARED_DATA / "mgsm"
pytestmark = pytest.mark.skipif(not (MGSM / "mgsm_ja.tsv").is_file() or not (MGSM / "mgsm_ja_exemplars.jsonl").is_file(),
                                reason=f"no real MGSM data under {MGSM} (see shared/data/README.md)")
GOLDEN = json.loads((REPO / "tests" / "golden" / "mgsm_0.0_k4.json").read_text(encoding="utf-8"))
VARIANTS = {v.template.version: v for v in TASK.variants()}


class LongLM:
    """A model whose context every prompt fits: no shots are dropped (as open-calm's 2048 tokens at k=4)."""

    name = "long"
    kind, bad_words, info = "causal", (), {}  # the rest of what a run loop reads of a backend
    max_length = 1 << 30
    max_gen_toks = 256

    def tok_encode(self, text):
        return list(text.encode())

    def tokenize(self, text):
        return list(text)


@pytest.fixture(scope="module")
def data():
    return TASK.load(DataSource.local(SHARED_DATA))


def test_sizes_and_fields(data):
    ev, pool = data
    assert len(ev.rows) == 250 and len(pool.rows) == 8
    assert all(r["answer"] is None and isinstance(r["answer_number"], int) for r in ev.rows)
    assert [r["exemplar"] for r in pool.rows] == list(range(1, 9))
    assert [r["answer_number"] for r in pool.rows] == [11, 29, 39, 9, 33, 8, 8, 5]
    assert "\n" in pool.rows[4]["question"]  # exemplar 5, as upstream


def test_thousands_separators_parse(data):
    ev, _ = data
    raw = [line.split("\t")[1] for line in (MGSM / "mgsm_ja.tsv").read_text(encoding="utf-8").splitlines()]
    with_commas = [(i, n) for i, n in enumerate(raw) if "," in n]
    assert [n for _, n in with_commas] == ["2,125", "114,200", "276,000", "5,600"]
    assert [ev.rows[i]["answer_number"] for i, _ in with_commas] == [2125, 114200, 276000, 5600]


def test_every_exemplar_target_extracts_to_its_number(data):
    _, pool = data
    for r in pool.rows:
        assert extract_answer(TASK.view(r)["answer"]) == r["answer_number"]


def test_published_4shot_contexts_are_rebuilt_exactly(data):
    """Doc order (Random(42) shuffle), shot draws from the same generator, exemplar order, the newline
    inside exemplar 5: every one of the 250 published contexts, and two of them verbatim."""
    ev, pool = data
    assert GOLDEN["task"] == VARIANTS["0.0"].task_id and GOLDEN["num_fewshot"] == 4
    docs = prepare_generation(VARIANTS["0.0"], ev, pool, GOLDEN["num_fewshot"], None, LongLM())
    assert len(docs) == GOLDEN["n"]
    for i, context in GOLDEN["contexts"].items():
        assert docs[int(i)].row["question"] == GOLDEN["questions"][i]
        assert docs[int(i)].prompt == context
    prompts = [d.prompt for d in docs]
    assert hashlib.sha256(json.dumps(prompts, ensure_ascii=False).encode()).hexdigest() == GOLDEN["contexts_sha256"]
