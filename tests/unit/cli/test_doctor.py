"""``python -m kensa doctor``: library versions against the pins, and which baselines a run here could use."""

from __future__ import annotations

import textwrap

from kensa.cli.doctor import installed, pins, report
from kensa.cli.main import main
from tests.helpers import REPO


def thresholds(tmp_path, name: str, torch: str, transformers: str, device: str = "cpu"):
    folder = tmp_path / "thresholds"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.toml").write_text(textwrap.dedent(f'''
        schema_version = 1
        baseline = "{name}"
        [environment]
        backend = "hf"
        device = "{device}"
        dtype = "bfloat16"
        quantization = "none"
        torch = "{torch}"
        transformers = "{transformers}"
        [entries."jnli-1.3-0.3".environment]
        backend = "hf"
        device = "{device}"
        dtype = "bfloat16"
        quantization = "none"
        torch = "{torch}"
        transformers = "{transformers}"
    '''), encoding="utf-8")
    return folder


def test_a_baseline_from_other_library_versions_is_named_incomparable_with_the_reason(tmp_path):
    have = installed(("torch", "transformers"))
    folder = thresholds(tmp_path, "same", have["torch"], have["transformers"])
    thresholds(tmp_path, "older", "2.1.0", "4.40.0")
    thresholds(tmp_path, "gpu", have["torch"], have["transformers"], device="cuda")
    lines, ok = report(folder, REPO / "constraints.txt", device="cpu")
    text = "\n".join(lines)
    assert not ok
    older = text[text.index("  older"):]
    assert "incomparable here: torch 2.1.0 -> " in older and "transformers 4.40.0 -> " in older
    assert "incomparable here: device cuda -> cpu" in text[text.index("  gpu"):]
    same = text[text.index("  same"):]
    assert same.splitlines()[1].endswith("comparable here (library versions and device class match)")
    assert "a run must also use backend hf, dtype bfloat16, quantization none" in same


def test_versions_are_checked_against_the_pins(tmp_path):
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("transformers==0.0.1\nrouge_score==0.1.2\n# comment==1\n", encoding="utf-8")
    (tmp_path / "Makefile").write_text("TORCH ?= torch==2.13.0\n", encoding="utf-8")
    assert pins(constraints) == {"transformers": "0.0.1", "rouge-score": "0.1.2", "torch": "2.13.0"}
    lines, ok = report(tmp_path / "none", constraints, device="cpu")
    assert not ok
    assert any(line.split()[0] == "transformers" and line.endswith("DIFFERS from the pin") for line in lines)
    assert any(line.split()[0] == "torch" and line.endswith("ok") for line in lines)  # 2.13.0+cpu is 2.13.0


def test_the_repository_baselines_match_this_environment(capsys):
    """The committed tiny baselines were measured with the pinned versions CI installs."""
    assert main(["doctor", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "kensa doctor: everything matches" in out and "tiny-trained" in out


def test_an_unreadable_thresholds_file_is_reported(tmp_path):
    folder = tmp_path / "thresholds"
    folder.mkdir()
    (folder / "broken.toml").write_text("entries = [", encoding="utf-8")
    lines, ok = report(folder, REPO / "constraints.txt", device="cpu")
    assert not ok and any("broken: cannot be read" in line or "broken.toml: cannot be read" in line for line in lines)
