"""The quiz suite's pytest wiring: ``--quiz-data`` and ``--gate-latency``, the session's quiz tasks, its steps
in ``kensa_check`` (warm-up, the per-test record, the latency gate: hooks of ``plugins.hooks``) and the quiz
report at the end.

Which questions, how they are scored, the latency statistics and the report's format all live in the engine
(``kensa.tasks.quiz``, ``kensa.run.latency``, ``kensa.gate.latency``, ``kensa.report.quiz``).
"""

from __future__ import annotations

from typing import Any

import pytest

from kensa.cli.quiz import QuizOptions, parse_quiz_options
from kensa.errors import KensaError
from .kensa_plugin import CONFIG_KEY, suite_of

OPTIONS_KEY = pytest.StashKey[QuizOptions]()
TASKS_KEY = pytest.StashKey[tuple]()
LATENCY_FAMILY_KEY = pytest.StashKey[int]()
WARMED_KEY = pytest.StashKey[set]()
QUIZ_PROPERTY = "kensa_quiz"
LATENCY_PROPERTY = "kensa_latency"
SUITE = "quiz"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kensa")
    group.addoption("--quiz-data", action="append", default=[], dest="kensa_quiz_data", metavar="PATH",
                    help="score this quiz file instead of the data source's quiz sets (the seed's evaluation or "
                         "training format, JAQKET v1 JSON Lines, an AI王 TSV or a JMMLU CSV); repeatable")
    group.addoption("--gate-latency", dest="kensa_gate_latency", metavar="PCT",
                    help="fail a quiz category whose seconds per question rose by more than PCT percent against "
                         "the baseline measured in the same environment (paired Wilcoxon); default off")
    group.addoption("--environment", dest="kensa_quiz_environment", metavar="NAME",
                    help="the machine's name in the quiz tables' Environment column (default: the host name)")


@pytest.hookimpl(trylast=True)  # after kensa_plugin has put the run config in the stash
def pytest_configure(config: pytest.Config) -> None:
    if CONFIG_KEY not in config.stash:
        return
    try:
        options = parse_quiz_options(config.option.kensa_quiz_data, config.option.kensa_gate_latency,
                                     gate_mode=config.stash[CONFIG_KEY].gate.mode,
                                     environment=config.option.kensa_quiz_environment)
    except KensaError as exc:
        raise pytest.UsageError(f"kensa: {exc}") from None
    config.stash[OPTIONS_KEY] = options
    config.stash[WARMED_KEY] = set()
    config.pluginmanager.register(QuizSession(config), "kensa-quiz-session")


def pytest_kensa_tasks(metafunc: pytest.Metafunc, suite: str) -> list[Any] | None:
    """The quiz tasks of this session's data for the tests that score them (read once; they depend on --data-dir
    and --quiz-data). The prompt snapshots keep the registered quiz tasks (rendered from the fixtures)."""
    if suite != SUITE or "kensa_check" not in metafunc.fixturenames:
        return None
    config = metafunc.config
    if TASKS_KEY not in config.stash:
        from kensa.tasks.quiz.sets import session_sets
        from kensa.tasks.quiz.tasks import tasks_for

        rc = config.stash[CONFIG_KEY]
        try:
            sets, why = session_sets(rc.data, list(config.stash[OPTIONS_KEY].files))
            config.stash[TASKS_KEY] = (tasks_for(sets, rc.data), why)
        except KensaError as exc:
            raise pytest.UsageError(f"kensa: {exc}") from None
    return list(config.stash[TASKS_KEY][0])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    quiz = [item for item in items if suite_of(item) == SUITE and "kensa_check" in getattr(item, "fixturenames", ())]
    config.stash[LATENCY_FAMILY_KEY] = len(quiz)
    why = config.stash[TASKS_KEY][1] if TASKS_KEY in config.stash else ""
    for item in quiz:
        if why and not hasattr(item.callspec.params.get("task_variant"), "task"):
            item.add_marker(pytest.mark.skip(reason=f"kensa quiz: {why}"), append=False)


class QuizTest:
    """One quiz test's view: warm the model up once, record the run, apply the latency gate."""

    __test__ = False

    def __init__(self, request: pytest.FixtureRequest, variant: Any, lm: Any):
        self.request = request
        self.config = request.config
        self.rc = self.config.stash[CONFIG_KEY]
        self.variant = variant
        self.lm = lm

    def warm_up(self, eval_split: Any) -> None:
        warmed = self.config.stash[WARMED_KEY]
        if self.lm.name in warmed:
            return
        from kensa.run.latency import warm_up

        self.lm.info["warm_up_seconds"] = round(warm_up(self.lm, self.variant, eval_split), 3)
        warmed.add(self.lm.name)

    def keep_batches_whole(self) -> None:
        """Under --gate-sequential with the latency gate on a batched backend: score this task in one call (the
        gate reads the reason from the test's stash and says it in its rows)."""
        if self.config.stash[OPTIONS_KEY].gate_latency is None or not self.rc.gate.sequential:
            return
        from kensa.gate.fingerprint import environment
        from kensa.gate.latency import looks_split_batches

        from .gate import FULL_RUN_KEY

        reason = looks_split_batches(environment(self.lm.info).get("batch_size", "unknown"))
        if reason:
            self.request.node.stash[FULL_RUN_KEY] = reason

    def record(self, run: Any) -> None:
        from kensa.gate.fingerprint import environment
        from kensa.report.quiz import quiz_record

        left_out = self.variant.task.quiz.left_out(self.rc.data)
        record = quiz_record(self.variant, run, self.lm.info, environment(self.lm.info), self.lm.name, left_out,
                             model_slug=self.lm.spec.slug, machine=self.config.stash[OPTIONS_KEY].environment)
        self.request.node.user_properties.append((QUIZ_PROPERTY, record))

    def check_latency(self, run: Any) -> None:
        pct = self.config.stash[OPTIONS_KEY].gate_latency
        if pct is None or self.rc.gate.update or not self.rc.gate.enabled:
            return
        from kensa.gate.fingerprint import environment
        from kensa.gate.latency import compare_latency
        from .gate import baseline_store, update_command

        store = baseline_store(self.config)
        baseline = self.rc.baseline_for(self.lm.spec)
        th = store.get(baseline)
        entry = th.entries.get(self.variant.task_id) if th is not None else None
        items = store.items(th, entry) if entry is not None else None
        check = compare_latency(
            model=self.lm.name, task_id=self.variant.task_id, base_seconds=items.seconds if items else None,
            run_seconds=[s.get("seconds") for s in run.samples], base_env=entry.environment if entry else {},
            run_env=environment(self.lm.info), tolerance_pct=pct, alpha=self.rc.gate.alpha,
            base_batches=items.batches if items else None, run_batches=[s.get("batches") for s in run.samples],
            family_size=self.config.stash.get(LATENCY_FAMILY_KEY, 1),
            fix=update_command(self.config).format(model=self.lm.name, baseline=baseline))
        self.request.node.user_properties.append((LATENCY_PROPERTY, check.to_dict()))
        if check.failed:
            pytest.fail(f"kensa latency gate: {check.status}: {check.message}", pytrace=False)


def pytest_kensa_before_run(request: pytest.FixtureRequest, suite: str, variant: Any, lm: Any,
                            eval_split: Any) -> None:
    if suite == SUITE:
        quiz = QuizTest(request, variant, lm)
        quiz.warm_up(eval_split)
        quiz.keep_batches_whole()


def pytest_kensa_after_run(request: pytest.FixtureRequest, suite: str, variant: Any, lm: Any, run: Any) -> None:
    if suite == SUITE:
        QuizTest(request, variant, lm).record(run)


def pytest_kensa_after_gate(request: pytest.FixtureRequest, suite: str, variant: Any, lm: Any, run: Any) -> None:
    if suite == SUITE:
        QuizTest(request, variant, lm).check_latency(run)


class QuizSession:
    """On the controller: every quiz test's record and latency check, then the tables and files."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.records: list[dict[str, Any]] = []
        self.checks: dict[tuple[str, str], Any] = {}
        self.session: pytest.Session | None = None

    @pytest.hookimpl(tryfirst=True)  # before junitxml turns user_properties into <property> elements
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if hasattr(self.config, "workerinput"):
            return
        from kensa.gate.latency import LatencyCheck

        for name, value in report.user_properties:
            if name == QUIZ_PROPERTY and report.when == "call":
                self.records.append(value)
            elif name == LATENCY_PROPERTY and report.when == "call":
                self.checks[(value["model"], value["task_id"])] = LatencyCheck(**value)
        report.user_properties = [(k, v) for k, v in report.user_properties if k not in (QUIZ_PROPERTY,
                                                                                          LATENCY_PROPERTY)]

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if hasattr(self.config, "workerinput") or not self.records:
            return
        from kensa.report.quiz import (CACHED_NOTE, QuizReportError, quiz_figure, quiz_markdown, read_records,
                                       table_lines, write_records)

        rc = self.config.stash[CONFIG_KEY]
        tr = terminalreporter
        tr.section("kensa quiz")
        for line in table_lines(self.records, self.checks):
            tr.write_line(line)
        loads = {r["model"]: r.get("load_seconds") for r in self.records}
        tr.write_line("model load (apart from every category): " + ", ".join(f"{m} {s} s" for m, s in loads.items()))
        if any(r["latency"]["cached"] for r in self.records):
            tr.write_line(f"kensa quiz: {CACHED_NOTE}", yellow=True)
        from kensa.errors import WriteError
        from kensa.paths import write_atomic

        try:
            rc.results_dir.mkdir(parents=True, exist_ok=True)
            write_records(rc.results_dir, self.records)
            # The tables cover every model whose records are in the folder (earlier sessions' too), unless they
            # were measured under other budgets: then this session's alone, and why.
            records = read_records([rc.results_dir])
            try:
                text = quiz_markdown(records, self.checks)
            except QuizReportError as exc:
                tr.write_line(f"{exc}; quiz.md shows this session's records only", yellow=True)
                records = self.records
                text = quiz_markdown(records, self.checks)
            md = write_atomic(rc.results_dir / "quiz.md", text)
            png = quiz_figure(records, rc.results_dir / "quiz.png")
        except (WriteError, OSError, KensaError) as exc:  # a full disk: say so and fail the run, never a lost table
            tr.write_line(f"kensa quiz: {exc}", red=True)
            if self.session is not None:
                self.session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        tr.write_line(f"quiz: {md}")
        tr.write_line(f"quiz: {png}")
