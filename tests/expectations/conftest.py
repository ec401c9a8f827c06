"""Shared fixtures of the flows.expectations tests: a training frame, its suite, a GX folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flows.config import Params
from flows.expectations import ValidationReport, build_suite, validate_frame

FEATURES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def features() -> list[str]:
    """The feature columns of :func:`train`: floats a, b and an integer c (y is the label)."""
    return list(FEATURES)


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 300
    return pd.DataFrame(
        {
            "a": rng.normal(0.0, 1.0, n),
            "b": rng.uniform(10.0, 20.0, n),
            "c": rng.integers(0, 100, n),
            "y": (rng.random(n) < 0.1).astype("int64"),
        }
    )


@pytest.fixture(scope="module")
def make_params() -> Callable[..., Params]:
    """``make_params(**validate)``: settings with label column y and this ``validate`` section."""

    def make(**validate: Any) -> Params:
        data = {"source": "x.csv", "label_column": "y"}
        return Params.model_validate({"data": data, **({"validate": validate} if validate else {})})

    return make


@pytest.fixture(scope="module")
def params(make_params) -> Params:
    return make_params()


@pytest.fixture(scope="module")
def suite(train, features, params):
    return build_suite(train, features, params)


@pytest.fixture(scope="module")
def gx_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("project") / "gx"


@pytest.fixture
def batch(train) -> pd.DataFrame:
    """A clean batch: rows of the training data itself (always inside the ranges)."""
    return train.sample(100, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def check(gx_dir) -> Callable[..., ValidationReport]:
    """``check(df, suite, name="batch")``: validate with Data Docs in the module's GX folder."""

    def run(df: pd.DataFrame, suite: Any, name: str = "batch") -> ValidationReport:
        return validate_frame(df, suite, gx_dir, name)

    return run
