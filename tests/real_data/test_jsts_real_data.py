"""JSTS on the real JGLUE v1.3 files in ``shared/data`` (skipped where they are absent): row counts,
every label's target parses back to the label, and the whole generation path on real docs."""

from __future__ import annotations

import pytest

from kensa.data import DataSource
from kensa.run.generation import evaluate_generation
from kensa.tasks.jglue.jsts import TASK, parse_similarity
from tests.helpers import SHARED_DATA, PromptLM, answering

JSTS = SHARED_DATA / "jglue" / "jsts"
VERSIONS = [v.template.version for v in TASK.variants()]


@pytest.fixture(scope="module")
def real():
    if not (JSTS / "valid-v1.3.json").is_file() or not (JSTS / "train-v1.3.json").is_file():
        pytest.skip(f"real JSTS data (jglue/jsts/{{train,valid}}-v1.3.json) not found under {SHARED_DATA} "
                    "(it sits beside the repo on the project's machines)")
    return TASK.load(DataSource.local(SHARED_DATA))


def test_row_counts_and_sources(real):
    eval_split, pool = real
    assert len(eval_split.rows) == 1457 and eval_split.source.endswith("jsts/valid-v1.3.json")
    assert len(pool.rows) == 12451 and pool.source.endswith("jsts/train-v1.3.json")
    assert eval_split.version == pool.version == "1.3"


def test_every_label_parses_back(real):
    for split in real:
        labels = {r["label"] for r in split.rows}
        assert len(labels) == 26 and min(labels) == 0.0 and max(labels) == 5.0  # 0.0, 0.2, ..., 5.0
        for r in split.rows:
            (gold,) = TASK.golds(r)
            assert len(gold) == 3 and parse_similarity(gold) == r["label"]


@pytest.mark.parametrize("version", VERSIONS)
def test_five_docs_end_to_end_with_the_gold_echoed(real, version):
    eval_split, pool = real
    variant = next(v for v in TASK.variants() if v.template.version == version)
    lm = PromptLM(answering(variant, eval_split.rows, [TASK.golds(r)[0] for r in eval_split.rows]))
    run = evaluate_generation(variant, lm, eval_split, pool, 3, limit=5)
    assert run.n == 5 and len(lm.requests) == 5
    assert len({s["gold_value"] for s in run.samples}) > 1  # not a constant gold, or Pearson would be 0
    assert run.metrics["pearson"] == pytest.approx(1.0) and run.metrics["spearman"] == pytest.approx(1.0)
    assert run.metrics["unparseable"] == 0
    assert all(s["shots"] == 3 and s["extracted"] == s["gold_value"] for s in run.samples)
    assert run.data["eval"]["rows"] == 1457 and run.data["fewshot"]["rows"] == 12451


@pytest.mark.parametrize("version", VERSIONS)
def test_five_docs_of_text_are_all_unparseable(real, version):
    eval_split, pool = real
    variant = next(v for v in TASK.variants() if v.template.version == version)
    run = evaluate_generation(variant, PromptLM(lambda prompt: "よく似ています"), eval_split, pool, 3, limit=5)
    assert run.metrics == {"pearson": 0.0, "spearman": 0.0, "unparseable": 5.0,
                           "unterminated": 0.0, "unterminated_stderr": 0.0}  # every generation task reports it
    assert all(s["extracted"] is None for s in run.samples)
