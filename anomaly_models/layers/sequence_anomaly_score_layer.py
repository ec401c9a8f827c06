"""SequenceAnomalyScoreLayer: a small MLP head mapping learned features to one anomaly score."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from anomaly_models.checks import check_fraction, check_positive_int_list


def _check_activation(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"`{name}` must be the name of a Keras activation, received {name}={value!r}")
    try:
        keras.activations.get(value)
    except ValueError:
        raise ValueError(
            f"`{name}` must be the name of a Keras activation, received {name}={value!r}"
        ) from None
    return value


@keras.saving.register_keras_serializable(package="anomaly_models")
class SequenceAnomalyScoreLayer(keras.layers.Layer):
    """Score each sample from its learned features with a multi-layer perceptron.

    ``(Dense(units, activation) -> Dropout(dropout_rate))`` for each entry of ``hidden_units``, then
    ``Dense(1, final_activation)``. A scoring head (fusionlab-learn's layer, seed 004): put it after
    an encoder (e.g. the last state of an LSTM, or pooled attention outputs) and train it with a
    loss on its output, e.g. with anomaly labels or as part of a multi-task objective. Untrained,
    its scores mean nothing.

    Args:
        hidden_units: Width of each hidden layer, a positive integer or a non-empty list of them.
        activation: Activation of the hidden layers.
        dropout_rate: Dropout after each hidden layer, in [0, 1); active only with ``training=True``.
        final_activation: Activation of the score, e.g. ``"linear"`` (unbounded), ``"sigmoid"``
            ((0, 1)), ``"softplus"`` (non-negative).
        **kwargs: Standard ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Input shape: ``(batch, features)``. Output shape: ``(batch, 1)``.
    """

    def __init__(
        self,
        hidden_units: int | Sequence[int],
        activation: str = "relu",
        dropout_rate: float = 0.0,
        final_activation: str = "linear",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(hidden_units, (int, np.integer)) and not isinstance(hidden_units, bool):
            hidden_units = [hidden_units]
        self.hidden_units = check_positive_int_list("hidden_units", hidden_units)
        self.activation = _check_activation("activation", activation)
        self.dropout_rate = check_fraction("dropout_rate", dropout_rate)
        if self.dropout_rate >= 1.0:
            raise ValueError(
                f"`dropout_rate` must be in [0, 1), received dropout_rate={dropout_rate!r}"
            )
        self.final_activation = _check_activation("final_activation", final_activation)
        self.hidden_layers = [
            keras.layers.Dense(units, activation=self.activation, name=f"hidden_dense_{i}")
            for i, units in enumerate(self.hidden_units)
        ]
        self.dropout_layers = [
            keras.layers.Dropout(self.dropout_rate, name=f"score_dropout_{i}")
            for i in range(len(self.hidden_units))
        ]
        self.score_dense = keras.layers.Dense(
            1, activation=self.final_activation, name="score_output"
        )

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(
                "SequenceAnomalyScoreLayer expects inputs of shape (batch, features) with a known "
                f"number of features, received input_shape={tuple(input_shape)}; flatten or pool "
                "sequence outputs (batch, time, features) first"
            )
        shape: tuple[int | None, ...] = (None, int(input_shape[-1]))
        for dense in self.hidden_layers:
            dense.build(shape)
            shape = dense.compute_output_shape(shape)
        self.score_dense.build(shape)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        hidden = inputs
        for dense, dropout in zip(self.hidden_layers, self.dropout_layers, strict=True):
            hidden = dropout(dense(hidden), training=training)
        return self.score_dense(hidden)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], 1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "hidden_units": list(self.hidden_units),
                "activation": self.activation,
                "dropout_rate": self.dropout_rate,
                "final_activation": self.final_activation,
            }
        )
        return config
