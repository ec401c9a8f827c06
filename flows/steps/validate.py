"""Step 2, validate: a Great Expectations suite built from the training split checks every split.

Reads the three splits, builds the suite from ``train`` (what it expects:
:mod:`flows.expectations.suite`), validates each split against it in the project's GX context
(``<root>/gx``, Data Docs updated), and writes ``<snapshot_dir>/expectation_suite.json`` (what
scoring validates new batches with) and ``<snapshot_dir>/validation_report.json`` (also when a
split fails). The GX plumbing lives in :mod:`flows.expectations`.

Only *critical* expectations (the data contract: columns, types, nulls, finite values) refuse
the training data. Failed *warnings* (values outside the training split's range, in the
validation or test split) are recorded per split and column in the report, the Data Docs and
the metrics (``<split>_warnings``), and logged once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from flows.columns import feature_columns
from flows.config import Params
from flows.errors import DataError
from flows.expectations import ValidationReport, Validator, build_suite, save_suite
from flows.io import atomic_write_json, read_table
from flows.layout import SPLIT_NAMES, Layout

__all__ = ["ValidateResult", "ValidationFailed", "validate"]

log = logging.getLogger(__name__)


class ValidationFailed(DataError):
    """A data batch failed its expectations; ``reports`` holds the details per batch."""

    def __init__(
        self,
        message: str,
        reports: dict[str, ValidationReport] | None = None,
        data_docs_index: Path | None = None,
    ) -> None:
        super().__init__(message)
        self.reports = reports or {}
        self.data_docs_index = data_docs_index


@dataclass
class ValidateResult:
    """What :func:`validate` wrote, and the reports of the three splits."""

    success: bool
    suite_path: Path
    report_path: Path
    data_docs_index: Path | None
    reports: dict[str, ValidationReport]
    metrics: dict[str, float | int] = field(default_factory=dict)


def _failure_message(
    reports: dict[str, ValidationReport], index: Path | None, report_path: Path
) -> str:
    """The error text of a failed step: each failed split's summary, the Data Docs index and
    the failed splits' pages, the report file."""
    failed = [r for r in reports.values() if not r.success]
    summaries = "\n".join(r.summary() for r in failed)
    pages = [f"{r.batch_name}: {r.data_docs_page}" for r in failed]
    return (
        "data validation failed (Great Expectations suite built from the training split):\n"
        f"{summaries}\n"
        f"Data Docs: {index}\n"
        + "".join(f"  {p}\n" for p in pages if p.split(": ", 1)[1] != "None")
        + f"Report: {report_path}"
    )


def validate(params: Params, root: Path) -> ValidateResult:
    """Build the suite from ``train.parquet``, validate the three splits, save suite and report.

    Writes ``<snapshot_dir>/expectation_suite.json`` and ``<snapshot_dir>/validation_report.json``
    (also when validation fails), and updates the Data Docs under ``<root>/gx``.

    Raises:
        ValidationFailed: a split failed; the message lists the failed expectations and the Data
            Docs path.
        DataError: the split files are missing (run ingest first).
        ConfigError: a bad entry in ``validate.expectations``.
    """
    layout = Layout.of(params, root)
    paths = layout.splits
    for name, p in paths.items():
        if not p.exists():
            raise DataError(f"{name} split not found: {p} (run the ingest step first)")
    frames = {name: read_table(p) for name, p in paths.items()}
    train = frames["train"]
    features = feature_columns(train, params, source=str(paths["train"]))
    suite = build_suite(train, features, params)

    validator = Validator(layout.gx_dir)
    reports = {name: validator.validate(frames[name], suite, name) for name in SPLIT_NAMES}
    success = all(r.success for r in reports.values())  # critical expectations only
    index = next((r.data_docs_index for r in reports.values() if r.data_docs_index), None)
    suite_path = save_suite(suite, layout.suite)

    n_expectations = len(suite.expectations)
    report = {
        "success": success,
        "suite": layout.relative(suite_path),
        "n_expectations": n_expectations,
        "n_warnings": sum(r.n_warnings for r in reports.values()),
        "data_docs_index": layout.relative(index),
        "batches": {name: r.to_dict() for name, r in reports.items()},
    }
    report_path = atomic_write_json(report, layout.validation_report)
    metrics: dict[str, float | int] = {"n_expectations": n_expectations}
    for name, r in reports.items():
        metrics[f"{name}_failed_expectations"] = r.n_failed
        metrics[f"{name}_warnings"] = r.n_warnings
    warned = [r for r in reports.values() if r.warnings]
    if success and warned:  # once, for all splits; a refusal's message carries them instead
        log.warning(
            "validation warnings (not refused; the range check is a profile, not the contract):"
            "\n%s",
            "\n".join(
                f"{r.batch_name}: " + "; ".join(r.warnings) for r in warned
            ),
        )

    if not success:
        raise ValidationFailed(
            _failure_message(reports, index, report_path), reports=reports, data_docs_index=index
        )
    return ValidateResult(
        success=success,
        suite_path=suite_path,
        report_path=report_path,
        data_docs_index=index,
        reports=reports,
        metrics=metrics,
    )

