"""Shared fixtures of the scoring step tests: a tiny real detector and its real GX suite (trained
once per session), settings pointing at a temporary project, and batches inside the suite's
ranges. The scorer is the detector's own ``score_frame``, so chunked output can be compared with
scoring the whole frame; no Prefect, no MLflow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flows.config import Params
from flows.steps.score import BatchScorer, ModelRef, ScoringDirs, ScoringOptions

FEATURES = ["a", "b", "c"]


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    return pd.DataFrame(
        {
            "a": 10 + 2 * z + rng.normal(scale=0.3, size=n),
            "b": -z + rng.normal(scale=0.3, size=n),
            "c": rng.uniform(0, 5, size=n),
        }
    )


def params(tmp_path: Path, chunk_rows: int) -> Params:
    return Params.model_validate(
        {
            "data": {"source": "unused.csv", "label_column": None},
            "scoring": {
                "incoming_dir": str(tmp_path / "incoming"),
                "scored_dir": str(tmp_path / "scored"),
                "quarantine_dir": str(tmp_path / "quarantine"),
                "chunk_rows": chunk_rows,
                "passthrough_columns": ["site"],
            },
        }
    )


@pytest.fixture(scope="session")
def model() -> tuple[Any, Any, pd.DataFrame]:
    """(detector, suite, training frame): a tiny calibrated detector and its GX suite."""
    from anomaly_models import AnomalyDetector
    from flows.expectations import build_suite

    train = frame(2000, seed=0)
    detector = AnomalyDetector(hidden_dims=[4, 2], epochs=2, batch_size=256, seed=0).fit(train)
    detector.calibrate(frame(500, seed=1))
    suite = build_suite(train, FEATURES, Params.model_validate({"data": {"label_column": None}}))
    return detector, suite, train


@pytest.fixture
def make_params() -> Callable[[Path, int], Params]:
    """``make_params(tmp_path, chunk_rows)``: folders under ``tmp_path``, ``site`` passed through."""
    return params


@pytest.fixture
def make_options() -> Callable[[Path, int], ScoringOptions]:
    """``make_options(tmp_path, chunk_rows)``: :class:`ScoringOptions` of :func:`params`."""
    return lambda tmp_path, chunk_rows: ScoringOptions.from_params(
        params(tmp_path, chunk_rows), tmp_path
    )


@pytest.fixture
def make_dirs() -> Callable[[Path], ScoringDirs]:
    """``make_dirs(tmp_path)``: the scoring folders of :func:`params` under ``tmp_path``."""
    return lambda tmp_path: ScoringDirs.from_params(params(tmp_path, 100), tmp_path)


@pytest.fixture
def make_scorer() -> Callable[[Any], BatchScorer]:
    """``make_scorer(detector)``: its ``score_frame`` as version 7 of model ``unit``."""

    def _make(detector: Any) -> BatchScorer:
        return BatchScorer(
            predict=detector.score_frame,
            features=FEATURES,
            model=ModelRef(name="unit", version=7, alias="champion", uri="models:/unit/7"),
        )

    return _make


@pytest.fixture
def make_batch() -> Callable[..., pd.DataFrame]:
    """``make_batch(n=5000, seed=2)``: rows drawn from the training distribution's core (always
    inside the suite's ranges), plus a ``site`` text column (passed through, not validated)."""

    def _make(n: int = 5000, seed: int = 2) -> pd.DataFrame:
        df = frame(n, seed)
        df["a"] = df["a"].clip(7, 13)
        df["b"] = df["b"].clip(-1.5, 1.5)
        df["site"] = [f"s{i % 3}" for i in range(n)]  # scoring.passthrough_columns: kept
        return df

    return _make
