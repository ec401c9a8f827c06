"""flows.registry.retry: which errors are transient and how often a call is tried
(``params.retries``), against a REAL MLflow SQLite registry for the registering path.

No mocks, except monkeypatched transient failures.
"""

from __future__ import annotations

import time

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from flows import registry
from flows.config import RetryParams
from flows.registry import RegistryError, list_versions
from flows.registry.retry import with_retry


def _transient() -> MlflowException:
    return MlflowException(
        "(sqlite3.OperationalError) database is locked", error_code="TEMPORARILY_UNAVAILABLE"
    )


@pytest.mark.slow
def test_registering_retries_transient_failures(tiny_registry, make_registry_params, monkeypatch):
    params = make_registry_params(retries={"delay_seconds": 0.01})
    real = mlflow.register_model
    calls = []

    def flaky(*args, **kwargs):  # fails twice, then works
        calls.append(1)
        if len(calls) <= 2:
            raise _transient()
        return real(*args, **kwargs)

    monkeypatch.setattr(mlflow, "register_model", flaky)
    reg = tiny_registry.register(params, {"pr_auc": 0.5})
    assert reg.version == 1 and reg.promoted
    assert len(calls) == 3
    root = tiny_registry.root
    assert [r["version"] for r in list_versions(params.registry, params.retries, root)] == [1]

    def late(*args, **kwargs):  # creates the version, then fails: the retry must not duplicate it
        calls.append(1)
        real(*args, **kwargs)
        raise _transient()

    calls.clear()
    monkeypatch.setattr(mlflow, "register_model", late)
    reg = tiny_registry.register(params, {"pr_auc": 0.4})
    assert reg.version == 2 and not reg.promoted
    assert len(calls) == 1  # attempt 2 found the version of this run that attempt 1 created
    assert [r["version"] for r in list_versions(params.registry, params.retries, root)] == [1, 2]

    def always(*args, **kwargs):
        calls.append(1)
        raise _transient()

    calls.clear()
    monkeypatch.setattr(mlflow, "register_model", always)
    with pytest.raises(RegistryError, match="after 3 attempts.*database is locked"):
        tiny_registry.register(params, {"pr_auc": 0.9})
    assert len(calls) == 3
    assert [r["version"] for r in list_versions(params.registry, params.retries, root)] == [1, 2]
    failed = mlflow.search_runs(filter_string="attributes.status = 'FAILED'")
    assert len(failed) == 1

    def broken(*args, **kwargs):
        calls.append(1)
        raise MlflowException("bad name", error_code="INVALID_PARAMETER_VALUE")

    calls.clear()
    monkeypatch.setattr(mlflow, "register_model", broken)
    with pytest.raises(RegistryError, match="bad name"):
        tiny_registry.register(params, {"pr_auc": 0.9})
    assert len(calls) == 1  # not transient: no retry


def test_is_transient():
    assert registry.is_transient(_transient())
    assert registry.is_transient(ConnectionError("refused"))
    assert registry.is_transient(MlflowException("API request failed: Max retries exceeded"))
    assert not registry.is_transient(MlflowException("nope", error_code="RESOURCE_DOES_NOT_EXIST"))
    assert not registry.is_transient(FileNotFoundError("x"))


def test_with_retry_follows_the_retry_settings(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    calls = []

    def always():
        calls.append(1)
        raise ConnectionError("refused")

    with pytest.raises(RegistryError, match=r"reading x failed after 4 attempts.*refused"):
        with_retry(RetryParams(attempts=4, delay_seconds=0.25), "reading x", always)
    assert len(calls) == 4
    assert waits == [0.25, 0.5, 1.0]  # doubling, none after the last attempt

    calls.clear()
    waits.clear()
    with pytest.raises(RegistryError, match="after 1 attempts"):
        with_retry(RetryParams(attempts=1), "reading x", always)
    assert len(calls) == 1 and waits == []

    def bad():  # neither transient nor MLflow's: propagates as it is, at once
        calls.append(1)
        raise KeyError("k")

    calls.clear()
    with pytest.raises(KeyError):
        with_retry(RetryParams(attempts=3, delay_seconds=0), "reading x", bad)
    assert len(calls) == 1

    assert with_retry(RetryParams(), "adding", lambda a, b=0: a + b, 2, b=3) == 5
