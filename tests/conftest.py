"""Shared fixtures for kensa's self-tests. Model fixtures build the tiny models on first use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import SHARED_DATA, load_tiny

# One hypothesis profile for every property test, loaded before any test module builds its settings (those inherit
# from it): no per-example deadline, anywhere. A deadline measures the machine, not the property: on a loaded CI
# runner or under xdist a slow example failed a correct test. Data generation's speed is no property of kensa's
# either (too_slow). The tests set only max_examples and the health checks their fixtures need.
try:
    from hypothesis import HealthCheck, settings
except ImportError:  # hypothesis is a dev extra; the property tests import it themselves and skip without it
    pass
else:
    settings.register_profile("kensa", deadline=None, suppress_health_check=[HealthCheck.too_slow],
                              print_blob=bool(os.environ.get("CI")))
    settings.load_profile("kensa")

# Self-tests never read answers from a user's response cache (the cache's own tests pass a path).
os.environ["KENSA_RESPONSE_CACHE"] = "off"

# Under `pytest tests -n 2` each xdist worker has PYTEST_XDIST_WORKER in its environment. The suites these
# tests start in subprocesses would inherit it and take themselves for xdist workers (syrupy, for one, then
# keeps its snapshot report to itself); xdist itself reads the worker's config, not these variables.
for _name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
    os.environ.pop(_name, None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sweep: the soak, the SIGKILL sweep and concurrent sessions (make sweep; "
                                       "CI runs them with reduced counts in make check)")
    config.addinivalue_line("markers", "ci: a slow test that CI runs anyway (make check: -m 'not slow or sweep or ci'): "
                                       "the one variant of a check nothing in the default tier makes")
    config.addinivalue_line("markers", "install: builds kensa's wheel and installs it into a fresh venv (minutes; "
                                       "make check runs it, -m 'not install' deselects it)")


@pytest.fixture(scope="session")
def tiny_neox():
    lm = load_tiny("tiny-neox")
    yield lm
    lm.close()


@pytest.fixture(scope="session")
def tiny_llama():
    lm = load_tiny("tiny-llama")
    yield lm
    lm.close()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "jglue" / "jcommonsenseqa").is_dir():
        pytest.skip(f"real JGLUE data not found at {SHARED_DATA} (it sits beside the repo on the project's machines)")
    return SHARED_DATA
