"""Fixtures for end-to-end runs: a real Prefect API, the processes a test starts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.services import Processes


@pytest.fixture(scope="session")
def prefect_api():
    """Prefect's temporary API for in-process flow runs (one per test session)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Start service processes with ``processes.start``; all of them, and every descendant,
    are stopped after the test, which fails if one survives."""
    procs = Processes()
    yield procs
    survivors = procs.stop_all()
    assert not survivors, f"processes still running after the test: {survivors}"
