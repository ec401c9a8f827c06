"""Shared fixtures of the flow tests: a tiny real detector and an isolated MLflow store."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flows.config import Params

FEATURES = ["a", "b", "c"]


@dataclass(frozen=True)
class TinyModel:
    """A fitted and calibrated AnomalyDetector saved as one ``.keras`` file."""

    path: Path
    detector: Any
    train: pd.DataFrame
    validation: pd.DataFrame
    batch: pd.DataFrame  # rows to score: normal rows plus a few far-off ones


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    """300 normal rows of 3 features, 2 epochs, quantile threshold: a real model in seconds."""
    from anomaly_models.detector import AnomalyDetector

    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.normal(size=(300, 3)), columns=FEATURES)
    validation = pd.DataFrame(rng.normal(size=(100, 3)), columns=FEATURES)
    batch = pd.DataFrame(rng.normal(size=(40, 3)), columns=FEATURES)
    batch.iloc[:4] += 8.0
    detector = AnomalyDetector(hidden_dims=(8, 4), epochs=2, batch_size=64, seed=0).fit(train)
    detector.calibrate(validation, method="quantile", q=0.95)
    path = detector.save(tmp_path_factory.mktemp("tiny_model") / "model.keras")
    return TinyModel(path, detector, train, validation, batch)


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite database with its schema migrated (about 3 s, once per session)."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("mlflow_template")
    db = folder / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def mlflow_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_db_template: Path
) -> Iterator[Path]:
    """A project root in ``tmp_path/project`` holding a fresh, empty MLflow database (a copy of
    the migrated template), no MLflow variables from outside, the current folder set to the empty
    ``tmp_path/cwd``; MLflow's globals are reset afterwards."""
    import mlflow

    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    for key in saved:
        os.environ.pop(key, None)
    root = tmp_path / "project"
    root.mkdir()
    shutil.copyfile(mlflow_db_template, root / "mlflow.db")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    try:
        yield root
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def make_registry_params() -> Callable[..., Params]:
    """``make_registry_params(promotion="manual", promotion_margin=0.1, metric="pr_auc")``."""

    def _make(metric: str = "pr_auc", **registry: Any) -> Params:
        tree = {
            "registry": {"model_name": "tiny-detector", **registry},
            "evaluate": {"metric": metric},
        }
        return Params.model_validate(tree)

    return _make
