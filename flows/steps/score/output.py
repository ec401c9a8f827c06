"""The scored file: each chunk's score and model columns, its Parquet encodings, and the writer
that writes chunks behind the scoring thread and renames the finished file into place.

``<scored_dir>/<stem>.parquet`` = the input columns + ``anomaly_score``, ``is_anomaly``,
``contribution_<feature>`` + ``model_name``, ``model_version``, ``model_alias``, ``scored_at``
(UTC). It is written to ``<stem>.parquet.tmp`` and renamed with ``os.replace``, so
``<stem>.parquet`` is always complete; its key-value metadata records the batch's sha256
(:data:`META_SHA`), so a rerun after a crash knows the file as its own.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flows.io import first_line, fsync_dir
from flows.steps.score.results import BatchRejected
from flows.steps.score.scorer import ModelRef

__all__ = [
    "META_BATCH",
    "META_MODEL",
    "META_SHA",
    "MODEL_COLUMNS",
    "ScoredFileWriter",
    "conform",
    "output_sha",
    "score_columns",
]

MODEL_COLUMNS = ("model_name", "model_version", "model_alias", "scored_at")
#: Parquet key-value metadata of a scored file
META_SHA = b"anomaly.batch_sha256"
META_BATCH = b"anomaly.batch_name"
META_MODEL = b"anomaly.model_uri"


def score_columns(
    table: pa.Table, scores: pd.DataFrame, model: ModelRef, scored_at: datetime
) -> pa.Table:
    """``table`` (n rows) + the ``scores`` columns (n rows; ``is_anomaly`` as int64) + the
    constant model columns :data:`MODEL_COLUMNS` (``scored_at`` in microseconds, UTC)."""
    n = table.num_rows
    columns = list(table.columns)
    names = list(table.column_names)
    for name in scores.columns:
        values = scores[name].to_numpy()
        if name == "is_anomaly":
            values = values.astype("int64")
        columns.append(pa.array(values))
        names.append(str(name))
    stamp = int(scored_at.timestamp() * 1_000_000)
    columns += [  # constant columns: pa.repeat builds them without Python objects per row
        pa.repeat(pa.scalar(model.name, type=pa.string()), n),
        pa.repeat(pa.scalar(int(model.version), type=pa.int64()), n),
        pa.repeat(pa.scalar(model.alias or "", type=pa.string()), n),
        pa.repeat(pa.scalar(stamp, type=pa.timestamp("us", tz="UTC")), n),
    ]
    names += list(MODEL_COLUMNS)
    return pa.Table.from_arrays(columns, names=names)


def _dictionary_columns(table: pa.Table) -> list[str]:
    """Columns worth Parquet dictionary encoding: text-like ones. Floats (scores,
    contributions, most features) almost never repeat, and trying costs 4x the write time."""
    return [
        f.name
        for f in table.schema
        if pa.types.is_string(f.type)
        or pa.types.is_large_string(f.type)
        or pa.types.is_dictionary(f.type)
        or pa.types.is_boolean(f.type)
    ]


def _float_columns(table: pa.Table) -> list[str]:
    """Columns written with Parquet's BYTE_STREAM_SPLIT encoding: floats. Scores and
    contributions are float32 numbers held as float64, so their low bytes are zeros that
    compress well once split into streams: files ~25 % smaller and faster to write than with
    plain encoding."""
    return [
        f.name for f in table.schema if pa.types.is_float32(f.type) or pa.types.is_float64(f.type)
    ]


def conform(table: pa.Table, schema: pa.Schema, first_row: int) -> pa.Table:
    """``table`` cast to the file's ``schema`` (a later chunk of a CSV may read other types).

    Raises:
        BatchRejected: a column whose type cannot be cast (stage ``read``), naming it.
    """
    if table.schema.equals(schema, check_metadata=False):
        return table
    try:
        return table.cast(schema.remove_metadata()).replace_schema_metadata(schema.metadata)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError) as exc:
        changed = [
            f"{f.name!r} ({schema.field(f.name).type} before, {f.type} here)"
            for f in table.schema
            if f.name in schema.names and schema.field(f.name).type != f.type
        ]
        raise BatchRejected(
            f"column types change from row {first_row:,} on: {', '.join(changed) or 'columns'}; "
            f"make them consistent or send the batch as Parquet ({first_line(exc)})",
            stage="read",
        ) from exc


def output_sha(path: Path) -> str | None:
    """The batch sha256 recorded in a scored file's metadata (None: not a scored file)."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception:
        return None
    value = meta.get(META_SHA)
    return value.decode() if value else None


class ScoredFileWriter:
    """Writes the scored chunks of one batch to ``tmp`` and renames it onto ``output``.

    Each :meth:`write` hands the chunk to one writer thread (pyarrow releases the GIL) and
    returns once the previous chunk is written: at most one write is pending, and a write error
    surfaces in the scoring thread. The file's schema is the first chunk's, with the batch's
    metadata; later chunks are cast to it (:func:`conform`). :meth:`close` waits for the pending
    write and closes the file (without renaming it: that is :meth:`commit`).
    """

    def __init__(self, tmp: Path, output: Path, *, sha: str, batch: str, model_uri: str | None):
        self.tmp = tmp
        self.output = output
        self.batch = batch
        self.metadata = {META_SHA: sha.encode(), META_BATCH: batch.encode(),
                         META_MODEL: (model_uri or "").encode()}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-writer")
        self._writer: pq.ParquetWriter | None = None
        self._pending: Future[None] | None = None

    def write(self, table: pa.Table, first_row: int) -> None:
        """Queue ``table`` (rows from ``first_row`` on) for writing."""
        if self._writer is None:
            self.tmp.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(
                self.tmp,
                table.schema.with_metadata(self.metadata),
                use_dictionary=_dictionary_columns(table),
                use_byte_stream_split=_float_columns(table),
            )
        else:
            table = conform(table, self._writer.schema, first_row)
        self.wait()
        self._pending = self._pool.submit(self._writer.write_table, table)

    def wait(self) -> None:
        """Wait for the pending write; its error, if any, is raised here."""
        if self._pending is not None:
            done, self._pending = self._pending, None
            done.result()

    def commit(self) -> None:
        """Close the file, fsync it and rename it onto ``output`` (durably)."""
        self.wait()
        if self._writer is None:  # iter_chunks raises for empty files; defensive
            raise BatchRejected(f"empty file: {self.batch}", stage="read")
        self._writer.close()
        self._writer = None
        with open(self.tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.output)
        fsync_dir(self.output.parent)

    def close(self) -> None:
        """Wait for the pending write (a failure elsewhere: let it end first) and close."""
        if self._pending is not None:
            with contextlib.suppress(Exception):
                self._pending.result()
            self._pending = None
        self._pool.shutdown(wait=True)
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
