"""flows.registry.register (log_and_register) and the register stage (the step gathers the files,
the stage wiring registers them) against a REAL MLflow SQLite registry in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from flows import registry
from flows.layout import Layout
from flows.registry import log_and_register
from flows.stages import run_stage
from flows.steps.reference import read_drift_reference, write_drift_reference
from flows.steps.register import StepInputError, registration_inputs

pytestmark = pytest.mark.slow


def test_register_step(tiny_registry, make_registry_params, step_inputs):
    root, tiny_model = tiny_registry.root, tiny_registry.model
    params = make_registry_params()
    with pytest.raises(StepInputError, match="run the calibrate stage first"):
        run_stage("register", params, root)

    step_inputs(root, tiny_model)
    warned = {"success": True, "batches": {
        "train": {"n_warnings": 0, "warning_rows": {}},
        "validation": {"n_warnings": 2, "warning_rows": {"a": 1, "flow (l/s)": 3}},
    }}
    (root / "data" / "interim" / "validation_report.json").write_text(json.dumps(warned))
    result = run_stage("register", params, root)
    record = json.loads((root / "models" / "registration.json").read_text())
    assert record["version"] == 1 and record["promoted"] is True
    assert record["aliases"] == ["challenger", "champion"]
    assert record["run_id"] == result.run_id and record["reason"]
    assert (
        record["lineage"] == result.tags and record["lineage"]["data.snapshot_sha256"] == "abc123"
    )
    assert result.registration_path == root / "models" / "registration.json"

    run = MlflowClient().get_run(result.run_id)
    assert run.data.tags["data.snapshot_sha256"] == "abc123"
    assert run.data.tags["git.commit"] == "unknown"  # tmp_path is not a git repository
    assert run.data.metrics["pr_auc"] == 0.8
    assert run.data.metrics["expected_false_alarm_rate"] == 0.05
    # the validation's warnings per split and column (the column name made a valid key)
    warning_metrics = {k: v for k, v in run.data.metrics.items() if "warning" in k}
    assert warning_metrics == {"validation_warnings.validation.n_warnings": 2,
                               "validation_warnings.validation.a": 1,
                               "validation_warnings.validation.flow _l/s_": 3}
    assert run.data.params["registry.model_name"] == "tiny-detector"
    listed = {a.path for a in MlflowClient().list_artifacts(result.run_id)}
    assert {"plots", "reports", "data_docs"} <= listed
    r, retries = params.registry, params.retries
    suite = registry.download_artifact(
        r, retries, root, result.run_id, registry.SUITE_ARTIFACT, root / "dl"
    )
    assert json.loads(suite.read_text()) == {"name": "suite"}
    # the other files, as the step found them
    for artifact, source in [
        ("plots/roc.png", root / "plots" / "roc.png"),
        ("data_docs/index.html", root / "gx/uncommitted/data_docs/local_site/index.html"),
        ("reports/metrics.json", root / "metrics.json"),
        ("reports/threshold.json", root / "models" / "threshold.json"),
        ("reports/snapshot.json", root / "data" / "interim" / "snapshot.json"),
        ("reports/validation_report.json", root / "data/interim/validation_report.json"),
    ]:
        local = registry.download_artifact(r, retries, root, result.run_id, artifact, root / "dl")
        assert local.read_bytes() == source.read_bytes(), artifact
    # the drift reference: the training split's feature columns (all 304 rows, the 4 labelled
    # anomalies too: fewer than REFERENCE_ROWS), logged where the report fetches it
    logged_as = f"reports/{Layout.of(params, root).drift_reference.name}"
    assert logged_as == registry.DRIFT_REFERENCE_ARTIFACT
    local = registry.download_artifact(
        r, retries, root, result.run_id, registry.DRIFT_REFERENCE_ARTIFACT, root / "dl"
    )
    frame, meta = read_drift_reference(local)
    train = pd.read_parquet(root / "data" / "processed" / "train.parquet")
    pd.testing.assert_frame_equal(frame, train[["a", "b", "c"]].reset_index(drop=True))
    assert (meta["training_rows"], meta["rows"], meta["features"]) == (304, 304, ["a", "b", "c"])
    assert meta["source"] == "data/processed/train.parquet"
    assert list(Path.cwd().iterdir()) == []


def test_registration_inputs_gather_the_files_and_touch_no_registry(
    mlflow_home, tiny_model, make_registry_params, step_inputs
):
    root = mlflow_home
    (root / "mlflow.db").unlink()
    params = make_registry_params()
    step_inputs(root, tiny_model)
    inputs = registration_inputs(params, root)
    assert inputs.model_path == (root / "models" / "model.keras").resolve()
    assert inputs.metrics == {
        "roc_auc": 0.9,
        "pr_auc": 0.8,
        "f1": 0.7,
        "threshold": tiny_model.detector.threshold_,
        "expected_false_alarm_rate": 0.05,
    }
    assert inputs.params_flat == params.flat()
    assert inputs.tags == {
        "data.snapshot_sha256": "abc123",
        "data.source": "x.csv",
        "git.commit": "unknown",
        "pipeline.step": "register",
    }
    resolved = root.resolve()
    assert [p.relative_to(resolved).as_posix() for p in inputs.artifacts] == [
        "metrics.json",
        "models/threshold.json",
        "data/interim/snapshot.json",
        "data/interim/expectation_suite.json",
        "data/interim/validation_report.json",
        "plots/roc.png",
        "gx/uncommitted/data_docs/local_site",
    ]
    assert list(inputs.input_example.columns) == ["a", "b", "c"]
    assert len(inputs.input_example) == 5
    # the register stage writes the drift reference first: then it is logged with the reports
    write_drift_reference(params, root)
    logged = [p.relative_to(resolved).as_posix() for p in registration_inputs(params, root).artifacts]
    assert logged[5] == "data/interim/drift_reference.parquet"
    assert not (root / "mlflow.db").exists() and not (root / "mlartifacts").exists()

    (root / "data" / "processed" / "validation.parquet").unlink()
    with pytest.raises(StepInputError, match="no validation split.*run the ingest stage"):
        registration_inputs(params, root)


def test_log_and_register_refuses_a_missing_or_uncalibrated_model(
    tiny_registry, make_registry_params, tmp_path
):
    from anomaly_models.detector import AnomalyDetector

    params = make_registry_params()
    kwargs = dict(
        metric="pr_auc", metrics={}, params_flat={}, input_example=tiny_registry.model.validation
    )
    r, retries, root = params.registry, params.retries, tiny_registry.root
    with pytest.raises(FileNotFoundError, match="no model file at"):
        log_and_register(r, retries, root, model_path=tmp_path / "absent.keras", **kwargs)
    raw = AnomalyDetector(hidden_dims=(4,), epochs=1, seed=0).fit(tiny_registry.model.train)
    path = raw.save(tmp_path / "uncalibrated.keras")
    with pytest.raises(ValueError, match="has no threshold; run the calibrate stage first"):
        log_and_register(r, retries, root, model_path=path, **kwargs)
    assert tiny_registry.client().search_registered_models() == []
