"""Two builds of a trained tiny model compared by what they score, never by their bytes.

A rebuild on another CPU rounds differently, so its weights differ from the shipped ones in the last bits;
what must agree is what the model learned. Both models score the same examples of the frozen training
corpus (every ``stride``-th: the fixture prompts with their gold continuations), teacher-forced exactly as
training encoded them: the continuation's log-likelihood per token, and whether greedy decoding would write
the whole continuation (``exact``: the model reproduces what it memorised, like an accuracy). Two builds
agree when the mean per-token log-likelihoods and the exact rates differ by at most :data:`TOLERANCE`.

The tolerances were measured: an AVX-512 build of each model against the shipped AVX2 one differs by
about a tenth of them or less, a damaged copy (``python -m kensa damage``) by far more (see
``docs/tiny-models.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOLERANCE = {"logprob_per_token": 0.05, "exact": 0.03}
"""Largest allowed differences between two builds' mean log-likelihood per continuation token (nats) and
their rates of exactly reproduced continuations."""
STRIDE = 10


@dataclass(frozen=True)
class Scores:
    examples: int
    tokens: int
    logprob_per_token: float
    exact: float
    per_example: tuple[float, ...]


@dataclass(frozen=True)
class Comparison:
    shipped: Scores
    rebuilt: Scores
    max_example_delta: float
    """The largest difference in one example's log-likelihood per token: where the builds differ most."""

    def deltas(self) -> dict[str, float]:
        return {m: abs(getattr(self.rebuilt, m) - getattr(self.shipped, m)) for m in TOLERANCE}

    @property
    def agree(self) -> bool:
        return all(d <= TOLERANCE[m] for m, d in self.deltas().items())

    def lines(self, names: tuple[str, str] = ("shipped", "rebuilt")) -> list[str]:
        width = max(len(n) for n in names)
        out = [f"{'':{width}}  examples  tokens  logprob/token   exact"]
        for label, s in zip(names, (self.shipped, self.rebuilt)):
            out.append(f"{label:{width}}  {s.examples:8}  {s.tokens:6}  {s.logprob_per_token:13.5f}  {s.exact:6.4f}")
        d = self.deltas()
        out.append(f"{'|delta|':{width}}  {'':8}  {'':6}  {d['logprob_per_token']:13.5f}  {d['exact']:6.4f}"
                   f"   (tolerance {TOLERANCE['logprob_per_token']} / {TOLERANCE['exact']}; largest per-example "
                   f"delta {self.max_example_delta:.5f})")
        return out


def score(model_dir: Path, kind: str, stride: int = STRIDE) -> Scores:
    """Teacher-forced scores of ``model_dir`` on every ``stride``-th example of the frozen corpus of ``kind``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    from kensa.backends.hf_common import quiet_transformers
    from kensa.tiny.build import t5_tokenizer
    from kensa.tiny.train import encode, encode_seq2seq
    from kensa.tiny.training_corpus import training_examples

    quiet_transformers()
    examples = list(training_examples(kind))[::stride]
    tok = AutoTokenizer.from_pretrained(model_dir)
    if kind == "seq2seq":
        model = AutoModelForSeq2SeqLM.from_pretrained(model_dir)
        pairs = encode_seq2seq(t5_tokenizer(tok), examples, model.config.n_positions)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        pairs = encode(tok, examples, model.config.max_position_embeddings)
    model.eval()
    per_example, exact, tokens, total = [], 0, 0, 0.0
    with torch.no_grad():
        for first, second in pairs:
            logprobs, targets = _continuation(model, kind, first, second)
            picked = logprobs.gather(1, targets[:, None])[:, 0]
            per_example.append(float(picked.mean()))
            exact += bool((logprobs.argmax(-1) == targets).all())
            tokens += len(targets)
            total += float(picked.sum())
    return Scores(len(pairs), tokens, total / tokens, exact / len(pairs), tuple(per_example))


def _continuation(model: Any, kind: str, first: Any, second: Any) -> tuple[Any, Any]:
    """The log-probabilities at each continuation position and the continuation's tokens."""
    import torch

    if kind == "seq2seq":  # (source ids, target ids + EOS)
        out = model(input_ids=torch.tensor([first]), labels=torch.tensor([second]))
        return torch.log_softmax(out.logits[0].float(), -1), torch.tensor(second)
    whole, n = first, second  # (context + continuation ids, continuation length)
    logits = model(input_ids=torch.tensor([whole[:-1]])).logits[0, -n:]
    return torch.log_softmax(logits.float(), -1), torch.tensor(whole[-n:])


def compare(shipped: Path, rebuilt: Path, kind: str, stride: int = STRIDE) -> Comparison:
    a, b = score(shipped, kind, stride), score(rebuilt, kind, stride)
    worst = max((abs(x - y) for x, y in zip(a.per_example, b.per_example)), default=0.0)
    return Comparison(a, b, worst)
