"""The trained tiny models are shipped, not trained: the files, their manifest, the thresholds that name them,
their frozen training corpus, a run's report of prompts that corpus lacks, and the rebuild compared by scores.

Nothing here depends on bytes another CPU would change: the shipped files are read, never rebuilt and
compared by bytes (a rebuild is compared by scores, in the slow tier).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from kensa.errors import DataError, KensaError
from kensa.tiny import build as tiny
from kensa.tiny import shipped, training_corpus
from tests.helpers import REPO

TRAINED = [name for name, recipe in tiny.MODELS.items() if recipe.train is not None]


def test_every_trained_model_is_shipped_small_and_complete():
    assert TRAINED == ["tiny-trained", "tiny-t5-trained"]
    for name in TRAINED:
        path = shipped.shipped_dir(name)
        assert path.is_relative_to(REPO / "kensa" / "tiny" / "data" / "models"), path  # package data, not the cache
        assert {*shipped.SHIPPED_FILES, shipped.BUILD_FILE} <= {p.name for p in path.iterdir()}
        assert (path / "model.safetensors").stat().st_size < 2_000_000


@pytest.mark.parametrize("name", TRAINED)
def test_the_thresholds_and_the_manifest_name_the_shipped_weights(name):
    """The digest of the shipped files is the one their manifest records and the one every committed baseline
    entry of the model was measured on (so a run on them reproduces the baselines exactly)."""
    from kensa.backends.identity import files_sha256, weights_sha256

    path = shipped.shipped_dir(name)
    build = shipped.read_build(path)
    assert weights_sha256(path) == build["weights_sha256"]
    assert files_sha256(path / n for n in ("config.json", "generation_config.json")) == build["config_sha256"]
    committed = tomllib.loads((REPO / "thresholds" / f"{name}.toml").read_text(encoding="utf-8"))
    assert committed["model"]["weights_sha256"] == build["weights_sha256"]
    assert committed["model"]["config_sha256"] == build["config_sha256"]
    entries = committed["entries"].values()
    assert entries and {e["weights_sha256"] for e in entries} == {build["weights_sha256"]}


@pytest.mark.parametrize("name", TRAINED)
def test_the_shipped_build_matches_the_code_recipe_and_the_frozen_corpus(name):
    path = shipped.shipped_dir(name)
    build, key = shipped.read_build(path), json.loads((path / "kensa_recipe.json").read_text(encoding="utf-8"))
    assert build["recipe_sha256"] == shipped.recipe_digest(name)
    examples = training_corpus.training_examples(tiny.kind_of(name))
    assert build["training_data"] == key["data"] == training_corpus.examples_digest(examples)
    assert key["model"] == json.loads(json.dumps(dataclasses.asdict(tiny.MODELS[name])))
    assert build["built_on"]["kernels"] == shipped.KERNEL_ENV and build["built_on"]["model"]
    assert build["command"] == f"python -m kensa tiny --rebuild --name {name} --ship"


def test_loading_a_trained_model_reads_the_shipped_files_and_trains_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("KENSA_CACHE_DIR", str(tmp_path / "empty-cache"))

    def no_training(*args, **kwargs):
        raise AssertionError("a trained tiny model was trained on load")

    monkeypatch.setattr(tiny, "_train_and_save", no_training)
    monkeypatch.setattr(tiny, "build_spm", no_training)
    for name in TRAINED:
        assert tiny.build_model(name) == shipped.shipped_dir(name)
    assert not (tmp_path / "empty-cache").exists()


def test_loaded_identity_is_the_shipped_digest():
    """What the response cache and the gate key on: the loaded model's weights digest."""
    from tests.helpers import load_tiny

    lm = load_tiny("tiny-t5-trained")
    try:
        identity = lm.info["identity"]
    finally:
        lm.close()
    assert identity["weights_sha256"] == shipped.read_build(shipped.shipped_dir("tiny-t5-trained"))["weights_sha256"]
    assert Path(identity["source"]) == shipped.shipped_dir("tiny-t5-trained")


def test_a_changed_recipe_refuses_the_stale_shipped_weights(monkeypatch):
    recipe = tiny.MODELS["tiny-trained"]
    monkeypatch.setitem(tiny.MODELS, "tiny-trained",
                        dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, steps=2401)))
    with pytest.raises(KensaError, match=r"another recipe.*python -m kensa tiny --rebuild --name tiny-trained --ship"):
        tiny.build_model("tiny-trained")
    monkeypatch.setattr(training_corpus, "TRAINING_CORPUS_VERSION", "v2")  # a new corpus version: stale too
    monkeypatch.setitem(tiny.MODELS, "tiny-trained", recipe)
    with pytest.raises(KensaError, match="another recipe or training corpus"):
        tiny.build_model("tiny-trained")


def test_a_random_model_is_not_shipped_nor_rebuilt():
    with pytest.raises(KensaError, match="not a trained tiny model"):
        shipped.shipped_dir("tiny-llama")
    with pytest.raises(KensaError, match="not a trained tiny model"):
        tiny.train_model("tiny-llama")


# --- the frozen training corpus ---------------------------------------------------------------------------


def test_the_training_text_is_frozen_not_read_from_the_registry(monkeypatch):
    """Adding a task (or editing a fixture) changes neither the text the trained models learn nor their cache key."""
    import kensa.tasks.training_text as training_text
    from kensa.tasks import all_tasks

    spm_dir = tiny.build_spm()
    before = {name: tiny._model_key(tiny.MODELS[name], spm_dir)[0] for name in TRAINED}
    tasks = all_tasks()
    monkeypatch.setattr(training_text, "all_tasks", lambda: [*tasks, tasks[0]])  # one more task's worth of text
    assert len(training_text.training_examples()) > len(training_corpus.training_examples("causal"))
    assert {name: tiny._model_key(tiny.MODELS[name], spm_dir)[0] for name in TRAINED} == before


def test_a_corpus_file_round_trips_and_a_frozen_version_never_changes(tmp_path):
    examples = [training_corpus.TrainingExample("t-1.0-0.1", "問：空は？\n答：", "青"),
                training_corpus.TrainingExample("t-1.0-0.1", "質問", "答え", eos=True)]
    by_kind = {"causal": examples, "seq2seq": examples[:1]}
    paths = training_corpus.write_version(tmp_path, "v9", by_kind)
    assert [p.name for p in paths] == ["training-v9-causal.jsonl", "training-v9-seq2seq.jsonl"]
    assert training_corpus.read_corpus(paths[0]) == examples
    assert "空" in paths[0].read_text(encoding="utf-8")  # readable in a diff, not \u escapes
    training_corpus.write_version(tmp_path, "v9", by_kind)  # the same text again: fine
    with pytest.raises(KensaError, match="v9 exists.*training-v9-causal.jsonl.*never changes"):
        training_corpus.write_version(tmp_path, "v9", {**by_kind, "causal": examples[:1]})
    assert training_corpus.read_corpus(paths[0]) == examples


@pytest.mark.parametrize(("line", "message"), [
    ('{"task_id": "t", "context": "c"', "row 2: not JSON"),
    ('{"task_id": "t", "context": "c"}', "row 2, field 'continuation': missing or not a string"),
    ('{"task_id": "t", "context": "c", "continuation": "x", "eos": "yes"}', "row 2, field 'eos'"),
    ('{"task_id": "t", "context": "c", "continuation": "x", "extra": 1}', r"row 2: unknown keys \['extra'\]"),
])
def test_a_malformed_corpus_line_names_the_file_and_line(tmp_path, line, message):
    path = tmp_path / "training-v1-causal.jsonl"
    path.write_text('{"task_id": "t", "context": "c", "continuation": "x"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=f"{path.name}.*{message}"):
        training_corpus.read_corpus(path)


# --- a run reports the prompts the corpus lacks -----------------------------------------------------------


def fake_lm(kind: str, source: str, weights: str = "") -> SimpleNamespace:
    return SimpleNamespace(spec=SimpleNamespace(kind=kind, source=source),
                           info={"identity": {"weights_sha256": weights}})


def coverage_of(lm, variant, eval_split, pool, k):
    from kensa.run.training_coverage import record_coverage

    data: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record_coverage(variant, lm, eval_split, pool, k, None, data)
    return data.get("training_corpus"), [str(w.message) for w in caught]


def test_a_run_on_tiny_trained_records_that_every_prompt_was_trained_on():
    from kensa.data import DataSource
    from kensa.tasks import get_task

    task = get_task("jcommonsenseqa")
    eval_split, pool = task.load(DataSource.fixtures())
    variant = task.variants()[0]
    found, warned = coverage_of(fake_lm("tiny", "tiny-trained"), variant, eval_split, pool, task.num_fewshot)
    assert found == {"model": "tiny-trained", "corpus": "v1", "docs": len(eval_split.rows), "absent": 0,
                     "variant_absent": False}
    assert warned == []
    # A copy of the shipped weights at another path is the same model; other models get no record.
    digest = shipped.read_build(shipped.shipped_dir("tiny-trained"))["weights_sha256"]
    assert coverage_of(fake_lm("local", "/m/copy", digest), variant, eval_split, pool, task.num_fewshot)[0] == found
    assert coverage_of(fake_lm("tiny", "tiny-llama"), variant, eval_split, pool, task.num_fewshot) == (None, [])
    assert coverage_of(fake_lm("local", "/m/x", "f" * 64), variant, eval_split, pool, task.num_fewshot) == (None, [])


def test_a_run_of_tiny_trained_carries_the_coverage_in_its_data():
    """Through the run loop, as the suites call it: the record lands in the task's provenance (results.json)."""
    from kensa.data import DataSource
    from kensa.run import evaluate_variant
    from kensa.tasks import get_task
    from tests.helpers import load_tiny

    task = get_task("jnli")
    eval_split, pool = task.load(DataSource.fixtures())
    lm = load_tiny("tiny-trained")
    try:
        run = evaluate_variant(task.variants()[0], lm, eval_split, pool, task.num_fewshot, limit=4)
    finally:
        lm.close()
    assert run.data["training_corpus"] == {"model": "tiny-trained", "corpus": "v1", "docs": 4, "absent": 0,
                                           "variant_absent": False}


def test_an_edited_fixture_and_an_unknown_task_are_reported_on_tiny_trained():
    from kensa.data import DataSource, Split
    from kensa.tasks import get_task

    task = get_task("jcommonsenseqa")
    eval_split, pool = task.load(DataSource.fixtures())
    variant = task.variants()[0]
    rows = [dict(r) for r in eval_split.rows]
    rows[0] = {**rows[0], "question": rows[0]["question"] + "（改）"}  # one fixture doc edited after freezing
    edited = Split(rows, eval_split.source, eval_split.version, eval_split.sha256)
    found, warned = coverage_of(fake_lm("tiny", "tiny-trained"), variant, edited, pool, task.num_fewshot)
    assert found["absent"] == 1 and not found["variant_absent"]
    assert warned == [f"kensa: {variant.task_id}: 1 of {len(rows)} prompts are not in tiny-trained's training corpus "
                      "v1 (other data, shots or fixtures than it was frozen from)"]
    # A task added after the corpus was frozen: absent as a whole.
    new = training_corpus.coverage("causal", "newtask-1.0-0.1", [training_corpus.TrainingExample("newtask-1.0-0.1",
                                                                                                  "p", "c")])
    assert new.variant_absent and new.absent == 1
    assert "newtask-1.0-0.1: absent from tiny-trained's training corpus v1" in new.message("tiny-trained")


# --- a rebuild is compared by scores ----------------------------------------------------------------------


def test_the_score_comparison_accepts_a_copy_and_refuses_a_damaged_model(tmp_path):
    from kensa.tiny.compare import compare

    src = shipped.shipped_dir("tiny-t5-trained")
    copy = tiny.write_tiny("tiny-t5-trained", tmp_path / "copy")
    same = compare(src, copy, "seq2seq", stride=25)
    assert same.agree and same.deltas() == {"logprob_per_token": 0.0, "exact": 0.0}
    assert same.shipped.exact > 0.5 and same.shipped.logprob_per_token > -0.5  # it learned its corpus
    damaged = tiny.perturb_weights(copy, tmp_path / "damaged", scale=tiny.DAMAGE_SCALE, seed=0)
    worse = compare(src, damaged, "seq2seq", stride=25)
    assert not worse.agree and worse.rebuilt.logprob_per_token < same.shipped.logprob_per_token - 1
    assert "tolerance" in worse.lines()[-1]


def test_the_cli_refuses_to_rebuild_a_random_model_and_ship_without_rebuild():
    cmd = [sys.executable, "-m", "kensa", "tiny"]
    done = subprocess.run([*cmd, "--rebuild", "--name", "tiny-llama"], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "not a trained tiny model" in done.stderr
    done = subprocess.run([*cmd, "--ship", "--name", "tiny-trained"], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "--ship goes with --rebuild" in done.stderr


@pytest.mark.slow
def test_a_rebuild_agrees_with_the_shipped_model_by_scores(tmp_path):
    """Trains tiny-t5-trained again (a minute or two on one thread) and compares it by scores, not bytes."""
    out = tmp_path / "rebuilt"
    done = subprocess.run([sys.executable, "-m", "kensa", "tiny", "--rebuild", "--name", "tiny-t5-trained",
                           "--out", str(out), "--stride", "5"], capture_output=True, text=True, check=False,
                          timeout=1800)
    print(done.stdout)  # the comparison table, for the record (pytest -rA)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the rebuild agrees with the shipped tiny-t5-trained within the tolerance" in done.stdout
    assert (out / "model.safetensors").is_file()
