"""The gate in the pytest layer: the per-test ``kensa_gate`` fixture and the session's verdict.

Per test (on whichever process runs it): before the model scores anything, a missing, stale or
incomparable threshold entry is an error; after scoring, the test fails on what it can decide
alone (see ``kensa.gate.fails_now``) and sends its rows to the controller. On the controller,
at the end of the session: Holm over every row, the exit status, the updated threshold files
(``--thresholds-update``) and the JUnit properties. All statistics live in ``kensa.gate``.
"""

from __future__ import annotations

from typing import Any

import pytest

from kensa.errors import KensaError
from kensa.gate.thresholds import Items, ThresholdsError
from kensa.gate.verdicts import (
    BaselineStore,
    Check,
    GateSettings,
    RunRecord,
    compare,
    fails_now,
    finalize,
    flips,
    precheck,
)
from .kensa_plugin import CONFIG_KEY, FAMILY_KEY, SUMMARY_PROPERTY

GATE_PROPERTY = "kensa_gate"
STORE_KEY = pytest.StashKey[BaselineStore]()
SESSION_KEY = pytest.StashKey["GateSession"]()
FULL_RUN_KEY = pytest.StashKey[str]()
"""Set on a test's node before it scores: why it scores in one call under --gate-sequential (a suite's plugin
says so, e.g. the quiz's latency gate on a batched backend)."""


def _store(config: pytest.Config) -> BaselineStore:
    if STORE_KEY not in config.stash:
        from kensa.tasks import all_tasks
        from kensa.tasks.quiz.tasks import KnownTaskIds

        # Quiz ids depend on the data: a baseline may hold entries for sets this session does not read.
        known = KnownTaskIds({v.task_id: t.metrics for t in all_tasks() for v in t.variants()})
        config.stash[STORE_KEY] = BaselineStore(config.stash[CONFIG_KEY].gate.directory, known)
    return config.stash[STORE_KEY]


baseline_store = _store
"""The session's threshold files (read once); the quiz's latency gate reads its per-question times there."""


def update_command(config: pytest.Config) -> str:
    """This session's command line turned into the one that writes the thresholds (a template)."""
    args, skip = [], False
    for arg in config.invocation_params.args:
        if skip:
            skip = False
        elif arg == "--baseline":
            skip = True
        elif not arg.startswith(("--baseline=", "--thresholds-update", "--allow-lower", "--accept-env-change")):
            args.append(arg.replace("{", "{{").replace("}", "}}"))
    return " ".join(["pytest", *args, "--baseline {baseline} --thresholds-update"])


def _settings(config: pytest.Config) -> GateSettings:
    rc = config.stash[CONFIG_KEY]
    pooled = len(rc.models) if rc.gate.pooled else 0  # one pooled row per model joins the family
    return GateSettings(alpha=rc.gate.alpha, family_size=config.stash.get(FAMILY_KEY, 0) + pooled,
                        accept_env_change=rc.gate.accept_env_change, update_command=update_command(config))


def _table(rows: list[Check]) -> str:
    from kensa.report.results import gate_lines

    return "\n".join(gate_lines(rows))


class TestGate:
    """One test's view of the gate: ``check(run, summary)`` after scoring."""

    __test__ = False  # not a test class, whatever its name says

    def __init__(self, request: pytest.FixtureRequest, variant: Any, lm: Any, datasets: Any):
        self.request = request
        self.config = request.config
        self.rc = self.config.stash[CONFIG_KEY]
        self.lm = lm
        self.variant = variant
        self.entry = None
        self.active = self.rc.gate.enabled and not self.rc.gate.update
        self.planned: RunRecord | None = None
        self.early: Any = None  # kensa.gate.early.EarlyStop under --gate-sequential
        self.full_reason: str | None = None  # why this test scored in one call under --gate-sequential
        if self.active:
            self._precheck(datasets)

    def _send(self, rows: list[Check]) -> None:
        self.request.node.user_properties.append((GATE_PROPERTY, [r.to_dict() for r in rows]))

    def _precheck(self, datasets: Any) -> None:
        """Fail before any scoring when there is nothing valid to compare with."""
        from kensa.gate.fingerprint import environment, gated_metrics, with_qa_model
        from kensa.tasks.sampling import resolve_limit

        eval_split, pool = datasets(self.variant.task)
        task = self.variant.task
        qa_lm = self.request.getfixturevalue("kensa_qa_model") if getattr(task, "roundtrip", None) else None
        record = RunRecord(
            model=self.lm.name, baseline=self.rc.baseline_for(self.lm.spec), task_id=self.variant.task_id,
            task=task.name, task_version=task.version, prompt_version=self.variant.template.version,
            num_fewshot=self.rc.fewshot_for(task), limit=self.rc.limit,
            n=resolve_limit(self.rc.limit, len(eval_split.rows)), data_sha256=eval_split.sha256 or "",
            fewshot_sha256=pool.sha256 if pool is not None else None, kind=task.kind, metrics={},
            gated=gated_metrics(task.metrics, qa_lm), items=Items([], {}),
            environment=with_qa_model(environment(self.lm.info), task.metrics, qa_lm),
            identity=self.lm.info.get("identity", {}))
        self.planned = record
        self.entry, rows = precheck(_store(self.config), record, _settings(self.config))
        if rows:
            self._send(rows)
            pytest.fail(f"kensa gate: {rows[0].message}", pytrace=False)

    def early_stop(self) -> Any:
        """Under --gate-sequential: the stop rule the run loop calls after each look, or None (score in full)."""
        if not (self.active and self.rc.gate.sequential and self.entry is not None and self.planned is not None):
            return None
        self.full_reason = self.request.node.stash.get(FULL_RUN_KEY, None)
        if self.full_reason:
            return None
        from kensa.gate.early import EarlyStop

        store = _store(self.config)
        try:
            items = store.items(store.get(self.planned.baseline), self.entry)
        except ThresholdsError:
            return None  # check() reports the error after a full run
        if items is None:
            return None
        # With --gate-pooled a task stops early only to FAIL: the pooled row needs every document of every task
        # that does not fail (kensa.gate.pooled; a failed task fails the session anyway).
        self.early = EarlyStop(self.entry, items, self.planned, _settings(self.config),
                               margins=dict(self.rc.gate.margins), early_pass=not self.rc.gate.pooled)
        return self.early if self.early.active else None

    def check(self, run: Any, summary: dict[str, Any]) -> None:
        """Compare the scored run (its samples, and the summary ``kensa_evaluate`` made of it) with its entry;
        fail on what this test can decide alone."""
        if not self.active:
            return
        record = RunRecord.from_summary(summary)
        store = _store(self.config)
        th = store.get(record.baseline)
        try:
            items = store.items(th, self.entry)
        except ThresholdsError as exc:
            rows = [Check(record.model, record.baseline, record.task_id, m, "error", str(exc)) for m in record.gated]
            self._send(rows)
            pytest.fail(f"kensa gate: {exc}", pytrace=False)
        if self.early is not None and self.early.active:
            fixed = [] if self.early.stopped_early else compare(self.entry, items, record, _settings(self.config),
                                                                th.path)
            rows = self.early.rows(record, fixed)
            if self.rc.gate.pooled:
                from kensa.gate.pooled import attach_counts

                attach_counts(rows, fixed)
        else:
            rows = compare(self.entry, items, record, _settings(self.config), th.path)
        if items is not None:
            from kensa.report.results import write_samples

            worse = flips(items, run.samples, record.gated)
            path = self.rc.results_dir / self.lm.spec.slug / f"flips_{record.task_id}.jsonl"
            if worse:
                try:
                    write_samples(path, worse)
                except KensaError as exc:
                    self._send(rows)
                    pytest.fail(f"kensa gate: {exc}", pytrace=False)
                for r in rows:
                    r.details["flip_report"] = str(path)
            elif path.exists():
                path.unlink()  # an old report would describe another run
        if self.full_reason:
            for r in rows:
                r.message = "; ".join(filter(None, [r.message, f"scored in full under --gate-sequential: "
                                                                f"{self.full_reason}"]))
        self._send(rows)
        failing = fails_now(rows, _settings(self.config))
        if failing:
            where = rows[0].details.get("flip_report")
            pytest.fail("kensa gate: the score dropped against the baseline\n" + _table(failing)
                        + (f"\ndocuments that got worse: {where}" if where else ""), pytrace=False)


@pytest.fixture
def kensa_gate(request: pytest.FixtureRequest, task_variant, kensa_model, kensa_datasets) -> TestGate:
    """The gate for this test's task variant and model (errors before scoring when there is no valid entry)."""
    return TestGate(request, task_variant, kensa_model, kensa_datasets)


class GateSession:
    """On the controller: every test's summary and gate rows, then the session's verdict."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.summaries: list[dict[str, Any]] = []
        self.failed_tasks: set[tuple[str, str]] = set()  # tests whose run failed (never written by an update)
        self.failed_tests: set[tuple[str, str]] = set()  # tests the gate failed
        self.rows: list[Check] = []
        self.changes: list[Any] = []
        self.written: list[str] = []
        self.notes: list[str] = []
        self.lost: list[str] = []  # tests whose worker died under them (xdist reports them with when="???")

    @pytest.hookimpl(tryfirst=True)  # before junitxml turns user_properties into <property> elements
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # On the controller this sees every worker's reports, with their user_properties.
        if hasattr(self.config, "workerinput"):
            return  # a worker forwards its reports untouched
        if report.when == "???" and report.failed:  # pytest-xdist's report for a test whose worker crashed
            self.lost.append(report.nodeid)
        for name, value in report.user_properties:
            if name == GATE_PROPERTY and report.when in ("setup", "call"):
                self.rows += [Check.from_dict(r) for r in value]
                if report.failed:
                    self.failed_tests.update((r["model"], r["task_id"]) for r in value)
            elif name == SUMMARY_PROPERTY and report.when == "call":
                self.summaries.append(value)
                if report.failed:
                    self.failed_tasks.add((value["model"], value["task_id"]))
        # They are transport, not results: the final rows go to JUnit as global properties.
        report.user_properties = [(k, v) for k, v in report.user_properties if k not in (GATE_PROPERTY,
                                                                                          SUMMARY_PROPERTY)]

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes its file and the terminal summary
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput"):
            return
        gate = self.config.stash[CONFIG_KEY].gate
        try:
            if gate.update:
                self._update()
            elif gate.enabled:
                family = max((s.get("family_size", 0) for s in self.summaries), default=0)
                if gate.pooled:
                    from kensa.gate.pooled import pooled_rows

                    self.rows += pooled_rows(self.rows, [(s["model"], s["task_id"]) for s in self.summaries])
                    family += len(self.config.stash[CONFIG_KEY].models)
                self.rows = finalize(sorted(self.rows, key=lambda r: (r.model, r.task_id, r.metric)), gate.alpha,
                                     family)
                late = sorted({f"{r.model} {r.task_id}" for r in self.rows
                               if r.failed and (r.model, r.task_id) not in self.failed_tests})
                if late:
                    self.notes.append(f"kensa gate: Holm's step-down over the whole session failed {', '.join(late)} "
                                      "although the test passed on its own (it could only apply the first step; "
                                      "see docs/gate.md, \"The verdict\"): the session fails")
                self._history()
        except KensaError as exc:
            self.notes.append(f"kensa: {exc}")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.lost:
            self.notes.append(f"kensa: {len(self.lost)} test(s) lost when their worker died: "
                              f"{', '.join(self.lost)}; no result was written for them and the session fails")
        must_fail = (gate.update and self.summaries) or any(r.failed for r in self.rows) or self.lost
        if must_fail and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        self._junit_properties()

    def _history(self) -> None:
        """Rows for thresholds lowered by hand since the git base (kensa.gate.history)."""
        from kensa.gate.history import hand_lowered_rows

        used: dict[str, list[str]] = {}
        for s in self.summaries:
            used.setdefault(s["baseline"], [])
            if s["model"] not in used[s["baseline"]]:
                used[s["baseline"]].append(s["model"])
        rows, notes = hand_lowered_rows(_store(self.config), used, self.config.stash[CONFIG_KEY].gate.base)
        self.rows += rows
        self.notes += notes

    def _update(self) -> None:
        from kensa.gate.thresholds import Thresholds
        from kensa.gate.update import apply_update, git_sha, write_update
        from kensa.gate.verdicts import rows_for_changes

        rc = self.config.stash[CONFIG_KEY]
        store = _store(self.config)
        records = [RunRecord.from_summary(s) for s in self.summaries]
        good = [r for r in records if (r.model, r.task_id) not in self.failed_tasks]
        self.notes += [f"kensa: not written: {r.model} {r.task_id} (its test failed)" for r in records
                       if r not in good]
        params = self.config.invocation_params
        provenance = {"command": " ".join(["pytest", *params.args]), "git_sha": git_sha(self.config.rootpath)}
        for baseline in sorted({r.baseline for r in good}):
            runs = [r for r in good if r.baseline == baseline]
            th = store.get(baseline) or Thresholds(path=store.path(baseline), baseline=baseline)
            new, changes, written = apply_update(th, runs, allow_lower=rc.gate.allow_lower, provenance=provenance)
            if written:
                self.written += [str(p) for p in write_update(new, written)]
            self.changes += changes
            self.rows += rows_for_changes(th, runs, changes)
        if self.written:
            self.notes.append(f"kensa: thresholds updated: review and commit {rc.gate.directory} "
                              f"({len(self.written)} files); this run ends with exit code 1 until then")

    def _junit_properties(self) -> None:
        from _pytest.junitxml import xml_key  # the documented LogXML lives here; no public accessor

        from kensa.report.results import junit_properties

        xml = self.config.stash.get(xml_key, None)
        if xml is None:
            return
        for name, value in junit_properties(self.rows, self.config.stash[CONFIG_KEY].gate):
            xml.add_global_property(name, value)


@pytest.hookimpl(trylast=True)  # after kensa_plugin has put the run config in the stash
def pytest_configure(config: pytest.Config) -> None:
    session = GateSession(config)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "kensa-gate-session")
