"""flows.registry.connection: tracking URIs, the experiment's artifact location, configure_mlflow."""

from __future__ import annotations

import os

import mlflow
import pytest

from flows import registry
from flows.registry import RegistryError, artifact_location, tracking_uri
from flows.registry.connection import connect_existing

pytestmark = pytest.mark.slow


def test_tracking_uri_precedence(mlflow_home, make_registry_params, monkeypatch):
    root = mlflow_home
    params = make_registry_params()
    assert tracking_uri(params.registry, root) == f"sqlite:///{root.resolve() / 'mlflow.db'}"
    relative = make_registry_params(tracking_uri="sqlite:///state/reg.db")
    assert (
        tracking_uri(relative.registry, root) == f"sqlite:///{root.resolve() / 'state' / 'reg.db'}"
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/x.db")
    assert tracking_uri(params.registry, root) == "sqlite:////elsewhere/x.db"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")

    # MLflow's set_tracking_uri writes MLFLOW_TRACKING_URI into os.environ; the URI we set for
    # one root must not stick to the next root of the same process.
    registry.configure_mlflow(params.registry, params.retries, root)
    assert os.environ["MLFLOW_TRACKING_URI"] == f"sqlite:///{root.resolve() / 'mlflow.db'}"
    other = root / "other"
    assert tracking_uri(params.registry, other) == f"sqlite:///{other.resolve() / 'mlflow.db'}"
    experiment = mlflow.get_experiment_by_name(params.registry.experiment_name)
    assert experiment.artifact_location == (root / "mlartifacts").resolve().as_uri()


def test_artifact_location_local_remote_and_uri(mlflow_home, make_registry_params):
    root = mlflow_home
    params = make_registry_params()
    assert artifact_location(params.registry, root) == (root / "mlartifacts").resolve().as_uri()
    s3 = make_registry_params(artifact_dir="s3://bucket/artifacts")
    assert artifact_location(s3.registry, root) == "s3://bucket/artifacts"
    # a tracking server decides where artifacts go
    assert artifact_location(params.registry, root, "http://mlflow:5000") is None


def test_read_only_commands_create_no_database(mlflow_home, make_registry_params):
    params = make_registry_params()
    fresh = mlflow_home / "fresh-clone"
    with pytest.raises(RegistryError, match=r"no MLflow database at .*fresh-clone.*anomaly train"):
        connect_existing(params.registry, fresh)
    assert not fresh.exists()
