"""The hypothesis profile of tests/conftest.py is the one every property test runs under: no deadline."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st


def test_the_loaded_profile_has_no_deadline():
    assert settings.default.deadline is None
    assert settings(max_examples=5).deadline is None  # a test's own settings inherit it


@settings(max_examples=2)
@given(st.integers(0, 1))
def test_a_slow_example_is_not_a_failure(x):
    time.sleep(0.25)  # over hypothesis's default 200 ms deadline: that deadline would fail this test
