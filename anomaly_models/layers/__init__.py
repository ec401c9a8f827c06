"""Keras 3 layers of the library, each registered for ``.keras`` serialization."""

from anomaly_models.layers.missing_value_imputation import MissingValueImputation
from anomaly_models.layers.neighbour_distance import NeighbourDistance
from anomaly_models.layers.numerical_anomaly_detection import NumericalAnomalyDetection
from anomaly_models.layers.prediction_error_anomaly_score import PredictionErrorAnomalyScore
from anomaly_models.layers.sequence_anomaly_score_layer import SequenceAnomalyScoreLayer
from anomaly_models.layers.tail_compression import TailCompression
from anomaly_models.layers.tail_rarity import TailRarity

__all__ = [
    "MissingValueImputation", "NeighbourDistance", "NumericalAnomalyDetection", "TailCompression",
    "TailRarity",
    "SequenceAnomalyScoreLayer", "PredictionErrorAnomalyScore",
]
