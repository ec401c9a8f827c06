"""The drift reference of a model version: a bounded, reproducible sample of its training split.

The register stage writes it (:func:`write_drift_reference`) to
``<data.snapshot_dir>/drift_reference.parquet`` (:attr:`flows.layout.Layout.drift_reference`) and
logs it with the version's run as ``reports/drift_reference.parquet``
(:data:`flows.registry.DRIFT_REFERENCE_ARTIFACT`). The data-quality report downloads the reference
of each scored batch's model version (:func:`flows.registry.fetch_references`, cached at
``<data.snapshot_dir>/references/<version>.parquet``) and measures drift against it, so the report
never reads the working copy's training split, which the next training may replace.

The file holds the training split's feature columns (the columns ``split.json`` lists, dtypes
kept), every kind of row (labelled anomalies included, because scored batches hold anomalies
too): at most :data:`REFERENCE_ROWS` rows drawn without replacement with the seed
:data:`REFERENCE_SEED` (:func:`sample_parquet`; all rows when the split has fewer), in the split's
order. Its Parquet schema metadata :data:`REFERENCE_METADATA_KEY` (JSON) records::

    format            1
    source            the training split it was drawn from (relative to the project root)
    snapshot_sha256   the snapshot the split was made from (from split.json; None if unknown)
    training_rows     rows of that split
    rows              rows kept (= the file's rows)
    seed, max_rows    REFERENCE_SEED, REFERENCE_ROWS
    features          the feature columns, in order
    registered_model  (in the report's cached copy only) name, version, run_id, artifact
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flows.columns import feature_columns
from flows.config import Params
from flows.io import atomic_save, unlink_quietly
from flows.layout import Layout

__all__ = [
    "REFERENCE_FORMAT",
    "REFERENCE_METADATA_KEY",
    "REFERENCE_ROWS",
    "REFERENCE_SEED",
    "read_drift_reference",
    "reference_metadata",
    "restamp_reference",
    "sample_parquet",
    "write_drift_reference",
    "write_reference_file",
]

_log = logging.getLogger(__name__)

#: Rows of the training split kept in a reference (a bounded file: 20,000 rows of a dozen float
#: features is about 2 MB), and the seed of the draw (the same split gives the same file).
REFERENCE_ROWS = 20_000
REFERENCE_SEED = 0
REFERENCE_FORMAT = 1
#: The Parquet schema metadata key holding the reference's description (JSON).
REFERENCE_METADATA_KEY = b"anomaly.drift_reference"


# ============================================================================ sampling
def sample_parquet(
    path: str | Path, columns: Sequence[str], k: int, rng: np.random.Generator
) -> pd.DataFrame:
    """``k`` rows drawn without replacement (all rows when the file has at most ``k``) of the
    ``columns`` of a Parquet file present in it, read batch by batch: memory stays ~``k`` rows
    however large the file. The draw depends only on ``rng``'s state (reproducible)."""
    with pq.ParquetFile(path) as pf:
        present = [c for c in columns if c in pf.schema_arrow.names]
        n = pf.metadata.num_rows
        if k >= n:
            return pf.read(columns=present).to_pandas()
        wanted = np.sort(rng.choice(n, size=k, replace=False))
        pieces: list[pa.Table] = []
        offset = 0
        for batch in pf.iter_batches(columns=present, batch_size=65_536):
            lo, hi = np.searchsorted(wanted, [offset, offset + batch.num_rows])
            if hi > lo:
                taken = batch.take(pa.array(wanted[lo:hi] - offset))
                pieces.append(pa.Table.from_batches([taken]))
            offset += batch.num_rows
            if hi == wanted.size:
                break
    if not pieces:
        return pd.DataFrame(columns=present)
    return pa.concat_tables(pieces).to_pandas()


# ============================================================================ the file format
def _with_metadata(table: pa.Table, meta: Mapping[str, Any]) -> pa.Table:
    extra = {REFERENCE_METADATA_KEY: json.dumps(dict(meta), sort_keys=True).encode("utf-8")}
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})


def _parse_metadata(metadata: Mapping[bytes, bytes] | None, path: str | Path) -> dict[str, Any]:
    raw = (metadata or {}).get(REFERENCE_METADATA_KEY)
    if raw is None:
        raise ValueError(
            f"{path} is not a drift reference (no {REFERENCE_METADATA_KEY.decode()} "
            "in its Parquet metadata)"
        )
    meta = json.loads(raw.decode("utf-8"))
    if not isinstance(meta, dict) or not isinstance(meta.get("features"), list):
        raise ValueError(f"{path}: malformed drift reference metadata {raw[:200]!r}")
    return meta


def write_reference_file(frame: pd.DataFrame, meta: Mapping[str, Any], path: Path) -> Path:
    """Write ``frame`` (no index) with ``meta`` as its reference metadata, atomically."""
    table = _with_metadata(pa.Table.from_pandas(frame, preserve_index=False), meta)
    return atomic_save(path, lambda tmp: pq.write_table(table, tmp))


def reference_metadata(path: str | Path) -> dict[str, Any]:
    """The reference metadata of the file at ``path`` (its schema only is read).

    Raises:
        ValueError: not a drift reference. OSError / pyarrow errors: unreadable file.
    """
    return _parse_metadata(pq.read_schema(path).metadata, path)


def read_drift_reference(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(the reference's rows, its metadata); only the columns the metadata lists as features.

    Raises:
        ValueError: not a drift reference, or a listed feature is not in it. OSError / pyarrow
            errors: unreadable file.
    """
    table = pq.read_table(path)
    meta = _parse_metadata(table.schema.metadata, path)
    missing = [f for f in meta["features"] if f not in table.column_names]
    if missing:
        raise ValueError(f"{path}: the drift reference lacks its feature column(s) {missing}")
    return table.select(meta["features"]).to_pandas(), meta


def restamp_reference(src: str | Path, dst: Path, **extra: Any) -> Path:
    """Copy the reference ``src`` to ``dst`` with ``extra`` added to its metadata (the rows are
    copied as they are), atomically.

    Raises:
        ValueError: ``src`` is not a drift reference. OSError / pyarrow errors: unreadable.
    """
    table = pq.read_table(src)
    meta = {**_parse_metadata(table.schema.metadata, src), **extra}
    table = _with_metadata(table, meta)
    return atomic_save(dst, lambda tmp: pq.write_table(table, tmp))


# ============================================================================ the step
def _split_meta(layout: Layout) -> dict[str, Any]:
    try:
        meta = json.loads(layout.split_meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _features(params: Params, split: Path, split_meta: Mapping[str, Any]) -> list[str]:
    """The model's input columns: those ``split.json`` lists (what ingest chose), else the
    numeric non-label columns of the split's first rows (:func:`flows.columns.feature_columns`)."""
    with pq.ParquetFile(split) as pf:
        names = pf.schema_arrow.names
        listed = split_meta.get("feature_columns")
        if isinstance(listed, list) and listed:
            return [str(c) for c in listed if c in names]
        head = next(pf.iter_batches(batch_size=1_000), None)
        frame = (
            pa.Table.from_batches([head]).to_pandas()
            if head is not None
            else pf.schema_arrow.empty_table().to_pandas()
        )
    return feature_columns(frame, params, source=str(split))


def write_drift_reference(params: Params, root: str | Path) -> Path | None:
    """Write the drift reference of the training split (see the module docstring) to
    ``<data.snapshot_dir>/drift_reference.parquet``; returns its path.

    Without a training split there is nothing to sample: an earlier reference is deleted (it
    describes another split and must not be logged with this model), a warning says the version
    will have no drift reference, and None is returned.

    Raises:
        DataError: the split has no numeric feature column.
    """
    layout = Layout.of(params, root)
    split, out = layout.split("train"), layout.drift_reference
    if not split.is_file():
        unlink_quietly(out)
        _log.warning(
            "no training split at %s: this model version gets no drift reference, so "
            "the data-quality report will not measure drift for its batches",
            split,
        )
        return None
    split_meta = _split_meta(layout)
    features = _features(params, split, split_meta)
    n = pq.read_metadata(split).num_rows
    sample = sample_parquet(
        split, features, min(REFERENCE_ROWS, n), np.random.default_rng(REFERENCE_SEED)
    )
    meta = {
        "format": REFERENCE_FORMAT,
        "source": layout.relative(split),
        "snapshot_sha256": split_meta.get("snapshot_sha256"),
        "training_rows": int(n),
        "rows": len(sample),
        "seed": REFERENCE_SEED,
        "max_rows": REFERENCE_ROWS,
        "features": features,
    }
    write_reference_file(sample[features], meta, out)
    _log.info(
        "drift reference: %d of the %d rows of %s -> %s",
        len(sample),
        n,
        layout.relative(split),
        layout.relative(out),
    )
    return out
