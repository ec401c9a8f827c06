"""Shared fixtures of the report step tests: a ledger around one day's UTC boundaries, settings
pointing at a temporary project, and a report of that day built from them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from flows.config import Params
from flows.steps.report import BatchRow, DataQualityReport, DriftResult, anomaly_rate_trend

DAY = date(2026, 5, 2)


def _ledger() -> dict[str, Any]:
    """Entries around the day's UTC boundaries (2026-05-02)."""
    return {
        "format": 1,
        "batches": {
            "a" * 64: {"batch": "late.csv", "rows": 100, "flagged": 4, "model_version": 1,
                       "output": "scored/late.parquet",
                       "scored_at": "2026-05-01T23:59:59+00:00"},  # the day before
            "b" * 64: {"batch": "midnight.csv", "rows": 200, "flagged": 10, "model_version": 2,
                       "output": "scored/midnight.parquet",
                       "scored_at": "2026-05-02T00:00:00+00:00"},
            "c" * 64: {"batch": "offset.parquet", "rows": 300, "flagged": 3, "model_version": 2,
                       "output": "scored/offset.parquet",
                       # 22:30 at UTC-2 is 00:30 UTC on the 2nd
                       "scored_at": "2026-05-01T22:30:00-02:00"},
            "d" * 64: {"batch": "naive.csv", "rows": 50, "flagged": 0, "model_version": 2,
                       "output": "scored/naive.parquet",
                       "scored_at": "2026-05-02T23:59:59"},  # no offset: taken as UTC
            "e" * 64: {"batch": "next.csv", "rows": 10, "flagged": 10, "model_version": 2,
                       "output": "scored/next.parquet",
                       "scored_at": "2026-05-03T00:00:00+00:00"},  # the day after
            "f" * 64: {"batch": "old.csv", "rows": 1000, "flagged": 1, "model_version": 1,
                       "output": "scored/old.parquet",
                       "scored_at": "2026-04-29T12:00:00+00:00"},
        },
        "in_progress": {},
        "quarantined": [
            {"batch": "bad.csv", "reason": "missing column(s) ['x']", "stage": "validate",
             "quarantined_to": "quarantine/bad.csv", "report": "quarantine/bad.csv.report.json",
             "model_version": 2, "at": "2026-05-02T08:00:00+00:00"},
            {"batch": "gone.csv", "reason": "empty file (0 bytes): gone.csv", "stage": "read",
             "quarantined_to": "quarantine/gone.csv", "report": "quarantine/gone.csv.report.json",
             "model_version": 2, "at": "2026-05-02T09:00:00+00:00"},
            {"batch": "older.csv", "reason": "x", "quarantined_to": "quarantine/older.csv",
             "at": "2026-04-30T09:00:00+00:00"},
        ],
    }


@pytest.fixture
def make_ledger() -> Callable[[], dict[str, Any]]:
    """``make_ledger()``: a fresh copy of the ledger of the day (2026-05-02) and around it."""
    return _ledger


@pytest.fixture
def make_params() -> Callable[[Path], Params]:
    """``make_params(root)``: settings whose scoring folders are under ``root``."""

    def _make(root: Path) -> Params:
        return Params.model_validate(
            {
                "data": {"source": "unused.csv", "label_column": "y"},
                "scoring": {
                    "incoming_dir": str(root / "incoming"),
                    "scored_dir": str(root / "scored"),
                    "quarantine_dir": str(root / "quarantine"),
                },
            }
        )

    return _make


@pytest.fixture
def make_report(tmp_path: Path) -> Callable[[list[BatchRow], DriftResult], DataQualityReport]:
    """``make_report(batches, drift)``: the report of 2026-05-02 in ``tmp_path``, with a 5-day
    trend from the ledger and no Data Docs."""

    def _make(batches: list[BatchRow], drift: DriftResult) -> DataQualityReport:
        folder = tmp_path / "data" / "reports" / DAY.isoformat()
        return DataQualityReport(
            date=DAY.isoformat(), root=tmp_path, folder=folder, html=folder / "report.html",
            json_path=folder / "report.json", data_docs_index=None, batches=batches,
            drift=drift, trend=anomaly_rate_trend(_ledger(), DAY, 5),
            data_docs_note="no validations", generated_at="2026-05-03T02:00:00+00:00",
        )

    return _make


@pytest.fixture
def busy_report(make_ledger, make_report) -> DataQualityReport:
    """The day's report with its six batches (one named with HTML in it, one quarantined batch
    of unknown rows) and drift measured on two features: ``x`` shifted (drifted), ``y`` not."""
    import numpy as np

    from flows.steps.report import batches_of_day, feature_drift

    batches = batches_of_day(make_ledger(), DAY)
    batches[2].rows = 7
    batches.append(BatchRow("<b>x</b>.csv", "scored", "2026-05-02T10:00:00+00:00", rows=3,
                            flagged=1))
    drift = DriftResult(available=True, reference_version=2,
                        reference="data/interim/references/2.parquet",
                        training_split="data/processed/train.parquet",
                        training_rows=100, training_sample=100, day_rows=553, day_sample=553,
                        features=[feature_drift("x", np.arange(100), np.arange(10, 110)),
                                  feature_drift("y", np.arange(100), np.arange(100))])
    return make_report(batches, drift)
