"""``out_of_range``: per scored row, how many of its features lie outside the training range.

The range of a feature is the one its model version's suite checks as a *warning*
(:func:`flows.expectations.range_bounds`: the training split's min and max widened by
``validate.range_margin`` of the span on each side). Rows outside it are what a detector
exists to flag, so they are scored like any other row and marked; the detector decides
whether they are anomalies. NaN (an allowed missing value) is not outside.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["OUT_OF_RANGE", "RangeCounter"]

#: The column scoring adds (int64: 0 .. number of features with a range).
OUT_OF_RANGE = "out_of_range"


def _as_float(values: pd.Series) -> np.ndarray:
    try:
        return values.to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError):  # text in a column: its validation names it
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


class RangeCounter:
    """Counts, chunk after chunk of one batch, the features outside their training range.

    ``bounds``: ``{feature: (low, high)}``. :meth:`count` returns a chunk's ``out_of_range``
    column; ``rows`` (rows with at least one) and ``by_column`` (rows outside, per feature)
    add up over the batch.
    """

    def __init__(self, bounds: Mapping[str, tuple[float, float]]) -> None:
        self.bounds = dict(bounds)
        self.rows = 0
        self.by_column: dict[str, int] = {}

    def count(self, frame: pd.DataFrame) -> np.ndarray:
        """``(len(frame),)`` int64: how many features of each row are outside their range."""
        counts = np.zeros(len(frame), dtype="int64")
        for column, (low, high) in self.bounds.items():
            if column not in frame.columns:
                continue
            values = _as_float(frame[column])
            with np.errstate(invalid="ignore"):
                outside = (values < low) | (values > high)
            n = int(outside.sum())
            if n:
                counts += outside
                self.by_column[column] = self.by_column.get(column, 0) + n
        self.rows += int((counts > 0).sum())
        return counts
