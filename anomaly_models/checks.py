"""Argument and input checks shared by the library's layers, models and detector (public helpers).

Every check raises ``ValueError`` (or ``TypeError``) with a message that names the argument
and shows the value received, so a user sees what is wrong without reading a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` as int when it is a positive integer (bools rejected), else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, received {name}={value!r}")
    return int(value)


def check_non_negative_int(name: str, value: Any) -> int:
    """Return ``value`` as int when it is an integer >= 0 (bools rejected), else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, received {name}={value!r}")
    return int(value)


def check_positive_int_list(name: str, value: Any) -> list[int]:
    """Return a non-empty list of positive integers, else raise with the offending entry."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"`{name}` must be a non-empty list of positive integers, received {name}={value!r}")
    if len(value) == 0:
        raise ValueError(f"`{name}` must be a non-empty list of positive integers, received {name}=[]")
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)) or item <= 0:
            raise ValueError(
                f"`{name}` must contain only positive integers, received {name}={list(value)!r} "
                f"(entry {i} is {item!r})"
            )
    return [int(v) for v in value]


def check_fraction(name: str, value: Any, *, low: float = 0.0, high: float = 1.0) -> float:
    """Return ``value`` as float when it is a finite number in [low, high], else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"`{name}` must be a number in [{low}, {high}], received {name}={value!r}")
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"`{name}` must be in [{low}, {high}], received {name}={value!r}")
    return value


def check_finite_float(name: str, value: Any) -> float:
    """Return ``value`` as a finite float, else raise."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a finite number, received {name}={value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"`{name}` must be a finite number, received {name}={value!r}")
    return number


def check_finite_matrix(
    X: np.ndarray,
    what: str = "X",
    columns: Sequence[str] | None = None,
    *,
    allow_nan: bool = False,
) -> None:
    """Raise when a 2-D float array holds inf (or NaN, unless ``allow_nan``), naming the
    columns and counts."""
    bad = np.isinf(X) if allow_nan else ~np.isfinite(X)
    if not bad.any():
        return
    per_column = bad.sum(axis=0)
    names = list(columns) if columns is not None else [str(i) for i in range(X.shape[1])]
    parts = [
        f"{names[j]!s} ({int(per_column[j])} rows)" for j in np.flatnonzero(per_column)[:10]
    ]
    n_nan, n_inf = int(np.isnan(X).sum()), int(np.isinf(X).sum())
    if allow_nan:
        raise ValueError(
            f"{what} contains {n_inf} infinite values, in column(s): {', '.join(parts)}. An "
            "infinite value has no meaningful score: replace it (NaN is allowed and imputed "
            "with the training median) or drop these rows."
        )
    raise ValueError(
        f"{what} contains {n_nan} NaN and {n_inf} infinite values, in column(s): {', '.join(parts)}. "
        "Impute or drop these rows before fitting or scoring."
    )
