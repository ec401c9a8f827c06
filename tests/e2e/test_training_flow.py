"""The Prefect training flow end to end: real Prefect, MLflow (SQLite), GX and Keras."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from tests.e2e.project import cli_env, make_project, sensor_frame

# e2e: real services and trainings; the global limit of pyproject.toml is too short for them
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory, prefect_api):
    from flows.config import load_params
    from flows.training import training_flow

    root = make_project(tmp_path_factory.mktemp("project"))
    params = load_params(root / "params.yaml")
    results = training_flow(params=params, root=str(root))
    return root, params, results


def test_flow_produces_every_artifact(trained_project):
    root, _, results = trained_project
    assert list(results) == ["ingest", "validate", "preprocess", "train", "calibrate", "evaluate", "register"]
    for path in [
        "data/interim/snapshot.parquet", "data/interim/snapshot.json", "data/processed/train.parquet",
        "data/interim/expectation_suite.json", "models/preprocessing.keras", "models/detector.keras",
        "models/model.keras", "models/threshold.json", "metrics.json", "plots/roc_curve.png",
        "models/registration.json", "mlflow.db", "data/interim/drift_reference.parquet",
    ]:
        assert (root / path).is_file(), path
    metrics = json.loads((root / "metrics.json").read_text())
    assert {"roc_auc", "pr_auc", "precision", "recall", "f1", "threshold"} <= set(metrics)
    assert metrics["roc_auc"] > 0.95  # the injected anomalies are obvious
    assert not (root / "mlruns").exists()  # artifacts go to the configured store only


def test_first_version_is_champion_and_challenger(trained_project):
    root, params, results = trained_project
    registration = results["register"].registration
    assert registration.version == 1 and registration.promoted
    assert set(registration.aliases) == {"champion", "challenger"}
    saved = json.loads((root / "models/registration.json").read_text())
    assert str(saved["version"]) == "1"


def test_champion_loads_in_a_fresh_process_and_matches_the_detector(trained_project, tmp_path):
    root, params, _ = trained_project
    test = pd.read_parquet(root / "data/processed/test.parquet")
    features = json.loads((root / "data/processed/split.json").read_text())["feature_columns"]
    batch = test[features]
    batch.to_parquet(tmp_path / "batch.parquet")
    script = textwrap.dedent(
        f"""
        import mlflow, pandas as pd
        model = mlflow.pyfunc.load_model("models:/{params.registry.model_name}@champion")
        out = model.predict(pd.read_parquet({str(tmp_path / 'batch.parquet')!r}))
        out.to_parquet({str(tmp_path / 'scored.parquet')!r})
        """
    )
    env = cli_env(root)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    scored = pd.read_parquet(tmp_path / "scored.parquet")

    from anomaly_models import AnomalyDetector

    expected = AnomalyDetector.load(root / "models/model.keras").score_frame(batch)
    assert list(scored.columns) == list(expected.columns)
    np.testing.assert_allclose(scored["anomaly_score"], expected["anomaly_score"], rtol=1e-6)
    np.testing.assert_array_equal(scored["is_anomaly"], expected["is_anomaly"])
    assert not (tmp_path / "mlruns").exists()


def test_a_second_run_registers_version_two(trained_project):
    from flows.training import training_flow

    root, params, _ = trained_project
    results = training_flow(params=params, root=str(root))
    assert results["register"].version == 2
    assert "challenger" in results["register"].registration.aliases


@pytest.mark.parametrize(
    ("make_data", "match"),
    [
        (lambda: sensor_frame().assign(temp=lambda d: d["temp"].astype(str) + "C"), "temp"),
        (lambda: sensor_frame().assign(flow=np.nan), "flow"),
        (lambda: sensor_frame().drop(columns="anomaly"), "anomaly"),
    ],
    ids=["non-numeric column", "all-NaN column", "label column absent"],
)
def test_bad_data_fails_the_run_and_registers_nothing(tmp_path, prefect_api, make_data, match):
    from flows.config import load_params
    from flows.training import training_flow

    root = make_project(tmp_path / "p", make_data())
    features = ["data.feature_columns=[temp, pressure, flow, vibration]"]
    with pytest.raises(ValueError, match=match):
        training_flow(params=load_params(root / "params.yaml", features), root=str(root))
    assert not (root / "mlflow.db").exists()
    assert not (root / "models" / "registration.json").exists()
