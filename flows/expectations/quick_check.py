"""The quick check: whether a frame passes a suite's critical expectations, decided with numpy
in milliseconds.

Scoring validates every chunk of a batch; Great Expectations costs ~0.6 s per call whatever the
chunk size, more than scoring the chunk. :func:`quick_check` evaluates the expectation types
that :func:`~flows.expectations.suite.build_suite` writes, with GX's semantics, and is used only
to let a chunk *pass*: a failure or an undecidable suite sends the chunk to GX, whose result is
the one recorded and reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from flows.expectations.suite import model_inputs, severity_of

if TYPE_CHECKING:
    import great_expectations as gx

__all__ = ["quick_check"]

# The expectation types (and arguments) that build_suite writes, evaluated with numpy by
# quick_check. Anything else in a suite (declared in validate.expectations, or an argument such
# as row_condition) makes quick_check answer None: GX must decide.
_QUICK_KWARGS: dict[str, set[str]] = {
    "expect_table_columns_to_match_set": {"column_set", "exact_match"},
    "expect_table_row_count_to_be_between": {"min_value", "max_value"},
    "expect_column_values_to_not_be_null": {"column", "mostly"},
    "expect_column_values_to_be_in_type_list": {"column", "type_list"},
    "expect_column_values_to_be_between": {"column", "min_value", "max_value", "mostly"},
    "expect_column_values_to_be_increasing": {"column", "strictly", "mostly"},
}
_QUICK_FALSE_KWARGS = {"strict_min", "strict_max", "row_condition", "condition_parser"}


@dataclass(frozen=True)
class _Numbers:
    """A numeric column as the quick check needs it, computed once for all its expectations.
    ``values``: floats as float64 (bounds such as +-float64 max overflow in a float32 array: an
    infinity would then compare equal to the bound and pass), integers as they are (numpy
    compares them with float bounds like pandas does). ``low``/``high``: the smallest and
    largest non-null value (None when there is none)."""

    values: np.ndarray
    nulls: int
    low: float | None
    high: float | None

    @classmethod
    def of(cls, series: pd.Series) -> _Numbers:
        if series.dtype.kind == "f":
            values = series.to_numpy(dtype=np.float64, copy=False)
            nulls = int(np.isnan(values).sum())
            if nulls == len(values):
                return cls(values, nulls, None, None)
            return cls(values, nulls, float(np.nanmin(values)), float(np.nanmax(values)))
        values = series.to_numpy(copy=False)
        if len(values) == 0:
            return cls(values, 0, None, None)
        return cls(values, 0, float(values.min()), float(values.max()))


def _quick_one(
    kind: str, kw: dict[str, Any], frame: pd.DataFrame, seen: dict[str, _Numbers]
) -> bool | None:
    """One expectation: True = passes, False = fails, None = not decidable here. ``seen``:
    the numeric columns converted so far."""
    if kind == "expect_table_columns_to_match_set":
        wanted, present = set(kw["column_set"] or ()), set(frame.columns)
        return wanted == present if kw.get("exact_match", True) is not False else wanted <= present
    if kind == "expect_table_row_count_to_be_between":
        lo, hi = kw.get("min_value"), kw.get("max_value")
        return (lo is None or len(frame) >= lo) and (hi is None or len(frame) <= hi)
    column = kw.get("column")
    if column not in frame.columns:
        return False
    dtype = frame[column].dtype
    if dtype.kind == "M":  # datetimes (a timestamp column): nulls and time order only
        return _quick_datetime(kind, kw, frame[column])
    if dtype.kind not in "iuf":  # objects, strings, nullable dtypes: GX's own rules
        return None
    if kind == "expect_column_values_to_be_in_type_list":
        return dtype.name in set(kw.get("type_list") or ())
    numbers = seen.get(column)
    if numbers is None:
        numbers = seen[column] = _Numbers.of(frame[column])
    array, nulls = numbers.values, numbers.nulls
    if kind == "expect_column_values_to_be_increasing":
        return None if nulls else _quick_increasing(np.diff(array), kw)
    mostly = 1.0 if kw.get("mostly") is None else kw["mostly"]
    if kind == "expect_column_values_to_not_be_null":
        return len(array) == 0 or (len(array) - nulls) / len(array) >= mostly
    # expect_column_values_to_be_between: over the non-null values, like GX's map expectations
    nonnull = len(array) - nulls
    if nonnull == 0:
        return True  # vacuously, as in GX
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if any(
        b is not None and (isinstance(b, bool) or not isinstance(b, (int, float))) for b in (lo, hi)
    ):
        return None  # dates, text...: GX's business
    if (lo is None or numbers.low >= lo) and (hi is None or numbers.high <= hi):
        return True  # every value inside (the usual case: no pass over the rows)
    with np.errstate(invalid="ignore"):
        outside = np.zeros(len(array), dtype=bool)
        if lo is not None:
            outside |= array < lo
        if hi is not None:
            outside |= array > hi
    return (nonnull - int(outside.sum())) / nonnull >= mostly


def _quick_increasing(steps: np.ndarray, kw: dict[str, Any]) -> bool:
    """GX's column_values.increasing over non-null values: the first value always passes."""
    n = steps.size + 1
    unexpected = int((steps <= 0).sum() if kw.get("strictly") else (steps < 0).sum())
    mostly = 1.0 if kw.get("mostly") is None else kw["mostly"]
    return (n - unexpected) / n >= mostly


def _quick_datetime(kind: str, kw: dict[str, Any], values: pd.Series) -> bool | None:
    nulls = int(values.isna().sum())
    if kind == "expect_column_values_to_not_be_null":
        mostly = 1.0 if kw.get("mostly") is None else kw["mostly"]
        return len(values) == 0 or (len(values) - nulls) / len(values) >= mostly
    if kind == "expect_column_values_to_be_increasing" and nulls == 0:
        if len(values) == 0:
            return True
        stamps = pd.DatetimeIndex(values).asi8  # integers in the column's unit, UTC if tz-aware
        return _quick_increasing(np.diff(stamps), kw)
    return None


def quick_check(df: pd.DataFrame, suite: gx.ExpectationSuite) -> bool | None:
    """Whether ``df`` passes ``suite``'s critical expectations (its data contract; warnings are
    not evaluated), decided with numpy in milliseconds, or None.

    Scoring validates every chunk of a batch; Great Expectations costs ~0.6 s per call whatever
    the chunk size, more than scoring the chunk. This evaluates the expectation types that
    :func:`~flows.expectations.suite.build_suite` writes with GX's semantics (``mostly`` over the non-null values for
    ranges, nulls and infinities as GX counts them). It is used only to let a chunk *pass*:
    False (a failure) or None (a suite or a column it cannot judge: user expectations,
    non-numpy dtypes) sends the chunk to GX, whose result is the one recorded and reported.
    """
    frame = model_inputs(df, suite)
    seen: dict[str, _Numbers] = {}
    for expectation in suite.expectations:
        if severity_of(expectation) != "critical":
            continue  # warnings never refuse a chunk (out_of_range counts the range per row)
        kind = expectation.expectation_type
        kw = dict(expectation.configuration.kwargs)
        allowed = _QUICK_KWARGS.get(kind)
        if allowed is None:
            return None
        flags = [kw.pop(k, None) for k in _QUICK_FALSE_KWARGS]
        if any(flags) or set(kw) - allowed or any(isinstance(v, dict) for v in kw.values()):
            return None  # conditions, strict bounds, suite parameters: GX's business
        verdict = _quick_one(kind, kw, frame, seen)
        if verdict is not True:
            return verdict
    return True

