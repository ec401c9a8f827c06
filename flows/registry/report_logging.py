"""The data-quality report in MLflow: one run per reported day, its numbers as metrics and its
folder as artifacts.

The run is in the pipeline's experiment, named ``report-<YYYY-MM-DD>`` and tagged
``pipeline.step=report``, ``report.date``, ``report.path``, ``report.drifted_features`` and
``model.versions``; the folder's files are under the run's ``report/`` artifacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import mlflow

from flows.io import display_path
from flows.registry.connection import configure_mlflow
from flows.registry.register import metric_key

if TYPE_CHECKING:
    from flows.config import RegistryParams, RetryParams
    from flows.steps.report import DataQualityReport

__all__ = ["REPORT_ARTIFACT_DIR", "log_report_run", "report_metrics"]

REPORT_ARTIFACT_DIR = "report"


def report_metrics(report: DataQualityReport) -> dict[str, float]:
    """The MLflow metrics of the report's run: counts of batches and rows, the flagged rate,
    and with drift the drifted features, the max PSI and ``psi/<feature>``, ``ks/<feature>``
    (feature names made valid metric keys by :func:`metric_key`)."""
    out: dict[str, float] = {
        "batches": len(report.batches),
        "scored": len(report.scored),
        "quarantined": len(report.quarantined),
        "rows": report.rows_scored,
        "flagged": report.flagged,
        "out_of_range_rows": report.out_of_range_rows,
    }
    if report.rows_quarantined is not None:
        out["rows_quarantined"] = report.rows_quarantined
    if report.rate is not None:
        out["rate"] = report.rate
    if report.drift.available:
        out["drifted_features"] = len(report.drift.drifted)
        if report.drift.max_psi is not None:
            out["max_psi"] = report.drift.max_psi
        for f in report.drift.features:
            key = metric_key(f.feature)
            if f.psi is not None:
                out[f"psi/{key}"] = f.psi
            if f.ks_statistic is not None:
                out[f"ks/{key}"] = f.ks_statistic
    return out


def log_report_run(
    registry: RegistryParams, retries: RetryParams, root: str | Path, report: DataQualityReport
) -> str:
    """One MLflow run for ``report`` (see the module docstring); nested when a run is active.

    Returns:
        The run id.

    Raises:
        RegistryError: the store cannot be reached after the retries.
    """
    configure_mlflow(registry, retries, root)
    versions = sorted({str(b.model_version) for b in report.batches if b.model_version})
    tags = {
        "pipeline.step": "report",
        "report.date": report.date,
        "report.path": display_path(root, report.folder) or str(report.folder),
        "report.drifted_features": ",".join(report.drift.drifted)[:5000],
        "model.versions": ",".join(versions),
    }
    nested = mlflow.active_run() is not None
    with mlflow.start_run(run_name=f"report-{report.date}", nested=nested, tags=tags) as run:
        mlflow.log_metrics(report_metrics(report))
        mlflow.log_artifacts(str(report.folder), REPORT_ARTIFACT_DIR)
    return run.info.run_id
