"""Batches of one time series for sequence models: time order, and the context between batches.

A sequence model scores a point from the windows of ``window`` points that cover it. At the start
of a batch the first points would be covered by fewer windows than elsewhere (and scored
differently from the same points in one long series), so the scoring step keeps the last
``context_rows`` points of each scored batch (``window - 1``, plus half the smoothing length that
the detector looks back over: its ``context_length``) in the ledger and puts
them in front of the next batch: the model scores the windows that span the boundary and returns
one row per point of the new batch only. Chunks of one batch continue each other the same way.

Rules (documented in README and tested):

* Within a batch, timestamps must increase strictly. An unsorted or duplicated timestamp rejects
  the batch (quarantine, with the row numbers and values): scoring windows across shuffled points
  would give wrong scores silently.
* A batch continues the stream when its first timestamp is after the last scored point and the
  step between them is at most ``max_gap_steps`` times the usual step (the median step of the
  batch's chunks so far, else the one kept with the stream's context). Otherwise it starts a new stream: no context (the reason is noted in the batch's
  result); a batch older than the stream (a backfill) is scored without context and does not
  replace the stream's context.
* Gaps inside a batch (steps larger than ``max_gap_steps`` times the median step) are scored
  across, as one series, and noted in the batch's result with their positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from flows.columns import parse_timestamps
from flows.errors import DataError

__all__ = ["SeriesCursor", "SeriesOrderError", "StreamContext", "timestamps_of"]

#: A step this many times the median step is a gap.
DEFAULT_MAX_GAP_STEPS = 3.0


class SeriesOrderError(DataError):
    """Timestamps that cannot be read, or are not strictly increasing."""


def timestamps_of(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, str]:
    """The timestamp column as comparable float64 numbers, and its kind.

    Returns:
        ``(t, kind)``: ``t`` (n,) float64 in seconds since the epoch for ``kind="datetime"``
        (datetime columns, or strings that parse as dates: UTC when no zone is given), or the
        numbers themselves for ``kind="number"``.

    Raises:
        SeriesOrderError: the column is missing, has nulls, or holds values that are neither
            numbers nor dates (naming the first such value).
    """
    if column not in frame.columns:
        raise SeriesOrderError(f"timestamp column {column!r} missing")
    values = frame[column]
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise SeriesOrderError(f"timestamp column {column!r} is empty at row {row}")
    try:
        parsed = parse_timestamps(values)
    except (ValueError, TypeError) as exc:
        raise SeriesOrderError(
            f"timestamp column {column!r} holds values that are neither numbers nor dates "
            f"(e.g. {values.iloc[0]!r}): {exc}"
        ) from exc
    if not pd.api.types.is_datetime64_any_dtype(parsed.dtype):
        return parsed.to_numpy(dtype=np.float64), "number"
    utc = pd.to_datetime(parsed, utc=True)  # naive times are taken as UTC
    return utc.to_numpy(dtype="datetime64[ns]").astype(np.int64) / 1e9, "datetime"


def _show(t: float, kind: str) -> str:
    if kind == "datetime":
        return pd.Timestamp(t, unit="s", tz="UTC").isoformat()
    return f"{t:g}"


@dataclass
class StreamContext:
    """The last points of the scored part of a series (oldest first), kept in the ledger.

    ``rows`` holds the feature values (the model's input columns) of up to ``context_rows``
    points; ``last_t`` / ``step`` are the last timestamp and the median step (numbers of
    :func:`timestamps_of`).
    """

    batch: str
    rows: pd.DataFrame
    last_t: float
    step: float | None
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "last_timestamp": _show(self.last_t, self.kind),
            "last_t": self.last_t,
            "step": self.step,
            "kind": self.kind,
            "columns": [str(c) for c in self.rows.columns],
            "values": self.rows.to_numpy(dtype=np.float64).tolist(),  # repr floats: exact
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StreamContext:
        rows = pd.DataFrame(d["values"], columns=d["columns"], dtype=np.float64)
        return cls(d["batch"], rows, float(d["last_t"]), d.get("step"), d.get("kind", "number"))


def _median_step(t: np.ndarray) -> float | None:
    steps = np.diff(t)
    return float(np.median(steps)) if steps.size else None


@dataclass
class SeriesCursor:
    """Walks the chunks of one batch in order: checks their timestamps, gives each its context
    (the points before it), and keeps the tail for the next batch.

    Args:
        features: the model's input columns (the context rows hold these).
        timestamp_column: the column that orders the series; None = the rows are in time order
            as they are, and each batch continues the previous one (nothing to check).
        context_rows: how many previous points the model takes (``window - 1``).
        start: the stream's context from the ledger, or None.
        batch: the batch's name (for messages and the kept context).
        max_gap_steps: a step larger than this many median steps is a gap.
    """

    features: list[str]
    timestamp_column: str | None
    context_rows: int
    start: StreamContext | None
    batch: str
    max_gap_steps: float = DEFAULT_MAX_GAP_STEPS
    notes: list[str] = field(default_factory=list)
    continues: bool = False  # whether the batch continued the stream of ``start``
    newer: bool = True  # False for a batch older than the stream (a backfill)
    _context: pd.DataFrame | None = None
    _first_t: float | None = None
    _last_t: float | None = None
    _kind: str = "number"
    _steps: list[float] = field(default_factory=list)
    _gaps: list[int] = field(default_factory=list)

    def context_for(self, frame: pd.DataFrame, first_row: int) -> pd.DataFrame | None:
        """Check the chunk's timestamps and return the rows to put before it (or None).

        Raises:
            SeriesOrderError: unreadable, unsorted or duplicated timestamps, naming the rows.
        """
        if self.timestamp_column is None:  # row order is time order: only the context to give
            if self._first_t is None:
                # positions continue the stream's count, so each batch is "newer" than the last
                self._first_t = (self.start.last_t if self.start is not None else 0.0) + 1.0
                self._last_t = self._first_t - 1.0
                self._context = self._start_context(None, None)
            self._last_t += len(frame)
            return self._context
        t, kind = timestamps_of(frame, self.timestamp_column)
        self._kind = kind
        steps = np.diff(t)
        bad = np.flatnonzero(steps <= 0)
        if bad.size:
            i = int(bad[0])
            what = "duplicated" if steps[i] == 0 else "not increasing"
            raise SeriesOrderError(
                f"timestamps {what} at rows {first_row + i:,}-{first_row + i + 1:,} "
                f"({_show(t[i], kind)} then {_show(t[i + 1], kind)}); a series must be sorted by "
                f"{self.timestamp_column!r} without duplicates"
                + (f" ({bad.size:,} such places)" if bad.size > 1 else "")
            )
        if self._last_t is not None and t[0] <= self._last_t:  # across the chunk boundary
            raise SeriesOrderError(
                f"timestamps not increasing at rows {first_row - 1:,}-{first_row:,} "
                f"({_show(self._last_t, kind)} then {_show(t[0], kind)})"
            )
        if steps.size:
            self._steps.append(float(np.median(steps)))
        step = self._step()
        if step:
            self._gaps += [first_row + int(i) + 1 for i in np.flatnonzero(steps > self.max_gap_steps * step)]
        if self._first_t is None:
            self._first_t = float(t[0])
            self._context = self._start_context(float(t[0]), step)
        context = self._context
        self._last_t = float(t[-1])
        return context

    def _step(self) -> float | None:
        known = [s for s in self._steps if s > 0]
        if not known and self.start is not None and self.start.step:
            return self.start.step
        return float(np.median(known)) if known else None

    def _start_context(self, first_t: float | None, step: float | None) -> pd.DataFrame | None:
        start = self.start
        if start is None or self.context_rows == 0:
            return None
        if first_t is None:  # no timestamps: batches follow each other by name
            pass
        elif first_t <= start.last_t:
            self.newer = False
            self.notes.append(
                f"scored without context: starts at {_show(first_t, self._kind)}, not after the "
                f"end of the previously scored batch {start.batch} "
                f"({_show(start.last_t, start.kind)})"
            )
            return None
        usual = step or start.step
        if first_t is not None and usual and first_t - start.last_t > self.max_gap_steps * usual:
            self.notes.append(
                f"new stream: a gap of {first_t - start.last_t:g} "
                f"{'s' if self._kind == 'datetime' else 'units'} since {start.batch} "
                f"(usual step {usual:g}); scored without context"
            )
            return None
        missing = [c for c in self.features if c not in start.rows.columns]
        if missing:  # the champion changed to a model with other columns
            self.notes.append(f"scored without context: the kept context lacks {missing}")
            return None
        self.continues = True
        return start.rows[self.features].tail(self.context_rows).reset_index(drop=True)

    def advance(self, frame: pd.DataFrame) -> None:
        """After a chunk is scored: its last points become the next chunk's context."""
        if self.context_rows == 0:
            return
        rows = frame[self.features].astype(np.float64)
        if self._context is not None:
            rows = pd.concat([self._context, rows], ignore_index=True)
        self._context = rows.tail(self.context_rows).reset_index(drop=True)

    def finish(self) -> StreamContext | None:
        """The context to keep for the next batch (None for a backfill), and the gap note."""
        if self._gaps:
            shown = ", ".join(f"{g:,}" for g in self._gaps[:5])
            more = f" (+{len(self._gaps) - 5} more)" if len(self._gaps) > 5 else ""
            self.notes.append(
                f"{len(self._gaps)} gap(s) larger than {self.max_gap_steps:g} x the usual step "
                f"before rows {shown}{more}: scored across them as one series"
            )
        if not self.newer or self._context is None or self._last_t is None:
            return None
        return StreamContext(self.batch, self._context, self._last_t, self._step(), self._kind)
