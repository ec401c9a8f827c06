"""anomaly_models: Keras 3 anomaly detectors (pure library: no pipeline tools imported here).

Main entry points::

    from anomaly_models import AnomalyDetector           # fit / calibrate / score / save / load
    AnomalyDetector(kind="lstm_autoencoder", window=32)  # ordered series in, one score per point
    from anomaly_models.layers import NumericalAnomalyDetection
    from anomaly_models.models import Autoencoder
    from anomaly_models.preprocessing import DataAnalyzer, build_preprocessing_model
    from anomaly_models.thresholds import calibrate_threshold, THRESHOLD_METHODS
    from anomaly_models.kinds import DETECTOR_KINDS, KINDS  # the table of detector kinds

The names of fusionlab-learn's ``nn.anomaly_detection`` / ``nn.utils`` (seed 004) live here too::

    from anomaly_models import LSTMAutoencoderAnomaly, SequenceAnomalyScoreLayer
    from anomaly_models import PredictionErrorAnomalyScore, create_sequences

The names above are imported on first use (PEP 562), so ``import anomaly_models.kinds`` or
``anomaly_models.thresholds`` (e.g. by configuration code) does not import Keras or TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, for type checkers and linters
    from anomaly_models.detector import AnomalyDetector, NotFittedError
    from anomaly_models.layers.prediction_error_anomaly_score import PredictionErrorAnomalyScore
    from anomaly_models.layers.sequence_anomaly_score_layer import SequenceAnomalyScoreLayer
    from anomaly_models.models.lstm_autoencoder_anomaly import LSTMAutoencoderAnomaly
    from anomaly_models.sequences import (
        create_sequences,
        moving_average,
        sliding_windows,
        window_scores_to_points,
    )

#: public name -> the module that defines it (imported when the name is first used)
_LAZY = {
    "AnomalyDetector": "anomaly_models.detector",
    "NotFittedError": "anomaly_models.detector",
    "LSTMAutoencoderAnomaly": "anomaly_models.models.lstm_autoencoder_anomaly",
    "SequenceAnomalyScoreLayer": "anomaly_models.layers.sequence_anomaly_score_layer",
    "PredictionErrorAnomalyScore": "anomaly_models.layers.prediction_error_anomaly_score",
    "create_sequences": "anomaly_models.sequences",
    "sliding_windows": "anomaly_models.sequences",
    "window_scores_to_points": "anomaly_models.sequences",
    "moving_average": "anomaly_models.sequences",
}

__all__ = [
    "AnomalyDetector",
    "NotFittedError",
    "LSTMAutoencoderAnomaly",
    "SequenceAnomalyScoreLayer",
    "PredictionErrorAnomalyScore",
    "create_sequences",
    "sliding_windows",
    "window_scores_to_points",
    "moving_average",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    try:  # a submodule, e.g. anomaly_models.detector after a bare `import anomaly_models`
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
