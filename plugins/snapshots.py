"""Readable snapshot files for review, and the guards that keep a partial run from deleting any.

Two syrupy extensions write one UTF-8 text file per snapshot:

* :class:`PromptSnapshot` (``*.prompt.txt``): a task variant's rendered prompts;
* :class:`TokenizerSnapshot` (``*.tokens.txt``): one model's tokenizer on the probe set.

The text itself is made by :mod:`kensa.report.snapshot_text` (quoted lines, invisible characters
escaped, Japanese unescaped).

Guards: a partial run (``-k``, node ids, ``--prompt-version``, ``--collect-only``) only warns
about unused snapshots and never deletes one (``--snapshot-no-cleanup``); tokenizer snapshots of
models not under test are invisible to the session, so a run with one model (or none) never
calls another model's file unused. The session summary names the tasks whose prompts changed and
the models whose tokenizer changed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from syrupy.data import SnapshotCollections
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from kensa.cli.workers import strip_group
from kensa.faults import fault_point
from kensa.paths import write_atomic

ACTIVE_SLUGS: set[str] = set()
"""Slugs of the models under test in this process (set at configure time, read by discovery)."""

PROJECT_SNAPSHOTS: list[Path] = []
"""``<rootdir>/snapshots`` when the suites run installed (outside the rootdir, e.g. a repository made by
``kensa init``), else empty: tokenizer snapshots are then the project's files, never written into site-packages."""


class _TextSnapshot(SingleFileSnapshotExtension):
    _write_mode = WriteMode.TEXT

    @classmethod
    def write_snapshot_collection(cls, *, snapshot_collection, name_order=None) -> None:
        # syrupy opens the file and writes into it: a run killed mid-write (--snapshot-update) would
        # leave half a snapshot. Written atomically, the file is the old one or the new one.
        data = next(iter(snapshot_collection)).data
        if not isinstance(data, str):
            raise TypeError(f"{cls.__name__} writes text, not {type(data).__name__}")
        path = write_atomic(Path(snapshot_collection.location), data)
        fault_point("snapshot-written", path)  # the kill sweep kills here: one snapshot new, the others old

    def serialize(self, data, **kwargs) -> str:
        if not isinstance(data, str):
            raise TypeError(f"{type(self).__name__} takes the rendered text, not {type(data).__name__}")
        return data if data.endswith("\n") else data + "\n"

    def diff_lines(self, serialized_data, snapshot_data):
        # A unified diff of the text (context 3): the reviewer sees the lines that moved.
        import difflib

        old, new = str(snapshot_data).splitlines(), str(serialized_data).splitlines()
        yield from (line.rstrip("\n") for line in difflib.unified_diff(old, new, "snapshot", "now", lineterm="", n=3))


class PromptSnapshot(_TextSnapshot):
    file_extension = "prompt.txt"


class TokenizerSnapshot(_TextSnapshot):
    file_extension = "tokens.txt"

    @classmethod
    def dirname(cls, *, test_location) -> str:
        # A model's tokenizer snapshot belongs to the project that runs it: in a checkout, next to the suite;
        # with the suites installed, in the project's snapshots/tokenizers/ (kensa init copies the tiny models').
        if PROJECT_SNAPSHOTS and not Path(test_location.filepath).is_relative_to(PROJECT_SNAPSHOTS[0].parent):
            return str(PROJECT_SNAPSHOTS[0] / "tokenizers" / test_location.basename)
        return super().dirname(test_location=test_location)

    def discover_snapshots(self, *, test_location, ignore_extensions=None) -> SnapshotCollections:
        # Only the files of the models under test exist for this session: another model's file is
        # not unused because it was not run (and must never be deleted by a run without it).
        found = super().discover_snapshots(test_location=test_location, ignore_extensions=ignore_extensions)
        kept = SnapshotCollections()
        for collection in found:
            slug = _slug_of(collection.location)
            if slug is None or slug in ACTIVE_SLUGS:
                kept.add(collection)
        return kept


def _slug_of(location: str) -> str | None:
    match = re.search(r"\[([^\]]+)\]\.tokens\.txt$", location)
    return match.group(1) if match else None


@pytest.fixture
def prompt_snapshot(snapshot):
    return snapshot.use_extension(PromptSnapshot)


@pytest.fixture
def tokenizer_snapshot(snapshot):
    return snapshot.use_extension(TokenizerSnapshot)


def _is_partial(config: pytest.Config) -> bool:
    opt = config.option
    if opt.collectonly or getattr(opt, "keyword", "") or getattr(opt, "deselect", None):
        return True
    if getattr(opt, "kensa_prompt_version", None) or getattr(opt, "lf", False) or getattr(opt, "failedfirst", False):
        return True
    return any("::" in str(arg) for arg in config.args)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    from .kensa_plugin import CONFIG_KEY

    rc = config.stash.get(CONFIG_KEY, None)
    config.stash[_PREVIOUS_SLUGS] = set(ACTIVE_SLUGS)  # an in-process pytester run restores its caller's
    ACTIVE_SLUGS.clear()
    ACTIVE_SLUGS.update(m.slug for m in (rc.models if rc is not None else ()))
    config.pluginmanager.register(ChangedSnapshots(hasattr(config, "workerinput")), "kensa-changed-snapshots")
    config.stash[_PREVIOUS_PROJECT] = list(PROJECT_SNAPSHOTS)
    PROJECT_SNAPSHOTS.clear()
    if _suites_installed(config):
        PROJECT_SNAPSHOTS.append(config.rootpath / "snapshots")
        if hasattr(config.option, "update_snapshots"):
            # The suites' own prompt snapshots are read-only here: syrupy's cleanup would delete files in
            # site-packages (or in a kensa checkout installed editable) that this project's run did not use.
            config.option.warn_unused_snapshots = True
            config.option.no_cleanup = True
    if hasattr(config.option, "update_snapshots") and _is_partial(config):
        # syrupy already keeps unrelated snapshots on -k; this also covers node ids, --deselect,
        # --lf and --prompt-version: report unused snapshots as a warning, delete none.
        config.option.warn_unused_snapshots = True
        config.option.no_cleanup = True


def _suites_installed(config: pytest.Config) -> bool:
    """Whether kensa's suites live outside this session's rootdir (run from a project of one's own)."""
    from kensa.paths import suites_dir

    return not suites_dir().resolve().is_relative_to(config.rootpath.resolve())


def pytest_unconfigure(config: pytest.Config) -> None:
    if _PREVIOUS_PROJECT in config.stash:
        PROJECT_SNAPSHOTS.clear()
        PROJECT_SNAPSHOTS.extend(config.stash[_PREVIOUS_PROJECT])
    if _PREVIOUS_SLUGS in config.stash:
        ACTIVE_SLUGS.clear()
        ACTIVE_SLUGS.update(config.stash[_PREVIOUS_SLUGS])


_PREVIOUS_SLUGS = pytest.StashKey[set]()
_PREVIOUS_PROJECT = pytest.StashKey[list]()
_WHAT = {"test_prompt": "prompts changed", "test_tokenizer": "tokenizer changed"}
FIRST_RUN = "no snapshot yet"


SNAPSHOT_PROPERTY = "kensa_snapshot"


class ChangedSnapshots:
    """Collects the failing snapshot tests (on the xdist controller too) and names them at the end; ``files``
    holds each changed or rewritten snapshot file for summary.md (``kensa.report.summary_md.snapshot_lines``)."""

    def __init__(self, worker: bool = False) -> None:
        self.worker = worker  # a worker forwards its reports, properties included, to the controller
        self.changed: dict[str, list[str]] = {}
        self.files: list[dict[str, str]] = []

    @pytest.hookimpl(tryfirst=True)  # before junitxml turns user_properties into <property> elements
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" and not self.worker:
            self.files += [v | {"nodeid": strip_group(report.nodeid)} for k, v in report.user_properties
                           if k == SNAPSHOT_PROPERTY]
            report.user_properties = [(k, v) for k, v in report.user_properties if k != SNAPSHOT_PROPERTY]
        if report.when != "call" or not report.failed:
            return
        match = re.search(r"::(test_prompt|test_tokenizer)\[(.+)\]$", strip_group(report.nodeid))
        if match and "snapshot" in report.keywords:
            what = FIRST_RUN if FIRST_RUN in report.longreprtext else _WHAT[match.group(1)]
            self.changed.setdefault(what, []).append(match.group(2))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.changed:
            return
        terminalreporter.section("kensa snapshots")
        for what, ids in sorted(self.changed.items()):
            tail = ": run with --snapshot-update and commit the new files" if what == FIRST_RUN else ""
            terminalreporter.write_line(f"kensa: {what} ({len(ids)}): {', '.join(sorted(ids))}{tail}")
        if set(self.changed) - {FIRST_RUN}:
            terminalreporter.write_line("kensa: review the diffs above; if intended, rerun with --snapshot-update "
                                        "and commit the snapshot files (docs/snapshots.md: 'Reviewing a snapshot diff')")


def check(snapshot, text: str, what: str) -> None:
    """Compare ``text`` with the snapshot; on a change, fail with the whole unified diff (pytest's
    assertion rewriting would cut it at 8 lines) and the command to accept it."""
    __tracebackhide__ = True
    name = snapshot.extension.get_snapshot_name(test_location=snapshot.test_location, index=snapshot.index)
    location = Path(snapshot.extension.get_location(test_location=snapshot.test_location, index=snapshot.index))
    first_run = not location.is_file()
    old = None if first_run else location.read_text(encoding="utf-8")
    item = snapshot.test_location.item
    if snapshot == text:
        new = snapshot.extension.serialize(text)
        if getattr(item.config.option, "update_snapshots", False) and old != new:  # --snapshot-update rewrites it
            diff = "\n".join(snapshot.extension.diff_lines(new, old or ""))
            item.user_properties.append((SNAPSHOT_PROPERTY, {"path": str(location), "what": what, "diff": diff,
                                                             "status": "written" if first_run else "updated"}))
        return
    if first_run:  # nothing to compare with: not a change, a snapshot never taken
        item.user_properties.append((SNAPSHOT_PROPERTY, {"path": str(location), "what": what, "status": FIRST_RUN}))
        pytest.fail(f"{FIRST_RUN} for {what} ({location.name}): run with --snapshot-update and commit it",
                    pytrace=False)
    diff = "\n".join(snapshot.get_assert_diff())
    item.user_properties.append((SNAPSHOT_PROPERTY, {"path": str(location), "what": what, "status": "changed",
                                                     "diff": diff}))
    pytest.fail(f"{what} changed (snapshot {name}):\n{diff}\n"
                "If the change is intended: rerun with --snapshot-update and commit the snapshot file.", pytrace=False)
