"""Shared fixtures of the step tests: small real data files in a temporary project root."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flows.config import Params


def make_frame(n: int = 200, anomaly_rate: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """``n`` rows: float features a, b, an int feature c, a text column, and a 0/1 label y."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype="int64")
    y[: int(round(n * anomaly_rate))] = 1
    rng.shuffle(y)
    return pd.DataFrame(
        {
            "a": rng.normal(0.0, 1.0, n) + 4.0 * y,
            "b": rng.uniform(10.0, 20.0, n),
            "c": rng.integers(0, 100, n),
            "note": [f"row-{i}" for i in range(n)],
            "y": y,
        }
    )


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture(name="make_frame")
def make_frame_fixture() -> Callable[..., pd.DataFrame]:
    """The :func:`make_frame` factory, for tests that need other sizes."""
    return make_frame


@pytest.fixture
def make_params() -> Callable[..., Params]:
    """``make_params(source, **{"data.label_column": None, ...})`` -> Params (defaults + these)."""

    def _make(source: str | Path = "data.csv", **dotted: Any) -> Params:
        tree: dict[str, Any] = {"data": {"source": str(source), "label_column": "y"}}
        for key, value in dotted.items():
            section, name = key.split(".", 1)
            tree.setdefault(section, {})[name] = value
        return Params.model_validate(tree)

    return _make
