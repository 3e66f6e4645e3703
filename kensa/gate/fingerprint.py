"""What a score depends on besides the model's quality: the environment a threshold entry records.

:func:`environment` is the fingerprint (backend, torch and transformers versions, dtype, device
class, quantization). Scores move when any of them changes (no upper bound is known for a backend,
CUDA or transformers change: docs/gate.md, "When a comparison is refused"), so :func:`incomparable`
names the differences that make a comparison meaningless.

A question-generation task's round trip (``roundtrip_f1``) is answered by a QA model: its identity
(:func:`qa_model_identity`, ``self`` when the evaluated model answers its own questions) joins the
fingerprint of every task that has a round trip (:func:`with_qa_model`), so a run whose round trip
another QA model answered is ``incomparable`` with the baseline, naming both, never a failure.
Without ``--qa-model`` the round trip is the model grading itself: reported, not gated (:func:`gated_metrics`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from kensa.backends.identity import BACKEND, minor

# The fields whose difference makes two runs incomparable; versions are compared at minor level.
COMPARED = ("backend", "device", "dtype", "quantization", "torch", "transformers", "decoding")
# Recorded only by the backends that have them (vLLM's version, a server's model): compared whenever
# either side has one, so an HF baseline's entries keep their shape.
OPTIONAL = ("backend_version", "served_model", "qa_model")
ROUND_TRIP_METRICS = ("roundtrip_f1", "roundtrip_em")
SELF_QA = "self"
"""The round trip's QA model when there is no ``--qa-model``: the evaluated model answers its own questions."""


def environment(info: Mapping[str, Any]) -> dict[str, str]:
    """The fingerprint of a loaded model's run, from the backend's ``info``."""
    libs = info.get("libraries", {})
    device = str(info.get("device") or "unknown")
    return {
        "backend": str(info.get("backend", BACKEND)),
        "device": "cuda" if device.startswith("cuda") else device,
        "dtype": str(info.get("dtype") or "unknown"),
        "quantization": str(info.get("quantization") or "none"),
        "torch": str(libs.get("torch", "unknown")),
        "transformers": str(libs.get("transformers", "unknown")),
        "batch_size": str(info.get("batch_size", "")),
        # Where the model ran: latency is only compared on the same hardware and thread count (scores are not).
        "hardware": str(info.get("hardware") or "unknown"),
        "threads": str(info.get("torch_threads", "")),
        # Seq2seq decoding settings (beams, penalties, bad words); absent for causal models, as in older baselines.
        **({"decoding": json.dumps(info["decoding"], sort_keys=True, ensure_ascii=False)}
           if info.get("decoding") else {}),
        **{key: str(info[key]) for key in OPTIONAL if info.get(key)},
    }


def incomparable(baseline: Mapping[str, str], run: Mapping[str, str]) -> list[str]:
    """Human-readable differences that make a run incomparable with a baseline (empty: comparable)."""
    out = []
    optional = [k for k in OPTIONAL if k in baseline or k in run]
    for key in (*COMPARED, *optional):
        a, b = str(baseline.get(key, "unknown")), str(run.get(key, "unknown"))
        if key in ("torch", "transformers", "backend_version"):
            if minor(a) != minor(b):
                out.append(f"{key} {a} -> {b}")
        elif a != b:
            out.append(f"{key} {a} -> {b}")
    return out


def qa_model_identity(qa_lm: Any) -> str:
    """Who answered the round trip: ``self``, or the QA model's name with its weights' hash (or revision)."""
    if qa_lm is None:
        return SELF_QA
    identity = dict(getattr(qa_lm, "info", {}).get("identity", {}))
    what = identity.get("weights_sha256") or identity.get("commit") or identity.get("revision") or ""
    return f"{qa_lm.name}@{what[:16]}" if what else str(qa_lm.name)


def has_round_trip(metrics: Sequence[str]) -> bool:
    return any(m in ROUND_TRIP_METRICS for m in metrics)


def gated_metrics(metrics: Sequence[str], qa_lm: Any) -> tuple[str, ...]:
    """The metrics a run gates: a round trip only when a separate QA model answered it."""
    return tuple(m for m in metrics if qa_lm is not None or m not in ROUND_TRIP_METRICS)


def with_qa_model(env: Mapping[str, str], metrics: Sequence[str], qa_lm: Any) -> dict[str, str]:
    """``env`` plus the round trip's QA model, for a task whose metrics have a round trip."""
    return {**env, "qa_model": qa_model_identity(qa_lm)} if has_round_trip(metrics) else dict(env)
