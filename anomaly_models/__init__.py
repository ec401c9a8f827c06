"""anomaly_models: Keras 3 anomaly detectors (pure library: no pipeline tools imported here).

Main entry points::

    from anomaly_models import AnomalyDetector           # fit / calibrate / score / save / load
    AnomalyDetector(kind="lstm_autoencoder", window=32)  # ordered series in, one score per point
    from anomaly_models.layers import NumericalAnomalyDetection
    from anomaly_models.models import Autoencoder
    from anomaly_models.preprocessing import DataAnalyzer, build_preprocessing_model
    from anomaly_models.thresholds import calibrate_threshold

The names of fusionlab-learn's ``nn.anomaly_detection`` / ``nn.utils`` (seed 004) live here too::

    from anomaly_models import LSTMAutoencoderAnomaly, SequenceAnomalyScoreLayer
    from anomaly_models import PredictionErrorAnomalyScore, create_sequences
"""

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
