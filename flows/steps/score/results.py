"""What happened to a batch (:class:`BatchResult`) and to a scoring run (:class:`ScoringSummary`),
and the error that sends a batch to quarantine (:class:`BatchRejected`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from flows.errors import DataError

if TYPE_CHECKING:
    from flows.expectations import ValidationReport

__all__ = ["STATUSES", "BatchRejected", "BatchResult", "ScoringSummary"]

STATUSES = ("scored", "quarantined", "skipped", "failed")


@dataclass
class BatchResult:
    """What happened to one batch."""

    batch: str
    source: str
    status: str  # scored | quarantined | skipped | failed
    sha256: str | None = None
    rows: int | None = None
    flagged: int | None = None
    output: str | None = None
    quarantined_to: str | None = None
    report: str | None = None
    reason: str | None = None
    model_version: int | None = None
    chunks: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. how a time series batch was continued
    out_of_range_rows: int = 0  # rows with a feature outside the training range (scored, marked)
    warnings: list[str] = field(default_factory=list)  # failed GX warnings (not a rejection)

    @property
    def rate(self) -> float | None:
        if not self.rows or self.flagged is None:
            return None
        return self.flagged / self.rows

    def line(self) -> str:
        """One line for the terminal / the logs."""
        head = f"{self.status:<11} {self.batch}"
        if self.status == "scored":
            rate = self.rate or 0.0
            outside = (
                f", {self.out_of_range_rows:,} out of the training range"
                if self.out_of_range_rows else ""
            )
            return (
                f"{head}: {self.rows:,} rows, {self.flagged:,} flagged ({rate:.2%}){outside} "
                f"-> {self.output}" + "".join(f"; {n}" for n in self.notes)
            )
        if self.status == "quarantined":
            return f"{head}: {self.reason} -> {self.quarantined_to} (report: {self.report})"
        if self.status == "skipped":
            return f"{head}: {self.reason}" + (f" -> {self.output}" if self.output else "")
        return f"{head}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rate"] = self.rate
        return out


@dataclass
class ScoringSummary:
    """One scoring run: the model version used and what happened to each batch."""

    model_name: str
    model_version: int
    model_alias: str | None
    model_uri: str | None
    batches: list[BatchResult] = field(default_factory=list)
    started_at: str = ""
    seconds: float = 0.0
    incoming_dir: str | None = None
    recovered: list[str] = field(default_factory=list)
    mlflow_run_id: str | None = None

    def _with(self, status: str) -> list[BatchResult]:
        return [b for b in self.batches if b.status == status]

    @property
    def scored(self) -> list[BatchResult]:
        return self._with("scored")

    @property
    def quarantined(self) -> list[BatchResult]:
        return self._with("quarantined")

    @property
    def skipped(self) -> list[BatchResult]:
        return self._with("skipped")

    @property
    def failed(self) -> list[BatchResult]:
        return self._with("failed")

    @property
    def rows_scored(self) -> int:
        return sum(b.rows or 0 for b in self.scored)

    @property
    def flagged(self) -> int:
        return sum(b.flagged or 0 for b in self.scored)

    @property
    def model(self) -> str:
        alias = f" (@{self.model_alias})" if self.model_alias else ""
        return f"{self.model_name} version {self.model_version}{alias}"

    def headline(self) -> str:
        if not self.batches:
            where = f" in {self.incoming_dir}" if self.incoming_dir else ""
            return f"no new batches{where}; model {self.model}"
        parts = [
            f"{len(self.scored)} scored ({self.rows_scored:,} rows, {self.flagged:,} flagged)",
            f"{len(self.quarantined)} quarantined",
            f"{len(self.skipped)} skipped",
        ]
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return f"model {self.model}: " + ", ".join(parts)

    def quarantine_message(self) -> str:
        """The quarantined batches with their reasons (empty when none)."""
        if not self.quarantined:
            return ""
        lines = [
            f"{len(self.quarantined)} of {len(self.batches)} batch(es) quarantined "
            "(the others went on):"
        ]
        lines += [
            f"  - {b.batch}: {b.reason} (moved to {b.quarantined_to}; report {b.report})"
            for b in self.quarantined
        ]
        return "\n".join(lines)

    def state_message(self, limit: int = 120) -> str:
        """The headline plus, when any, the quarantined batches with their reasons cut short."""
        if not self.quarantined:
            return self.headline()

        def short(text: str | None) -> str:
            text = text or ""
            return text if len(text) <= limit else text[: limit - 3] + "..."

        listed = "; ".join(f"{b.batch} ({short(b.reason)})" for b in self.quarantined)
        return f"{self.headline()}. QUARANTINED: {listed}"

    def lines(self) -> list[str]:
        return [b.line() for b in self.batches]

    def table(self) -> list[dict[str, Any]]:
        """Rows for a Prefect table artifact."""
        return [
            {
                "batch": b.batch,
                "status": b.status,
                "rows": b.rows,
                "flagged": b.flagged,
                "rate": None if b.rate is None else round(b.rate, 6),
                "out_of_range_rows": b.out_of_range_rows,
                "model_version": b.model_version,
                "where": b.output or b.quarantined_to,
                "reason": b.reason,
            }
            for b in self.batches
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "model_alias": self.model_alias,
            "model_uri": self.model_uri,
            "started_at": self.started_at,
            "seconds": self.seconds,
            "incoming_dir": self.incoming_dir,
            "recovered": list(self.recovered),
            "mlflow_run_id": self.mlflow_run_id,
            "rows_scored": self.rows_scored,
            "flagged": self.flagged,
            "batches": [b.to_dict() for b in self.batches],
        }


class BatchRejected(DataError):
    """A batch that cannot be scored as it is: it goes to quarantine with this explanation.

    Args:
        reason: the one-line reason (the result's and the report's ``reason``).
        stage: where it was found: ``read``, ``validate`` or ``score``.
        problems: every problem found (e.g. each failed expectation); default ``[reason]``.
        report: GX's validation report of the chunk, when GX judged it.
        rows: the rejected chunk's first and last row (0-based, inclusive), when known.
    """

    def __init__(
        self,
        reason: str,
        *,
        stage: str,
        problems: Sequence[str] = (),
        report: ValidationReport | None = None,
        rows: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stage = stage
        self.problems = list(problems)
        self.report = report
        self.rows = rows

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword arguments survive pickling (a part of a batch rejected on a Dask worker)
        return (_rejected, (self.reason, self.stage, self.problems, self.report, self.rows))


def _rejected(
    reason: str,
    stage: str,
    problems: Sequence[str],
    report: ValidationReport | None,
    rows: tuple[int, int] | None,
) -> BatchRejected:
    return BatchRejected(reason, stage=stage, problems=problems, report=report, rows=rows)
