"""Step 3, preprocess: the Keras preprocessing model, fitted on the normal training rows.

Inputs::

    <split_dir>/train.parquet        every train row (label column included when there is one)
    <split_dir>/split.json           the feature columns, in model order

Outputs (fixed paths under the project root, declared as DVC outs)::

    models/preprocessing.keras       Keras model: one named input per feature column -> (n, d)
                                     float32 (median imputation, scaling, optional asinh)
    models/preprocessing.json        columns, scaling, tail compression, per-column centre / scale /
                                     fill value as profiled, number of rows profiled

The preprocessing model is built by :meth:`AnomalyDetector.build_preprocessing` on the rows the
detector is fitted on (``label == 0`` when ``data.label_column`` is set, else every row), so the
train step fits on exactly the same rows with exactly this model.

Sequence kinds (``model.kind: lstm_autoencoder``): the scaling is profiled on the normal points of
the train series (robust statistics need no continuity); the network itself trains on the whole
train series (see :mod:`flows.steps.train`). ``data.timestamp_column`` is required
(:class:`~flows.config.ConfigError` naming it).

"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flows.config import Params
from flows.errors import DataError
from flows.io import atomic_save, atomic_write_json
from flows.layout import Layout
from flows.steps.detector_params import detector_from_params
from flows.steps.inputs import load_split

__all__ = [
    "PreprocessResult",
    "preprocess",
]


# --------------------------------------------------------------------------- the step
@dataclass(frozen=True)
class PreprocessResult:
    """What :func:`preprocess` wrote, and its metrics (``n_rows``, ``n_features``)."""

    model_path: Path
    meta_path: Path
    feature_columns: list[str]
    metrics: dict[str, float | int] = field(default_factory=dict)

    @property
    def outputs(self) -> list[Path]:
        return [self.model_path, self.meta_path]


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _profile(model: Any, columns: list[str], scaling: str) -> list[dict[str, Any]]:
    """Per-column fill value, centre and scale, read from the layers of the built model."""
    norm = model.get_layer(f"{scaling}_scaling")
    centre = np.asarray(norm.input_mean, dtype="float64").reshape(-1)
    scale = np.sqrt(np.asarray(norm.input_variance, dtype="float64").reshape(-1))
    fill = np.asarray(model.get_layer("impute_median").fill_values, dtype="float64").reshape(-1)
    return [
        {
            "name": c,
            "fill_value": _finite(fill[i]),
            "centre": _finite(centre[i]),
            "scale": _finite(scale[i]),
        }
        for i, c in enumerate(columns)
    ]


def preprocess(params: Params, root: Path) -> PreprocessResult:
    """Build the preprocessing model on the normal training rows and save it (+ its profile)."""
    layout = Layout.of(params, root)
    detector = detector_from_params(params)  # fails on an unavailable model.kind before any work
    train = load_split(params, root, "train")
    X = train.normal()
    if len(X) == 0:
        raise DataError(
            f"{train.path} has no normal rows ({train.label_column} == 0) to fit the "
            "preprocessing on"
        )
    model = detector.build_preprocessing(X)

    model_path = atomic_save(layout.preprocessing_model, model.save)
    metrics: dict[str, float | int] = {"n_rows": len(X), "n_features": len(train.feature_columns)}
    rows = "normal train rows" if train.label_column else "all train rows (no labels)"
    if detector.is_sequence:
        rows = rows.replace("rows", "points") + " (the network trains on the whole train series)"
    meta = {
        "columns": train.feature_columns,
        "kind": params.model.kind,
        "scaling": params.model.scaling,
        "tail_compression": params.model.tail_compression,
        "imputation": "median of the profiled rows",
        "profile": _profile(model, train.feature_columns, params.model.scaling),
        "rows": rows,
        "label_column": train.label_column,
        "output_dim": int(model.output.shape[-1]),
        "metrics": metrics,
    }
    meta_path = atomic_write_json(meta, layout.preprocessing_meta)
    return PreprocessResult(
        model_path=model_path,
        meta_path=meta_path,
        feature_columns=list(train.feature_columns),
        metrics=metrics,
    )
