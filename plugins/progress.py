"""A progress line for long model runs, printed past pytest's output capture."""

from __future__ import annotations

import time

import pytest


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
