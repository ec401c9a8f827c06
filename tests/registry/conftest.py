"""Shared fixtures of the registry tests: a tiny real detector, an isolated MLflow store, and a
helper that registers the detector there (no mocks: a real SQLite registry in tmp_path)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flows.config import Params

FEATURES = ["a", "b", "c"]
MODEL_NAME = "tiny-detector"


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
    """``make_registry_params(promotion="manual", promotion_margin=0.1, metric="pr_auc",
    retries={"delay_seconds": 0})``: model ``tiny-detector``, the rest the defaults."""

    def _make(
        metric: str = "pr_auc", retries: Mapping[str, Any] | None = None, **registry: Any
    ) -> Params:
        tree = {
            "registry": {"model_name": MODEL_NAME, **registry},
            "evaluate": {"metric": metric},
            "retries": dict(retries or {}),
        }
        return Params.model_validate(tree)

    return _make


@dataclass(frozen=True)
class TinyRegistry:
    """The tiny model and the project root of :func:`mlflow_home`, with shortcuts."""

    root: Path
    model: TinyModel

    @property
    def db_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    def client(self) -> Any:
        """A client of the project's database, built independently of flows.registry."""
        from mlflow import MlflowClient

        # both URIs: a registry URI left global by an earlier test must not be used instead
        return MlflowClient(tracking_uri=self.db_uri, registry_uri=self.db_uri)

    def aliases(self, name: str = MODEL_NAME) -> dict[str, int]:
        """``{alias: version}`` as the database holds them now."""
        model = self.client().get_registered_model(name)
        return {a: int(v) for a, v in model.aliases.items()}

    def register(
        self,
        params: Params,
        metrics: Mapping[str, Any],
        *,
        artifacts: Sequence[Path] = (),
        tags: Mapping[str, Any] | None = None,
    ) -> Any:
        """``log_and_register`` of the tiny model with ``metrics``; returns the Registration."""
        from flows.registry import log_and_register

        return log_and_register(
            params.registry,
            params.retries,
            self.root,
            model_path=self.model.path,
            metric=params.evaluate.metric,
            metrics=metrics,
            params_flat=params.flat(),
            artifacts=artifacts,
            tags=tags if tags is not None else {"data.source": "test", "git.commit": "unknown"},
            input_example=self.model.validation.head(5),
        )


@pytest.fixture
def tiny_registry(mlflow_home: Path, tiny_model: TinyModel) -> TinyRegistry:
    return TinyRegistry(mlflow_home, tiny_model)


def write_step_inputs(root: Path, tiny_model: TinyModel) -> None:
    """The files the register step reads, at the default settings' places (see flows.layout)."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "models" / "model.keras").write_bytes(tiny_model.path.read_bytes())
    (root / "models" / "threshold.json").write_text(
        json.dumps(
            {
                "method": "quantile",
                "threshold": tiny_model.detector.threshold_,
                "false_alarm_rate": 0.05,
            }
        )
    )
    (root / "metrics.json").write_text(json.dumps({"roc_auc": 0.9, "pr_auc": 0.8, "f1": 0.7}))
    interim = root / "data" / "interim"
    interim.mkdir(parents=True, exist_ok=True)
    (interim / "snapshot.json").write_text(json.dumps({"sha256": "abc123", "source": "x.csv"}))
    (interim / "expectation_suite.json").write_text(json.dumps({"name": "suite"}))
    (interim / "validation_report.json").write_text(json.dumps({"success": True}))
    processed = root / "data" / "processed"
    processed.mkdir(parents=True, exist_ok=True)
    tiny_model.validation.assign(y=0).to_parquet(processed / "validation.parquet")
    # the training split: the model's normal rows and the batch's far-off ones, labelled
    train = pd.concat([tiny_model.train.assign(y=0), tiny_model.batch.head(4).assign(y=1)])
    train.to_parquet(processed / "train.parquet", index=False)
    (processed / "split.json").write_text(json.dumps({"feature_columns": ["a", "b", "c"]}))
    (root / "plots").mkdir(exist_ok=True)
    (root / "plots" / "roc.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    site = root / "gx" / "uncommitted" / "data_docs" / "local_site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "index.html").write_text("<html></html>")


@pytest.fixture
def step_inputs() -> Callable[[Path, TinyModel], None]:
    """``step_inputs(root, tiny_model)`` writes the register step's input files under ``root``."""
    return write_step_inputs
