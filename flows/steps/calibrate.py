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

``threshold.method`` picks the method (a row of
:data:`anomaly_models.thresholds.THRESHOLD_METHODS`); its parameters are the keys of the
method's own section, named as the library names them:

=============  ==================================================================
quantile       threshold.quantile.q
mean_std       threshold.mean_std.k
median_mad     threshold.median_mad.k
iqr            threshold.iqr.k
pot            threshold.pot.target_false_alarm_rate, threshold.pot.initial_quantile
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

from anomaly_models.thresholds import THRESHOLD_METHODS
from flows.config import ConfigError, Params
from flows.errors import DataError
from flows.io import atomic_save, atomic_write_json
from flows.layout import Layout
from flows.steps.inputs import load_split, previous_points, require_file

__all__ = ["CalibrateResult", "calibrate"]


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


def _config_error(params: Params, message: str) -> ConfigError:
    where = f" [params file: {params.source_file}]" if params.source_file else ""
    return ConfigError(message + where, path=params.source_file, keys=["threshold.method"])


def calibrate(params: Params, root: Path) -> CalibrateResult:
    """Calibrate ``models/detector.keras`` on the validation split; save the calibrated model.

    Raises:
        ConfigError: naming ``threshold.method`` when ``best_f1`` is asked for without labels, or
            the method cannot calibrate on this validation split (e.g. too few rows for pot).
    """
    layout = Layout.of(params, root)
    root = layout.root
    method = params.threshold.method
    row = THRESHOLD_METHODS[method]
    if row.needs_labels and params.data.label_column is None:
        unsupervised = [m.name for m in THRESHOLD_METHODS.values() if not m.needs_labels]
        raise _config_error(
            params,
            f"threshold.method: {method} needs labels, but data.label_column is null; set "
            f"data.label_column or choose an unsupervised method ({', '.join(unsupervised)})",
        )
    from anomaly_models.detector import AnomalyDetector

    detector_path = require_file(layout.detector, "train")
    detector = AnomalyDetector.load(detector_path)
    split = load_split(params, root, "validation")
    missing = [c for c in detector.feature_names_in_ if c not in split.feature_columns]
    if missing:
        raise DataError(
            f"{detector_path} was fitted on columns {list(detector.feature_names_in_)}, but the "
            f"validation split lacks {missing}; rerun `anomaly stage train`"
        )
    y = split.y
    kwargs = params.threshold.method_parameters()
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
        "nominal_false_alarm_rate": row.nominal_false_alarm_rate(**kwargs),
        "labels_used": y is not None,
        "n_validation": len(split.frame),
        "n_validation_normal": n_normal,
        "model": layout.relative(layout.model),
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

    model_path = atomic_save(layout.model, detector.save)
    threshold_path = atomic_write_json(threshold_record, layout.threshold)
    return CalibrateResult(
        model_path=model_path,
        threshold_path=threshold_path,
        record=threshold_record,
        metrics=metrics,
    )
