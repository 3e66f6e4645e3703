"""Helpers shared by kensa's self-tests (importable; fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def load_tiny(name: str = "tiny", args: str = ""):
    """Load a tiny model on CPU through the same path as ``--model NAME --model-args ARGS``."""
    from kensa.models import load_model, resolve_model
    from kensa.models.args import parse_model_args

    return load_model(resolve_model(name, parse_model_args(args)), "cpu")
