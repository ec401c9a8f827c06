"""Windows over time series, and window scores back to point scores.

Pure NumPy / pandas:

* :func:`create_sequences` - fusionlab's ``create_sequences(df, sequence_length, target_col, ...)``
  as seed 004 uses it: overlapping windows of a DataFrame plus their targets (the window itself
  for reconstruction, the next ``forecast_horizon`` values for forecasting).
* :func:`sliding_windows` - windows of a ``(n, c)`` array with a stride, ``(n_windows, window, c)``.
* :func:`window_scores_to_points` - one score per point from scores of the windows covering it
  (maximum or mean), the mapping of the UCR sequence protocol.
* :func:`aggregate_window_values` - the one window -> point aggregation behind it (and behind
  the sequence kind of ``AnomalyDetector``): per-window, per-position values, optionally with
  channels, streamed block by block of windows to bound memory.
* :func:`moving_average` - a centred moving average of point scores (per channel), the smoothing
  that localizes anomalies best on the UCR series (``pandas``' ``rolling(center=True)``).
* :func:`dominant_period` / :func:`auto_window` - the period of a series by its autocorrelation,
  and the window the sequence kind takes from it when ``window=None`` (chosen from the training
  series alone, never from labels).

Window ``k`` always covers the points ``[k * stride, k * stride + window)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from anomaly_models.checks import check_positive_int

REDUCTIONS = ("max", "mean")
#: :func:`auto_window`: the window when the series shows no period, and the bounds it is kept in.
FALLBACK_WINDOW = 32
MIN_AUTO_WINDOW = 8
MAX_AUTO_WINDOW = 256
#: :func:`dominant_period`: the smallest autocorrelation a peak needs to count as a period.
MIN_PERIOD_CORRELATION = 0.2


def _check_window_fits(n_points: int, window: int, what: str) -> None:
    if n_points < window:
        raise ValueError(
            f"{what} has {n_points} points, fewer than the window of {window}: no complete window "
            f"fits. Use a shorter window or a longer series (at least {window} points)."
        )


def _check_no_nan(values: np.ndarray, what: str, columns: list[str] | None = None) -> None:
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    rows = np.flatnonzero(bad.reshape(len(values), -1).any(axis=1))
    where = f" in column(s) {[columns[j] for j in np.flatnonzero(bad.any(axis=0))]}" if columns else ""
    raise ValueError(
        f"{what} contains {int(bad.sum())} NaN or infinite values{where}, first at row(s) "
        f"{rows[:10].tolist()}. Impute them or split the series at the gap before windowing: "
        "a window with a missing value has no meaningful score."
    )


def create_sequences(
    df: pd.DataFrame,
    sequence_length: int,
    target_col: str,
    forecast_horizon: int | None = 0,
    drop_last: bool = False,
    verbose: int = 0,
    *,
    step: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a DataFrame into overlapping windows and their targets.

    Window ``i`` holds the rows ``[i * step, i * step + sequence_length)`` of **all** columns of
    ``df`` (in column order). Its target depends on ``forecast_horizon``:

    * ``0`` (default, reconstruction / autoencoders): the target column over the window itself,
      ``targets`` of shape ``(n_windows, sequence_length)``; ``n_windows = n - sequence_length + 1``
      with ``step=1`` (every complete window, e.g. 400 rows, length 20 -> 381 windows).
    * ``h > 0`` (forecasting): the next ``h`` values of the target column after the window,
      ``targets`` of shape ``(n_windows, h)``; ``n_windows = n - sequence_length - h + 1`` with
      ``step=1`` (windows whose horizon would run past the end are left out).
    * ``None`` (one step ahead, fusionlab's default): the single next value, ``targets`` of shape
      ``(n_windows,)``; ``n_windows = n - sequence_length``.

    With ``step > 1`` the last window may stop short of the end of the series. ``drop_last=False``
    then appends one more window aligned to the end (its target is the end of the series), so
    every row lies in some window; ``drop_last=True`` keeps only the regular windows. With
    ``step=1`` every row is always covered and ``drop_last`` changes nothing.

    Args:
        df: Time-ordered DataFrame of numeric columns (a Series is taken as one column).
        sequence_length: Window length, a positive integer.
        target_col: Name of the target column; must be a column of ``df``.
        forecast_horizon: ``0``, a positive integer or ``None`` (see above).
        drop_last: Drop the end-aligned extra window of a ``step > 1`` cut (see above).
        verbose: ``>= 1`` prints a summary line.
        step: Distance between the starts of consecutive windows (keyword only).

    Returns:
        ``(sequences, targets)``: ``sequences`` float array ``(n_windows, sequence_length,
        n_columns)``; ``targets`` as described above.

    Raises:
        TypeError: ``df`` is not a DataFrame or Series.
        ValueError: bad lengths, unknown or non-numeric columns, NaN/inf values, or a series too
            short for one window (plus the horizon).
    """
    if isinstance(df, pd.Series):
        df = df.to_frame()
    if not isinstance(df, pd.DataFrame):
        raise TypeError(
            f"`df` must be a pandas DataFrame (or Series), received {type(df).__name__}"
        )
    sequence_length = check_positive_int("sequence_length", sequence_length)
    step = check_positive_int("step", step)
    if forecast_horizon is not None:
        if (
            isinstance(forecast_horizon, bool)
            or not isinstance(forecast_horizon, (int, np.integer))
            or forecast_horizon < 0
        ):
            raise ValueError(
                "`forecast_horizon` must be 0, a positive integer or None, "
                f"received forecast_horizon={forecast_horizon!r}"
            )
        forecast_horizon = int(forecast_horizon)
    if target_col not in df.columns:
        raise ValueError(
            f"`target_col` must be a column of `df`, received target_col={target_col!r}; "
            f"columns are {list(df.columns)}"
        )
    non_numeric = [
        str(c) for c in df.columns
        if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))
    ]
    if non_numeric:
        raise ValueError(
            f"`df` must hold numeric columns only, received non-numeric column(s) {non_numeric}; "
            "drop the timestamp / text columns before windowing"
        )
    values = df.to_numpy(dtype=np.float64)
    columns = [str(c) for c in df.columns]
    _check_no_nan(values, "`df`", columns)
    target = df[target_col].to_numpy(dtype=np.float64)

    ahead = 1 if forecast_horizon is None else forecast_horizon
    n = len(df)
    if n < sequence_length + ahead:
        extra = f" plus the forecast horizon of {ahead}" if ahead else ""
        raise ValueError(
            f"`df` has {n} rows, fewer than sequence_length={sequence_length}{extra}: "
            f"no complete window fits (need at least {sequence_length + ahead} rows)"
        )
    last_start = n - sequence_length - ahead  # the last start whose targets exist
    starts = list(range(0, last_start + 1, step))
    if not drop_last and starts[-1] != last_start:
        starts.append(last_start)  # end-aligned window so the tail of the series is covered
    starts_arr = np.asarray(starts)

    offsets = np.arange(sequence_length)
    sequences = values[starts_arr[:, None] + offsets]
    if forecast_horizon is None:
        targets = target[starts_arr + sequence_length]
    elif forecast_horizon == 0:
        targets = target[starts_arr[:, None] + offsets]
    else:
        targets = target[starts_arr[:, None] + sequence_length + np.arange(forecast_horizon)]
    if verbose >= 1:
        print(
            f"create_sequences: {len(starts)} sequences of length {sequence_length} "
            f"over {values.shape[1]} column(s); targets shape {targets.shape}"
        )
    return sequences, targets


def sliding_windows(values: Any, window: int, stride: int = 1) -> np.ndarray:
    """Windows of a multichannel series.

    Args:
        values: Array ``(n, c)`` (or ``(n,)``, taken as one channel) of finite numbers, in time
            order.
        window: Window length, a positive integer ``<= n``.
        stride: Distance between window starts, a positive integer.

    Returns:
        A new float array ``(n_windows, window, c)`` with ``n_windows = (n - window) // stride + 1``;
        window ``k`` holds the points ``[k * stride, k * stride + window)``. With ``stride > 1`` the
        last ``(n - window) % stride`` points may lie in no window.

    Raises:
        ValueError: bad ``window`` / ``stride``, a series shorter than the window, NaN or inf.
    """
    window = check_positive_int("window", window)
    stride = check_positive_int("stride", stride)
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(
            f"`values` must be an array of shape (n, channels) or (n,), received shape {array.shape}"
        )
    _check_window_fits(len(array), window, "The series")
    _check_no_nan(array, "The series")
    view = np.lib.stride_tricks.sliding_window_view(array, window, axis=0)  # (n_w, c, window)
    return np.ascontiguousarray(view[::stride].transpose(0, 2, 1))


def window_scores_to_points(
    window_scores: Any,
    n_points: int,
    window: int,
    stride: int = 1,
    reduce: str = "max",
) -> np.ndarray:
    """One score per point from the scores of the windows that cover it.

    Window ``k`` covers the points ``[k * stride, k * stride + window)``. Each point gets the
    maximum (``reduce="max"``, the UCR sequence protocol) or the mean (``reduce="mean"``) of the
    scores of its covering windows.

    ``window_scores`` may be

    * ``(n_windows,)``: one score per window (e.g. the window's reconstruction MSE); or
    * ``(n_windows, window)``: one score per position inside each window (e.g. the squared
      reconstruction error of each step); a point then gets the max / mean of the values that the
      covering windows give to **that** point.

    Points covered by no window (the tail left by ``stride > 1``, or fewer windows than the series
    has) get ``NaN``, never a made-up score.

    Returns:
        Float64 array of shape ``(n_points,)``.

    Raises:
        ValueError: bad ``window`` / ``stride`` / ``reduce``, NaN scores, or more windows than fit
            in ``n_points`` points.
    """
    n_points = check_positive_int("n_points", n_points)
    window = check_positive_int("window", window)
    stride = check_positive_int("stride", stride)
    if reduce not in REDUCTIONS:
        raise ValueError(f"`reduce` must be one of {REDUCTIONS}, received reduce={reduce!r}")
    scores = np.asarray(window_scores, dtype=np.float64)
    if scores.ndim == 1:
        per_position = np.broadcast_to(scores[:, None], (len(scores), window))
    elif scores.ndim == 2 and scores.shape[1] == window:
        per_position = scores
    else:
        raise ValueError(
            f"`window_scores` must have shape (n_windows,) or (n_windows, window={window}), "
            f"received shape {scores.shape}"
        )
    n_windows = len(scores)
    if n_windows == 0:
        raise ValueError("`window_scores` is empty: there is no window to map to points")
    _check_window_fits(n_points, window, "The series")
    needed = (n_windows - 1) * stride + window
    if needed > n_points:
        raise ValueError(
            f"{n_windows} windows of length {window} with stride {stride} span {needed} points, "
            f"more than n_points={n_points}: the scores do not belong to this series"
        )
    if np.isnan(scores).any():
        raise ValueError(
            f"`window_scores` contains {int(np.isnan(scores).sum())} NaN values, first at window "
            f"{int(np.flatnonzero(np.isnan(scores).reshape(n_windows, -1).any(axis=1))[0])}"
        )
    return aggregate_window_values([per_position], n_points, window, stride, reduce)


def covering_window_counts(n_points: int, n_windows: int, window: int, stride: int = 1) -> np.ndarray:
    """How many of the windows ``0 .. n_windows - 1`` cover each point, ``(n_points,)`` int64.

    Window ``k`` covers the points ``[k * stride, k * stride + window)``, so point ``p`` lies in
    the windows ``ceil((p - window + 1) / stride) .. floor(p / stride)`` that exist.
    """
    points = np.arange(n_points)
    last = np.minimum(points // stride, n_windows - 1)
    first = np.maximum(0, -((window - 1 - points) // stride))  # ceil((p - window + 1) / stride)
    return np.maximum(0, last - first + 1)


def aggregate_window_values(
    chunks: Iterable[Any],
    n_points: int,
    window: int,
    stride: int = 1,
    reduce: str = "mean",
) -> np.ndarray:
    """One value per point from per-window, per-position values, streamed over window chunks.

    The one window -> point aggregation of the library: :func:`window_scores_to_points` and the
    sequence kind of ``AnomalyDetector`` both use it. Position ``j`` of window ``k`` is the point
    ``k * stride + j``; each point gets the mean (``reduce="mean"``) or the maximum
    (``reduce="max"``) of the values that its covering windows give to **that** point.

    Args:
        chunks: Consecutive blocks of windows, each an array ``(k, window, *channels)`` (the
            first block holds windows ``0 .. k - 1``, the next one continues the numbering);
            an iterator is consumed one block at a time, so only one block of windows needs to
            be in memory (e.g. reconstruction errors computed block by block). Every block has
            the same trailing ``channels`` shape (none for one value per position).
        n_points: Length of the series, a positive integer.
        window: Window length, a positive integer.
        stride: Distance between window starts, a positive integer.
        reduce: ``"mean"`` or ``"max"``.

    Returns:
        Float64 array ``(n_points, *channels)``; ``NaN`` where no window covers the point.

    Raises:
        ValueError: bad arguments, a block of the wrong shape, no block, or windows that run
            past ``n_points``.
    """
    n_points = check_positive_int("n_points", n_points)
    window = check_positive_int("window", window)
    stride = check_positive_int("stride", stride)
    if reduce not in REDUCTIONS:
        raise ValueError(f"`reduce` must be one of {REDUCTIONS}, received reduce={reduce!r}")
    use_max = reduce == "max"
    out: np.ndarray | None = None
    n_windows = 0
    for chunk in chunks:
        values = np.asarray(chunk, dtype=np.float64)
        if values.ndim < 2 or values.shape[1] != window or (
            out is not None and values.shape[2:] != out.shape[1:]
        ):
            expected = "(k, window, ...)" if out is None else f"(k, {window}, *{out.shape[1:]})"
            raise ValueError(
                f"each block of windows must have shape {expected} with window={window}, "
                f"received shape {values.shape}"
            )
        if out is None:
            out = np.full((n_points, *values.shape[2:]), -np.inf if use_max else 0.0)
        starts = (n_windows + np.arange(len(values))) * stride
        if len(values) and starts[-1] + window > n_points:
            raise ValueError(
                f"window {n_windows + len(values) - 1} ends at point {starts[-1] + window - 1}, "
                f"past the end of the series of n_points={n_points}"
            )
        for j in range(window):  # window starts are distinct, so each index appears once per j
            idx = starts + j
            if use_max:
                out[idx] = np.maximum(out[idx], values[:, j])
            else:
                out[idx] += values[:, j]
        n_windows += len(values)
    if out is None or n_windows == 0:
        raise ValueError("no window to aggregate: `chunks` holds no block with a window")
    count = covering_window_counts(n_points, n_windows, window, stride)
    count = count.reshape(-1, *([1] * (out.ndim - 1)))
    if not use_max:
        np.divide(out, count, out=out, where=count > 0)
    out[np.broadcast_to(count == 0, out.shape)] = np.nan
    return out


def moving_average(values: Any, length: int) -> np.ndarray:
    """Centred moving average of a series, per channel.

    Point ``i`` gets the mean of the points ``[i - length // 2, i + (length - 1) // 2]`` that exist
    and are not NaN (fewer at the two ends of the series): the same numbers as
    ``pd.Series(values).rolling(length, center=True, min_periods=1).mean()``. Each output is
    summed from its own neighbourhood only, so the same neighbourhood gives the same number
    wherever it lies in a longer series (what exact continuation of a stream needs).

    Args:
        values: Array ``(n,)`` or ``(n, c)`` of scores in time order.
        length: Number of points averaged; ``0`` or ``1`` returns the values unchanged.

    Returns:
        Float64 array of the shape of ``values``; NaN only where the whole neighbourhood is NaN.

    Raises:
        ValueError: a negative or non-integer ``length``, or ``values`` of more than 2 dimensions.
    """
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
        raise ValueError(f"`length` must be a non-negative integer, received length={length!r}")
    array = np.asarray(values, dtype=np.float64)
    if array.ndim not in (1, 2):
        raise ValueError(
            f"`values` must be an array of shape (n,) or (n, channels), received shape {array.shape}"
        )
    length = int(length)
    if length <= 1 or len(array) == 0:
        return array.copy()
    before, after = length // 2, (length - 1) // 2
    present = ~np.isnan(array)
    pad = [(before, after)] + [(0, 0)] * (array.ndim - 1)
    sums = np.lib.stride_tricks.sliding_window_view(
        np.pad(np.where(present, array, 0.0), pad), length, axis=0
    ).sum(axis=-1)
    counts = np.lib.stride_tricks.sliding_window_view(
        np.pad(present.astype(np.float64), pad), length, axis=0
    ).sum(axis=-1)
    out = np.full(array.shape, np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def _autocorrelation(values: np.ndarray) -> np.ndarray:
    """Mean over channels of each channel's autocorrelation at lags ``0 .. n-1`` (FFT, biased
    estimate); a constant channel counts as uncorrelated."""
    n = values.shape[0]
    centred = values - values.mean(axis=0)
    spectrum = np.fft.rfft(centred, n=2 * n, axis=0)
    acov = np.fft.irfft(np.abs(spectrum) ** 2, axis=0)[:n]
    variance = acov[0]
    usable = variance > 0
    if not usable.any():
        return np.zeros(n)
    return (acov[:, usable] / variance[usable]).mean(axis=1)


def dominant_period(values: Any, min_period: int = 2, max_period: int | None = None) -> int | None:
    """The dominant period of a series in points, by its autocorrelation, or None.

    The autocorrelation (averaged over channels) is searched after its first drop below zero
    for its highest value at lags ``min_period .. max_period`` (default ``n // 3``: at least
    three cycles); that lag is the period when the correlation there is at least
    :data:`MIN_PERIOD_CORRELATION`. A trend, noise or a series that never decorrelates has none.

    Args:
        values: ``(n,)`` or ``(n, channels)`` numbers, in time order, no NaN.
    """
    array = np.asarray(values, dtype="float64")
    array = array.reshape(-1, 1) if array.ndim == 1 else array
    if array.ndim != 2 or not np.isfinite(array).all():
        raise ValueError(
            f"dominant_period needs a finite (n,) or (n, channels) series, received shape "
            f"{np.shape(values)}"
        )
    n = array.shape[0]
    high = n // 3 if max_period is None else min(int(max_period), n - 1)
    if high < max(min_period, 2):
        return None
    acf = _autocorrelation(array)
    below = np.flatnonzero(acf[1:] < 0)
    if below.size == 0:
        return None
    start = max(int(below[0]) + 1, min_period)
    if start > high:
        return None
    lag = start + int(np.argmax(acf[start : high + 1]))
    return lag if acf[lag] >= MIN_PERIOD_CORRELATION else None


def auto_window(values: Any) -> int:
    """The sequence kind's window when ``window=None``: the dominant period of the training
    series (:func:`dominant_period`; one window then spans one cycle, the usual choice for
    the matrix-profile discord too), else :data:`FALLBACK_WINDOW`; kept within
    [:data:`MIN_AUTO_WINDOW`, :data:`MAX_AUTO_WINDOW`] and at most a quarter of the series, so
    that there are windows enough to learn from."""
    array = np.asarray(values, dtype="float64")
    n = array.shape[0]
    period = dominant_period(array, min_period=MIN_AUTO_WINDOW)  # a longer one is capped below
    window = FALLBACK_WINDOW if period is None else period
    window = min(max(window, MIN_AUTO_WINDOW), MAX_AUTO_WINDOW)
    return max(2, min(window, n // 4))
