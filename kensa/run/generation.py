"""The generation loop: greedy continuations of prepared prompts, scored per doc by the task.

Besides the task's own scores, every generation task gets, per sample, the result's ``stop_reason`` and
token counts and ``unterminated`` (1 when the generation used its whole token budget without EOS or a
stop string: the EOS/padding bug of a fine-tuned model that runs on past its answer), reported as a
share. A model with ``bad_words`` has each output checked for them as strings (``bad_words_found``;
``bad_word_violations`` sums them). A task with a ``pool_text`` counts outputs identical to a pool doc's
text (``copy`` per sample, ``copies`` in all); a task with a ``roundtrip`` has a QA model (the evaluated
model, or ``qa_lm``) answer every generated question from the same context.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from kensa.backends.bad_words import count_violations
from kensa.backends.contract import Backend, GenerationRequest, Progress
from kensa.data import Split
from kensa.errors import KensaError
from kensa.metrics.core import METRICS, aggregate
from kensa.run.records import TaskRun, number_batches_on
from kensa.tasks.base import GenerationTask, TaskVariant
from kensa.tasks.render import prepare_generation

ALWAYS_REPORTED = ("unterminated",)
"""Reported for every generation task (gated where a task lists it in ``metrics``)."""


def evaluate_generation(variant: TaskVariant, lm: Backend, eval_split: Split, pool: Split | None, k: int,
                        limit: float | None = None, progress: Progress | None = None,
                        qa_lm: Backend | None = None, stop: Callable[[TaskRun], bool] | None = None,
                        looks: Sequence[int] = ()) -> TaskRun:
    """Generate for every doc; with ``stop`` and ``looks`` (cumulative doc counts), in looks: after each, ``stop``
    sees the run so far (a prefix of the shuffled order) and returning True ends the task there."""
    start = time.perf_counter()
    task = variant.task
    assert isinstance(task, GenerationTask)
    docs = prepare_generation(variant, eval_split, pool, k, limit, lm)
    ends = [e for e in looks if 0 < e < len(docs)] + [len(docs)] if stop is not None else [len(docs)]
    bad_words = tuple(lm.bad_words)
    copied = _pool_texts(task, pool)
    samples: list[dict[str, Any]] = []
    per_doc: list[dict[str, Any]] = []
    roundtrip: dict[str, Any] | None = None
    done = next_batch = 0
    for end in ends:
        chunk = docs[done:end]
        offset = done
        look_progress = None if progress is None else (
            lambda n, _total, offset=offset: progress(offset + n, len(docs)))
        chunk_samples, chunk_per_doc = _generate(variant, lm, chunk, bad_words, copied, look_progress)
        next_batch = number_batches_on(chunk_samples, next_batch)  # numbered per task across looks
        if task.roundtrip is not None and chunk:
            roundtrip = _round_trip(task, chunk, chunk_samples, chunk_per_doc, qa_lm or lm)
        samples += chunk_samples
        per_doc += chunk_per_doc
        done = end
        run = _task_run(variant, docs[:done], samples, per_doc, eval_split, pool, k, limit, start, bad_words,
                        roundtrip, roundtrip_gated=qa_lm is not None)
        if done < len(docs) and stop is not None and stop(run):
            break
    return run


def _generate(variant: TaskVariant, lm: Backend, docs: list, bad_words: tuple, copied: set[str] | None,
              progress: Progress | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    task = variant.task
    assert isinstance(task, GenerationTask)
    requests = [GenerationRequest(d.prompt, d.until, d.max_new_tokens) for d in docs]
    generations = lm.generate_until(requests, progress) if requests else []
    if len(generations) != len(requests):
        raise KensaError(f"{lm.name} returned {len(generations)} generations for {len(requests)} requests")
    samples, per_doc = [], []
    for d, generated in zip(docs, generations, strict=True):
        text = generated.text
        scores = dict(task.score(text, d.row, lm))
        missing = [m for m in (*task.metrics, *task.reported) if m not in scores and not _derived(m)]
        if missing:
            raise KensaError(f"task {task.name}: score() gave no {missing} for doc {d.doc_id}")
        scores["unterminated"] = 1.0 if generated.stop_reason == "length" else 0.0
        if bad_words:
            found = count_violations(text, bad_words)
            scores["bad_word_violations"] = float(sum(found.values()))
        if copied is not None:
            scores["copies"] = 1.0 if _normalise(text) in copied else 0.0
        # A corpus metric reads each doc's (gold, pred); the sample's ``gold`` stays the list of gold answers.
        per_doc.append({name: value for name, value in scores.items() if not isinstance(value, list)}
                       | ({"gold": scores["gold_value"]} if "gold_value" in scores else {}))
        sample = {
            "task": variant.task_id, "doc_id": d.doc_id, "doc": d.row, "prompt": d.prompt, "until": list(d.until),
            "max_new_tokens": d.max_new_tokens, "generation": text, "gold": d.golds,
            "stop_reason": generated.stop_reason, "prompt_tokens": generated.prompt_tokens,
            "generated_tokens": generated.generated_tokens,
        }
        if bad_words:
            sample["bad_words_found"] = found
        sample.update(scores)
        sample.update(fewshot_ids=d.shot_ids, shots=d.shots)
        # What the answer cost (None when the response cache served it) and how it ended.
        sample.update(seconds=generated.seconds, first_token_seconds=generated.first_token_seconds,
                      generated_tokens=generated.generated_tokens, stop_reason=generated.stop_reason,
                      batches=None if generated.batch is None else [generated.batch])
        samples.append(sample)
    return samples, per_doc


def _task_run(variant: TaskVariant, docs: list, samples: list, per_doc: list, eval_split: Split,
              pool: Split | None, k: int, limit: float | None, start: float, bad_words: tuple,
              roundtrip: dict[str, Any] | None, roundtrip_gated: bool = False) -> TaskRun:
    task = variant.task
    assert isinstance(task, GenerationTask)
    data = {"eval": eval_split.provenance(), "fewshot": pool.provenance() if pool else None}
    if "bleu" in task.metrics:
        from kensa.metrics.bleu_ja import provenance

        data["metrics"] = provenance()
    if roundtrip is not None:
        data["roundtrip"] = dict(roundtrip, gated=roundtrip_gated)  # a model answering its own questions: reported
        if not roundtrip_gated:
            data["roundtrip"]["qa_model"] = "self"
    if task.suite == "qa" and docs:
        data["max_new_tokens"] = sorted({d.max_new_tokens for d in docs})  # the budgets (max_gen_toks= sets them)
    reported = [m for m in (*task.reported, *ALWAYS_REPORTED, *(("bad_word_violations",) if bad_words else ()))
                if m not in task.metrics]
    id_field = task.dataset.id_field
    return TaskRun(
        task_id=variant.task_id, task=task.name, version=task.version,
        prompt_version=variant.template.version, num_fewshot=k, n=len(docs),
        metrics=aggregate(per_doc, (*task.metrics, *dict.fromkeys(reported))), samples=list(samples),
        data=data, seconds=time.perf_counter() - start, requests=len(docs), kind=task.kind, limit=limit,
        item_keys=[d.row.get(id_field, d.doc_id) if id_field else d.doc_id for d in docs],
        per_doc=list(per_doc),
        clusters=[task.clusters(d.row) for d in docs] if task.clusters is not None else None,
    )


def _round_trip(task: GenerationTask, docs: list, samples: list[dict[str, Any]], per_doc: list[dict[str, Any]],
                qa_lm: Backend) -> dict[str, Any]:
    """The QA model answers each generated question; its scores join each doc's. Returns provenance."""
    kind = qa_lm.kind
    requests = [task.roundtrip.request(s["generation"], d.row, kind) for d, s in zip(docs, samples, strict=True)]
    answers = qa_lm.generate_until(requests)
    if len(answers) != len(requests):
        raise KensaError(f"{qa_lm.name} returned {len(answers)} answers for {len(requests)} round-trip questions")
    for s, doc_scores, request, answer in zip(samples, per_doc, requests, answers, strict=True):
        scores = task.roundtrip.score(answer.text, s["doc"])
        s.update(scores, roundtrip_prompt=request.context, roundtrip_answer=answer.text,
                 roundtrip_stop_reason=answer.stop_reason)
        doc_scores.update(scores)
    return {"qa_model": qa_lm.name, "qa_model_kind": kind,
            "qa_model_identity": dict(qa_lm.info.get("identity", {}))}


def _normalise(text: str) -> str:
    from kensa.metrics.qa_text import normalise_v1

    return normalise_v1(text).strip()


def _pool_texts(task: GenerationTask, pool: Split | None) -> set[str] | None:
    if task.pool_text is None:
        return None
    return {_normalise(task.pool_text(row)) for row in pool.rows} if pool is not None else set()


def _derived(name: str) -> bool:
    """A metric the loop fills in (termination, copies, round trip) or one over the whole corpus."""
    if name in ("unterminated", "copies", "bad_word_violations", "roundtrip_f1", "roundtrip_em"):
        return True
    spec = METRICS.get(name)
    return spec is not None and spec.items == "corpus"
