"""Reading a batch in chunks: Arrow tables of ``chunk_rows`` rows, never the whole file in memory,
the next chunk read in a thread while the current one is scored.

Parquet is read with ``pyarrow.ParquetFile.iter_batches``, CSV with
``pandas.read_csv(chunksize=...)``, which decompresses ``.csv.gz``, ``.bz2``, ``.zip``, ``.xz``
and ``.zst`` (the last needs the optional ``zstandard`` package: without it the batch is rejected
with a message naming it). A last piece shorter than half a chunk is merged into the one before,
so no chunk is tiny.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flows.io import first_line, suffixes_text, table_kind, table_stem
from flows.steps.score.results import BatchRejected

__all__ = ["ChunkReader", "iter_chunks", "rechunk", "row_group_starts"]

Normalize = Callable[[pd.DataFrame], pd.DataFrame]


def _tables(pieces: Iterable[pa.Table | pa.RecordBatch]) -> Iterator[pa.Table]:
    for piece in pieces:
        table = pa.Table.from_batches([piece]) if isinstance(piece, pa.RecordBatch) else piece
        if table.num_rows:
            yield table


def _concat(tables: list[pa.Table], first_row: int) -> pa.Table:
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise BatchRejected(
            f"column types change between rows near row {first_row:,}: {first_line(exc)}",
            stage="read",
        ) from exc


def rechunk(pieces: Iterable[pa.Table | pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``rows`` rows; a last piece under ``rows / 2`` joins the one before."""
    buffer: list[pa.Table] = []
    buffered = 0
    emitted = 0
    pending: pa.Table | None = None
    for table in _tables(pieces):
        buffer.append(table)
        buffered += table.num_rows
        while buffered >= rows:
            whole = _concat(buffer, emitted)
            chunk, rest = whole.slice(0, rows), whole.slice(rows)
            buffer, buffered = ([rest], rest.num_rows) if rest.num_rows else ([], 0)
            if pending is not None:
                yield pending
                emitted += pending.num_rows
            pending = chunk
    tail = _concat(buffer, emitted) if buffered else None
    if pending is None:
        if tail is not None:
            yield tail
    elif tail is None:
        yield pending
    elif 2 * tail.num_rows < rows:
        yield _concat([pending, tail], emitted)
    else:
        yield pending
        yield tail


def _missing_codec(path: Path, exc: ImportError) -> BatchRejected:
    """A compressed CSV whose codec's package is not installed (``zstandard`` for ``.zst``)."""
    cause = exc.__cause__ if isinstance(exc.__cause__, ImportError) else None
    package = exc.name or (cause.name if cause is not None else None) or first_line(exc)
    ending = path.name[len(table_stem(path.name)) :]
    return BatchRejected(
        f"cannot read {path.name} as CSV: {ending} files need the optional package "
        f"{package!r}, which is not installed (pip install {package})",
        stage="read",
    )


def _csv_tables(path: Path, rows: int, normalize: Normalize | None) -> Iterator[pa.Table]:
    try:
        reader = pd.read_csv(path, chunksize=rows, low_memory=False)
    except pd.errors.EmptyDataError as exc:
        raise BatchRejected(f"empty file (no columns, no rows): {path.name}", stage="read") from exc
    except ImportError as exc:
        raise _missing_codec(path, exc) from exc
    except Exception as exc:
        raise BatchRejected(
            f"cannot read {path.name} as CSV: {first_line(exc)}", stage="read"
        ) from exc
    seen = 0
    with reader:
        while True:
            try:
                frame = next(reader)
            except StopIteration:
                return
            except Exception as exc:  # parser, decoding, decompression errors mid-file
                raise BatchRejected(
                    f"cannot read {path.name} as CSV after row {seen:,}: {first_line(exc)}",
                    stage="read",
                ) from exc
            frame.columns = [str(c) for c in frame.columns]
            if normalize is not None:
                frame = normalize(frame)
            seen += len(frame)
            yield pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)


def row_group_starts(metadata: pq.FileMetaData) -> list[int]:
    """The first row of each row group of a Parquet file, and its number of rows at the end."""
    starts = [0]
    for i in range(metadata.num_row_groups):
        starts.append(starts[-1] + metadata.row_group(i).num_rows)
    return starts


def _parquet_tables(path: Path, rows: int, span: tuple[int, int] | None) -> Iterator[pa.Table]:
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise BatchRejected(
            f"cannot read {path.name} as Parquet: {first_line(exc)}", stage="read"
        ) from exc
    with pf:
        if pf.metadata.num_rows == 0:
            raise BatchRejected(f"empty file (0 rows): {path.name}", stage="read")
        start, stop = span or (0, pf.metadata.num_rows)
        # only the row groups that hold rows of the span are read; rows of the first one
        # before the span are decoded and dropped
        starts = row_group_starts(pf.metadata)
        groups = [i for i in range(pf.metadata.num_row_groups)
                  if starts[i] < stop and starts[i + 1] > start]
        seen = starts[groups[0]] if groups else stop
        batches = pf.iter_batches(batch_size=rows, row_groups=groups)
        while seen < stop:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception as exc:  # a corrupt page or row group
                raise BatchRejected(
                    f"cannot read {path.name} as Parquet after row {seen:,}: {first_line(exc)}",
                    stage="read",
                ) from exc
            first = seen
            seen += batch.num_rows
            if seen <= start:
                continue
            batch = batch.slice(max(0, start - first), min(seen, stop) - max(first, start))
            yield pa.Table.from_batches([batch]).replace_schema_metadata(None)


def iter_chunks(
    path: str | Path,
    chunk_rows: int,
    normalize: Normalize | None = None,
    span: tuple[int, int] | None = None,
) -> Iterator[pa.Table]:
    """The rows of a CSV or Parquet batch as Arrow tables of ``chunk_rows`` rows (the last one up
    to 1.5 x ``chunk_rows``); never the whole file in memory.

    ``normalize`` is applied to each CSV chunk (as a DataFrame) before it becomes a table.
    ``span``: only rows ``start`` to ``stop - 1`` of a Parquet batch (one part of it,
    :mod:`flows.steps.score.parts`); None: all of them.

    Raises:
        BatchRejected: missing, empty, unreadable or corrupt file (stage ``read``).
    """
    path = Path(path)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    kind = table_kind(path)
    if kind is None:
        raise BatchRejected(
            f"not a batch file: {path.name} (expected {suffixes_text()})", stage="read"
        )
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise BatchRejected(f"file not found: {path}", stage="read") from exc
    if size == 0:
        raise BatchRejected(f"empty file (0 bytes): {path.name}", stage="read")
    if span is not None and kind == "csv":
        raise ValueError("only Parquet batches are read in parts (span)")
    pieces = (
        _csv_tables(path, chunk_rows, normalize) if kind == "csv"
        else _parquet_tables(path, chunk_rows, span)
    )
    emitted = 0
    for chunk in rechunk(pieces, chunk_rows):
        emitted += chunk.num_rows
        yield chunk
    if emitted == 0:
        raise BatchRejected(
            f"empty file (a header but 0 rows): {path.name}"
            if kind == "csv"
            else f"empty file (0 rows): {path.name}",
            stage="read",
        )


def _read_ahead(items: Iterator[pa.Table], reader: ThreadPoolExecutor) -> Iterator[pa.Table]:
    """The items of ``items``, the next one being read in ``reader`` (one thread) while the
    caller works on the current one: decoding Parquet or parsing CSV releases the GIL. A read
    error is raised here, in the caller's thread, in its place in the sequence."""
    pending = reader.submit(next, items, None)
    try:
        while True:
            item = pending.result()
            if item is None:
                return
            pending = reader.submit(next, items, None)
            yield item
    finally:
        with contextlib.suppress(Exception):  # a generator cannot be closed while it runs
            pending.result()
        items.close()


def _with_next(items: Iterator[pa.Table]) -> Iterator[tuple[pa.Table, pa.Table | None]]:
    """``(item, next item or None)`` pairs, one item ahead."""
    try:
        previous = next(items)
    except StopIteration:
        return
    try:
        for item in items:
            yield previous, item
            previous = item
        yield previous, None
    finally:
        items.close()


class ChunkReader:
    """The chunks of one batch (:func:`iter_chunks`) as ``(chunk, next chunk or None)`` pairs,
    the chunk after them being read in a thread meanwhile. :meth:`close` stops the reading and
    ends the thread."""

    def __init__(
        self,
        path: Path,
        chunk_rows: int,
        normalize: Normalize | None = None,
        span: tuple[int, int] | None = None,
    ) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-reader")
        chunks = iter_chunks(path, chunk_rows, normalize, span)
        self._pairs = _with_next(_read_ahead(chunks, self._pool))

    def next(self) -> tuple[pa.Table, pa.Table | None] | None:
        """The next pair, or None after the last chunk.

        Raises:
            BatchRejected: the file cannot be read (from :func:`iter_chunks`).
        """
        return next(self._pairs, None)

    def close(self) -> None:
        self._pairs.close()
        self._pool.shutdown(wait=True)
