"""A large Parquet batch scored in parts on several workers: row ranges, each part's scored
rows in a file of its own, merged into the batch's one scored file.

The batch is still claimed, recorded and archived once, by the process that split it
(:func:`flows.steps.score.batch.score_batch_in_parts`); only the chunk loop runs per part
(:func:`score_part`), on whichever worker the part is sent to. The parts are row ranges that
start on row-group boundaries when the file has enough row groups (then no worker decodes rows
it does not score); in a file of fewer row groups, a part's first row group is decoded from its
start and the rows before the part dropped. A part writes ``<scored>/<name>.part-<i>.tmp``; a
run that dies leaves only such ``.tmp`` files, which :func:`~flows.steps.score.batch.recover`
deletes like any other.

Validation is the same as for a batch scored in one piece: GX validates the first chunk of the
first part (the batch's record in Data Docs); every other chunk gets the quick check, and GX
when the quick check does not pass it. A part that finds bad data returns its rejection; the
batch is then quarantined as a whole (the first rejected part, in row order, names the reason).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from flows.io import table_kind
from flows.steps.score.chunks import row_group_starts
from flows.steps.score.loop import score_to_file
from flows.steps.score.options import ScoringOptions
from flows.steps.score.output import ScoredFileWriter
from flows.steps.score.results import BatchRejected
from flows.steps.score.scorer import BatchScorer
from flows.steps.score.state import RunState

if TYPE_CHECKING:
    import great_expectations as gx

__all__ = ["BatchPart", "PartResult", "combine_stats", "merge_parts", "part_spans", "score_part"]


@dataclass(frozen=True)
class BatchPart:
    """One row range of a claimed batch, as a worker receives it (picklable, small).

    Attributes:
        source: the batch file (the same path on every worker: shared storage).
        sha: the batch's sha256 (written into the part's metadata, as into the scored file).
        index: the part's position, 0-based; ``count`` parts in all.
        start, stop: its rows ``start`` to ``stop - 1``, numbered as in the batch.
        tmp: where its scored rows go.
        scored_at: the batch's scoring time (the same in every row of the batch).
    """

    source: Path
    sha: str
    index: int
    count: int
    start: int
    stop: int
    tmp: Path
    scored_at: datetime


@dataclass
class PartResult:
    """What scoring one part gave: its counts (``stats``, as :func:`score_to_file` returns
    them), or the rejection that sends the whole batch to quarantine."""

    index: int
    stats: dict[str, Any] | None = None
    rejection: BatchRejected | None = None


def part_spans(
    path: str | Path, part_rows: int, min_parts: int = 1
) -> list[tuple[int, int]] | None:
    """The row ranges ``(start, stop)`` a Parquet batch of more than ``part_rows`` rows is
    scored in: ``max(ceil(rows / part_rows), min_parts)`` ranges of about equal size, moved to
    the nearest row-group boundary when the file has at least as many row groups as ranges.
    None (score it in one piece): a CSV file, a smaller one, or one whose footer cannot be read
    (its reading then rejects it, as for any batch)."""
    if table_kind(Path(path)) != "parquet":
        return None
    try:
        metadata = pq.read_metadata(path)
    except Exception:
        return None
    rows = metadata.num_rows
    if rows <= part_rows:
        return None
    count = max(math.ceil(rows / part_rows), min_parts)
    cuts = [round(i * rows / count) for i in range(1, count)]
    if metadata.num_row_groups >= count:
        starts = row_group_starts(metadata)
        cuts = [min(starts, key=lambda s, c=c: abs(s - c)) for c in cuts]
    edges = sorted({0, *cuts, rows})
    spans = list(zip(edges[:-1], edges[1:], strict=True))
    return spans if len(spans) > 1 else None


def score_part(
    part: BatchPart,
    *,
    scorer: BatchScorer,
    suite: gx.ExpectationSuite,
    options: ScoringOptions,
    state: RunState,
    gx_first: bool,
) -> PartResult:
    """Validate, score and write one part to ``part.tmp`` (the chunk loop of
    :func:`~flows.steps.score.loop.score_to_file` on its rows). Bad data is returned as the
    result's ``rejection`` (the part's file removed); any other error is raised."""
    try:
        with state.collector.frozen():
            stats = score_to_file(
                part.source, tmp=part.tmp, output=part.tmp, sha=part.sha, scorer=scorer,
                suite=suite, options=options, scored_at=part.scored_at, state=state,
                gx_first=gx_first, span=(part.start, part.stop),
            )
    except BatchRejected as rejection:
        part.tmp.unlink(missing_ok=True)
        return PartResult(part.index, rejection=rejection)
    except BaseException:
        part.tmp.unlink(missing_ok=True)
        raise
    return PartResult(part.index, stats=stats)


def combine_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The counts of a batch from those of its parts (in row order): sums, the warning lines
    once each, the seconds of each phase summed over the workers."""
    out_of_range: dict[str, int] = {}
    warnings: list[str] = []
    timings: dict[str, float] = {}
    for stats in parts:
        for column, n in stats["out_of_range"].items():
            out_of_range[column] = out_of_range.get(column, 0) + n
        warnings += [w for w in stats["warnings"] if w not in warnings]
        for phase, seconds in stats["timings"].items():
            timings[phase] = round(timings.get(phase, 0.0) + seconds, 4)
    return {
        "rows": sum(s["rows"] for s in parts),
        "flagged": sum(s["flagged"] for s in parts),
        "chunks": sum(s["chunks"] for s in parts),
        "out_of_range_rows": sum(s["out_of_range_rows"] for s in parts),
        "out_of_range": out_of_range,
        "warnings": warnings,
        "timings": timings,
    }


def merge_parts(
    parts: list[BatchPart], *, tmp: Path, output: Path, batch: str, model_uri: str | None
) -> float:
    """Concatenate the parts' files (in row order, one row group after the other) into ``tmp``
    and rename it onto ``output``, as :class:`ScoredFileWriter` does for a batch scored in one
    piece. Returns the seconds it took."""
    started = time.perf_counter()
    writer = ScoredFileWriter(tmp, output, sha=parts[0].sha, batch=batch, model_uri=model_uri)
    with contextlib.closing(writer):
        for part in parts:
            with pq.ParquetFile(part.tmp) as scored:
                first_row = part.start
                for group in range(scored.num_row_groups):
                    table = scored.read_row_group(group).replace_schema_metadata(None)
                    writer.write(table, first_row)
                    first_row += table.num_rows
        writer.commit()
    return time.perf_counter() - started
