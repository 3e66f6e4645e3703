"""The pytest layer of kensa: options, markers, the model fixture, progress and the report.

It holds no evaluation logic; everything it calls lives in the ``kensa`` package. Under
pytest-xdist each worker runs its tests and loads its own models, and the controller gathers
the per-test summaries (sent as ``user_properties``) to write the results and the table.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from kensa.errors import KensaError, ModelLoadError
from kensa.options import RunConfig, build_run_config
from kensa.tasks import all_tasks, tasks_in_suite

CONFIG_KEY = pytest.StashKey[RunConfig]()
SUMMARY_PROPERTY = "kensa_run"

MARKERS = {
    "gpu": "the test runs a model (on a GPU when there is one; the tiny models run on CPU)",
    "snapshot": "the test compares against a syrupy snapshot (prompt formats, tokenizer behaviour)",
    "slow": "the test takes more than a few seconds",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kensa", "kensa: Japanese LM regression suite")
    group.addoption("--model", action="append", default=[], dest="kensa_models", metavar="NAME",
                    help="a Hub id, a local model directory, or a built-in tiny model (tiny, tiny-neox, "
                         "tiny-llama); repeat to run several models one after another")
    group.addoption("--model-args", action="append", default=[], dest="kensa_model_args", metavar="K=V,...",
                    help="harness-style model arguments: pretrained, revision, tokenizer, use_fast, dtype "
                         "(torch_dtype), device_map, load_in_8bit, load_in_4bit, peft, trust_remote_code, "
                         "max_length, batch_size; once for all models or once per --model")
    group.addoption("--prompt-version", dest="kensa_prompt_version", metavar="V[,V]",
                    help="run only these prompt versions (0.1, 0.2, 0.2.1, 0.3, 0.4, 0.5, 0.6); default all")
    group.addoption("--num-fewshot", dest="kensa_num_fewshot", metavar="TASK=K,...",
                    help="few-shot count per task, e.g. jcommonsenseqa=2; default the harness's")
    group.addoption("--limit", dest="kensa_limit", metavar="N",
                    help="evaluate only the first N shuffled docs (or a fraction below 1), as the harness")
    group.addoption("--device", dest="kensa_device", default="auto", metavar="auto|cpu|cuda",
                    help="where to run the model (default auto: cuda if available)")
    group.addoption("--data-dir", dest="kensa_data_dir", metavar="DIR",
                    help="local data laid out like shared/data (jglue/jcommonsenseqa/valid-v1.3.json, ...); "
                         "default: the project's own fixtures")
    group.addoption("--data-from-hub", action="store_true", dest="kensa_data_from_hub",
                    help="load each task's Hugging Face Hub dataset with `datasets` (needs network or cache)")
    group.addoption("--results-dir", dest="kensa_results_dir", default="results", metavar="DIR",
                    help="where results.json, samples_*.jsonl and summary.md go (default: results)")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    opt = config.option
    try:
        run_config = build_run_config(
            models=opt.kensa_models, model_args=opt.kensa_model_args, prompt_version=opt.kensa_prompt_version,
            num_fewshot=opt.kensa_num_fewshot, limit=opt.kensa_limit, device=opt.kensa_device,
            data_dir=opt.kensa_data_dir, data_from_hub=opt.kensa_data_from_hub,
            results_dir=opt.kensa_results_dir, tasks=all_tasks(),
        )
    except KensaError as exc:
        raise pytest.UsageError(f"kensa: {exc}") from None
    if not Path(run_config.results_dir).is_absolute():
        run_config = _with_results_dir(run_config, Path(config.invocation_params.dir) / run_config.results_dir)
    config.stash[CONFIG_KEY] = run_config
    if config.option.collectonly and hasattr(config.option, "warn_unused_snapshots"):
        # A collect-only run uses no snapshot; syrupy would call them all unused and fail.
        config.option.warn_unused_snapshots = True
    config.pluginmanager.register(ScoreCollector(config), "kensa-scores")


def _with_results_dir(run_config: RunConfig, path: Path) -> RunConfig:
    from kensa.options import replace

    return replace(run_config, results_dir=path)


def pytest_report_header(config: pytest.Config) -> list[str]:
    rc = config.stash[CONFIG_KEY]
    d = rc.describe()
    def model_line(m) -> str:
        args = m.args.as_harness_string(m.name)
        return f"{m.name} [{m.kind}]" + ("" if args == f"pretrained={m.name}" else f" ({args})")

    models = ", ".join(model_line(m) for m in rc.models) or "none"
    return [
        f"kensa: models: {models}",
        (f"kensa: prompt versions: {d['prompt_versions']}; num-fewshot: {d['num_fewshot']}; "
         f"limit: {d['limit']}; device: {d['device']}"),
        f"kensa: data: {d['data']}; results: {d['results_dir']}",
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    rc = metafunc.config.stash[CONFIG_KEY]
    if "task_variant" in metafunc.fixturenames:
        suite = getattr(metafunc.module, "KENSA_SUITE", None)
        if suite is None:
            raise pytest.UsageError(f"{metafunc.module.__name__}: set KENSA_SUITE to use task_variant")
        variants = [v for t in tasks_in_suite(suite) for v in t.variants()
                    if rc.prompt_versions is None or v.template.version in rc.prompt_versions]
        metafunc.parametrize("task_variant", variants, ids=[v.task_id for v in variants])
    if "kensa_model" in metafunc.fixturenames and len(rc.models) > 1:
        # A session-scoped parameter: pytest runs all tests of one model, then tears it down
        # before the next is loaded, so only one model is resident at a time.
        metafunc.parametrize("kensa_model", list(rc.models), ids=[m.slug for m in rc.models],
                             indirect=True, scope="session")


@pytest.hookimpl(trylast=True)  # after -m/-k deselection: only the selected tests matter
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    if config.option.collectonly or config.stash[CONFIG_KEY].models:
        return
    if any("kensa_model" in getattr(item, "fixturenames", ()) for item in items):
        raise pytest.UsageError("kensa: the selected tests run a model; name one with --model "
                                "(e.g. --model tiny), or deselect them with -m 'not gpu'")


@pytest.fixture(scope="session")
def kensa_config(pytestconfig: pytest.Config) -> RunConfig:
    return pytestconfig.stash[CONFIG_KEY]


@pytest.fixture(scope="session")
def kensa_model(request: pytest.FixtureRequest, kensa_config: RunConfig):
    """The loaded model (session scope: loaded once per worker, freed after its last test)."""
    from kensa.models import load_model

    spec = getattr(request, "param", None) or kensa_config.models[0]
    start = time.perf_counter()
    try:
        lm = load_model(spec, kensa_config.device)
    except KensaError as exc:
        # One clear stop for the whole session rather than the same error in every test:
        # exit 2 (interrupted) when the model cannot load, 4 (usage) for a bad option such as --device cuda.
        code = pytest.ExitCode.INTERRUPTED if isinstance(exc, ModelLoadError) else pytest.ExitCode.USAGE_ERROR
        pytest.exit(f"kensa: {exc}", returncode=code)
    lm.info["load_seconds"] = round(time.perf_counter() - start, 3)
    yield lm
    lm.close()


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
    """Evaluate a task variant on a model; writes the samples and reports the summary."""
    from kensa.evaluate import evaluate_multiple_choice
    from kensa.report import write_samples

    def run(variant, lm):
        try:
            eval_split, pool = kensa_datasets(variant.task)
        except KensaError as exc:
            pytest.fail(f"kensa: {exc}", pytrace=False)
        k = kensa_config.fewshot_for(variant.task)
        progress = ProgressLine(request.config, f"{lm.name} {variant.task_id}")
        result = evaluate_multiple_choice(variant, lm, eval_split, pool, k, kensa_config.limit, progress)
        progress.finish()
        out_dir = kensa_config.results_dir / lm.spec.slug
        write_samples(out_dir / f"samples_{variant.task_id}.jsonl", result.samples)
        summary = result.summary()
        summary.update(model=lm.name, model_slug=lm.spec.slug, model_info=lm.info,
                       model_args=lm.spec.args.as_harness_string(lm.spec.source))
        request.node.user_properties.append((SUMMARY_PROPERTY, summary))
        return result

    return run


class ProgressLine:
    """Throttled progress for long runs, written past pytest's capture (not on xdist workers)."""

    INTERVAL = 5.0

    def __init__(self, config: pytest.Config, label: str):
        self.config = config
        self.label = label
        self.start = self.last = time.perf_counter()
        self.printed = False
        self.reporter = config.pluginmanager.get_plugin("terminalreporter")
        self.capture = config.pluginmanager.get_plugin("capturemanager")

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if self.reporter is None or now - self.last < self.INTERVAL:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = (total - done) / rate if rate else float("inf")
        self._write(f"kensa: {self.label}: {done}/{total} requests ({100 * done / total:.0f}%), "
                    f"{rate:.1f}/s, about {eta:.0f} s left")

    def finish(self) -> None:
        if self.printed:
            self._write(f"kensa: {self.label}: done in {time.perf_counter() - self.start:.1f} s")

    def _write(self, text: str) -> None:
        self.printed = True  # so that finish() closes what was opened
        if self.capture is not None:
            with self.capture.global_and_fixture_disabled():
                self.reporter.write_line(text)
        else:
            self.reporter.write_line(text)


class ScoreCollector:
    """Gathers the per-test summaries (from xdist workers too) and writes the session's results."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.runs: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # On the controller this sees every worker's reports, with their user_properties.
        if report.when == "call":
            self.runs += [value for name, value in report.user_properties if name == SUMMARY_PROPERTY]

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if hasattr(self.config, "workerinput") or not self.runs:
            return
        from kensa.report import (
            format_table,
            harness_results,
            markdown_table,
            summary_rows,
            write_results,
        )

        rc = self.config.stash[CONFIG_KEY]
        by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for summary in self.runs:
            by_model[summary["model_slug"]].append(summary)
        rows, written = [], []
        for slug, runs in by_model.items():
            runs.sort(key=lambda r: r["task_id"])
            doc = harness_results(runs[0]["model"], runs, model_args=runs[0]["model_args"],
                                  model_info=runs[0]["model_info"], run_config=rc.describe())
            written.append(write_results(rc.results_dir / slug / "results.json", doc))
            rows += summary_rows(runs[0]["model"], runs)
        (rc.results_dir / "summary.md").write_text(markdown_table(rows), encoding="utf-8")
        terminalreporter.section("kensa scores")
        for line in format_table(rows):
            terminalreporter.write_line(line)
        for path in written:
            terminalreporter.write_line(f"results: {path}")
        terminalreporter.write_line(f"samples: {rc.results_dir}/<model>/samples_<task-id>.jsonl")
