"""The report of one day as data: its batches, drift and trend, the totals, the headline and
``report.json``. What the page (:mod:`~flows.steps.report.render`), the Prefect artifact and the
MLflow run (:func:`flows.registry.report_metrics`) show is read from here.

Named ``summary`` rather than ``model``: in this project "model" is the detector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.io import display_path, jsonable
from flows.steps.report.days import BatchRow, TrendPoint
from flows.steps.report.drift import DriftResult

__all__ = ["DataQualityReport"]


@dataclass
class DataQualityReport:
    """The report of one day: what the page shows, where it was written."""

    date: str
    root: Path = field(repr=False)
    folder: Path
    html: Path
    json_path: Path
    data_docs_index: Path | None
    batches: list[BatchRow]
    drift: DriftResult
    trend: list[TrendPoint]
    plots: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    data_docs_note: str | None = None
    generated_at: str = ""
    mlflow_run_id: str | None = None
    seconds: float = 0.0

    @property
    def scored(self) -> list[BatchRow]:
        return [b for b in self.batches if b.status == "scored"]

    @property
    def quarantined(self) -> list[BatchRow]:
        return [b for b in self.batches if b.status == "quarantined"]

    @property
    def rows_scored(self) -> int:
        return sum(b.rows or 0 for b in self.scored)

    @property
    def rows_quarantined(self) -> int | None:
        """Rows of the quarantined batches; None when one of them is unknown."""
        rows = [b.rows for b in self.quarantined]
        return None if any(r is None for r in rows) else sum(rows)  # type: ignore[arg-type]

    @property
    def flagged(self) -> int:
        return sum(b.flagged or 0 for b in self.scored)

    @property
    def rate(self) -> float | None:
        return self.flagged / self.rows_scored if self.rows_scored else None

    @property
    def out_of_range_rows(self) -> int:
        """Scored rows with a feature outside the training range (scored and marked)."""
        return sum(b.out_of_range_rows or 0 for b in self.scored)

    def where(self) -> str:
        return display_path(self.root, self.html) or str(self.html)

    def headline(self) -> str:
        """One line: where the page is, batches, rows, pass/fail counts, drift."""
        if not self.batches:
            return (f"data-quality report {self.date}: no batches scored or quarantined on this "
                    f"day -> {self.where()}")
        rate = f", {self.rate:.2%} flagged" if self.rate is not None else ""
        drift = (
            f"; drift in {len(self.drift.drifted)} of {len(self.drift.features)} features"
            + (f" ({', '.join(self.drift.drifted)})" if self.drift.drifted else "")
            if self.drift.available
            else "; drift not measured"
        )
        return (
            f"data-quality report {self.date}: {len(self.batches)} batches "
            f"({len(self.scored)} passed, {len(self.quarantined)} failed/quarantined), "
            f"{self.rows_scored:,} rows scored{rate}{drift} -> {self.where()}"
        )

    def to_dict(self) -> dict[str, Any]:
        """report.json (paths relative to the report folder)."""
        rel = self.folder
        return jsonable({
            "date": self.date,
            "generated_at": self.generated_at,
            "folder": display_path(self.root, self.folder),
            "html": self.html.relative_to(rel).as_posix(),
            "totals": {
                "batches": len(self.batches),
                "passed": len(self.scored),
                "quarantined": len(self.quarantined),
                "rows_scored": self.rows_scored,
                "rows_quarantined": self.rows_quarantined,
                "flagged": self.flagged,
                "rate": self.rate,
                "out_of_range_rows": self.out_of_range_rows,
                "max_psi": self.drift.max_psi,
                "drifted_features": self.drift.drifted,
            },
            "batches": [b.to_dict() for b in self.batches],
            "drift": self.drift.to_dict(),
            "trend": [p.to_dict() for p in self.trend],
            "data_docs": {
                "index": self.data_docs_index.relative_to(rel).as_posix()
                if self.data_docs_index else None,
                "validations": sum(b.validations for b in self.batches),
                "note": self.data_docs_note,
            },
            "plots": {k: v.relative_to(rel).as_posix() for k, v in self.plots.items()},
            "notes": list(self.notes),
        })
