"""Columns of the user's table: which are features, the label, the time column, normal rows.

Ingest (training data), scoring and the stream checks read columns the same way through these
functions; every problem raises :class:`~flows.errors.DataError` naming the column and the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from flows.config import ConfigError, Params
from flows.errors import DataError

__all__ = [
    "check_label",
    "check_timestamp",
    "columns_text",
    "examples_text",
    "feature_columns",
    "is_numeric",
    "non_numeric_values",
    "normal_rows",
    "parse_timestamps",
    "require_timestamp_column",
]


def examples_text(values: Iterable[Any], limit: int = 5) -> str:
    out = []
    for v in values:
        if len(out) >= limit:
            break
        out.append(repr(v.item() if isinstance(v, np.generic) else v))
    return ", ".join(out)


def columns_text(columns: Iterable[Any]) -> str:
    cols = [str(c) for c in columns]
    text = ", ".join(cols[:30])
    return text + (f", ... ({len(cols)} in all)" if len(cols) > 30 else "")


def normal_rows(df: pd.DataFrame, label_column: str | None) -> pd.DataFrame:
    """The rows a detector is fitted on: ``label == 0`` when there is a label, else all rows."""
    if label_column is None or label_column not in df.columns:
        return df
    return df[df[label_column] == 0]


def is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def non_numeric_values(s: pd.Series) -> pd.Series:
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
                f"columns present: {columns_text(df.columns)}"
            )
        for c in configured:
            if not is_numeric(df[c]) and not df[c].isna().all():
                bad = non_numeric_values(df[c])
                example = f", e.g. {examples_text(bad, 3)}" if len(bad) else ""
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
        if is_numeric(s) or s.isna().all():
            cols.append(c)  # an all-empty column is reported by ingest, not silently dropped
            continue
        if pd.api.types.is_bool_dtype(s.dtype):
            skipped.append(f"{c} (bool)")
            continue
        bad = non_numeric_values(s)
        n_present = int(s.notna().sum())
        if n_present and len(bad) <= 0.5 * n_present:
            raise DataError(
                f"feature column {c!r} in {source} is not numeric: {len(bad)} of {n_present} "
                f"values are not numbers (e.g. {examples_text(bad.unique(), 3)}); fix the data, or "
                "list data.feature_columns without it"
            )
        skipped.append(f"{c} ({s.dtype}, e.g. {examples_text(s.dropna().unique(), 1)})")
    if not cols:
        raise DataError(
            f"no numeric feature columns in {source}; columns present: "
            f"{columns_text(df.columns)}"
            + (f"; non-numeric: {', '.join(skipped)}" if skipped else "")
            + (f"; label column: {label!r}" if label else "")
        )
    return cols


def check_label(df: pd.DataFrame, label: str, source: str) -> pd.Series:
    if label not in df.columns:
        raise DataError(
            f"label column {label!r} (data.label_column) not found in {source}; columns present: "
            f"{columns_text(df.columns)} (set data.label_column to one of them, or to null)"
        )
    s = df[label]
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("int64")
    bad = s[~s.isin([0, 1])] if is_numeric(s) else s[~s.isin([0, 1, "0", "1"])]
    if len(bad):
        values = sorted({("NaN" if pd.isna(v) else v) for v in bad.tolist()}, key=str)
        raise DataError(
            f"label column {label!r} in {source} must hold only 0 (normal) and 1 (anomaly); "
            f"{len(bad)} row(s) hold other values: {examples_text(values, 8)}"
        )
    return pd.to_numeric(s).astype("int64")


def parse_timestamps(values: pd.Series) -> pd.Series:
    """A timestamp column as ingest, scoring and the stream checks read it: numbers and
    datetimes as they are, text parsed as dates (format inferred, else value by value).

    Raises:
        ValueError / TypeError: text that does not parse as dates.
    """
    if is_numeric(values) or pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values
    with warnings.catch_warnings():  # "could not infer format": each value parsed alone
        warnings.simplefilter("ignore", UserWarning)
        return pd.to_datetime(values)


def check_timestamp(df: pd.DataFrame, ts: str, source: str) -> pd.Series:
    if ts not in df.columns:
        raise DataError(
            f"timestamp column {ts!r} (data.timestamp_column) not found in {source}; columns "
            f"present: {columns_text(df.columns)}"
        )
    s = df[ts]
    try:
        s = parse_timestamps(s)
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"timestamp column {ts!r} in {source} holds values that are not times "
            f"(e.g. {examples_text(s.dropna().unique(), 2)}): {exc}"
        ) from exc
    if s.isna().any():
        raise DataError(
            f"timestamp column {ts!r} in {source} has {int(s.isna().sum())} missing value(s)"
        )
    return s


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
