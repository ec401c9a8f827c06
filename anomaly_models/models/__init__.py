"""Keras 3 models of the library, each registered for ``.keras`` serialization."""

from anomaly_models.models.autoencoder import Autoencoder
from anomaly_models.models.feature_score_network import FeatureScoreNetwork
from anomaly_models.models.lstm_autoencoder_anomaly import LSTMAutoencoderAnomaly
from anomaly_models.models.sequence_score_network import SequenceScoreNetwork

__all__ = ["Autoencoder", "FeatureScoreNetwork", "LSTMAutoencoderAnomaly", "SequenceScoreNetwork"]
