"""NumericalAnomalyDetection: per-feature anomaly scores from an autoencoder and a learned Gaussian."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from anomaly_models.checks import check_fraction, check_positive_int_list


@keras.saving.register_keras_serializable(package="anomaly_models")
class NumericalAnomalyDetection(keras.layers.Layer):
    """Score how unusual each numerical feature of a row is.

    For an input ``x`` of shape ``(batch, d)`` the layer returns scores of the same shape::

        score[:, j] = reconstruction_weight * (x[:, j] - x_hat[:, j]) ** 2
                    + distribution_weight   * (x[:, j] - mean[j]) ** 2 / variance[j]

    where ``x_hat`` is the reconstruction by a small dense autoencoder (``hidden_dims``, the last
    entry is the bottleneck) and ``mean`` / ``variance`` are learned per feature. Both terms are in
    squared units of standardized features, so inputs should be standardized (the detector and the
    preprocessing model do that). Higher = more anomalous.

    The layer learns by itself wherever it is placed: inside ``fit``/``evaluate`` it adds its own loss with
    ``add_loss``, the mean squared reconstruction error plus the Gaussian negative log-likelihood
    ``0.5 * (log variance + (x - mean)^2 / variance)`` (constant ``0.5 log 2pi`` dropped). So in a
    multi-output model where no loss is given for its output, its scores still become meaningful
    during ``fit``. That loss is computed on ``stop_gradient(inputs)``: it trains only this layer's
    weights and never pulls upstream layers toward inputs that are easy to reconstruct (collapsing
    them would drive the likelihood to infinity). Gradients of downstream losses still flow through
    the scores into upstream layers.

    Args:
        hidden_dims: Sizes of the encoder's dense layers, e.g. ``[16, 8]``; the decoder mirrors them.
        reconstruction_weight: Weight in [0, 1] of the reconstruction term of the score.
        distribution_weight: Weight in [0, 1] of the distribution term of the score.
        activation: Activation of the hidden layers.
        min_variance: Floor added to the learned variance, in squared input units.
        **kwargs: Standard ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Input shape: ``(batch, d)``. Output shape: ``(batch, d)``.
    """

    def __init__(
        self,
        hidden_dims: list[int],
        reconstruction_weight: float = 0.5,
        distribution_weight: float = 0.5,
        activation: str = "relu",
        min_variance: float = 1e-4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden_dims = check_positive_int_list("hidden_dims", hidden_dims)
        self.reconstruction_weight = check_fraction("reconstruction_weight", reconstruction_weight)
        self.distribution_weight = check_fraction("distribution_weight", distribution_weight)
        if self.reconstruction_weight == 0.0 and self.distribution_weight == 0.0:
            raise ValueError(
                "`reconstruction_weight` and `distribution_weight` cannot both be 0: the score "
                "would be identically zero"
            )
        self.activation = activation
        keras.activations.get(activation)  # fail now on an unknown activation name
        self.min_variance = check_fraction("min_variance", min_variance, low=1e-12, high=1.0)
        self.encoder_layers = [
            keras.layers.Dense(units, activation=activation, name=f"encoder_{i}")
            for i, units in enumerate(self.hidden_dims)
        ]
        self.decoder_layers: list[keras.layers.Dense] = []

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(
                "NumericalAnomalyDetection expects inputs of shape (batch, num_features) with a "
                f"known number of features, received input_shape={tuple(input_shape)}"
            )
        num_features = int(input_shape[-1])
        self.decoder_layers = [
            keras.layers.Dense(units, activation=self.activation, name=f"decoder_{i}")
            for i, units in enumerate(reversed(self.hidden_dims[:-1]))
        ]
        self.decoder_layers.append(keras.layers.Dense(num_features, name="reconstruction"))
        shape: tuple[int | None, ...] = (None, num_features)
        for layer in (*self.encoder_layers, *self.decoder_layers):
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.mean = self.add_weight(shape=(num_features,), initializer="zeros", name="mean")
        # softplus(raw) + min_variance == 1 at initialisation: a standard normal prior.
        raw_init = math.log(math.expm1(1.0 - self.min_variance))
        self.raw_variance = self.add_weight(
            shape=(num_features,),
            initializer=keras.initializers.Constant(raw_init),
            name="raw_variance",
        )

    def variance(self) -> keras.KerasTensor:
        """The learned per-feature variance, shape ``(d,)``, always >= ``min_variance``."""
        return ops.softplus(self.raw_variance) + self.min_variance

    def reconstruct(self, inputs: Any) -> Any:
        """The autoencoder's reconstruction of ``inputs``, shape ``(batch, d)``."""
        hidden = inputs
        for layer in (*self.encoder_layers, *self.decoder_layers):
            hidden = layer(hidden)
        return hidden

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        inputs = ops.cast(inputs, self.compute_dtype)
        detached = ops.stop_gradient(inputs)
        reconstruction = self.reconstruct(detached)
        variance = self.variance()
        if training is not None:
            # fit (training=True) and evaluate/predict (training=False) collect it, so a
            # validation loss exists for early stopping; a bare `layer(x)` adds nothing.
            nll = 0.5 * (ops.log(variance) + ops.square(detached - self.mean) / variance)
            self.add_loss(
                ops.mean(ops.square(detached - reconstruction)) + ops.mean(nll)
            )
        reconstruction_error = ops.square(inputs - reconstruction)
        distribution_error = ops.square(inputs - self.mean) / variance
        return (
            self.reconstruction_weight * reconstruction_error
            + self.distribution_weight * distribution_error
        )

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "hidden_dims": list(self.hidden_dims),
                "reconstruction_weight": self.reconstruction_weight,
                "distribution_weight": self.distribution_weight,
                "activation": self.activation,
                "min_variance": self.min_variance,
            }
        )
        return config
