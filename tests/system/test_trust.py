"""Trust: code in a model directory runs only with trust_remote_code=True, and thresholds and snapshot
files are data that nothing executes or evaluates."""

from __future__ import annotations

import ast
import json
import shutil
import textwrap

import pytest

from kensa.errors import ModelLoadError
from kensa.gate.thresholds import ThresholdsError
from tests.helpers import REPO, load_tiny

pytest.importorskip("transformers")

# The model's own code: importing it (as transformers does for auto_map) leaves a marker file.
MODELING = textwrap.dedent('''
    import os
    import pathlib

    pathlib.Path(os.environ["KENSA_MARKER"]).write_text("remote code ran")

    from transformers import LlamaConfig, LlamaForCausalLM


    class MarkerConfig(LlamaConfig):
        model_type = "kensa_marker"


    class MarkerForCausalLM(LlamaForCausalLM):
        config_class = MarkerConfig
''')


@pytest.fixture
def remote_code_model(tmp_path, monkeypatch):
    from kensa.tiny import build as tiny

    src = tiny.build_model("tiny-llama")
    model = tmp_path / "marker-model"
    shutil.copytree(src, model)
    config = json.loads((model / "config.json").read_text())
    config.update(model_type="kensa_marker", architectures=["MarkerForCausalLM"],
                  auto_map={"AutoConfig": "modeling_marker.MarkerConfig",
                            "AutoModelForCausalLM": "modeling_marker.MarkerForCausalLM"})
    (model / "config.json").write_text(json.dumps(config))
    (model / "modeling_marker.py").write_text(MODELING)
    marker = tmp_path / "MARKER"
    monkeypatch.setenv("KENSA_MARKER", str(marker))
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))  # transformers copies the code there
    return model, marker


def test_remote_code_never_runs_without_trust_remote_code(remote_code_model):
    model, marker = remote_code_model
    with pytest.raises(ModelLoadError, match="trust_remote_code"):
        load_tiny(str(model))
    assert not marker.exists()


def test_remote_code_runs_with_trust_remote_code(remote_code_model):
    model, marker = remote_code_model
    lm = load_tiny(str(model), "trust_remote_code=True")
    try:
        assert marker.read_text() == "remote code ran"
        assert type(lm.model).__name__ == "MarkerForCausalLM"
    finally:
        lm.close()


ENGINE_FILES = sorted([*REPO.glob("kensa/**/*.py"), *REPO.glob("plugins/*.py")])
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_ATTRS = {("pickle", "load"), ("pickle", "loads"), ("marshal", "loads"), ("yaml", "load"),
                   ("yaml", "unsafe_load"), ("torch", "load")}


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_the_engine_evaluates_nothing_it_reads(path):
    """No eval/exec/compile/__import__ and no pickle-style loading anywhere in the engine or the plugin:
    thresholds, snapshots, samples and the cache are parsed as TOML, JSON or text, never run."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in FORBIDDEN_CALLS:
                found.append(f"{f.id}() at line {node.lineno}")
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and (f.value.id, f.attr) in FORBIDDEN_ATTRS:
                found.append(f"{f.value.id}.{f.attr}() at line {node.lineno}")
    assert not found


def test_code_in_a_thresholds_file_is_a_string_that_is_refused(tmp_path):
    """A value written as code is read as text and refused for its type; nothing runs."""
    from kensa.gate.thresholds import load_thresholds

    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.toml"
    payload = f"__import__('pathlib').Path({str(marker)!r}).write_text('ran')"
    path.write_text(textwrap.dedent(f'''
        schema_version = 1
        baseline = "evil"
        [model]
        name = "m"
        [entries."jnli-1.3-0.3"]
        task = "jnli"
        task_version = "1.3"
        prompt_version = "0.3"
        num_fewshot = {json.dumps(payload)}
    '''), encoding="utf-8")
    with pytest.raises(ThresholdsError) as info:
        load_thresholds(path, "evil", {"jnli-1.3-0.3": ("acc",)})
    assert "num_fewshot" in str(info.value) and str(path) in str(info.value)
    assert not marker.exists()
