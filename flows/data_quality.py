"""The nightly data-quality report as a Prefect flow: one day's batches -> drift, trend, Data Docs,
one HTML page.

    read the scoring ledger (read-only) -> the batches scored or quarantined on the day (UTC)
    -> the drift reference of each model version that scored a batch, from the registry
    -> drift of the day's scored rows against those references, per feature (PSI + KS)
    -> anomaly-rate trend over ``report.trend_days`` days ending at the day
    -> a Great Expectations Data Docs site of the day's validations only
    -> plots (matplotlib PNGs) + one self-contained HTML page + report.json
    -> one MLflow run (metrics, the folder as artifacts) and a Prefect markdown artifact

The steps are plain functions in :mod:`flows.steps.report` (what each does, and the folder it
writes, is documented there); the MLflow run is :func:`flows.registry.log_report_run`. This module
only wires them into tasks, decides what a failed step costs (drift and Data Docs: a note on the
page; MLflow: an error in the log, the report stays on disk) and logs.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.config import Params, load_params, project_root
from flows.layout import Layout, ReportFolder
from flows.runtime import quiet_user_error_tracebacks, with_task_retries
from flows.steps.report import (
    BatchRow,
    DataDocs,
    DataQualityReport,
    DriftResult,
    TrendPoint,
    anomaly_rate_trend,
    build_data_docs,
    collect_batches,
    drift_of_day,
    parse_report_date,
    publish,
    reference_versions,
    render_markdown,
    staging_folder,
    write_report,
)
from flows.steps.score import Ledger

__all__ = ["data_quality_flow", "log_report", "parse_report_date"]

ARTIFACT_KEY = "data-quality-report"


# ============================================================================ tasks
@task(name="collect-batches", cache_policy=NO_CACHE)
def _collect(params: Params, root: Path, day: date) -> tuple[list[BatchRow], list[TrendPoint], int]:
    ledger = Ledger.of(Layout.of(params, root).scoring).read()  # once: one snapshot
    batches = collect_batches(params, root, day, ledger)
    trend = anomaly_rate_trend(ledger, day, params.report.trend_days)
    return batches, trend, len(ledger.get("in_progress") or {})


@task(name="fetch-drift-references", cache_policy=NO_CACHE)
def _references(params: Params, root: Path, batches: list[BatchRow]) -> dict[int, Path | str]:
    """The drift reference of each model version that scored a batch of the day (downloaded
    once, cached under ``<data.snapshot_dir>/references/``), or why there is none."""
    versions = reference_versions(batches)
    if not versions:
        return {}
    from flows.registry import fetch_references  # MLflow loads only when there is a reference

    return fetch_references(params, root, versions)


@task(name="compute-drift", cache_policy=NO_CACHE)
def _drift(root: Path, batches: list[BatchRow], references: dict[int, Path | str]) -> DriftResult:
    return drift_of_day(root, batches, references)


@task(name="build-data-docs", cache_policy=NO_CACHE)
def _data_docs(params: Params, root: Path, day: date, batches: list[BatchRow],
               staging: Path) -> DataDocs:
    return build_data_docs(params, root, day, batches, staging)


@task(name="log-to-mlflow", cache_policy=NO_CACHE)
def log_report(params: Params, root: Path, report: DataQualityReport) -> str:
    """One MLflow run in the pipeline's experiment, tagged ``pipeline.step=report`` and
    ``report.date``: the report's metrics and its folder as artifacts under ``report/``.
    Returns the run id. The flow runs it through :func:`flows.runtime.with_task_retries`:
    retried on transient errors only, ``params.retries.task_retries`` times, waiting
    ``task_delay_seconds`` (doubled at each retry)."""
    from flows.registry import log_report_run  # MLflow loads only when a report is logged

    return log_report_run(params.registry, params.retries, root, report)


# ============================================================================ failures
def _drift_or_note(params: Params, root: Path, batches: list[BatchRow],
                   logger: logging.Logger | logging.LoggerAdapter) -> DriftResult:
    """The drift of the day against the drift references of the versions that scored it; a
    failed fetch or computation becomes a note on the page (a bug or an unreadable file must not
    cost the night its report)."""
    fetched = _references(params, root, batches, return_state=True)
    if not fetched.is_completed():
        exc = fetched.result(raise_on_failure=False)
        logger.error("could not fetch the drift references of the day: %s", exc)
        return DriftResult(available=False,
                           note=f"the drift references could not be fetched: {exc}")
    state = _drift(root, batches, fetched.result(), return_state=True)
    if state.is_completed():
        drift = state.result()
    else:
        exc = state.result(raise_on_failure=False)
        logger.error("could not compute the drift of the day: %s", exc)
        drift = DriftResult(available=False, note=f"drift could not be computed: {exc}")
    if drift.available:
        logger.info("drift: max PSI %.3f; drifted: %s", drift.max_psi or 0.0,
                    ", ".join(drift.drifted) or "none")
    else:
        logger.info("drift not measured: %s", drift.note)
    return drift


def _data_docs_or_note(params: Params, root: Path, day: date, batches: list[BatchRow],
                       staging: Path, logger: logging.Logger | logging.LoggerAdapter) -> DataDocs:
    """The day's Data Docs in ``staging``, their per-batch counts and pages set on ``batches``;
    a failed build becomes a note (the page without Data Docs is still worth writing)."""
    state = _data_docs(params, root, day, batches, staging, return_state=True)
    if state.is_completed():
        docs = state.result()
    else:
        exc = state.result(raise_on_failure=False)
        logger.error("could not build the Data Docs of the day: %s", exc)
        shutil.rmtree(ReportFolder(staging).data_docs_dir, ignore_errors=True)  # no half-copied site
        docs = DataDocs(None, note=f"Data Docs could not be built: {exc}")
    for b in batches:
        n, failed, page = docs.pages.get(b.batch, (0, 0, None))
        b.validations, b.validations_failed, b.data_docs_page = n, failed, page
    return docs


def _log_or_none(params: Params, root: Path, report: DataQualityReport,
                 logger: logging.Logger | logging.LoggerAdapter) -> str | None:
    """The MLflow run id of the report; None (and an error in the log) when MLflow failed:
    the report is on disk, the run is not failed for the registry."""
    state = with_task_retries(log_report, params.retries)(params, root, report,
                                                          return_state=True)
    if state.is_completed():
        return state.result()
    logger.error("could not log the report to MLflow: %s", state.result(raise_on_failure=False))
    return None


# ============================================================================ the flow
@flow(name="data-quality", log_prints=True, validate_parameters=False)
def data_quality_flow(
    date: str | None = None,
    params: Params | None = None,
    root: str | None = None,
    params_file: str | None = None,
    overrides: Sequence[str] = (),
) -> DataQualityReport:
    """Write the data-quality report of one day to ``<report.reports_dir>/<date>/``.

    Args:
        date: the UTC day, ``YYYY-MM-DD``; default yesterday (what the nightly schedule runs).
        params: loaded settings (else read from ``params_file`` with ``overrides``).
        root: project root (default: ``ANOMALY_PROJECT_ROOT`` or the current folder).

    Returns:
        The :class:`DataQualityReport` (``headline()`` says where the page is). A day without
        batches gives a report that says so; an MLflow failure is logged as an error and leaves
        the written report in place (``mlflow_run_id`` None).

    Raises:
        ConfigError: a malformed or future ``date``, or invalid settings.
        RuntimeError: the scoring ledger is unreadable.
    """
    quiet_user_error_tracebacks()
    logger = get_run_logger()
    started = time.perf_counter()
    day = parse_report_date(date)
    project = (Path(root) if root else project_root()).resolve()
    settings = params if params is not None else load_params(params_file, overrides)
    layout = Layout.of(settings, project)
    final = layout.report_folder(day.isoformat())

    batches, trend, in_progress = _collect(settings, project, day)
    logger.info("%s: %d batch(es) in the ledger (%d scored, %d quarantined)", day, len(batches),
                sum(b.passed for b in batches), sum(not b.passed for b in batches))
    drift = _drift_or_note(settings, project, batches, logger)
    notes = []
    if in_progress:
        notes.append(f"{in_progress} batch(es) were being scored while this report was written; "
                     "they are not in it (rerun the report to include them)")

    with staging_folder(layout.reports_dir, day.isoformat()) as staging:
        docs = _data_docs_or_note(settings, project, day, batches, staging, logger)
        report = DataQualityReport(
            date=day.isoformat(),
            root=project,
            folder=final.folder,
            html=final.html,
            json_path=final.json,
            data_docs_index=final.data_docs_index if docs.index else None,
            batches=batches,
            drift=drift,
            trend=trend,
            notes=notes,
            data_docs_note=docs.note,
            generated_at=datetime.now(tz=UTC).isoformat(timespec="seconds"),
        )
        write_report(report, staging)
        publish(staging, final.folder, layout.reports_lock)
    report.seconds = round(time.perf_counter() - started, 3)
    logger.info("wrote %s", report.where())

    report.mlflow_run_id = _log_or_none(settings, project, report, logger)
    create_markdown_artifact(
        key=ARTIFACT_KEY, markdown=render_markdown(report),
        description=f"Data-quality report {report.date}",
    )
    for b in report.quarantined:
        logger.warning("quarantined on %s: %s: %s", report.date, b.batch, b.reason)
    logger.info(report.headline())
    return report
