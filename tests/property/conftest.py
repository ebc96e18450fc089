"""Hypothesis set-up for the property tests: one profile and per-example rollback (the count of inputs
is tests/property/examples.py, reported by tests/conftest.py).

The profile keeps the whole folder under about a minute and a half (PROPERTY_EXAMPLES raises or lowers
the examples per property); under CI the inputs are derandomised, so a failure reproduces on rerun.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

CI = bool(os.environ.get("CI"))

settings.register_profile(
    "property",
    deadline=None,
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "40")),
    derandomize=CI,
    database=None if CI else settings.default.database,
    print_blob=True,
    # The pytest fixtures (a logged-in client, a room) are built once per test on purpose: each
    # example runs in a rolled-back transaction, so they stay as the fixture made them.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "property"))


@pytest.fixture(autouse=True)
def _worklist_dir(worklist_dir):
    # A folder per test: a test that writes worklist files never sees another's.
    return worklist_dir
