"""A test's fixtures: ``kensa_check(task_variant)``, a suite's whole test, and what it is made of (the task's data,
the evaluation that writes the samples, the skip of a task whose data only users have). The scoring, the
integrity checks and the files are the engine's; the gate is ``plugins.gate``'s ``kensa_gate``."""

from __future__ import annotations

from typing import Any

import pytest

from kensa.cli.options import RunConfig
from kensa.errors import KensaError
from .kensa_plugin import FAMILY_KEY, SUMMARY_PROPERTY, suite_of
from .progress import ProgressLine


@pytest.fixture
def kensa_data_present(task_variant, kensa_config: RunConfig) -> None:
    """Skips a test whose task reads data only users have (their own QA TSV) when the data directory has none."""
    task = task_variant.task
    if task.optional_data and kensa_config.data.kind == "local" and not task.has_local(kensa_config.data,
                                                                                       task.eval_split):
        pytest.skip(f"kensa: {task_variant.task_id}: {task.optional_data}")


@pytest.fixture(scope="session")
def kensa_datasets(kensa_config: RunConfig):
    """Task data, loaded once per session and task: ``kensa_datasets(task) -> (eval, pool)``."""
    cache: dict[str, Any] = {}

    def get(task):
        if task.name not in cache:
            cache[task.name] = task.load(kensa_config.data)
        return cache[task.name]

    return get


@pytest.fixture
def kensa_evaluate(request: pytest.FixtureRequest, kensa_config: RunConfig, kensa_datasets):
    """Evaluate a task variant on a model; writes the samples, sends the summary to the controller and
    returns ``(run, summary)``."""
    from kensa.report.results import write_samples
    from kensa.run import evaluate_variant

    def run(variant, lm, stop=None):
        """``stop``: the sequential gate's stop rule (``kensa_gate.early_stop()``), or None to score in full."""
        try:
            eval_split, pool = kensa_datasets(variant.task)
        except KensaError as exc:
            pytest.fail(f"kensa: {exc}", pytrace=False)
        k = kensa_config.fewshot_for(variant.task)
        progress = ProgressLine(request.config, f"{lm.name} {variant.task_id}")
        before = (getattr(lm, "computed", 0), getattr(lm, "from_cache", 0))
        qa_lm = request.getfixturevalue("kensa_qa_model") if getattr(variant.task, "roundtrip", None) else None
        result = evaluate_variant(variant, lm, eval_split, pool, k, kensa_config.limit, progress, qa_lm=qa_lm,
                                  stop=stop, looks=stop.sizes if stop is not None else ())
        if stop is not None:
            stop.finish(result)
            result.data["sequential"] = stop.report()
        progress.finish()
        # Provenance: how many of this task's answers the model computed and how many the cache served.
        result.data["responses"] = {"computed": getattr(lm, "computed", 0) - before[0],
                                    "from_cache": getattr(lm, "from_cache", 0) - before[1]}
        out_dir = kensa_config.results_dir / lm.spec.slug
        try:
            write_samples(out_dir / f"samples_{variant.task_id}.jsonl", result.samples)
        except KensaError as exc:  # a full disk: say so, keep the old file, fail this test
            pytest.fail(f"kensa: {exc}", pytrace=False)
        from kensa.gate.fingerprint import environment, gated_metrics, with_qa_model

        summary = result.summary(gated=gated_metrics(variant.task.metrics, qa_lm),
                                 seconds=getattr(variant.task, "timed", False))
        summary.update(model=lm.name, model_slug=lm.spec.slug, model_info=lm.info,
                       model_args=lm.spec.args.as_harness_string(lm.spec.source),
                       baseline=kensa_config.baseline_for(lm.spec),
                       environment=with_qa_model(environment(lm.info), variant.task.metrics, qa_lm),
                       identity=lm.info.get("identity", {}), family_size=request.config.stash.get(FAMILY_KEY, 0))
        request.node.user_properties.append((SUMMARY_PROPERTY, summary))  # for the controller (xdist)
        return result, summary

    return run


@pytest.fixture
def kensa_check(request: pytest.FixtureRequest, kensa_data_present, kensa_model, kensa_gate, kensa_evaluate,
                kensa_datasets, kensa_config: RunConfig):
    """A suite's whole test: ``kensa_check(task_variant)`` scores the variant, fails if a doc was lost or a
    number is not a valid score, and gates the scores (the gate already failed the test before any scoring
    when the baseline has no valid entry). A suite's plugin adds its steps through ``plugins.hooks``."""
    from kensa.run.records import integrity_problems
    from kensa.tasks.sampling import resolve_limit

    suite = suite_of(request.node)

    def check(variant) -> None:
        hook = request.config.hook
        eval_split, _ = kensa_datasets(variant.task)
        hook.pytest_kensa_before_run(request=request, suite=suite, variant=variant, lm=kensa_model,
                                     eval_split=eval_split)
        run, summary = kensa_evaluate(variant, kensa_model, stop=kensa_gate.early_stop())
        problems = integrity_problems(run, resolve_limit(kensa_config.limit, len(eval_split.rows)))
        assert not problems, "\n".join(problems)
        hook.pytest_kensa_after_run(request=request, suite=suite, variant=variant, lm=kensa_model, run=run)
        kensa_gate.check(run, summary)
        hook.pytest_kensa_after_gate(request=request, suite=suite, variant=variant, lm=kensa_model, run=run)

    return check
