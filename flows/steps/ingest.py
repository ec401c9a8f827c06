"""Step 1, ingest: read the source, write an immutable snapshot with a content hash, split it.

Outputs (paths from ``params.data``)::

    <snapshot_dir>/snapshot.parquet   the source as read (every column, every row)
    <snapshot_dir>/snapshot.json      source, rows, columns and dtypes, sha256 of the content
    <split_dir>/train.parquet         60 % (default) - ALL train rows, label column included
    <split_dir>/validation.parquet    20 %
    <split_dir>/test.parquet          20 %
    <split_dir>/split.json            feature columns, sizes, anomaly rates, seed, snapshot hash

The split files hold the timestamp column (when set), the feature columns and the label column
(when set), in the source's column order; other columns stay in the snapshot only.

**Training uses normal rows only**: ``train.parquet`` keeps every train row, anomalies included, so
that later steps can report on them; whoever fits a model filters them out with
:func:`normal_rows` (``label == 0``). Without a label column every row counts as normal.

The split follows the benchmark protocol (``../shared/BENCHMARK.md``): scikit-learn's
``train_test_split`` first takes off the training part (``1 - validation - test``), then divides
the rest into validation and test, both stratified on the label when there is one, with
``random_state = split.seed``. With ``data.timestamp_column`` the rows are sorted by time and cut
into contiguous blocks instead (oldest = train, newest = test), without shuffling.

**Sequence kinds** (``model.kind: lstm_autoencoder``): the data is one ordered series (rows =
time points, ``data.feature_columns`` = channels) and ``data.timestamp_column`` is required
(:class:`~flows.config.ConfigError` naming it otherwise). Ingest then

* sorts unsorted rows by time (stable; ``split.json`` records ``sorted_by_ingest``);
* rejects duplicated timestamps, naming the first duplicates and their source rows;
* rejects NaN / infinite values in a value column, naming the column, the first times and rows;
* finds gaps, steps larger than ``data.gap_factor`` times the median step: ``data.on_gap:
  error`` rejects them (naming the first gaps), ``warn`` logs them, lists them in ``split.json``
  (``sequence.gaps``) and the series is scored across them as if contiguous;
* rejects a split shorter than ``model.window`` points, naming the split, its length and window.

Every problem with the input raises :class:`DataError` naming the problem and the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flows.columns import (
    check_label,
    check_timestamp,
    feature_columns,
    normal_rows,
    require_timestamp_column,
)
from flows.config import Params
from flows.errors import DataError
from flows.io import atomic_write_json, atomic_write_parquet, read_table, resolve, table_kind
from flows.layout import Layout

__all__ = [
    "BUILTIN_SOURCES",
    "IngestResult",
    "content_hash",
    "ingest",
    "read_source",
]

log = logging.getLogger(__name__)

HASH_METHOD = "sha256 over column names + dtypes and pandas.util.hash_pandas_object(index=False)"

# builtin:<name> -> (package, resource path inside it, description)
BUILTIN_SOURCES: dict[str, tuple[str, str, str]] = {
    "shuttle": (
        "river",
        "datasets/shuttle.csv.gz",
        "Statlog Shuttle (ODDS form) shipped in the river package, BSD-3",
    ),
}

@dataclass(frozen=True)
class IngestResult:
    """What :func:`ingest` wrote, and its metrics."""

    snapshot_path: Path
    snapshot_meta_path: Path
    train_path: Path
    validation_path: Path
    test_path: Path
    split_meta_path: Path
    sha256: str
    feature_columns: list[str]
    label_column: str | None
    timestamp_column: str | None
    metrics: dict[str, float | int] = field(default_factory=dict)

    @property
    def split_paths(self) -> dict[str, Path]:
        return {
            "train": self.train_path,
            "validation": self.validation_path,
            "test": self.test_path,
        }


def content_hash(df: pd.DataFrame) -> str:
    """SHA-256 of a frame's content: column names, dtypes and values, row order included.

    Computed from the data (``pandas.util.hash_pandas_object``), not from file bytes, so it does
    not depend on the file format or the Parquet writer's version.
    """
    h = hashlib.sha256()
    header = [[str(c), str(t)] for c, t in zip(df.columns, df.dtypes, strict=True)]
    h.update(json.dumps(header).encode())
    h.update(str(len(df)).encode())
    if len(df.columns) and len(df):
        h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- reading
def _builtin(name: str) -> tuple[pd.DataFrame, str]:
    if name not in BUILTIN_SOURCES:
        raise DataError(
            f"unknown built-in data set 'builtin:{name}' (data.source); "
            f"available: {', '.join('builtin:' + n for n in BUILTIN_SOURCES)}"
        )
    package, resource, _ = BUILTIN_SOURCES[name]
    try:
        ref = resources.files(package).joinpath(resource)
    except ModuleNotFoundError as exc:
        raise DataError(
            f"builtin:{name} is read from the '{package}' package, which is not installed "
            f"(pip install {package})"
        ) from exc
    with resources.as_file(ref) as path:
        if not Path(path).is_file():
            raise DataError(f"builtin:{name}: {resource} is missing from the '{package}' package")
        return read_table(path), f"{package}:{resource}"


def read_source(source: str, root: Path) -> tuple[pd.DataFrame, list[str]]:
    """Read ``data.source``: ``builtin:<name>``, a CSV/Parquet file, or a folder of them.

    A folder's CSV/Parquet files (hidden files and other types are skipped) are concatenated in
    sorted name order; they must all have the same columns. Returns the frame and the list of
    files read (as shown in error messages and metadata).
    """
    if source.startswith("builtin:"):
        df, where = _builtin(source.removeprefix("builtin:"))
        return df, [where]
    path = resolve(root, source)
    if not path.exists():
        raise DataError(f"data file not found: {path} (data.source = {source!r})")
    if path.is_file():
        return read_table(path), [str(path)]
    files = sorted(
        p
        for p in path.iterdir()
        if p.is_file() and not p.name.startswith((".", "_")) and table_kind(p) is not None
    )
    if not files:
        raise DataError(f"no CSV or Parquet files in folder {path} (data.source = {source!r})")
    frames = []
    first_cols: list[str] = []
    for i, f in enumerate(files):
        df = read_table(f)
        if i == 0:
            first_cols = list(df.columns)
        elif set(df.columns) != set(first_cols):
            missing = [c for c in first_cols if c not in df.columns]
            extra = [c for c in df.columns if c not in first_cols]
            raise DataError(
                f"{f}: columns differ from those of {files[0].name} (all files in {path} must "
                f"have the same columns): missing {missing}, unexpected {extra}"
            )
        frames.append(df[first_cols])
    return pd.concat(frames, ignore_index=True), [str(f) for f in files]


# --------------------------------------------------------------------------- series
def _rows_text(rows: Iterable[Any]) -> str:
    return ", ".join(str(int(r)) for r in rows)


def _describe_gaps(times: pd.Series, rows: pd.Index, at: np.ndarray) -> list[dict[str, Any]]:
    """``[{"after": t0, "before": t1, "step": ..., "position": i, "rows": [r0, r1]}, ...]``."""
    out = []
    for i in at:
        out.append(
            {
                "position": int(i),
                "after": str(times.iloc[i - 1]),
                "before": str(times.iloc[i]),
                "step": str(times.iloc[i] - times.iloc[i - 1]),
                "rows": [int(rows[i - 1]), int(rows[i])],
            }
        )
    return out


def _check_series(
    frame: pd.DataFrame, params: Params, features: list[str], ts: str, source: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Sort the series by time and check it (duplicates, NaN, gaps); returns the sorted frame
    (index = the source row of each point) and what split.json records about it."""
    data = params.data
    was_sorted = bool(frame[ts].is_monotonic_increasing)
    series = frame.loc[frame[ts].sort_values(kind="mergesort").index]
    if not was_sorted:
        log.warning("the rows of %s are not in time order: sorted by %r", source, ts)
    times = series[ts]
    rows = series.index  # source rows, 0-based, header not counted

    dup = times.duplicated(keep=False).to_numpy()
    if dup.any():
        groups = []
        for value, group in series.index[dup].to_series().groupby(times[dup].to_numpy(), sort=True):
            groups.append(f"{value} at rows {_rows_text(group.to_numpy())}")
            if len(groups) == 3:
                break
        n_values = int(times[dup].nunique())
        raise DataError(
            f"timestamp column {ts!r} in {source} has {n_values} duplicated timestamp(s) "
            f"({int(dup.sum())} rows); first: {'; '.join(groups)} (source rows, 0-based, header "
            "not counted). A series needs one row per time point: drop or aggregate the "
            "duplicates"
        )

    values = series[features].to_numpy(dtype="float64", na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        counts = {c: int(bad[:, j].sum()) for j, c in enumerate(features) if bad[:, j].any()}
        first = np.flatnonzero(bad.any(axis=1))[:3]
        where = "; ".join(f"{times.iloc[i]} (row {int(rows[i])})" for i in first)
        kinds = "NaN" if not np.isinf(values).any() else "NaN or infinite"
        raise DataError(
            f"value column(s) {list(counts)} in {source} hold {kinds} values "
            f"({', '.join(f'{c}: {k}' for c, k in counts.items())}), first at {where}. A series "
            "may not have missing values (a window containing one has no meaningful score): "
            "fill them, e.g. by interpolation, before training"
        )

    steps = times.diff().iloc[1:]
    gaps: list[dict[str, Any]] = []
    median = None
    if len(steps):
        median = steps.median()
        if isinstance(median, float) and median.is_integer():
            median = int(median)  # numeric timestamps: 10, not 10.0
        at = np.flatnonzero((steps > steps.median() * data.gap_factor).to_numpy()) + 1
        gaps = _describe_gaps(times, rows, at)
    if gaps:
        shown = "; ".join(
            f"{g['step']} between {g['after']} and {g['before']} (rows {g['rows'][0]} and "
            f"{g['rows'][1]})"
            for g in gaps[:3]
        )
        text = (
            f"{len(gaps)} gap(s) in the series of {source}: step(s) larger than "
            f"data.gap_factor={data.gap_factor:g} x the median step {median}; first: {shown}"
        )
        if data.on_gap == "error":
            raise DataError(
                f"{text}. Windows across a gap join unrelated points: fill or resample the "
                "series, raise data.gap_factor, or set data.on_gap: warn to score across gaps"
            )
        log.warning("%s; data.on_gap is warn: scoring across them as if contiguous", text)
    record = {
        "sorted_by_ingest": not was_sorted,
        "window": params.model.window,
        "median_step": None if median is None else str(median),
        "gap_factor": data.gap_factor,
        "on_gap": data.on_gap,
        "gaps": gaps,
    }
    return series, record


def _check_split_lengths(splits: dict[str, pd.DataFrame], window: int, source: str) -> None:
    for name, part in splits.items():
        if len(part) < window:
            fix = (
                "lower split.validation_fraction / split.test_fraction"
                if name == "train"
                else f"raise split.{name}_fraction"
            )
            sizes = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
            raise DataError(
                f"the {name} split of {source} has {len(part)} points, fewer than "
                f"model.window={window}: no window fits in it (splits: {sizes} points). Use a "
                f"longer series, a smaller model.window, or {fix}"
            )


# --------------------------------------------------------------------------- split
def _split_once(
    df: pd.DataFrame, test_size: float, seed: int, label: str | None
) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    from sklearn.model_selection import train_test_split

    if label is not None and df[label].nunique() > 1:
        try:
            a, b = train_test_split(df, test_size=test_size, random_state=seed, stratify=df[label])
            return a, b, True
        except ValueError:
            pass  # a class too small to stratify on: fall back to a plain random split
    a, b = train_test_split(df, test_size=test_size, random_state=seed)
    return a, b, False


def _split(
    df: pd.DataFrame, params: Params, label: str | None, ts: str | None, source: str
) -> tuple[dict[str, pd.DataFrame], bool]:
    val_f, test_f = params.split.validation_fraction, params.split.test_fraction
    n = len(df)
    plan = f"{1 - val_f - test_f:.0%}/{val_f:.0%}/{test_f:.0%} train/validation/test split"
    if ts is not None:
        order = df[ts].sort_values(kind="mergesort").index
        df = df.loc[order]
        n_val, n_test = round(n * val_f), round(n * test_f)
        n_train = n - n_val - n_test
        if min(n_train, n_val, n_test) < 1:
            raise DataError(f"too few rows in {source} for a {plan}: {n} row(s)")
        parts = {
            "train": df.iloc[:n_train],
            "validation": df.iloc[n_train : n_train + n_val],
            "test": df.iloc[n_train + n_val :],
        }
        return {k: v.reset_index(drop=True) for k, v in parts.items()}, False
    try:
        if n < 3:
            raise ValueError(f"{n} row(s) cannot make three non-empty parts")
        train, rest, strat1 = _split_once(df, round(val_f + test_f, 12), params.split.seed, label)
        val, test, strat2 = _split_once(
            rest, round(test_f / (val_f + test_f), 12), params.split.seed, label
        )
    except ValueError as exc:
        raise DataError(f"too few rows in {source} for a {plan}: {n} row(s) ({exc})") from exc
    parts = {"train": train, "validation": val, "test": test}
    empty = [k for k, v in parts.items() if len(v) == 0]
    if empty:
        raise DataError(f"too few rows in {source} for a {plan}: {n} row(s) leave {empty} empty")
    return {k: v.reset_index(drop=True) for k, v in parts.items()}, strat1 and strat2


# --------------------------------------------------------------------------- the step
def _source_text(source: str, files: list[str]) -> str:
    """How messages name the data read: the built-in set, the one file, or the folder."""
    if source.startswith("builtin:"):
        return f"{source} ({files[0]})"
    return files[0] if len(files) == 1 else f"{source} ({len(files)} files)"


@dataclass(frozen=True)
class _CheckedTable:
    """The columns the split keeps (timestamp, features, label), checked and converted."""

    frame: pd.DataFrame
    features: list[str]
    label: str | None
    timestamp: str | None
    series_record: dict[str, Any] | None  # sequence kinds: sorting and gaps found


def _checked_table(raw: pd.DataFrame, params: Params, source: str) -> _CheckedTable:
    """Pick and check the feature, label and time columns of ``raw`` (and the series rules)."""
    label, ts = params.data.label_column, require_timestamp_column(params)
    features = feature_columns(raw, params, source)
    empty = [c for c in features if raw[c].isna().all()]
    if empty:
        raise DataError(
            f"feature column {empty[0]!r} in {source} has no values (all NaN)"
            + (f"; also all-NaN: {empty[1:]}" if len(empty) > 1 else "")
        )
    frame = raw.copy()
    if label is not None:
        frame[label] = check_label(raw, label, source)
    if ts is not None:
        frame[ts] = check_timestamp(raw, ts, source)
    keep = set(features) | {c for c in (label, ts) if c is not None}
    frame = frame[[c for c in raw.columns if c in keep]]
    series_record: dict[str, Any] | None = None
    if params.model.is_sequence and ts is not None:
        frame, series_record = _check_series(frame, params, features, ts, source)
    return _CheckedTable(frame, features, label, ts, series_record)


def _write_snapshot(
    raw: pd.DataFrame, files: list[str], source: str, layout: Layout
) -> tuple[Path, str]:
    """Write the source as read and its metadata; returns the metadata path and the hash."""
    sha = content_hash(raw)
    meta = {
        "source": source,
        "files": files if source.startswith("builtin:") else [layout.relative(f) for f in files],
        "rows": len(raw),
        "columns": [{"name": c, "dtype": str(t)} for c, t in raw.dtypes.items()],
        "sha256": sha,
        "hash_method": HASH_METHOD,
    }
    atomic_write_parquet(raw, layout.snapshot)
    return atomic_write_json(meta, layout.snapshot_meta), sha


def _split_metrics(
    table: _CheckedTable, splits: dict[str, pd.DataFrame], stratified: bool
) -> dict[str, float | int]:
    """Rows, features and anomaly rates of the data and of each split (logged to MLflow)."""
    label, frame = table.label, table.frame
    metrics: dict[str, float | int] = {"rows": len(frame), "n_features": len(table.features)}
    if label is not None:
        metrics["anomaly_rate"] = float(frame[label].mean())
    for name, part in splits.items():
        metrics[f"{name}_rows"] = len(part)
        if label is not None:
            metrics[f"{name}_anomaly_rate"] = float(part[label].mean())
    metrics["train_normal_rows"] = len(normal_rows(splits["train"], label))
    if label is not None:
        metrics["stratified"] = int(stratified)
    if table.series_record is not None:
        metrics["gaps"] = len(table.series_record["gaps"])
        metrics["sorted_by_ingest"] = int(table.series_record["sorted_by_ingest"])
    return metrics


def _split_meta(
    params: Params, table: _CheckedTable, sha: str, stratified: bool, layout: Layout,
    metrics: dict[str, float | int],
) -> dict[str, Any]:
    """The content of ``split.json``: where the split came from and how it was made."""
    split_meta = {
        "snapshot_sha256": sha,
        "source": params.data.source,
        "feature_columns": table.features,
        "label_column": table.label,
        "timestamp_column": table.timestamp,
        "seed": params.split.seed,
        "validation_fraction": params.split.validation_fraction,
        "test_fraction": params.split.test_fraction,
        "method": "time-ordered contiguous" if table.timestamp is not None else "train_test_split",
        "stratified": bool(stratified),
        "files": {name: layout.relative(p) for name, p in layout.splits.items()},
        "metrics": metrics,
        "note": "train.parquet holds every train row; fit detectors on label == 0 rows only",
    }
    if table.series_record is not None:
        split_meta["sequence"] = table.series_record
        split_meta["note"] = (
            "a series: train.parquet holds every train point; the sequence detector trains on "
            "the whole train series (contiguous windows), its scaling on the label == 0 points"
        )
    return split_meta


def ingest(params: Params, root: Path) -> IngestResult:
    """Read ``data.source``, check it, write the snapshot and the train/validation/test split.

    All checks run before anything is written, so bad input leaves the previous outputs alone.

    Raises:
        DataError: missing/empty/unreadable file, no numeric feature columns, a non-numeric or
            all-NaN feature column, a missing or non-0/1 label column, too few rows to split.
    """
    layout = Layout.of(params, root)
    raw, files = read_source(params.data.source, layout.root)
    source = _source_text(params.data.source, files)
    table = _checked_table(raw, params, source)
    splits, stratified = _split(table.frame, params, table.label, table.timestamp, source)
    if table.series_record is not None:
        _check_split_lengths(splits, params.model.window, source)

    # ---- everything checked: write
    meta_path, sha = _write_snapshot(raw, files, params.data.source, layout)
    for name, part in splits.items():
        atomic_write_parquet(part, layout.split(name))
    metrics = _split_metrics(table, splits, stratified)
    split_meta = _split_meta(params, table, sha, stratified, layout, metrics)
    split_meta_path = atomic_write_json(split_meta, layout.split_meta)
    paths = layout.splits
    return IngestResult(
        snapshot_path=layout.snapshot,
        snapshot_meta_path=meta_path,
        train_path=paths["train"],
        validation_path=paths["validation"],
        test_path=paths["test"],
        split_meta_path=split_meta_path,
        sha256=sha,
        feature_columns=table.features,
        label_column=table.label,
        timestamp_column=table.timestamp,
        metrics=metrics,
    )

