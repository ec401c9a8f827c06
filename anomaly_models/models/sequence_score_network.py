"""SequenceScoreNetwork: the network behind ``AnomalyDetector(kind="lstm_autoencoder")``."""

from __future__ import annotations

from typing import Any

import keras

from anomaly_models.checks import check_non_negative_int, check_positive_int
from anomaly_models.models.lstm_autoencoder_anomaly import LSTMAutoencoderAnomaly
from anomaly_models.models.score_weights import training_scores_weight


# The registered name ("anomaly_models>SequenceScoreNetwork") is what `.keras` files written
# when this class lived in anomaly_models/detector.py refer to: it must not change.
@keras.saving.register_keras_serializable(package="anomaly_models")
class SequenceScoreNetwork(keras.Model):
    """The network behind the ``"lstm_autoencoder"`` kind of ``AnomalyDetector``.

    Holds what scoring a series needs, so one ``.keras`` file restores it:

    * ``preprocessing_model``: raw channels -> scaled channels, applied to each point (the
      preprocessing of the tabular kinds: median / IQR or mean / std, optional ``asinh``);
    * ``autoencoder``: an :class:`~anomaly_models.models.LSTMAutoencoderAnomaly` over windows of
      the scaled series; ``call(windows)`` takes ``(batch, window, num_channels)`` scaled windows
      and returns their reconstruction, same shape;
    * ``channel_scale``: ``(num_channels,)`` float32 weight, per channel the mean squared
      reconstruction error on the training series (set by the detector), so every channel weighs
      about 1 on normal data;
    * ``training_scores``: ``(num_training_scores,)`` float64 weight, the detector's score of
      each training point (set by the detector; absent when ``num_training_scores`` is 0);
    * ``detector_state``: JSON-serialisable state of the owning detector (saved in the config).

    Cutting windows and mapping errors back to points is done by the detector, in NumPy.

    Args:
        preprocessing_model: Keras model, dict of ``(batch, 1)`` raw channels -> ``(batch,
            num_channels)`` scaled channels.
        autoencoder: the ``LSTMAutoencoderAnomaly`` with ``n_features == num_channels``.
        num_channels: number of channels of the series, a positive integer.
        detector_state: dict (or None) stored in the config.
        num_training_scores: length of the ``training_scores`` weight, an integer >= 0; files
            written before this argument existed load with 0 (no weight).
    """

    def __init__(
        self,
        preprocessing_model: keras.Model,
        autoencoder: LSTMAutoencoderAnomaly,
        num_channels: int,
        detector_state: dict[str, Any] | None = None,
        num_training_scores: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(preprocessing_model, keras.Model):
            raise ValueError(
                "`preprocessing_model` must be a keras.Model, received "
                f"preprocessing_model={preprocessing_model!r} ({type(preprocessing_model).__name__})"
            )
        if not isinstance(autoencoder, LSTMAutoencoderAnomaly):
            raise ValueError(
                "`autoencoder` must be an LSTMAutoencoderAnomaly, received "
                f"autoencoder={autoencoder!r} ({type(autoencoder).__name__})"
            )
        if detector_state is not None and not isinstance(detector_state, dict):
            raise ValueError(
                f"`detector_state` must be a dict or None, received detector_state={detector_state!r}"
            )
        self.preprocessing_model = preprocessing_model
        self.autoencoder = autoencoder
        self.num_channels = check_positive_int("num_channels", num_channels)
        self.num_training_scores = check_non_negative_int("num_training_scores", num_training_scores)
        self.detector_state = dict(detector_state or {})
        self.channel_scale = self.add_weight(
            shape=(self.num_channels,), initializer="ones", trainable=False, name="channel_scale"
        )
        self.training_scores = training_scores_weight(self, self.num_training_scores)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self.autoencoder(inputs, training=training)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "preprocessing_model": keras.saving.serialize_keras_object(self.preprocessing_model),
                "autoencoder": keras.saving.serialize_keras_object(self.autoencoder),
                "num_channels": self.num_channels,
                "detector_state": self.detector_state,
                "num_training_scores": self.num_training_scores,
            }
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SequenceScoreNetwork:
        config = dict(config)
        config["preprocessing_model"] = keras.saving.deserialize_keras_object(
            config["preprocessing_model"]
        )
        config["autoencoder"] = keras.saving.deserialize_keras_object(config["autoencoder"])
        return cls(**config)
