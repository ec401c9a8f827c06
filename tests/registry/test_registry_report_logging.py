"""The data-quality report's MLflow run (:mod:`flows.registry.report_logging`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from flows.config import Params
from flows.registry import log_report_run, report_metrics
from flows.steps.report import (
    BatchRow,
    DataQualityReport,
    DriftResult,
    TrendPoint,
    feature_drift,
)

DAY = date(2026, 5, 2)


def _report(root: Path, batches: list[BatchRow], drift: DriftResult) -> DataQualityReport:
    folder = root / "data" / "reports" / DAY.isoformat()
    return DataQualityReport(
        date=DAY.isoformat(), root=root, folder=folder, html=folder / "report.html",
        json_path=folder / "report.json", data_docs_index=None, batches=batches, drift=drift,
        trend=[TrendPoint(DAY.isoformat())], generated_at="2026-05-03T02:00:00+00:00",
    )


def _drifted_day(root: Path) -> DataQualityReport:
    batches = [
        BatchRow("a.csv", "scored", "2026-05-02T01:00:00+00:00", rows=200, flagged=10,
                 model_version=2, out_of_range_rows=3),
        BatchRow("b.csv", "quarantined", "2026-05-02T02:00:00+00:00", rows=7, model_version=2),
    ]
    drift = DriftResult(available=True, features=[
        feature_drift("x", np.arange(100), np.arange(10, 110)),
        feature_drift("flow rate (l/s)", np.arange(100), np.arange(100)),
    ])
    return _report(root, batches, drift)


def test_metrics_of_a_day_without_batches(tmp_path):
    report = _report(tmp_path, [], DriftResult(available=False, note="no batch was scored"))

    assert report_metrics(report) == {"batches": 0, "scored": 0, "quarantined": 0, "rows": 0,
                                      "flagged": 0, "out_of_range_rows": 0,
                                      "rows_quarantined": 0}


def test_metrics_of_a_drifted_day_name_each_feature_as_a_valid_key(tmp_path):
    report = _drifted_day(tmp_path)
    x = report.drift.features[0]

    metrics = report_metrics(report)

    assert metrics == {
        "batches": 2, "scored": 1, "quarantined": 1, "rows": 200, "flagged": 10,
        "out_of_range_rows": 3, "rows_quarantined": 7, "rate": 0.05, "drifted_features": 1, "max_psi": x.psi,
        "psi/x": x.psi, "ks/x": x.ks_statistic,
        "psi/flow rate _l/s_": 0.0, "ks/flow rate _l/s_": 0.0,
    }


@pytest.mark.slow
def test_log_report_run_logs_tags_metrics_and_the_folder(mlflow_home):
    from mlflow import MlflowClient

    params = Params.model_validate({})
    report = _drifted_day(mlflow_home)
    report.folder.mkdir(parents=True)
    (report.folder / "report.html").write_text("<!DOCTYPE html>")
    (report.folder / "plots").mkdir()
    (report.folder / "plots" / "trend.png").write_bytes(b"png")

    run_id = log_report_run(params.registry, params.retries, mlflow_home, report)

    client = MlflowClient(f"sqlite:///{mlflow_home / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.info.run_name == "report-2026-05-02"
    tags = run.data.tags
    assert (tags["pipeline.step"], tags["report.date"]) == ("report", "2026-05-02")
    assert (tags["report.path"], tags["report.drifted_features"], tags["model.versions"]) == (
        "data/reports/2026-05-02", "x", "2")
    assert run.data.metrics == pytest.approx(report_metrics(report))
    logged = {a.path for a in client.list_artifacts(run_id, "report")}
    assert logged == {"report/report.html", "report/plots"}
