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

This module also holds the small helpers the model steps share (:func:`detector_from_params`,
:func:`load_split`, :func:`atomic_save`, :func:`require_file`): plain functions, no Prefect, no
MLflow.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flows.config import ConfigError, Params, resolve
from flows.steps.ingest import (
    SPLIT_META_FILE,
    DataError,
    atomic_save,
    atomic_write_json,
    normal_rows,
    read_table,
    require_timestamp_column,
    split_paths,
)

__all__ = [
    "MODELS_DIR",
    "PLOTS_DIR",
    "PREPROCESSING_META_FILE",
    "PREPROCESSING_MODEL_FILE",
    "PreprocessResult",
    "SplitData",
    "atomic_save",
    "detector_from_params",
    "load_split",
    "preprocess",
    "previous_points",
    "require_file",
]

#: Fixed output locations, relative to the project root (DVC declares them).
MODELS_DIR = "models"
PLOTS_DIR = "plots"
PREPROCESSING_MODEL_FILE = f"{MODELS_DIR}/preprocessing.keras"
PREPROCESSING_META_FILE = f"{MODELS_DIR}/preprocessing.json"

#: model.kind values implemented by :class:`anomaly_models.detector.AnomalyDetector`.
AVAILABLE_KINDS = ("autoencoder", "feature", "lstm_autoencoder")


# --------------------------------------------------------------------------- shared helpers
def detector_from_params(params: Params) -> Any:
    """An unfitted :class:`~anomaly_models.detector.AnomalyDetector` configured by ``params``
    (``model.*`` and ``train.*``; for ``lstm_autoencoder`` also ``model.window``, ``stride``,
    ``point_aggregation``, ``smoothing``, ``lstm_units``, ``latent_dim``).

    Raises:
        ConfigError: ``model.kind`` names a detector that is not available, a sequence kind has
            no ``data.timestamp_column``, or the detector rejects a ``model.*`` value (naming it).
    """
    m, t = params.model, params.train
    where = f" [params file: {params.source_file}]" if params.source_file else ""
    if m.kind not in AVAILABLE_KINDS:
        raise ConfigError(
            f"model.kind: {m.kind} is not available; choose one of {', '.join(AVAILABLE_KINDS)}"
            + where,
            path=params.source_file,
            keys=["model.kind"],
        )
    require_timestamp_column(params)
    from anomaly_models.detector import AnomalyDetector  # imports Keras: only when needed

    kwargs: dict[str, Any] = {
        "kind": m.kind,
        "hidden_dims": list(m.hidden_dims),
        "epochs": t.epochs,
        "batch_size": t.batch_size,
        "learning_rate": t.learning_rate,
        "validation_fraction": t.validation_fraction,
        "patience": t.patience,
        "seed": t.seed,
        "reconstruction_weight": m.reconstruction_weight,
        "distribution_weight": m.distribution_weight,
        "scaling": m.scaling,
        "tail_compression": m.tail_compression,
    }
    if m.is_sequence:
        kwargs.update(
            window=m.window,
            stride=m.stride,
            point_aggregation=m.point_aggregation,
            smoothing=m.smoothing,
            lstm_units=m.lstm_units,
            latent_dim=m.latent_dim,
        )
    try:
        return AnomalyDetector(**kwargs)
    except ValueError as exc:  # the library names its argument: `window` -> model.window
        text = str(exc)
        keys = [f"model.{k}" for k in ("window", "stride", "point_aggregation", "smoothing",
                                        "lstm_units", "latent_dim") if f"`{k}`" in text]
        raise ConfigError(
            f"{', '.join(keys) or 'model'}: {text}{where}",
            path=params.source_file,
            keys=keys or ["model"],
        ) from exc


def require_file(path: Path, produced_by: str) -> Path:
    """``path`` when it is a file, else :class:`FileNotFoundError` naming the step to run."""
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"{path} not found: it is written by the {produced_by} step; "
            f"run `anomaly stage {produced_by}` first"
        )
    return Path(path)


@dataclass(frozen=True)
class SplitData:
    """One split as the model steps see it."""

    name: str
    path: Path
    frame: pd.DataFrame  # every column of the split file
    feature_columns: list[str]
    label_column: str | None  # None when data.label_column is null (no labels)

    @property
    def X(self) -> pd.DataFrame:  # noqa: N802 - the usual name of a feature matrix
        return self.frame[self.feature_columns]

    @property
    def y(self) -> np.ndarray | None:
        if self.label_column is None:
            return None
        return self.frame[self.label_column].to_numpy(dtype="int64")

    def normal(self) -> pd.DataFrame:
        """Feature columns of the rows a detector is fitted on (label 0, or all rows)."""
        return normal_rows(self.frame, self.label_column)[self.feature_columns]


def load_split(params: Params, root: Path, name: str) -> SplitData:
    """Read split ``name`` (train | validation | test) and the feature columns of ``split.json``.

    Raises:
        FileNotFoundError: the split was not written yet (run ingest).
        DataError: ``split.json`` is unreadable, or the split lacks a feature column or the
            label column of ``data.label_column``.
    """
    paths = split_paths(params, root)
    meta_path = require_file(resolve(root, params.data.split_dir) / SPLIT_META_FILE, "ingest")
    path = require_file(paths[name], "ingest")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        features = [str(c) for c in meta["feature_columns"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"cannot read the feature columns from {meta_path}: {exc}") from exc
    frame = read_table(path)
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path} lacks feature column(s) {missing} listed in {meta_path}; rerun ingest"
        )
    label = params.data.label_column
    if label is not None and label not in frame.columns:
        raise DataError(
            f"{path} lacks the label column {label!r} (data.label_column); the split was written "
            "with other settings: rerun ingest"
        )
    return SplitData(name=name, path=path, frame=frame, feature_columns=features, label_column=label)


#: The split just before each scored split in time (sequence kinds split contiguously).
PREVIOUS_SPLIT = {"validation": "train", "test": "validation"}


def previous_points(params: Params, root: Path, name: str, detector: Any) -> pd.DataFrame | None:
    """For a sequence detector: the last ``detector.context_length`` points (value columns) of
    the split before split ``name`` in time, the context that scores ``name``'s first points as
    in one continuous stream. None for the tabular kinds, or for the train split.
    """
    if not getattr(detector, "is_sequence", False) or name not in PREVIOUS_SPLIT:
        return None
    previous = load_split(params, root, PREVIOUS_SPLIT[name])
    features = [str(c) for c in detector.feature_names_in_]
    return previous.frame[features].iloc[max(0, len(previous.frame) - detector.context_length) :]


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
    root = Path(root)
    detector = detector_from_params(params)  # fails on an unavailable model.kind before any work
    train = load_split(params, root, "train")
    X = train.normal()
    if len(X) == 0:
        raise DataError(
            f"{train.path} has no normal rows ({train.label_column} == 0) to fit the "
            "preprocessing on"
        )
    model = detector.build_preprocessing(X)

    model_path = atomic_save(root / PREPROCESSING_MODEL_FILE, model.save)
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
    meta_path = atomic_write_json(meta, root / PREPROCESSING_META_FILE)
    return PreprocessResult(
        model_path=model_path,
        meta_path=meta_path,
        feature_columns=list(train.feature_columns),
        metrics=metrics,
    )
