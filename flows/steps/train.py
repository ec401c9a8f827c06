"""Step 4, train: fit the :class:`AnomalyDetector` of ``params`` on the normal training rows.

Inputs::

    <split_dir>/train.parquet, <split_dir>/split.json    (ingest)
    models/preprocessing.keras                           (preprocess)

Outputs (fixed paths under the project root, declared as DVC outs)::

    models/detector.keras            the fitted, *uncalibrated* detector (one .keras file,
                                     preprocessing inside; reloads with safe_mode=True)
    models/training_history.json     per-epoch loss / val_loss, epochs run, best epoch, fit time,
                                     detector parameters
    plots/loss.csv                   epoch,loss,val_loss (for ``dvc plots``; val_loss is empty when
                                     train.validation_fraction is 0)

The detector is fitted on ``label == 0`` rows (every row without labels) with the preprocessing
model of the preprocess step, loaded with ``safe_mode=True``. Early stopping on the held-out
``train.validation_fraction`` restores the best weights.

Sequence kinds (``model.kind: lstm_autoencoder``) fit on the **whole train series**, labelled
anomalies included: dropping points would join unrelated parts of the series into one window.
Labelled anomalous train points are counted (metric ``train_anomalous_points``, also in
``training_history.json``) and logged as a warning; with few of them the autoencoder still learns
the normal shape (their scaling is profiled on the normal points only, see preprocess). Put long
labelled anomalies outside the oldest ``1 - split.validation_fraction - split.test_fraction`` of
the series, or cut them out of the source, if they must not be learned. The held-out part for
early stopping is a random ``train.validation_fraction`` of the training windows.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from flows.config import Params
from flows.errors import DataError
from flows.io import atomic_save, atomic_write_json
from flows.layout import Layout
from flows.steps.detector_params import detector_from_params
from flows.steps.inputs import SplitData, load_split, require_file

__all__ = ["TrainResult", "TrainingDiverged", "train"]

log = logging.getLogger(__name__)

class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; nothing was written."""


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` wrote, and its metrics (``fit_seconds``, ``epochs_run``,
    ``final_loss``, ``final_val_loss`` (absent without a held-out part), ``best_epoch``,
    ``n_rows``)."""

    model_path: Path
    history_path: Path
    loss_csv_path: Path
    metrics: dict[str, float | int] = field(default_factory=dict)

    @property
    def outputs(self) -> list[Path]:
        return [self.model_path, self.history_path, self.loss_csv_path]


def _write_loss_csv(history: dict[str, list[float]], path: Path) -> Path:
    loss = history.get("loss", [])
    val = history.get("val_loss", [])

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh, lineterminator="\n")
            out.writerow(["epoch", "loss", "val_loss"])
            for i, value in enumerate(loss):
                out.writerow([i + 1, repr(value), repr(val[i]) if i < len(val) else ""])

    return atomic_save(path, write)


def _training_rows(detector: Any, split: SplitData) -> tuple[pd.DataFrame, int]:
    """The rows (tabular) or the series (sequence kinds) to fit on, and the number of labelled
    anomalous points kept in a series (0 for the tabular kinds, which drop them)."""
    if not detector.is_sequence:
        X = split.normal()
        if len(X) < 2:
            raise DataError(f"{split.path} has {len(X)} normal row(s); training needs at least 2")
        return X, 0
    X = split.X  # the whole series: windows must stay contiguous
    if len(X) < detector.window:
        raise DataError(
            f"{split.path} has {len(X)} points, fewer than model.window={detector.window}; "
            "rerun ingest (it checks the split lengths) or lower model.window"
        )
    n_anomalous = 0 if split.y is None else int(split.y.sum())
    if n_anomalous:
        log.warning(
            "the train series %s holds %d labelled anomalous point(s) (%s == 1): the "
            "sequence detector trains on the whole series, them included",
            split.path, n_anomalous, split.label_column,
        )
    return X, n_anomalous


def _load_preprocessing(path: Path, split: SplitData) -> Any:
    """The preprocess step's model (``safe_mode=True``), checked against the split's columns."""
    import keras

    pre_path = require_file(path, "preprocess")
    preprocessing = keras.models.load_model(pre_path, safe_mode=True)
    expected = list(preprocessing.input.keys())
    if expected != split.feature_columns:
        raise DataError(
            f"{pre_path} takes columns {expected} but the split's feature columns are "
            f"{split.feature_columns}; rerun `anomaly stage preprocess`"
        )
    return preprocessing


def _check_finite_losses(history: dict[str, list[float]], learning_rate: float) -> None:
    """:class:`TrainingDiverged` naming the first epoch whose loss is NaN or infinite."""
    for name in ("loss", "val_loss"):
        values = history.get(name, [])
        bad = [i + 1 for i, v in enumerate(values) if not math.isfinite(v)]
        if bad:
            raise TrainingDiverged(
                f"training diverged: {name} is {values[bad[0] - 1]} at epoch {bad[0]}; "
                f"lower train.learning_rate (now {learning_rate})"
            )


def _fit_metrics(detector: Any, n_rows: int, n_anomalous: int) -> dict[str, float | int]:
    """Fit time, epochs run, final and best losses, the best epoch, rows (and windows)."""
    loss = detector.history_.get("loss", [])
    val_loss = detector.history_.get("val_loss", [])
    metrics: dict[str, float | int] = {
        "fit_seconds": round(float(detector.fit_seconds_), 3),
        "epochs_run": len(loss),
        "final_loss": float(loss[-1]),
        "n_rows": n_rows,
    }
    if detector.is_sequence:
        metrics["n_windows"] = (n_rows - detector.window_) // detector.stride + 1
        metrics["train_anomalous_points"] = n_anomalous
    best_epoch = len(loss)
    if val_loss:
        metrics["final_val_loss"] = float(val_loss[-1])
        best_epoch = min(range(len(val_loss)), key=val_loss.__getitem__) + 1
        metrics["best_val_loss"] = float(val_loss[best_epoch - 1])
    metrics["best_epoch"] = best_epoch
    return metrics


def train(params: Params, root: Path) -> TrainResult:
    """Fit the detector on the normal training rows with the saved preprocessing model."""
    layout = Layout.of(params, root)
    detector = detector_from_params(params)  # ConfigError for an unavailable model.kind
    split = load_split(params, layout.root, "train")
    X, n_anomalous = _training_rows(detector, split)
    preprocessing = _load_preprocessing(layout.preprocessing_model, split)

    detector.fit(X, preprocessing_model=preprocessing)
    history = detector.history_
    _check_finite_losses(history, detector.learning_rate_)
    metrics = _fit_metrics(detector, len(X), n_anomalous)
    epochs_run, best_epoch = int(metrics["epochs_run"]), int(metrics["best_epoch"])

    model_path = atomic_save(layout.detector, detector.save)
    record = {
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "restored_best_weights": "final_val_loss" in metrics and best_epoch != epochs_run,
        "history": {k: list(v) for k, v in history.items()},
        "detector": detector.get_params(),
        "feature_columns": split.feature_columns,
        "rows": "normal train rows" if split.label_column else "all train rows (no labels)",
        "metrics": metrics,
    }
    if detector.is_sequence:
        record["rows"] = (
            f"the whole train series ({len(X)} points, {n_anomalous} labelled anomalous point(s) "
            "kept: windows must stay contiguous)"
        )
    history_path = atomic_write_json(record, layout.history)
    loss_csv_path = _write_loss_csv(history, layout.loss_csv)
    return TrainResult(
        model_path=model_path,
        history_path=history_path,
        loss_csv_path=loss_csv_path,
        metrics=metrics,
    )
