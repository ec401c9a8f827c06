"""Input checking of ``AnomalyDetector``: what ``X`` may be, and the messages when it is not.

Two entry points, one per family of kinds (see :mod:`anomaly_models.kinds`):

* :func:`as_table` - rows of a table (tabular kinds): a DataFrame or a 2-D array -> a float32
  DataFrame of the features, one row per input row;
* :func:`as_series` - one ordered multichannel series (sequence kinds): a DataFrame, a 2-D or
  1-D array or a Series -> a float64 DataFrame of the channels, one row per time point.

Both take ``feature_names=None`` when fitting (columns are then taken from ``X``, or named
``x0, x1, ...`` for arrays) and the fitted names when scoring (columns are then matched by
name, in the fitted order). Every problem raises ``ValueError`` naming the columns, positions
and values involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from anomaly_models.checks import check_finite_matrix
from anomaly_models.preprocessing import is_numeric_column

__all__ = ["as_series", "as_table"]


def _reject_non_numeric(frame: pd.DataFrame, what: str) -> None:
    non_numeric = [c for c in frame.columns if not is_numeric_column(frame[c])]
    if non_numeric:
        examples = {c: frame[c].iloc[0] for c in non_numeric[:3]} if len(frame) else {}
        raise ValueError(
            f"{what} has non-numeric column(s) {non_numeric} (first values: {examples}); "
            "AnomalyDetector takes numbers only"
        )


def _table_from_array(X: Any, feature_names: Sequence[str] | None) -> pd.DataFrame:
    array = np.asarray(X)
    if array.ndim == 1 and feature_names is not None and len(feature_names) == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise ValueError(
            f"X must be 2-D (n_rows, n_features), received an array with shape {array.shape}"
        )
    if feature_names is None:
        return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
    if array.shape[1] != len(feature_names):
        raise ValueError(
            f"X has {array.shape[1]} features, but this detector was fitted with "
            f"{len(feature_names)} features {list(feature_names)}"
        )
    return pd.DataFrame(array, columns=list(feature_names))


def as_table(X: Any, feature_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Check the rows ``X`` of a table and return them as a float32 DataFrame.

    Args:
        X: DataFrame (columns matched by name; extra columns are dropped when scoring) or 2-D
            array ``(n_rows, n_features)`` (columns by position); a 1-D array is one column
            when the detector was fitted on one feature.
        feature_names: None when fitting; else the fitted feature names (str).

    Returns:
        ``(n_rows, n_features)`` float32 DataFrame with str column names: ``X``'s own columns
        when fitting, the fitted ones (in their order) when scoring.

    Raises:
        ValueError: empty ``X``, no or duplicate columns, missing fitted columns, a wrong
            number of array columns, non-numeric columns, inf (naming the columns). NaN is a
            missing value, imputed by the preprocessing model with the training median.
    """
    frame = X if isinstance(X, pd.DataFrame) else _table_from_array(X, feature_names)
    if frame.shape[0] == 0:
        raise ValueError(f"X is empty (shape {frame.shape}): need at least one row")
    if feature_names is None:
        if frame.shape[1] == 0:
            raise ValueError("X has no columns: need at least one numeric feature")
        columns = [str(c) for c in frame.columns]
        if len(set(columns)) != len(columns):
            raise ValueError(f"X has duplicate column names: {columns}")
    else:
        columns = list(feature_names)
        present = {str(c) for c in frame.columns}
        missing = [c for c in columns if c not in present]
        if missing:
            raise ValueError(
                f"X is missing feature column(s) {missing}; this detector was fitted on "
                f"{columns}"
            )
        frame = frame.rename(columns=str)[columns]
    frame = frame.rename(columns=str)
    _reject_non_numeric(frame, "X")
    values = frame.to_numpy(dtype="float64", na_value=np.nan)
    # NaN is a missing value: the preprocessing model replaces it by the training median
    check_finite_matrix(values, "X", list(frame.columns), allow_nan=True)
    return frame.astype("float32")


def _series_from_array(
    X: Any, feature_names: Sequence[str] | None, what: str
) -> pd.DataFrame:
    array = np.asarray(X)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        hint = (
            " (windows? pass the series itself: the detector cuts the windows)"
            if array.ndim == 3 else ""
        )
        raise ValueError(
            f"{what} must be an ordered series: a DataFrame (rows = time points, columns "
            "= channels), a 2-D array (n_points, n_channels) or a 1-D array (one "
            f"channel); received an array with shape {array.shape}{hint}"
        )
    if feature_names is None:
        return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
    names = [str(c) for c in feature_names]
    if array.shape[1] != len(names):
        raise ValueError(
            f"{what} has {array.shape[1]} channel(s), but this detector was fitted "
            f"on {len(names)} channel(s) {names}"
        )
    return pd.DataFrame(array, columns=names)


def _check_channels(
    frame: pd.DataFrame, feature_names: Sequence[str] | None, what: str
) -> pd.DataFrame:
    """The frame's channels, checked against the fitted ones (in their order) when scoring."""
    columns = list(frame.columns)
    if feature_names is None:
        if not columns:
            raise ValueError(f"{what} has no columns: need at least one numeric channel")
        if len(set(columns)) != len(columns):
            raise ValueError(f"{what} has duplicate column names: {columns}")
        return frame
    expected = [str(c) for c in feature_names]
    if len(set(columns)) != len(columns) or set(columns) != set(expected):
        # unlike the tabular kinds, extra columns are an error: a series is scored as a whole
        missing = [c for c in expected if c not in columns]
        extra = [c for c in columns if c not in expected]
        raise ValueError(
            f"{what} has channel column(s) {columns}, but this detector was fitted on "
            f"{len(expected)} channel(s) {expected} (missing: {missing}, unexpected: "
            f"{extra}); a sequence detector scores exactly the fitted channels, select "
            "them first"
        )
    return frame[expected]


def _check_time_order(index: pd.Index, what: str) -> None:
    if isinstance(index, (pd.DatetimeIndex, pd.TimedeltaIndex, pd.PeriodIndex)) and not (
        index.is_monotonic_increasing
    ):
        back = int(np.flatnonzero(np.diff(index.asi8) < 0)[0]) + 1 if len(index) > 1 else 0
        raise ValueError(
            f"{what} has a time index that is not increasing (it goes back at position "
            f"{back}, {index[back]}): sort the rows by time first, windows need time order"
        )


def _check_finite_series(values: np.ndarray, frame: pd.DataFrame, what: str) -> None:
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    index = frame.index
    rows = np.flatnonzero(bad.any(axis=1))
    bad_columns = [str(frame.columns[j]) for j in np.flatnonzero(bad.any(axis=0))]
    labels = ""
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        labels = f" (index {[str(v) for v in index[rows[:5]]]})"
    raise ValueError(
        f"{what} contains {int(np.isnan(values).sum())} NaN and "
        f"{int(np.isinf(values).sum())} infinite values in column(s) {bad_columns}, "
        f"first at position(s) {rows[:5].tolist()}{labels}. A window with a missing "
        "value has no meaningful score: impute the gap, or split the series there and "
        "score the parts separately."
    )


def as_series(
    X: Any, feature_names: Sequence[str] | None = None, what: str = "X"
) -> pd.DataFrame:
    """Check one ordered series ``X`` and return its channels as a float64 DataFrame.

    Args:
        X: DataFrame (rows = time points in order, columns = channels; a time index must be
            increasing), 2-D array ``(n_points, n_channels)``, 1-D array or unnamed Series (one
            channel, named ``x0`` or like the one fitted channel), or named Series (one
            channel, its name).
        feature_names: None when fitting; else the fitted channel names (str).
        what: the argument's name in messages (``"X"``, ``"context"``).

    Returns:
        ``(n_points, n_channels)`` float64 DataFrame; channels in the fitted order when
        scoring; ``X``'s index kept.

    Raises:
        ValueError: a 3-D array (windows), no or duplicate columns, channels other than the
            fitted ones (expected vs received), non-numeric columns, a time index that goes
            back, NaN or inf (naming the channels and first positions).
    """
    if isinstance(X, pd.Series):
        name = X.name
        if name is None:  # unnamed: one channel, named like a 1-D array's
            fitted_one = feature_names is not None and len(feature_names) == 1
            name = str(feature_names[0]) if fitted_one else "x0"
        X = X.to_frame(name=name)
    if isinstance(X, pd.DataFrame):
        frame = X.rename(columns=str)
    else:
        frame = _series_from_array(X, feature_names, what)
    frame = _check_channels(frame, feature_names, what)
    _reject_non_numeric(frame, what)
    _check_time_order(frame.index, what)
    values = frame.to_numpy(dtype="float64", na_value=np.nan)
    _check_finite_series(values, frame, what)
    return pd.DataFrame(values, index=frame.index, columns=list(frame.columns))
