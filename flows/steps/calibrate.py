"""Step 5, calibrate: the threshold of the trained detector, on the validation split.

Inputs::

    <split_dir>/validation.parquet, <split_dir>/split.json   (ingest)
    models/detector.keras                                     (train)

Outputs (fixed paths under the project root, declared as DVC outs)::

    models/model.keras        the calibrated detector: the artifact that evaluate scores and
                              register packages (threshold and its record inside)
    models/threshold.json     ThresholdResult.to_dict() (method, params, threshold,
                              false_alarm_rate, n_calibration) + expected_false_alarm_rate,
                              nominal_false_alarm_rate, labels_used, validation row counts

``threshold.method`` picks the method; its parameters come from the matching keys:

=============  ==================================================================
quantile       threshold.quantile -> q
mean_std       threshold.k -> k
median_mad     threshold.k -> k
iqr            threshold.iqr_k -> k
pot            threshold.target_false_alarm_rate, threshold.pot_initial_quantile
best_f1        (none; needs labels)
=============  ==================================================================

Sequence kinds (``model.kind: lstm_autoencoder``): the threshold is set on the per-point scores
of the validation series, scored with the last ``context_length`` points of the train split as
context (as one continuous stream: validation follows train in time), one score per point.

With ``data.label_column`` set, the labels go to the calibration, so the unsupervised methods use
the normal validation rows only and ``best_f1`` maximises F1 against them. ``false_alarm_rate`` /
``expected_false_alarm_rate`` is the fraction of normal validation rows above the threshold (of
all validation rows without labels); ``nominal_false_alarm_rate`` is the rate the method aims at,
where it defines one (``1 - q`` for quantile, the target for pot), else null.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.config import ConfigError, Params
from flows.steps.ingest import DataError, atomic_write_json
from flows.steps.preprocess import (
    MODELS_DIR,
    atomic_save,
    load_split,
    previous_points,
    require_file,
)
from flows.steps.train import DETECTOR_FILE

__all__ = [
    "CalibrateResult",
    "MODEL_FILE",
    "THRESHOLD_FILE",
    "calibrate",
    "threshold_kwargs",
]

MODEL_FILE = f"{MODELS_DIR}/model.keras"
THRESHOLD_FILE = f"{MODELS_DIR}/threshold.json"


@dataclass(frozen=True)
class CalibrateResult:
    """What :func:`calibrate` wrote, the threshold record (``ThresholdResult.to_dict()`` plus the
    expected false-alarm rate) and the metrics (``threshold``, ``false_alarm_rate``,
    ``n_calibration``)."""

    model_path: Path
    threshold_path: Path
    record: dict[str, Any]
    metrics: dict[str, float | int] = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        return float(self.record["threshold"])

    @property
    def outputs(self) -> list[Path]:
        return [self.model_path, self.threshold_path]


def threshold_kwargs(params: Params) -> dict[str, float]:
    """The keyword arguments of ``threshold.method`` taken from ``params.threshold``."""
    t = params.threshold
    return {
        "quantile": {"q": t.quantile},
        "mean_std": {"k": t.k},
        "median_mad": {"k": t.k},
        "iqr": {"k": t.iqr_k},
        "pot": {
            "target_false_alarm_rate": t.target_false_alarm_rate,
            "initial_quantile": t.pot_initial_quantile,
        },
        "best_f1": {},
    }[t.method]


def _nominal_rate(params: Params) -> float | None:
    t = params.threshold
    if t.method == "quantile":
        return round(1.0 - t.quantile, 12)
    if t.method == "pot":
        return t.target_false_alarm_rate
    return None


def _config_error(params: Params, message: str) -> ConfigError:
    where = f" [params file: {params.source_file}]" if params.source_file else ""
    return ConfigError(message + where, path=params.source_file, keys=["threshold.method"])


def calibrate(params: Params, root: Path) -> CalibrateResult:
    """Calibrate ``models/detector.keras`` on the validation split; save the calibrated model.

    Raises:
        ConfigError: naming ``threshold.method`` when ``best_f1`` is asked for without labels, or
            the method cannot calibrate on this validation split (e.g. too few rows for pot).
    """
    root = Path(root)
    method = params.threshold.method
    label = params.data.label_column
    if method == "best_f1" and label is None:
        raise _config_error(
            params,
            "threshold.method: best_f1 needs labels, but data.label_column is null; set "
            "data.label_column or choose an unsupervised method (quantile, mean_std, median_mad, "
            "iqr, pot)",
        )
    from anomaly_models.detector import AnomalyDetector

    detector_path = require_file(root / DETECTOR_FILE, "train")
    detector = AnomalyDetector.load(detector_path)
    split = load_split(params, root, "validation")
    missing = [c for c in detector.feature_names_in_ if c not in split.feature_columns]
    if missing:
        raise DataError(
            f"{detector_path} was fitted on columns {list(detector.feature_names_in_)}, but the "
            f"validation split lacks {missing}; rerun `anomaly stage train`"
        )
    y = split.y
    kwargs = threshold_kwargs(params)
    context = previous_points(params, root, "validation", detector)  # None: tabular kinds
    try:
        record = detector.calibrate(split.X, y, method=method, context=context, **kwargs)
    except ValueError as exc:
        raise _config_error(
            params,
            f"threshold.method: {method} cannot calibrate on the validation split "
            f"({split.path}, {len(split.frame)} rows): {exc}",
        ) from exc

    n_normal = int((y == 0).sum()) if y is not None else len(split.frame)
    threshold_record = {
        **record.to_dict(),
        "expected_false_alarm_rate": record.false_alarm_rate,
        "nominal_false_alarm_rate": _nominal_rate(params),
        "labels_used": y is not None,
        "n_validation": len(split.frame),
        "n_validation_normal": n_normal,
        "model": MODEL_FILE,
    }
    if context is not None:
        threshold_record["scored_as"] = "per point, after the last train points as context"
        threshold_record["context_points"] = len(context)
    metrics: dict[str, float | int] = {
        "threshold": record.threshold,
        "false_alarm_rate": record.false_alarm_rate,
        "n_calibration": record.n_calibration,
    }
    if method == "best_f1":
        metrics["validation_f1"] = record.params["f1"]

    model_path = atomic_save(root / MODEL_FILE, detector.save)
    threshold_path = atomic_write_json(threshold_record, root / THRESHOLD_FILE)
    return CalibrateResult(
        model_path=model_path,
        threshold_path=threshold_path,
        record=threshold_record,
        metrics=metrics,
    )
