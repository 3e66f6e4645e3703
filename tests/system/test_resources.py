"""Resources: out-of-memory during generation halves the batch and changes no answer; a full disk while
writing results gives a clear error and keeps the previous files."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys

import pytest

from kensa.backends.contract import GenerationRequest
from tests.helpers import REPO, load_tiny

torch = pytest.importorskip("torch")

CONTEXTS = ["質問：日本の首都は？\n回答：", "東京", "ユーザー: こんにちは<NL>システム: ", "以下は指示です。",
            "山梨県の県庁所在地は", "問題：1+1は？"]


class OutOfMemoryAbove:
    """Wraps a model: a forward pass over more than ``rows`` rows raises as CUDA does, in the prefill
    (``when="prefill"``) or only in later decoding steps (``when="decode"``)."""

    def __init__(self, model, rows: int, when: str):
        self.model, self.rows, self.when, self.sizes = model, rows, when, []

    def __call__(self, **kwargs):
        size = kwargs["input_ids"].shape[0]
        step = "decode" if kwargs.get("past_key_values") is not None else "prefill"
        self.sizes.append((step, size))
        if size > self.rows and step == self.when:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.model(**kwargs)

    def __getattr__(self, name):
        return getattr(self.model, name)


@pytest.mark.parametrize("when", ["prefill", "decode"])
def test_out_of_memory_in_generation_halves_the_batch_and_changes_no_answer(when):
    lm = load_tiny("tiny-llama", "batch_size=auto")
    try:
        requests = [GenerationRequest(c, ("の",), budget) for c in CONTEXTS for budget in (4, 12)]
        lm.batch_size = 1
        alone = lm.generate_until(requests)
        lm.batch_size = "auto"
        real = lm.model
        lm.model = wrapped = OutOfMemoryAbove(real, rows=3, when=when)
        together = lm.generate_until(requests)
        lm.model = real
    finally:
        lm.close()
    assert [(r.text, r.stop_reason, r.generated_tokens) for r in together] == \
        [(r.text, r.stop_reason, r.generated_tokens) for r in alone]
    prefills = [size for step, size in wrapped.sizes if step == "prefill"]
    assert prefills[:3] == [12, 6, 3] and max(prefills[3:]) <= 3  # halved twice, then kept for the rest


# -- a full disk -----------------------------------------------------------------------------------

def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def _suite(results, limit: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1", "KENSA_RESPONSE_CACHE": "off"}
    cmd = [sys.executable, "-m", "pytest", "suites/jglue", "-p", "no:cacheprovider", "--model", "tiny", "-k",
           "jcommonsenseqa-1.1-0.3", "--results-dir", str(results), "-q"]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
                          preexec_fn=_limit_file_size(limit) if limit else None)


def test_a_full_disk_gives_a_clear_error_and_keeps_the_previous_files(tmp_path, tiny_neox):
    results = tmp_path / "results"
    first = _suite(results)
    assert first.returncode == 0, first.stdout[-3000:]
    before = {p: p.read_bytes() for p in results.rglob("*") if p.is_file()}
    assert any(p.name.startswith("samples_") for p in before) and any(p.name == "results.json" for p in before)

    full = _suite(results, limit=2048)  # every results file of this run is larger than 2 KiB
    out = full.stdout + full.stderr
    assert full.returncode != 0, out[-3000:]
    assert "kensa: could not write" in out and "File too large" in out and "the previous file" in out
    after = {p: p.read_bytes() for p in results.rglob("*") if p.is_file()}
    assert after == before  # nothing half-written, nothing lost, no temporary file left behind
