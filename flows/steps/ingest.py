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
import math
import os
import uuid
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flows.config import ConfigError, Params, resolve

__all__ = [
    "BUILTIN_SOURCES",
    "SPLIT_NAMES",
    "DataError",
    "IngestResult",
    "atomic_save",
    "atomic_write_json",
    "atomic_write_parquet",
    "content_hash",
    "feature_columns",
    "ingest",
    "normal_rows",
    "read_source",
    "read_table",
    "require_timestamp_column",
    "split_paths",
]

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "validation", "test")
SNAPSHOT_FILE = "snapshot.parquet"
SNAPSHOT_META_FILE = "snapshot.json"
SPLIT_META_FILE = "split.json"
HASH_METHOD = "sha256 over column names + dtypes and pandas.util.hash_pandas_object(index=False)"

# builtin:<name> -> (package, resource path inside it, description)
BUILTIN_SOURCES: dict[str, tuple[str, str, str]] = {
    "shuttle": (
        "river",
        "datasets/shuttle.csv.gz",
        "Statlog Shuttle (ODDS form) shipped in the river package, BSD-3",
    ),
}

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".csv.zst")
_PARQUET_SUFFIXES = (".parquet", ".pq")


class DataError(ValueError):
    """The input data cannot be used; the message names the problem and the file."""


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


# --------------------------------------------------------------------------- small helpers
def atomic_save(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` with a temporary file next to ``path`` (same suffix, so writers that
    check it, like Keras' ``save``, accept it), then ``os.replace`` it onto ``path``.

    A crash or an exception leaves the previous ``path`` untouched and no temporary file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_parquet(df: pd.DataFrame, path: Path) -> Path:
    """Write ``df`` (without its index) to ``path`` via a temporary name and ``os.replace``."""
    return atomic_save(path, lambda tmp: df.to_parquet(tmp, index=False))


def jsonable(obj: Any) -> Any:
    """``obj`` as strict JSON values: numpy scalars -> Python, NaN -> None, +-inf -> "inf" /
    "-inf", tuples and sets -> lists, anything else unknown (Paths, timestamps) -> str."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def atomic_write_json(obj: Any, path: Path) -> Path:
    """Write ``obj`` as indented, strict JSON (no NaN/Infinity) via a temporary name."""
    text = json.dumps(obj, indent=2, allow_nan=False, default=str) + "\n"
    return atomic_save(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _display(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` when inside it (keeps metadata machine-independent)."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def _examples(values: Iterable[Any], limit: int = 5) -> str:
    out = []
    for v in values:
        if len(out) >= limit:
            break
        out.append(repr(v.item() if isinstance(v, np.generic) else v))
    return ", ".join(out)


def _columns_text(columns: Iterable[Any]) -> str:
    cols = [str(c) for c in columns]
    text = ", ".join(cols[:30])
    return text + (f", ... ({len(cols)} in all)" if len(cols) > 30 else "")


def split_paths(params: Params, root: Path) -> dict[str, Path]:
    """``{"train": .../train.parquet, "validation": ..., "test": ...}`` for these settings."""
    split_dir = resolve(root, params.data.split_dir)
    return {name: split_dir / f"{name}.parquet" for name in SPLIT_NAMES}


def normal_rows(df: pd.DataFrame, label_column: str | None) -> pd.DataFrame:
    """The rows a detector is fitted on: ``label == 0`` when there is a label, else all rows."""
    if label_column is None or label_column not in df.columns:
        return df
    return df[df[label_column] == 0]


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
def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    return None


def read_table(path: str | Path) -> pd.DataFrame:
    """Read one CSV (optionally compressed) or Parquet file; problems raise :class:`DataError`."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if not path.is_file():
        raise DataError(f"not a regular file: {path}")
    kind = _kind(path)
    if kind is None:
        raise DataError(
            f"unsupported file type: {path} (expected {', '.join(_CSV_SUFFIXES)} "
            f"or {', '.join(_PARQUET_SUFFIXES)})"
        )
    if path.stat().st_size == 0:
        raise DataError(f"empty data file (0 bytes): {path}")
    try:
        df = pd.read_csv(path, low_memory=False) if kind == "csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"empty data file (no columns, no rows): {path}") from exc
    except Exception as exc:  # parser, decompression, Arrow and OS errors alike
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"cannot read {path} as {'CSV' if kind == 'csv' else 'Parquet'}: {reason}"
        ) from exc
    if len(df.columns) == 0:
        raise DataError(f"empty data file (no columns): {path}")
    if len(df) == 0:
        raise DataError(f"empty data file (a header but 0 rows): {path}")
    df.columns = [str(c) for c in df.columns]
    return df


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
        if p.is_file() and not p.name.startswith((".", "_")) and _kind(p) is not None
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


# --------------------------------------------------------------------------- columns
def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _non_numeric_values(s: pd.Series) -> pd.Series:
    """The non-null values of ``s`` that are not numbers."""
    present = s[s.notna()]
    converted = pd.to_numeric(present, errors="coerce")
    return present[converted.isna()]


def feature_columns(df: pd.DataFrame, params: Params, source: str = "the data") -> list[str]:
    """The model's input columns: ``data.feature_columns`` when set (each must exist and be
    numeric), else every numeric column except the label and timestamp columns.

    Text columns are left out, except one whose values are mostly numbers: that is a numeric
    column with bad values, and raises :class:`DataError` rather than silently disappearing.
    Boolean columns are not numeric features (convert them to 0/1).
    """
    label, ts = params.data.label_column, params.data.timestamp_column
    configured = params.data.feature_columns
    if configured is not None:
        missing = [c for c in configured if c not in df.columns]
        if missing:
            raise DataError(
                f"feature column(s) {missing} (data.feature_columns) not found in {source}; "
                f"columns present: {_columns_text(df.columns)}"
            )
        for c in configured:
            if not _is_numeric(df[c]) and not df[c].isna().all():
                bad = _non_numeric_values(df[c])
                example = f", e.g. {_examples(bad, 3)}" if len(bad) else ""
                raise DataError(
                    f"feature column {c!r} in {source} is not numeric (dtype {df[c].dtype}"
                    f"{example}); fix the data or remove it from data.feature_columns"
                )
        return list(configured)

    cols: list[str] = []
    skipped: list[str] = []
    for c in df.columns:
        if c in (label, ts):
            continue
        s = df[c]
        if _is_numeric(s) or s.isna().all():
            cols.append(c)  # an all-empty column is reported by ingest, not silently dropped
            continue
        if pd.api.types.is_bool_dtype(s.dtype):
            skipped.append(f"{c} (bool)")
            continue
        bad = _non_numeric_values(s)
        n_present = int(s.notna().sum())
        if n_present and len(bad) <= 0.5 * n_present:
            raise DataError(
                f"feature column {c!r} in {source} is not numeric: {len(bad)} of {n_present} "
                f"values are not numbers (e.g. {_examples(bad.unique(), 3)}); fix the data, or "
                "list data.feature_columns without it"
            )
        skipped.append(f"{c} ({s.dtype}, e.g. {_examples(s.dropna().unique(), 1)})")
    if not cols:
        raise DataError(
            f"no numeric feature columns in {source}; columns present: "
            f"{_columns_text(df.columns)}"
            + (f"; non-numeric: {', '.join(skipped)}" if skipped else "")
            + (f"; label column: {label!r}" if label else "")
        )
    return cols


def _check_label(df: pd.DataFrame, label: str, source: str) -> pd.Series:
    if label not in df.columns:
        raise DataError(
            f"label column {label!r} (data.label_column) not found in {source}; columns present: "
            f"{_columns_text(df.columns)} (set data.label_column to one of them, or to null)"
        )
    s = df[label]
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("int64")
    bad = s[~s.isin([0, 1])] if _is_numeric(s) else s[~s.isin([0, 1, "0", "1"])]
    if len(bad):
        values = sorted({("NaN" if pd.isna(v) else v) for v in bad.tolist()}, key=str)
        raise DataError(
            f"label column {label!r} in {source} must hold only 0 (normal) and 1 (anomaly); "
            f"{len(bad)} row(s) hold other values: {_examples(values, 8)}"
        )
    return pd.to_numeric(s).astype("int64")


def parse_timestamps(values: pd.Series) -> pd.Series:
    """A timestamp column as ingest, scoring and the stream checks read it: numbers and
    datetimes as they are, text parsed as dates (format inferred, else value by value).

    Raises:
        ValueError / TypeError: text that does not parse as dates.
    """
    if _is_numeric(values) or pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values
    with warnings.catch_warnings():  # "could not infer format": each value parsed alone
        warnings.simplefilter("ignore", UserWarning)
        return pd.to_datetime(values)


def _check_timestamp(df: pd.DataFrame, ts: str, source: str) -> pd.Series:
    if ts not in df.columns:
        raise DataError(
            f"timestamp column {ts!r} (data.timestamp_column) not found in {source}; columns "
            f"present: {_columns_text(df.columns)}"
        )
    s = df[ts]
    try:
        s = parse_timestamps(s)
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"timestamp column {ts!r} in {source} holds values that are not times "
            f"(e.g. {_examples(s.dropna().unique(), 2)}): {exc}"
        ) from exc
    if s.isna().any():
        raise DataError(
            f"timestamp column {ts!r} in {source} has {int(s.isna().sum())} missing value(s)"
        )
    return s


# --------------------------------------------------------------------------- series
def require_timestamp_column(params: Params) -> str | None:
    """``data.timestamp_column`` for the sequence kinds, which need one; None for the others.

    Raises:
        ConfigError: naming ``data.timestamp_column`` when a sequence kind has none.
    """
    if not params.model.is_sequence:
        return params.data.timestamp_column
    ts = params.data.timestamp_column
    if ts is None:
        where = f" [params file: {params.source_file}]" if params.source_file else ""
        raise ConfigError(
            f"data.timestamp_column: model.kind {params.model.kind} scores an ordered series and "
            "needs the name of its time column (rows are sorted by it, and duplicated "
            "timestamps and gaps are detected with it); it is null. Set "
            "data.timestamp_column, e.g. --set data.timestamp_column=timestamp" + where,
            path=params.source_file,
            keys=["data.timestamp_column"],
        )
    return ts


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
def ingest(params: Params, root: Path) -> IngestResult:
    """Read ``data.source``, check it, write the snapshot and the train/validation/test split.

    All checks run before anything is written, so bad input leaves the previous outputs alone.

    Raises:
        DataError: missing/empty/unreadable file, no numeric feature columns, a non-numeric or
            all-NaN feature column, a missing or non-0/1 label column, too few rows to split.
    """
    root = Path(root)
    data = params.data
    raw, files = read_source(data.source, root)
    builtin = data.source.startswith("builtin:")
    if builtin:
        source = f"{data.source} ({files[0]})"
    else:
        source = files[0] if len(files) == 1 else f"{data.source} ({len(files)} files)"

    label, ts = data.label_column, require_timestamp_column(params)
    features = feature_columns(raw, params, source)
    empty = [c for c in features if raw[c].isna().all()]
    if empty:
        raise DataError(
            f"feature column {empty[0]!r} in {source} has no values (all NaN)"
            + (f"; also all-NaN: {empty[1:]}" if len(empty) > 1 else "")
        )
    frame = raw.copy()
    if label is not None:
        frame[label] = _check_label(raw, label, source)
    if ts is not None:
        frame[ts] = _check_timestamp(raw, ts, source)
    keep = set(features) | {c for c in (label, ts) if c is not None}
    frame = frame[[c for c in raw.columns if c in keep]]
    series_record: dict[str, Any] | None = None
    if params.model.is_sequence and ts is not None:
        frame, series_record = _check_series(frame, params, features, ts, source)
    splits, stratified = _split(frame, params, label, ts, source)
    if series_record is not None:
        _check_split_lengths(splits, params.model.window, source)

    # ---- everything checked: write
    snap_dir = resolve(root, data.snapshot_dir)
    split_dir = resolve(root, data.split_dir)
    snapshot_path = snap_dir / SNAPSHOT_FILE
    sha = content_hash(raw)
    meta = {
        "source": data.source,
        "files": files if builtin else [_display(root, Path(f)) for f in files],
        "rows": len(raw),
        "columns": [{"name": c, "dtype": str(t)} for c, t in raw.dtypes.items()],
        "sha256": sha,
        "hash_method": HASH_METHOD,
    }
    atomic_write_parquet(raw, snapshot_path)
    meta_path = atomic_write_json(meta, snap_dir / SNAPSHOT_META_FILE)

    metrics: dict[str, float | int] = {"rows": len(frame), "n_features": len(features)}
    if label is not None:
        metrics["anomaly_rate"] = float(frame[label].mean())
    paths = split_paths(params, root)
    for name, part in splits.items():
        atomic_write_parquet(part, paths[name])
        metrics[f"{name}_rows"] = len(part)
        if label is not None:
            metrics[f"{name}_anomaly_rate"] = float(part[label].mean())
    metrics["train_normal_rows"] = len(normal_rows(splits["train"], label))
    if label is not None:
        metrics["stratified"] = int(stratified)
    if series_record is not None:
        metrics["gaps"] = len(series_record["gaps"])
        metrics["sorted_by_ingest"] = int(series_record["sorted_by_ingest"])

    split_meta = {
        "snapshot_sha256": sha,
        "source": data.source,
        "feature_columns": features,
        "label_column": label,
        "timestamp_column": ts,
        "seed": params.split.seed,
        "validation_fraction": params.split.validation_fraction,
        "test_fraction": params.split.test_fraction,
        "method": "time-ordered contiguous" if ts is not None else "train_test_split",
        "stratified": bool(stratified),
        "files": {name: _display(root, p) for name, p in paths.items()},
        "metrics": metrics,
        "note": "train.parquet holds every train row; fit detectors on label == 0 rows only",
    }
    if series_record is not None:
        split_meta["sequence"] = series_record
        split_meta["note"] = (
            "a series: train.parquet holds every train point; the sequence detector trains on "
            "the whole train series (contiguous windows), its scaling on the label == 0 points"
        )
    split_meta_path = atomic_write_json(split_meta, split_dir / SPLIT_META_FILE)

    return IngestResult(
        snapshot_path=snapshot_path,
        snapshot_meta_path=meta_path,
        train_path=paths["train"],
        validation_path=paths["validation"],
        test_path=paths["test"],
        split_meta_path=split_meta_path,
        sha256=sha,
        feature_columns=features,
        label_column=label,
        timestamp_column=ts,
        metrics=metrics,
    )
