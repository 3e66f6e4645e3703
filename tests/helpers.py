"""Helpers shared by kensa's self-tests (importable; fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def generated(text: str, prompt_tokens: int = 0, reason: str = "stop"):
    """What a fake backend's ``generate_until`` returns for ``text`` (the backend contract's result)."""
    from kensa.backends.contract import GenerationResult

    return GenerationResult(text=text, stop_reason=reason, prompt_tokens=prompt_tokens, generated_tokens=len(text))


REQUIRE_VLLM = "KENSA_REQUIRE_VLLM"


def skip_unless_required(reason: str) -> None:
    """Skip with ``reason``, or fail with it where ``KENSA_REQUIRE_VLLM=1`` (set by CI, which installs vLLM): a
    promised component that is missing must not turn a run green by skipping."""
    import os

    import pytest

    if os.environ.get(REQUIRE_VLLM, "") not in ("", "0"):
        pytest.fail(f"{reason} ({REQUIRE_VLLM}={os.environ[REQUIRE_VLLM]}: vLLM and the served-model tests are "
                    "required here; `make vllm` installs vLLM)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def vllm_or_skip() -> None:
    """The vLLM and served-model tests' precondition: a Python with vllm (:func:`kensa.backends.vllm.vllm_python`)."""
    from kensa.backends.vllm import vllm_python
    from kensa.errors import ModelLoadError

    try:
        vllm_python()
    except ModelLoadError as exc:
        skip_unless_required(f"vLLM is not installed here: {exc}")


def load_tiny(name: str = "tiny", args: str = ""):
    """Load a tiny model on CPU through the same path as ``--model NAME --model-args ARGS``."""
    from kensa.backends.args import parse_model_args
    from kensa.models import load_model, resolve_model

    return load_model(resolve_model(name, parse_model_args(args)), "cpu")


# Shared by the gate's unit tests: one baseline, two task ids, hashes and an environment fingerprint.
GATE_BASELINE = "org-model"
GATE_TID = "jcommonsenseqa-1.1-0.3"
GATE_TID2 = "jcommonsenseqa-1.1-0.2"
GATE_KNOWN = {GATE_TID: ("acc", "acc_norm"), GATE_TID2: ("acc", "acc_norm")}
GATE_SHA = "a" * 64
GATE_FEW = "b" * 64
GATE_ENV = {"backend": "hf", "device": "cpu", "dtype": "float32", "quantization": "none", "torch": "2.13.0+cpu",
            "transformers": "5.23.0", "batch_size": "4"}


def tiered(variants) -> list:
    """``variants`` as pytest params: the first prompt version of each task runs in the default tier (``make test``,
    CI); the task's other versions are marked ``slow`` (``make test-all``). A task's versions share its loading,
    scoring and backend code and differ only in the template, which the prompt snapshots pin."""
    import pytest

    seen, params = set(), []
    for v in variants:
        key = (v.task.name, v.task.version)
        params.append(pytest.param(v, id=v.task_id, marks=(pytest.mark.slow,) if key in seen else ()))
        seen.add(key)
    return params


def crosscheck_tasks():
    """Every registered task for the peer cross-checks and the packed-scoring equivalence, with one quiz category
    (アニメ) standing for the five: the quiz categories share their prompts and code and differ only in their
    questions, and all five would add minutes of generation to these checks."""
    from kensa.tasks import all_tasks

    return [t for t in all_tasks() if t.suite != "quiz" or "_anime_" in t.name]
