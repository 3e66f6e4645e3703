"""Hugging Face causal-LM backend with the jp-stable harness's semantics.

* Context and continuation are tokenized separately, with no special tokens; an empty
  context becomes ``[eos]`` (XWinograd scores whole sentences that way).
* The input is left-truncated to the model's context length.
* A continuation's score is the sum of its tokens' log-probabilities.
* Generation is greedy, stops at stop strings or EOS, and is cut at the first stop string.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Sequence
from typing import Any

from kensa.backends.args import ModelSpec
from kensa.backends.contract import (
    GenerationRequest,
    GenerationResult,
    LoglikelihoodResult,
    Progress,
    share_seconds,
)
from kensa.backends.decoding import DecodeStats, RowOutcome, greedy_decode
from kensa.backends.hf_common import (
    AUTO_BATCH_START,
    Batching,
    context_length,
    free_memory,
    load_pretrained,
    loading,
    model_info,
    tokenizer_source,
)
from kensa.backends.identity import BACKEND
from kensa.backends.stopping import StopChecker, first_stop
from kensa.backends.tokenized import TokenizedModel
from kensa.backends.tokenizers import load_tokenizer
from kensa.errors import OptionError

SEQ2SEQ_ONLY = ("num_beams", "repetition_penalty", "no_repeat_ngram_size", "bad_words")
"""Decoding settings only the seq2seq backend honours; a causal model refuses them rather than ignore them."""


class HFCausalLM(TokenizedModel, Batching):
    """One loaded model and tokenizer. Free it with :meth:`close` before loading the next."""

    kind = "causal"

    def __init__(self, model: Any, tokenizer: Any, *, spec: ModelSpec, max_length: int, batch_size: int,
                 info: dict[str, Any]):
        self.spec = spec
        self.name = spec.name
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.info = info
        self._packing: str | None = None  # the mask format, decided on first use ("" = no packing)
        self._keeps_logits = False
        self._auto_size = AUTO_BATCH_START
        self.decode_stats = DecodeStats()
        self._byte_pieces: frozenset[int] | None = None

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, spec: ModelSpec, device: str = "auto", *, source: str | None = None,
             adapter: str | None = None) -> HFCausalLM:
        """Load ``source`` (default ``spec.source``: a directory or a Hub id) with ``adapter`` (a
        peft adapter directory or Hub id) as ``spec.args`` say."""
        return loading(spec, lambda: cls._load(spec, device, source or spec.source, adapter))

    @classmethod
    def _load(cls, spec: ModelSpec, device: str, source: str, adapter_dir: str | None) -> HFCausalLM:
        from transformers import AutoModelForCausalLM

        args = spec.args
        refused = [k for k in SEQ2SEQ_ONLY if getattr(args, k) != getattr(type(args)(), k)]
        if refused:
            raise OptionError("--model-args", f"{', '.join(refused)}: only seq2seq models (T5) take these; "
                                              f"{spec.name!r} is a causal model")
        model, device, device_map = load_pretrained(AutoModelForCausalLM, spec, device, source, adapter_dir)
        tok_source = tokenizer_source(spec, source)
        tokenizer = load_tokenizer(tok_source, revision=args.revision, use_fast=args.use_fast,
                                   trust_remote_code=args.trust_remote_code)
        max_length = context_length(model.config, tokenizer, args.max_length)
        info = model_info(model, tokenizer, spec=spec, backend=BACKEND, source=source, tok_source=tok_source,
                          adapter_dir=adapter_dir, device=device, device_map=device_map, max_length=max_length)
        return cls(model, tokenizer, spec=spec, max_length=max_length, batch_size=args.batch_size, info=info)

    def close(self) -> None:
        """Drop the weights and give the memory back, so the next model fits."""

        self.model = None
        free_memory()

    # -- scoring ---------------------------------------------------------------------------
    @property
    def input_device(self):
        return self.model.get_input_embeddings().weight.device

    def loglikelihood(self, requests: Sequence[tuple[str, str]],
                      progress: Progress | None = None) -> list[LoglikelihoodResult]:
        """Score every request; requests that share their context are packed into one row
        (:mod:`kensa.backends.packing`) when the attention implementation takes a custom mask."""
        encoded = [self.encode_pair(c, x) for c, x in requests]
        if self._mask_format() is None:
            return self._score_rows(encoded, progress)
        return self._score_packed(encoded, progress)

    def loglikelihood_simple(self, requests: Sequence[tuple[str, str]],
                             progress: Progress | None = None) -> list[LoglikelihoodResult]:
        """One row per distinct request, as the harness scores: the reference for the packed path."""
        return self._score_rows([self.encode_pair(c, x) for c, x in requests], progress)

    def _mask_format(self) -> str | None:
        """How a custom 4D mask is passed: ``bool`` (SDPA), ``additive`` (eager), or None when the
        model cannot take one (flash attention, remote code without ``position_ids``)."""
        if self._packing is not None:
            return self._packing or None
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        implementation = getattr(base.config, "_attn_implementation", None)
        params = inspect.signature(base.forward).parameters
        fmt = {"sdpa": "bool", "eager": "additive"}.get(implementation or "")
        self._packing = fmt if fmt and "position_ids" in params and "attention_mask" in params else ""
        self._keeps_logits = "logits_to_keep" in params
        return self._packing or None

    def _score_rows(self, encoded: Sequence[tuple[list[int], int]],
                    progress: Progress | None) -> list[LoglikelihoodResult]:
        import torch

        # One row per distinct *input* (context + continuation minus its last token): the choices of
        # a doc that are one token long all read the same row, as lm-eval's one-token grouping does.
        # The longest go first so padding stays small and an out-of-memory error shows up at once.
        rows: dict[tuple[int, ...], list[tuple[int, int, int]]] = {}
        for i, (whole, n) in enumerate(encoded):
            rows.setdefault(tuple(whole[:-1]), []).append((i, n, whole[-1]))
        order = sorted(rows, key=lambda key: -len(key))
        results: list[LoglikelihoodResult | None] = [None] * len(encoded)
        done = 0

        batches = itertools.count()

        def run(batch):
            nonlocal done
            start = self._clock()
            width = max(len(x) for x in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            for row, x in enumerate(batch):
                ids[row, : len(x)] = torch.tensor(x)
            # Right padding and no mask, as lm-eval: under causal attention a pad after a token
            # never reaches it.
            logits = self.model(input_ids=ids.to(self.input_device)).logits
            scored = {}
            for row, inputs in enumerate(batch):
                length = len(inputs)
                for i, n, last in rows[inputs]:
                    # Only the continuation's positions, in float32 for a stable log-softmax.
                    logprobs = torch.log_softmax(logits[row, length - n: length].float(), dim=-1)
                    targets = torch.tensor([*inputs[length - n + 1:], last], device=logprobs.device)
                    picked = logprobs.gather(1, targets[:, None]).squeeze(1)
                    scored[i] = (float(picked.sum()), bool((logprobs.argmax(-1) == targets).all()), n)
                done += len(rows[inputs])
            self._timed(scored, results, encoded, self._clock() - start, next(batches))
            if progress:
                progress(done, len(encoded))

        with torch.inference_mode():
            self._batches(order, run)
        return results  # type: ignore[return-value]

    def _score_packed(self, encoded: Sequence[tuple[list[int], int]],
                      progress: Progress | None) -> list[LoglikelihoodResult]:
        import torch

        from kensa.backends.packing import build_packs, collate

        packs = build_packs(encoded, max_row=2 * self.max_length)
        results: list[LoglikelihoodResult | None] = [None] * len(encoded)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        additive = self._mask_format() == "additive"
        done = 0

        batches = itertools.count()

        def run(batch):
            nonlocal done
            start = self._clock()
            packed = collate(batch, pad_id, self.input_device)
            mask = packed.attention_mask
            if additive:  # eager attention adds the mask to the scores
                dtype = self.model.dtype
                mask = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
                    ~mask, torch.finfo(dtype).min)
            kwargs = {"logits_to_keep": packed.keep} if self._keeps_logits else {}
            logits = self.model(input_ids=packed.input_ids, attention_mask=mask,
                                position_ids=packed.position_ids, **kwargs).logits
            logits = logits[:, -packed.keep:]
            # Only the scored positions, in float32 for a stable log-softmax.
            logprobs = torch.log_softmax(logits[packed.rows, packed.columns].float(), dim=-1)
            picked = logprobs.gather(1, packed.targets[:, None]).squeeze(1).tolist()
            greedy = (logprobs.argmax(-1) == packed.targets).tolist()
            scored = {}
            for first, n, owners in packed.spans:
                for i in owners:
                    scored[i] = (float(sum(picked[first: first + n])), all(greedy[first: first + n]), n)
                done += len(owners)
            self._timed(scored, results, encoded, self._clock() - start, next(batches))
            if progress:
                progress(done, len(encoded))

        with torch.inference_mode():
            self._batches(packs, run)
        return results  # type: ignore[return-value]

    def _clock(self) -> float:
        """Wall time, after the device has finished what it was given (CUDA runs asynchronously)."""
        import time

        import torch

        if str(self.input_device).startswith("cuda"):
            torch.cuda.synchronize(self.input_device)
        return time.perf_counter()

    @staticmethod
    def _timed(scored: dict[int, tuple[float, bool, int]], results: list, encoded: Sequence[tuple[list[int], int]],
               seconds: float, batch: int) -> None:
        """Results of one batch, its time shared among its requests by their input lengths (what each would
        cost in a row of its own)."""
        order = list(scored)
        shares = share_seconds(seconds, [len(encoded[i][0]) for i in order])
        for i, share in zip(order, shares):
            logprob, greedy, n = scored[i]
            results[i] = LoglikelihoodResult(logprob=logprob, is_greedy=greedy, num_tokens=n, seconds=share,
                                             batch=batch)

    # -- generation ------------------------------------------------------------------------
    def generate_until(self, requests: Sequence[GenerationRequest],
                       progress: Progress | None = None) -> list[GenerationResult]:
        """Greedy continuations, each cut at the first of its stop strings.

        Requests with the same stop strings share batches whatever their budgets: each row stops on
        its own (a stop string, EOS or its own budget) and leaves the batch
        (:mod:`kensa.backends.decoding`), so a row's text is what it would be alone.
        """
        import torch

        tok = self.tokenizer
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        results: list[GenerationResult | None] = [None] * len(requests)
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(tuple(r.until), []).append(i)
        encoded = [self.generation_ids(r) for r in requests]

        batches = itertools.count()

        def run(batch: list[int], until: tuple[str, ...]) -> None:
            width = max(len(encoded[i]) for i in batch)
            budgets = [requests[i].max_new_tokens for i in batch]
            if width + max(budgets) > self.max_length and len(set(budgets)) > 1:
                # The cache would outgrow the model's positions: one budget per batch.
                for budget in sorted(set(budgets), reverse=True):
                    run([i for i in batch if requests[i].max_new_tokens == budget], until)
                return
            checkers = [StopChecker(until, tok.decode, self.byte_pieces) for _ in batch]
            number = next(batches)
            if self._decodes_itself():
                outcomes = greedy_decode(self.model, [encoded[i] for i in batch], budgets, checkers,
                                         eos_id=tok.eos_token_id, pad_id=pad_id, device=self.input_device,
                                         keeps_logits=self._keeps_logits, stats=self.decode_stats)
            else:
                outcomes = self._generate_with_transformers([encoded[i] for i in batch], budgets, checkers, pad_id)
            for i, outcome in zip(batch, outcomes, strict=True):
                text = self.cut_at_stops(outcome.tokens, until)
                results[i] = GenerationResult(
                    text=text, stop_reason=outcome.stop_reason, prompt_tokens=len(encoded[i]),
                    generated_tokens=len(outcome.tokens), seconds=outcome.seconds,
                    first_token_seconds=outcome.first_token_seconds, batch=number)
            if progress:
                progress(sum(r is not None for r in results), len(requests))

        with torch.inference_mode():
            for until, members in groups.items():
                members = sorted(members, key=lambda i: -len(encoded[i]))
                self._batches(members, lambda batch, until=until: run(batch, until))
        return results  # type: ignore[return-value]

    def _decodes_itself(self) -> bool:
        """Whether kensa's own decoding loop can drive the model: it passes position ids and a cache."""
        self._mask_format()  # also learns whether the model takes logits_to_keep
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        params = inspect.signature(base.forward).parameters
        return "position_ids" in params and "past_key_values" in params

    def _generate_with_transformers(self, prompts: list[list[int]], budgets: list[int],
                                    checkers: list[StopChecker], pad_id: int) -> list[RowOutcome]:
        """``model.generate`` for a model kensa's loop cannot drive (no ``position_ids``): the rows stay
        in the batch until the last stops; the batch's time is shared equally."""
        import time

        import torch
        from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

        tok = self.tokenizer
        width = max(len(p) for p in prompts)

        class StopPerRow(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                done = []
                for row, checker in enumerate(checkers):
                    new = input_ids[row, width:].tolist()
                    done.append(len(new) >= budgets[row] or bool(new) and checker.hit(new))
                return torch.tensor(done, device=input_ids.device)

        ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, x in enumerate(prompts):
            ids[row, width - len(x):] = torch.tensor(x)
            mask[row, width - len(x):] = 1
        config = GenerationConfig(max_new_tokens=max(budgets), do_sample=False, num_beams=1,
                                  pad_token_id=pad_id, eos_token_id=tok.eos_token_id)
        start = time.perf_counter()
        out = self.model.generate(input_ids=ids.to(self.input_device), attention_mask=mask.to(self.input_device),
                                  generation_config=config, stopping_criteria=StoppingCriteriaList([StopPerRow()]))
        seconds = (time.perf_counter() - start) / len(prompts)
        outcomes = []
        for row, checker in enumerate(checkers):
            new = out[row, width: width + budgets[row]].tolist()
            eos = tok.eos_token_id in new
            if eos:  # a row that stopped earlier is padded after its stop, maybe with EOS as the pad
                new = new[: new.index(tok.eos_token_id)]
            stop_at = first_stop(new, checker.stops, tok.decode, self.byte_pieces)
            if stop_at is not None:
                new, reason = new[:stop_at], "stop"
            else:
                reason = "eos" if eos else "length"
            outcomes.append(RowOutcome(new, reason, seconds, float("nan")))
        return outcomes
