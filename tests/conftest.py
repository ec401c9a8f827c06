"""Shared test configuration: quiet, local, reproducible."""

from __future__ import annotations

import os

# Set before TensorFlow / Prefect / MLflow are imported by any test module.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


import itertools  # noqa: E402

import pytest  # noqa: E402

_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server on 127.0.0.1 for the whole session (tests/postgres.py)."""
    from tests.postgres import postgres_server

    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres):
    """The SQLAlchemy URL of a fresh, empty database on the session's PostgreSQL server."""
    return postgres.create_database(f"test_{os.getpid()}_{next(_database_numbers)}")
