"""Which day, and what the scoring ledger says about it: the day's batches and the rate trend.

**Which batches.** A ledger entry belongs to the day of its UTC timestamp: ``scored_at`` of a
scored batch (when scoring started), ``at`` of a quarantined one. Batches skipped as duplicates
are not in the ledger (they were reported on the day they were scored); batches being scored
right now are not reported (the page says how many). Rows of a quarantined batch are counted in
its quarantined file when it can be read, else shown as unknown.

The ledger (:class:`flows.steps.score.Ledger`) is only ever read here, never written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from flows.config import ConfigError, Params
from flows.io import resolve, table_kind
from flows.layout import Layout
from flows.steps.score import Ledger

__all__ = [
    "BatchRow",
    "TrendPoint",
    "anomaly_rate_trend",
    "batches_of_day",
    "collect_batches",
    "count_rows",
    "entry_day",
    "parse_report_date",
    "utc_timestamp",
]


# ============================================================================ dates
def parse_report_date(value: str | date | None, *, today: date | None = None) -> date:
    """The day to report: ``YYYY-MM-DD`` (UTC), or yesterday (UTC) when ``value`` is None.

    Args:
        value: the ``--date`` option (or the deployment's ``date`` parameter).
        today: today's UTC date (default: now); for tests.

    Raises:
        ConfigError: naming ``--date`` and the received value: not ``YYYY-MM-DD``, not a
            calendar date, or a day after today (UTC).
    """
    today = today or datetime.now(tz=UTC).date()
    if value is None:
        return today - timedelta(days=1)
    if isinstance(value, datetime):  # a datetime is a date too: say which day it means
        value = value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        day = value
    else:
        text = str(value).strip()
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ConfigError(
                f"--date: expected a day as YYYY-MM-DD (UTC), e.g. {today.isoformat()}; "
                f"got {value!r}",
                keys=["--date"],
            )
        try:
            day = date.fromisoformat(text)
        except ValueError as exc:
            raise ConfigError(
                f"--date: {value!r} is not a calendar date ({exc})", keys=["--date"]
            ) from None
    if day > today:
        raise ConfigError(
            f"--date: {day.isoformat()!r} is in the future (today is {today.isoformat()} UTC); "
            "nothing can have been scored on it yet",
            keys=["--date"],
        )
    return day


def utc_timestamp(timestamp: str | None) -> datetime | None:
    """An ISO-8601 ledger timestamp as an aware UTC datetime (naive ones are taken as UTC);
    None when it is missing or unreadable."""
    if not timestamp:
        return None
    try:
        ts = datetime.fromisoformat(str(timestamp))
    except ValueError:
        return None
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC)


def entry_day(timestamp: str | None) -> date | None:
    """The UTC day of an ISO-8601 ledger timestamp (naive ones are taken as UTC); None when the
    timestamp is missing or unreadable."""
    ts = utc_timestamp(timestamp)
    return ts.date() if ts is not None else None


# ============================================================================ batches
@dataclass
class BatchRow:
    """One batch of the day: a scored or a quarantined ledger entry (one row of the table)."""

    batch: str
    status: str  # scored | quarantined
    at: str  # ISO-8601 UTC: scored_at (scoring started) or the quarantine time
    rows: int | None = None  # None: unknown (a quarantined file that cannot be read)
    flagged: int | None = None
    model_version: int | None = None
    sha256: str | None = None
    output: str | None = None  # scored Parquet (relative to the project root when inside)
    quarantined_to: str | None = None
    report: str | None = None  # the quarantine report (.report.json)
    reason: str | None = None
    stage: str | None = None  # read | validate: where the quarantined batch was rejected
    out_of_range_rows: int | None = None  # scored rows with a feature outside the training range
    warnings: list[str] = field(default_factory=list)  # failed GX warnings (scored anyway)
    # filled by later steps
    validations: int = 0  # GX validations stored for it (the first chunk, and any chunk the quick check did not pass)
    validations_failed: int = 0
    data_docs_page: str | None = None  # relative to the report folder
    sample_rows: int = 0  # rows of it used for drift
    max_psi: float | None = None
    drifted_features: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Passed validation (= was scored)."""
        return self.status == "scored"

    @property
    def rate(self) -> float | None:
        """Flagged share of its rows (None when not scored or no rows)."""
        if not self.rows or self.flagged is None:
            return None
        return self.flagged / self.rows

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed"] = self.passed
        out["rate"] = self.rate
        return out


def batches_of_day(ledger: Mapping[str, Any], day: date) -> list[BatchRow]:
    """The ledger entries of ``day`` (by UTC timestamp), scored and quarantined, oldest first.

    Args:
        ledger: the ledger as read by :meth:`flows.steps.score.Ledger.read`.
        day: the UTC day.

    Returns:
        One :class:`BatchRow` per entry; quarantined rows have ``rows=None`` (the ledger does not
        know them: :func:`collect_batches` counts them in the quarantined file).
    """
    out: list[BatchRow] = []
    for sha, e in (ledger.get("batches") or {}).items():
        if entry_day(e.get("scored_at")) != day:
            continue
        out.append(
            BatchRow(
                batch=str(e.get("batch") or sha[:12]),
                status="scored",
                at=str(e.get("scored_at")),
                rows=_int(e.get("rows")),
                flagged=_int(e.get("flagged")),
                model_version=_int(e.get("model_version")),
                sha256=e.get("sha256") or sha,
                output=e.get("output"),
                out_of_range_rows=_int(e.get("out_of_range_rows")),
                warnings=[str(w) for w in e.get("warnings") or []],
            )
        )
    for e in ledger.get("quarantined") or []:
        if entry_day(e.get("at")) != day:
            continue
        out.append(
            BatchRow(
                batch=str(e.get("batch") or "?"),
                status="quarantined",
                at=str(e.get("at")),
                model_version=_int(e.get("model_version")),
                sha256=e.get("sha256"),
                quarantined_to=e.get("quarantined_to"),
                report=e.get("report"),
                reason=e.get("reason"),
                stage=e.get("stage"),
            )
        )
    # ties (same second) keep a stable, readable order
    out.sort(key=lambda b: (utc_timestamp(b.at) or datetime.min.replace(tzinfo=UTC), b.batch))
    return out


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def count_rows(path: str | Path) -> int | None:
    """Data rows of a CSV or Parquet batch file; None when the file is missing or unreadable
    (corrupt, not a batch file). A 0-byte or header-only file has 0 rows."""
    path = Path(path)
    kind = table_kind(path)
    try:
        if not path.is_file() or kind is None:
            return None
        if path.stat().st_size == 0:
            return 0
        if kind == "parquet":
            return int(pq.read_metadata(path).num_rows)
        total = 0  # first column only, in chunks: a large file costs bounded memory
        with pd.read_csv(path, usecols=[0], chunksize=500_000, low_memory=False) as reader:
            for chunk in reader:
                total += len(chunk)
        return total
    except pd.errors.EmptyDataError:
        return 0
    except Exception:  # a corrupt or malformed file: its rows are unknown, not an error
        return None


def collect_batches(
    params: Params, root: str | Path, day: date, ledger: Mapping[str, Any] | None = None
) -> list[BatchRow]:
    """The batches of ``day`` from the scoring ledger (:class:`~flows.steps.score.Ledger`, or
    the given ``ledger`` content), with the rows of each quarantined batch counted in its
    quarantined file.

    Raises:
        RuntimeError: the ledger exists but is unreadable (the message names it).
    """
    dirs = Layout.of(params, root).scoring
    if ledger is None:
        ledger = Ledger.of(dirs).read()
    batches = batches_of_day(ledger, day)
    for b in batches:
        if b.status == "quarantined" and b.quarantined_to:
            b.rows = count_rows(resolve(dirs.root, b.quarantined_to))
    return batches


# ============================================================================ trend
@dataclass
class TrendPoint:
    """One day of the anomaly-rate trend (from the ledger's entries of that UTC day)."""

    date: str
    batches: int = 0  # scored
    rows: int = 0  # scored rows
    flagged: int = 0
    quarantined: int = 0  # quarantined batches

    @property
    def rate(self) -> float | None:
        """flagged / rows (None on a day without scored rows)."""
        return self.flagged / self.rows if self.rows else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rate": self.rate}


def anomaly_rate_trend(ledger: Mapping[str, Any], day: date, days: int) -> list[TrendPoint]:
    """Per UTC day, the ``days`` days ending at ``day`` (oldest first): scored batches, rows,
    flagged rows, quarantined batches; rate = flagged / rows of the day (not a mean of batch
    rates, so a large batch weighs as much as its rows)."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    first = day - timedelta(days=days - 1)
    points = {first + timedelta(days=i): TrendPoint((first + timedelta(days=i)).isoformat())
              for i in range(days)}
    for e in (ledger.get("batches") or {}).values():
        p = points.get(entry_day(e.get("scored_at")))
        if p is not None:
            p.batches += 1
            p.rows += _int(e.get("rows")) or 0
            p.flagged += _int(e.get("flagged")) or 0
    for e in ledger.get("quarantined") or []:
        p = points.get(entry_day(e.get("at")))
        if p is not None:
            p.quarantined += 1
    return [points[d] for d in sorted(points)]
