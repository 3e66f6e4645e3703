"""The pytest layer of kensa: options, markers, the model fixture and progress.

It holds no evaluation logic; everything it calls lives in the ``kensa`` package (the model is
wrapped in ``kensa.run.cache.CachedLM``, the on-disk response cache of ``--response-cache``). The gate
(``plugins.gate``) and the session report (``plugins.reporting``) are loaded with it. Under
pytest-xdist each worker runs its tests and loads its own models, and the controller gathers
the per-test summaries (sent as ``user_properties``) to gate, write the results and the table.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from kensa.cli.options import RunConfig, build_run_config
from kensa.errors import KensaError, ModelLoadError
from kensa.tasks import all_tasks, tasks_in_suite
from plugins.progress import ProgressLine

pytest_plugins = ("plugins.gate", "plugins.reporting", "plugins.snapshots", "plugins.quiz", "plugins.workers")

CONFIG_KEY = pytest.StashKey[RunConfig]()
FAMILY_KEY = pytest.StashKey[int]()
RESPONSES_KEY = pytest.StashKey["ResponseCounts"]()
SUMMARY_PROPERTY = "kensa_run"
RESPONSES_PROPERTY = "kensa_responses"

MARKERS = {
    "gpu": "the test runs a model (on a GPU when there is one; the tiny models run on CPU)",
    "snapshot": "the test compares against a syrupy snapshot (prompt formats, tokenizer behaviour)",
    "slow": "the test takes more than a few seconds",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kensa", "kensa: Japanese LM regression suite")
    group.addoption("--model", action="append", default=[], dest="kensa_models", metavar="NAME",
                    help="a Hub id, a local model directory, or a built-in tiny model (tiny, tiny-neox, tiny-trained, "
                         "tiny-llama); repeat to run several models one after another")
    group.addoption("--model-args", action="append", default=[], dest="kensa_model_args", metavar="K=V,...",
                    help="harness-style model arguments: pretrained, revision, tokenizer, use_fast, dtype "
                         "(torch_dtype), device_map, load_in_8bit, load_in_4bit, peft, trust_remote_code, "
                         "max_length, batch_size; once for all models or once per --model")
    group.addoption("--backend", dest="kensa_backend", default="hf", metavar="hf|vllm",
                    help="what runs the model: hf (transformers, in each worker) or vllm (a vLLM engine in a worker "
                         "process; needs kensa[vllm] or KENSA_VLLM_PYTHON); a served model is --model openai://...")
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
    group.addoption("--fewshot-pool", dest="kensa_fewshot_pool", metavar="TASK=SPLIT|FILE,...",
                    help="draw a task's shots from another split or a file in the task's format, e.g. "
                         "jnli=test (shared/data has no JNLI train split); the results record the pool")
    group.addoption("--data-from-hub", action="store_true", dest="kensa_data_from_hub",
                    help="load each task's Hugging Face Hub dataset with `datasets` (needs network or cache)")
    group.addoption("--results-dir", dest="kensa_results_dir", default="results", metavar="DIR",
                    help="where results.json, samples_*.jsonl and summary.md go (default: results)")
    group.addoption("--baseline", action="append", default=[], dest="kensa_baselines", metavar="NAME",
                    help="gate against thresholds/NAME.toml (default: the model's slug); once for all models "
                         "or once per --model")
    group.addoption("--thresholds-dir", dest="kensa_thresholds_dir", default="thresholds", metavar="DIR",
                    help="where NAME.toml and its per-item outcomes live (default: thresholds/ under the rootdir)")
    group.addoption("--thresholds-update", action="store_true", dest="kensa_thresholds_update",
                    help="write the run's scores as the baseline's new thresholds (the run ends with exit 1: "
                         "review and commit)")
    group.addoption("--allow-lower", action="store_true", dest="kensa_allow_lower",
                    help="with --thresholds-update: allow an entry to be lowered (listed in the summary)")
    group.addoption("--gate", dest="kensa_gate", default="on", metavar="on|off",
                    help="off: score without comparing to thresholds (exploration only; the summary says so)")
    group.addoption("--alpha", dest="kensa_alpha", default="0.05", metavar="A",
                    help="family-wise false-alarm rate of the gate, Holm-corrected over the session (default 0.05)")
    group.addoption("--accept-env-change", action="store_true", dest="kensa_accept_env_change",
                    help="compare against a baseline measured with another backend, dtype, device or "
                         "torch/transformers minor version instead of failing as incomparable")
    group.addoption("--qa-model", dest="kensa_qa_model", metavar="NAME",
                    help="the model that answers generated questions in the answerability round trip (suites/qa); "
                         "default: the evaluated model itself")
    group.addoption("--qa-model-args", dest="kensa_qa_model_args", metavar="K=V,...",
                    help="--model-args for --qa-model")
    group.addoption("--thresholds-base", dest="kensa_thresholds_base", default="auto", metavar="REF|auto|none",
                    help="flag thresholds lowered by hand since this git ref (default auto: the merge base with "
                         "the default branch; none: no check)")
    group.addoption("--response-cache", dest="kensa_response_cache", metavar="PATH|off",
                    help="the on-disk cache of model responses: a rerun scores only new requests and a killed "
                         "run resumes (default: $KENSA_RESPONSE_CACHE, else <cache dir>/responses.sqlite, the "
                         "cache dir being $KENSA_CACHE_DIR or ~/.cache/kensa); off: score everything")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    opt = config.option
    try:
        run_config = build_run_config(
            models=opt.kensa_models, model_args=opt.kensa_model_args, prompt_version=opt.kensa_prompt_version,
            num_fewshot=opt.kensa_num_fewshot, limit=opt.kensa_limit, device=opt.kensa_device,
            data_dir=opt.kensa_data_dir, data_from_hub=opt.kensa_data_from_hub,
            results_dir=opt.kensa_results_dir, tasks=all_tasks(), fewshot_pool=opt.kensa_fewshot_pool,
            gate=dict(baselines=opt.kensa_baselines, mode=opt.kensa_gate, directory=opt.kensa_thresholds_dir,
                      update=opt.kensa_thresholds_update, allow_lower=opt.kensa_allow_lower, alpha=opt.kensa_alpha,
                      accept_env_change=opt.kensa_accept_env_change, base=opt.kensa_thresholds_base),
            response_cache=opt.kensa_response_cache, backend=opt.kensa_backend,
            qa_model=opt.kensa_qa_model, qa_model_args=opt.kensa_qa_model_args,
        )
    except KensaError as exc:
        raise pytest.UsageError(f"kensa: {exc}") from None
    from kensa.cli.options import replace

    if not run_config.results_dir.is_absolute():
        run_config = replace(run_config, results_dir=Path(config.invocation_params.dir) / run_config.results_dir)
    if not run_config.gate.directory.is_absolute():
        # Thresholds are committed with the suite: relative to the rootdir, wherever pytest starts.
        run_config = replace(run_config, gate=replace(run_config.gate,
                                                      directory=config.rootpath / run_config.gate.directory))
    if run_config.response_cache is not None and not run_config.response_cache.is_absolute():
        run_config = replace(run_config, response_cache=Path(config.invocation_params.dir) / run_config.response_cache)
    config.stash[CONFIG_KEY] = run_config
    config.stash[FAMILY_KEY] = 0
    counts = ResponseCounts(config, run_config.response_cache)
    config.stash[RESPONSES_KEY] = counts
    config.pluginmanager.register(counts, "kensa-response-counts")
    partial = config.option.collectonly or run_config.prompt_versions is not None
    if partial and hasattr(config.option, "warn_unused_snapshots"):
        # A collect-only run uses no snapshot, and --prompt-version drops the other versions' tests
        # before syrupy sees them: it would call their snapshots unused and fail a sound run.
        config.option.warn_unused_snapshots = True


def pytest_report_header(config: pytest.Config) -> list[str]:
    rc = config.stash[CONFIG_KEY]
    d = rc.describe()
    def model_line(m) -> str:
        args = m.args.as_harness_string(m.name)
        kind = m.kind if m.backend in ("hf", "openai") else f"{m.kind}, backend {m.backend}"
        return f"{m.name} [{kind}]" + ("" if args == f"pretrained={m.name}" else f" ({args})")

    models = ", ".join(model_line(m) for m in rc.models) or "none"
    return [
        f"kensa: models: {models}",
        (f"kensa: prompt versions: {d['prompt_versions']}; num-fewshot: {d['num_fewshot']}; "
         f"limit: {d['limit']}; device: {d['device']}"),
        f"kensa: data: {d['data']}; results: {d['results_dir']}; response cache: {rc.response_cache or 'off'}",
        (f"kensa: gate: {d['gate']}; baselines: {', '.join(d['baselines']) or '-'} in {rc.gate.directory}; "
         f"alpha: {d['alpha']}" if rc.gate.enabled else "kensa: gate: OFF (--gate off): nothing is gated"),
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    rc = metafunc.config.stash[CONFIG_KEY]
    if "task_variant" in metafunc.fixturenames:
        suite = getattr(metafunc.module, "KENSA_SUITE", None)
        if suite is None:
            raise pytest.UsageError(f"{metafunc.module.__name__}: set KENSA_SUITE to use task_variant")
        provide = getattr(metafunc.module, "kensa_tasks", None)  # a suite whose tasks come from the data (quiz)
        tasks = provide(metafunc.config) if provide is not None else tasks_in_suite(suite)
        variants = [v for t in tasks for v in t.variants()
                    if rc.prompt_versions is None or v.template.version in rc.prompt_versions]
        metafunc.parametrize("task_variant", variants, ids=[v.task_id for v in variants])
    if "kensa_model" in metafunc.fixturenames and len(rc.models) > 1:
        # A session-scoped parameter: pytest runs all tests of one model, then tears it down
        # before the next is loaded, so only one model is resident at a time.
        metafunc.parametrize("kensa_model", list(rc.models), ids=[m.slug for m in rc.models],
                             indirect=True, scope="session")


def _deselect_other_kinds(config: pytest.Config, items: list) -> None:
    """Deselect a (model, prompt) pair whose prompt is written for another kind of model (a T5 prompt and a
    causal model), before the gate counts its family of metrics."""
    from kensa.models import model_kind

    rc = config.stash[CONFIG_KEY]
    kinds: dict[Any, str | None] = {}
    keep, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        variant = params.get("task_variant")
        # (an empty parameter set, e.g. a quiz run with no quiz data, gives pytest's NOTSET: it skips itself)
        if not hasattr(variant, "applies_to") or "kensa_model" not in getattr(item, "fixturenames", ()) or not rc.models:
            keep.append(item)
            continue
        spec = params.get("kensa_model", rc.models[0])
        if spec not in kinds:
            kinds[spec] = model_kind(spec)
        (keep if variant.applies_to(kinds[spec]) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.hookimpl(trylast=True)  # after -m/-k deselection: only the selected tests matter
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    _deselect_other_kinds(config, items)
    # m, the number of metrics this session gates: Holm's first step and the MDE need it at test time.
    # Every xdist worker collects the same items, so every worker knows the same m.
    # (hasattr: a suite with no data for this session has one skipped item with no variant)
    config.stash[FAMILY_KEY] = sum(len(item.callspec.params["task_variant"].task.metrics) for item in items
                                   if "kensa_model" in getattr(item, "fixturenames", ())
                                   and hasattr(getattr(item, "callspec", None) and
                                               item.callspec.params.get("task_variant"), "task"))
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
    from kensa.models import load_model, share_cpu_threads

    spec = getattr(request, "param", None) or kensa_config.models[0]
    share_cpu_threads(int(getattr(request.config, "workerinput", {}).get("workercount", 1)))
    start = time.perf_counter()
    try:
        lm = load_model(spec, kensa_config.device)
    except KensaError as exc:
        # One clear stop for the whole session rather than the same error in every test:
        # exit 2 (interrupted) when the model cannot load, 4 (usage) for a bad option such as --device cuda.
        code = pytest.ExitCode.INTERRUPTED if isinstance(exc, ModelLoadError) else pytest.ExitCode.USAGE_ERROR
        pytest.exit(f"kensa: {exc}", returncode=code)
    lm.info["load_seconds"] = round(time.perf_counter() - start, 3)
    yield request.config.stash[RESPONSES_KEY].wrap(lm)
    lm.close()


@pytest.fixture(scope="session")
def kensa_qa_model(request: pytest.FixtureRequest, kensa_config: RunConfig):
    """``--qa-model``, loaded on first use by a round-trip task; None: each model answers its own questions."""
    if kensa_config.qa_model is None:
        yield None
        return
    from kensa.models import load_model

    try:
        lm = load_model(kensa_config.qa_model, kensa_config.device)
    except KensaError as exc:
        code = pytest.ExitCode.INTERRUPTED if isinstance(exc, ModelLoadError) else pytest.ExitCode.USAGE_ERROR
        pytest.exit(f"kensa: --qa-model: {exc}", returncode=code)
    yield request.config.stash[RESPONSES_KEY].wrap(lm)
    lm.close()


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
    """Evaluate a task variant on a model; writes the samples and reports the summary."""
    from kensa.report.results import write_samples
    from kensa.run import evaluate_variant

    def run(variant, lm):
        try:
            eval_split, pool = kensa_datasets(variant.task)
        except KensaError as exc:
            pytest.fail(f"kensa: {exc}", pytrace=False)
        k = kensa_config.fewshot_for(variant.task)
        progress = ProgressLine(request.config, f"{lm.name} {variant.task_id}")
        before = (getattr(lm, "computed", 0), getattr(lm, "from_cache", 0))
        qa_lm = request.getfixturevalue("kensa_qa_model") if getattr(variant.task, "roundtrip", None) else None
        result = evaluate_variant(variant, lm, eval_split, pool, k, kensa_config.limit, progress, qa_lm=qa_lm)
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
        request.node.user_properties.append((SUMMARY_PROPERTY, summary))
        return result

    return run


class ResponseCounts:
    """This process's response cache (opened with the first model) and how many requests its models
    computed and took from the cache. A plugin object: each test report carries the counts since the
    previous report, and the controller sums them, so the closing line covers every xdist worker."""

    def __init__(self, config: pytest.Config, path: Path | None):
        self.config = config
        self.path = path
        self.cache = None
        self.models: list[Any] = []
        self.sent = (0, 0)
        self.total = [0, 0]  # on the controller: computed, from cache

    def wrap(self, lm: Any) -> Any:
        from kensa.run.cache import CachedLM, ResponseCache

        if self.path is not None and self.cache is None:
            self.cache = ResponseCache(self.path)  # one connection per process, shared by its models
        wrapped = CachedLM(lm, self.cache)
        self.models.append(wrapped)
        return wrapped

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        now = (sum(m.computed for m in self.models), sum(m.from_cache for m in self.models))
        delta, self.sent = [now[0] - self.sent[0], now[1] - self.sent[1]], now
        if any(delta):  # a new list: the item's own is shared by its three reports
            report.user_properties = [*report.user_properties, (RESPONSES_PROPERTY, delta)]
        return report

    @pytest.hookimpl(tryfirst=True)  # before junitxml turns user_properties into <property> elements
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if hasattr(self.config, "workerinput"):
            return  # a worker forwards its reports untouched; the controller counts them
        for name, value in report.user_properties:
            if name == RESPONSES_PROPERTY:
                self.total[0] += value[0]
                self.total[1] += value[1]
        report.user_properties = [(k, v) for k, v in report.user_properties if k != RESPONSES_PROPERTY]

    @pytest.hookimpl(wrapper=True)  # after the scores table
    def pytest_terminal_summary(self, terminalreporter: Any):
        yield
        if hasattr(self.config, "workerinput") or not any(self.total):
            return
        computed, cached = self.total
        where = f"from cache ({self.path})" if self.path is not None else "from cache (response cache off)"
        terminalreporter.write_line(f"kensa: responses: {computed} computed, {cached} {where}")

    def pytest_unconfigure(self) -> None:
        if self.cache is not None:
            self.cache.close()
