"""Fixtures for end-to-end runs: a real Prefect API."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def prefect_api():
    """Prefect's temporary API for in-process flow runs (one per test session)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
