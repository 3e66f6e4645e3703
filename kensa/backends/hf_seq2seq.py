"""Hugging Face encoder-decoder backend (``AutoModelForSeq2SeqLM``: T5, mT5, BART).

* The source is encoded with the tokenizer's special tokens (T5 appends ``</s>``), as fine-tuning
  encodes it, and cut from the right to the model's context length (the tokenizer's default side).
* A log-likelihood request scores ``continuation`` as the decoder's target given ``context`` as the
  source: the sum of the target tokens' log-probabilities, no EOS appended (lm-eval scores
  seq2seq targets the same way), so a reference answer is scored as it is written.
* Generation runs ``model.generate`` with the model arguments ``num_beams``, ``repetition_penalty``,
  ``no_repeat_ngram_size`` and ``bad_words`` (every token sequence that spells a word is blocked,
  :mod:`kensa.backends.bad_words`); it ends at EOS, at a stop string (greedy rows stop there; beam
  search finishes and is cut) or at the request's budget, and every result says which.

Loading, batching and ``batch_size=auto`` are those of the causal backend (:mod:`kensa.backends.hf_common`).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

from kensa.backends.args import ModelSpec
from kensa.backends.bad_words import bad_words_ids
from kensa.backends.contract import (
    GenerationRequest,
    GenerationResult,
    LoglikelihoodResult,
    Progress,
    share_seconds,
)
from kensa.backends.hf_common import (
    Batching,
    context_length,
    free_memory,
    load_pretrained,
    loading,
    model_info,
    tokenizer_source,
)
from kensa.backends.stopping import StopChecker, first_stop
from kensa.backends.tokenized import TokenizedModel
from kensa.backends.tokenizers import load_tokenizer

BACKEND = "hf-seq2seq"


class HFSeq2SeqLM(TokenizedModel, Batching):
    """One loaded encoder-decoder model and its tokenizer. Free it with :meth:`close`."""

    kind = "seq2seq"

    def __init__(self, model: Any, tokenizer: Any, *, spec: ModelSpec, max_length: int, info: dict[str, Any],
                 blocked: list[list[int]] | None = None):
        self.spec = spec
        self.name = spec.name
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = spec.args.batch_size
        self.info = info
        self.bad_words = tuple(spec.args.bad_words)
        """Words the output must not contain; :func:`kensa.backends.bad_words.count_violations` checks them."""
        self.blocked = blocked or []
        self._byte_pieces: frozenset[int] | None = None

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, spec: ModelSpec, device: str = "auto", *, source: str | None = None,
             adapter: str | None = None) -> HFSeq2SeqLM:
        return loading(spec, lambda: cls._load(spec, device, source or spec.source, adapter))

    @classmethod
    def _load(cls, spec: ModelSpec, device: str, source: str, adapter_dir: str | None) -> HFSeq2SeqLM:
        from transformers import AutoModelForSeq2SeqLM

        args = spec.args
        model, device, device_map = load_pretrained(AutoModelForSeq2SeqLM, spec, device, source, adapter_dir)
        tok_source = tokenizer_source(spec, source)
        tokenizer = load_tokenizer(tok_source, revision=args.revision, use_fast=args.use_fast,
                                   trust_remote_code=args.trust_remote_code)
        blocked = bad_words_ids(tokenizer, args.bad_words) if args.bad_words else []
        max_length = context_length(model.config, tokenizer, args.max_length)
        info = model_info(model, tokenizer, spec=spec, backend=BACKEND, source=source, tok_source=tok_source,
                          adapter_dir=adapter_dir, device=device, device_map=device_map, max_length=max_length)
        # What a generation depends on besides the weights: part of the response cache's key and the gate's
        # environment, so a run with other decoding settings is never served or compared as the same.
        info["decoding"] = {"num_beams": args.num_beams, "repetition_penalty": args.repetition_penalty,
                            "no_repeat_ngram_size": args.no_repeat_ngram_size, "bad_words": list(args.bad_words)}
        info["bad_words_sequences"] = len(blocked)
        return cls(model, tokenizer, spec=spec, max_length=max_length, info=info, blocked=blocked)

    def close(self) -> None:
        self.model = None
        free_memory()

    # -- tokens ----------------------------------------------------------------------------
    @property
    def input_device(self):
        return self.model.get_input_embeddings().weight.device

    def source_ids(self, text: str) -> list[int]:
        """The encoder's input: special tokens as the tokenizer adds them, cut to the context length."""
        ids = self.tokenizer(text, add_special_tokens=True)["input_ids"]
        if len(ids) <= self.max_length:
            return list(ids)
        if getattr(self.tokenizer, "truncation_side", "right") == "left":
            return list(ids[-self.max_length:])
        return list(ids[: self.max_length - 1]) + [ids[-1]]  # keep the closing special token

    def generation_ids(self, request: GenerationRequest) -> list[int]:
        return self.source_ids(request.context)

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], int]:
        """Source then target ids, and the target's length (which says where the source ends): the
        response cache's key for a log-likelihood request."""
        target = self.tok_encode(continuation)
        if not target:
            raise ValueError(f"continuation {continuation!r} encodes to no tokens")
        return self.source_ids(context) + target, len(target)

    def _pad_id(self) -> int:
        tok = self.tokenizer
        if tok.pad_token_id is not None:
            return tok.pad_token_id
        return self.model.config.pad_token_id if self.model.config.pad_token_id is not None else 0

    # -- scoring ---------------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[tuple[str, str]],
                      progress: Progress | None = None) -> list[LoglikelihoodResult]:
        import torch

        encoded = [self.encode_pair(c, x) for c, x in requests]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
        results: list[LoglikelihoodResult | None] = [None] * len(encoded)
        pad_id = self._pad_id()

        batches = itertools.count()

        def run(batch: list[int]) -> None:
            start = time.perf_counter()
            number = next(batches)
            sources = [encoded[i][0][: len(encoded[i][0]) - encoded[i][1]] for i in batch]
            targets = [encoded[i][0][-encoded[i][1]:] for i in batch]
            src_w, tgt_w = max(map(len, sources)), max(map(len, targets))
            ids = torch.full((len(batch), src_w), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), src_w), dtype=torch.long)
            labels = torch.full((len(batch), tgt_w), -100, dtype=torch.long)
            for row, (s, t) in enumerate(zip(sources, targets)):
                ids[row, : len(s)] = torch.tensor(s)
                mask[row, : len(s)] = 1
                labels[row, : len(t)] = torch.tensor(t)
            dev = self.input_device
            logits = self.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), labels=labels.to(dev)).logits
            seconds = share_seconds(time.perf_counter() - start, [len(t) for t in targets])
            for row, i in enumerate(batch):
                n = len(targets[row])
                logprobs = torch.log_softmax(logits[row, :n].float(), dim=-1)
                gold = torch.tensor(targets[row], device=logprobs.device)
                picked = logprobs.gather(1, gold[:, None]).squeeze(1)
                results[i] = LoglikelihoodResult(logprob=float(picked.sum()),
                                                 is_greedy=bool((logprobs.argmax(-1) == gold).all()),
                                                 num_tokens=n, seconds=seconds[row], batch=number)
            if progress:
                progress(sum(r is not None for r in results), len(results))

        with torch.inference_mode():
            self._batches(order, run)
        return results  # type: ignore[return-value]

    # -- generation ------------------------------------------------------------------------
    def generate_until(self, requests: Sequence[GenerationRequest],
                       progress: Progress | None = None) -> list[GenerationResult]:
        """Each request's output, cut at its first stop string. Greedy rows share batches whatever their
        budgets (a later step never changes an earlier token); beam search groups rows by budget, since
        the budget changes which beams finish."""
        import torch

        results: list[GenerationResult | None] = [None] * len(requests)
        encoded = [self.generation_ids(r) for r in requests]
        beams = self.spec.args.num_beams
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((tuple(r.until), r.max_new_tokens if beams > 1 else 0), []).append(i)

        batches = itertools.count()

        def run(batch: list[int], until: tuple[str, ...]) -> None:
            number = next(batches)
            outcomes = self._generate([encoded[i] for i in batch], [requests[i].max_new_tokens for i in batch], until)
            for i, (tokens, reason, seconds) in zip(batch, outcomes, strict=True):
                results[i] = GenerationResult(text=self._text(tokens, until), stop_reason=reason,
                                              prompt_tokens=len(encoded[i]), generated_tokens=len(tokens),
                                              seconds=seconds, batch=number)
            if progress:
                progress(sum(r is not None for r in results), len(requests))

        with torch.inference_mode():
            for (until, _), members in groups.items():
                members = sorted(members, key=lambda i: -len(encoded[i]))
                self._batches(members, lambda batch, until=until: run(batch, until))
        return results  # type: ignore[return-value]

    def _text(self, tokens: list[int], until: tuple[str, ...]) -> str:
        text = self.tok_decode(tokens)
        for stop in until:
            text = text.split(stop)[0]
        return text

    def _generate(self, sources: list[list[int]], budgets: list[int],
                  until: tuple[str, ...]) -> list[tuple[list[int], str, float]]:
        """(generated tokens up to the stop, EOS excluded; stop reason; model seconds) per row."""
        import torch
        from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

        tok, args = self.tokenizer, self.spec.args
        eos, pad_id = tok.eos_token_id, self._pad_id()
        width = max(map(len, sources))
        ids = torch.full((len(sources), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(sources), width), dtype=torch.long)
        for row, s in enumerate(sources):
            ids[row, : len(s)] = torch.tensor(s)
            mask[row, : len(s)] = 1
        greedy = args.num_beams == 1
        checkers = [StopChecker(until, tok.decode, self.byte_pieces) for _ in sources]

        class StopPerRow(StoppingCriteria):
            """A greedy row is done at its own budget or stop string (decoder ids start with the start token)."""

            def __call__(self, input_ids, scores, **kwargs):
                done = []
                for row, checker in enumerate(checkers):
                    new = input_ids[row, 1:].tolist()
                    done.append(len(new) >= budgets[row] or bool(new) and checker.hit(new))
                return torch.tensor(done, device=input_ids.device)

        config = GenerationConfig(
            max_new_tokens=max(budgets), do_sample=False, num_beams=args.num_beams,
            repetition_penalty=args.repetition_penalty, no_repeat_ngram_size=args.no_repeat_ngram_size,
            bad_words_ids=self.blocked or None, eos_token_id=eos, pad_token_id=pad_id,
            decoder_start_token_id=self.model.config.decoder_start_token_id)
        stopping = StoppingCriteriaList([StopPerRow()]) if greedy and (until or len(set(budgets)) > 1) else None
        start = time.perf_counter()
        out = self.model.generate(input_ids=ids.to(self.input_device), attention_mask=mask.to(self.input_device),
                                  generation_config=config, stopping_criteria=stopping)
        elapsed = time.perf_counter() - start
        rows = []
        for row in range(len(sources)):
            new = out[row, 1:].tolist()  # drop the decoder start token
            reason = "length"
            if eos in new:
                new, reason = new[: new.index(eos)], "eos"
            if len(new) > budgets[row]:
                new, reason = new[: budgets[row]], "length"
            stop_at = first_stop(new, until, tok.decode, self.byte_pieces) if until else None
            if stop_at is not None:
                new, reason = new[:stop_at], "stop"
            rows.append((new, reason))
        seconds = share_seconds(elapsed, [len(new) + 1 for new, _ in rows])
        return [(new, reason, s) for (new, reason), s in zip(rows, seconds, strict=True)]
