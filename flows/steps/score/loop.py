"""The chunk loop of one batch: read -> check -> score -> write, chunk after chunk, into
``<output>.tmp``, renamed onto ``<output>`` when every chunk passed.

Three threads work beside the scoring thread, each at most one item ahead: the reader reads the
chunk after the next one (:class:`~flows.steps.score.chunks.ChunkReader`), the writer writes the
previous chunk (:class:`~flows.steps.score.output.ScoredFileWriter`), and GX validates the first
chunk (:class:`~flows.steps.score.check.ChunkChecker`). In memory at once: the chunk being
written, the one being scored, the next one (the look-ahead of sequence models) and the one
being read.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from flows.expectations import range_bounds
from flows.io import first_line, table_kind
from flows.steps.score.check import ChunkChecker, check_not_scored
from flows.steps.score.chunks import ChunkReader
from flows.steps.score.options import ScoringOptions
from flows.steps.score.output import ScoredFileWriter, score_columns
from flows.steps.score.ranges import OUT_OF_RANGE, RangeCounter
from flows.steps.score.results import BatchRejected
from flows.steps.score.scorer import BatchScorer, is_input_error
from flows.steps.score.series import SeriesCursor, SeriesOrderError
from flows.steps.score.state import RunState

if TYPE_CHECKING:
    import great_expectations as gx

__all__ = ["SEQUENCE_CHUNK_FACTOR", "Stopwatch", "score_chunk", "score_to_file"]

#: For sequence models a chunk holds at least this many times the model's context rows, so that
#: it can take the next chunk's first points as look-ahead (scoring.chunk_rows is raised to it).
SEQUENCE_CHUNK_FACTOR = 4


class Stopwatch:
    """Seconds spent in each phase of the loop: ``read``, ``validate``, ``predict``, ``write``."""

    def __init__(self) -> None:
        self.seconds = {"read": 0.0, "validate": 0.0, "predict": 0.0, "write": 0.0}

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - started

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.seconds.items()}


def score_chunk(
    scorer: BatchScorer,
    frame: pd.DataFrame,
    rows: tuple[int, int],
    *,
    context: pd.DataFrame | None = None,
    ahead: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The score columns of ``frame`` (rows ``rows`` of the batch), one row per row.

    ``ahead``: the first points of the next chunk (sequence models), so that the last points of
    this one are scored by all the windows that cover them, as in one piece (their scores are
    dropped; the next chunk scores those points itself).

    Raises:
        BatchRejected: the model rejected the rows (stage ``score``).
    """
    scored_frame = frame if ahead is None else pd.concat([frame, ahead], ignore_index=True)
    try:
        try:
            scores = scorer(scored_frame, context=context)
        except Exception as exc:
            if scored_frame is frame or not is_input_error(exc):
                raise
            # bad rows in the look-ahead (not validated yet): score this chunk alone; the next
            # chunk's validation then names the problem and its rows
            scored_frame = frame
            scores = scorer(frame, context=context)
        if scored_frame is not frame:
            scores = scores.iloc[: len(frame)].reset_index(drop=True)
    except Exception as exc:
        if not is_input_error(exc):
            raise
        raise BatchRejected(
            f"the model rejected rows {rows[0]:,}-{rows[1]:,}: {first_line(exc)}",
            stage="score",
            rows=rows,
        ) from exc
    return scores


class _ChunkLoop:
    """The state of one batch's loop: counts, timings, and the sequence cursor."""

    def __init__(
        self,
        scorer: BatchScorer,
        *,
        cursor: SeriesCursor | None,
        state: RunState,
        scored_at: datetime,
        ranges: RangeCounter,
        first_row: int = 0,
        whole: bool = True,
    ) -> None:
        self.scorer = scorer
        self.first_row = first_row
        self.whole = whole  # the whole batch, not one part of it
        self.cursor = cursor
        self.state = state
        self.scored_at = scored_at
        self.ranges = ranges
        self.timings = Stopwatch()
        self.rows = self.flagged = self.chunks = 0

    @property
    def next_row(self) -> int:
        """The batch row number of the next chunk's first row."""
        return self.first_row + self.rows

    def run(self, reader: ChunkReader, checker: ChunkChecker, writer: ScoredFileWriter) -> None:
        while True:
            with self.timings("read"):
                pair = reader.next()
                if pair is not None:
                    table, following = pair
                    frame = table.to_pandas()
            if pair is None:
                break
            n = self.chunk(table, frame, following, checker, writer)
            del pair, table, frame  # before a collection: this chunk is written or queued
            self.state.collector.scored(n)
        with self.timings("write"):
            writer.wait()
        with self.timings("validate"):  # GX of the first chunk, run while the batch was scored
            checker.finish()
        with self.timings("write"):
            writer.commit()

    def chunk(
        self,
        table: pa.Table,
        frame: pd.DataFrame,
        following: pa.Table | None,
        checker: ChunkChecker,
        writer: ScoredFileWriter,
    ) -> int:
        """Check, score and queue for writing one chunk (``following``: the next one or None);
        returns its number of rows."""
        first = self.chunks == 0
        rows = (self.next_row, self.next_row + table.num_rows - 1)
        if first:
            check_not_scored(frame)
        with self.timings("validate"):
            checker.check(frame, rows, first=first, last=following is None and self.whole)
            context = self._context(frame, rows)
        with self.timings("predict"):
            ahead = None
            if self.cursor is not None and following is not None:
                ahead = following.slice(0, self.scorer.context_rows).to_pandas()
            scores = score_chunk(self.scorer, frame, rows, context=context, ahead=ahead)
            scores[OUT_OF_RANGE] = self.ranges.count(frame)
            if self.cursor is not None:
                self.cursor.advance(frame)
        checker.poll()  # GX of the first chunk, when it is done: raises if GX disagrees
        with self.timings("write"):
            writer.write(score_columns(table, scores, self.scorer.model, self.scored_at), rows[0])
        self.rows += table.num_rows
        self.flagged += int(np.asarray(scores["is_anomaly"]).sum())
        self.chunks += 1
        return table.num_rows

    def _context(self, frame: pd.DataFrame, rows: tuple[int, int]) -> pd.DataFrame | None:
        """The points before the chunk (sequence models), after checking its time order."""
        if self.cursor is None:
            return None
        try:
            return self.cursor.context_for(frame, rows[0])
        except SeriesOrderError as exc:
            raise BatchRejected(str(exc), stage="validate", rows=rows) from exc


def score_to_file(
    path: Path,
    *,
    tmp: Path,
    output: Path,
    sha: str,
    scorer: BatchScorer,
    suite: gx.ExpectationSuite,
    options: ScoringOptions,
    scored_at: datetime,
    state: RunState,
    cursor: SeriesCursor | None = None,
    gx_first: bool = True,
    span: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Validate, score and write ``path`` to ``tmp`` chunk by chunk, then rename it to ``output``.

    ``state``: the run's validator and garbage collector. ``cursor`` (sequence models) checks
    the time order and carries the context between chunks. ``gx_first``: GX validates (and
    records) the first chunk even when the quick check passes it
    (:class:`~flows.steps.score.check.ChunkChecker`). ``span``: only rows ``start`` to
    ``stop - 1`` of a Parquet batch (one part, :mod:`flows.steps.score.parts`; rows are
    numbered as in the batch).
    Returns ``{"rows", "flagged", "chunks", "out_of_range_rows", "out_of_range": {feature:
    rows outside its training range}, "warnings": [GX's warning lines], "timings": {phase:
    seconds}}``.

    Raises:
        BatchRejected: bad data (nothing renamed; ``tmp`` may be left for the caller to delete).
    """
    chunk_rows = options.chunk_rows
    if cursor is not None:  # a chunk must hold the next chunk's look-ahead and a window
        chunk_rows = max(chunk_rows, SEQUENCE_CHUNK_FACTOR * max(scorer.context_rows, 1))
    normalize = scorer.normalize if table_kind(path) == "csv" else None
    loop = _ChunkLoop(scorer, cursor=cursor, state=state, scored_at=scored_at,
                      ranges=RangeCounter(range_bounds(suite)),
                      first_row=span[0] if span else 0, whole=span is None)
    writer = ScoredFileWriter(tmp, output, sha=sha, batch=path.name, model_uri=scorer.model.uri)
    checker = ChunkChecker(suite, features=scorer.features, dirs=options.dirs,
                           validator=state.validator, batch=path.name,
                           passthrough=options.passthrough_columns, gx_first=gx_first)
    reader = ChunkReader(path, chunk_rows, normalize, span)
    with contextlib.closing(writer), contextlib.closing(checker), contextlib.closing(reader):
        loop.run(reader, checker, writer)
    return {
        "rows": loop.rows,
        "flagged": loop.flagged,
        "chunks": loop.chunks,
        "out_of_range_rows": loop.ranges.rows,
        "out_of_range": dict(loop.ranges.by_column),
        "warnings": checker.warnings,
        "timings": loop.timings.rounded(),
    }
