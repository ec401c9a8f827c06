"""LSTMAutoencoderAnomaly: an LSTM sequence autoencoder that scores windows by reconstruction error."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from anomaly_models.checks import check_positive_int

_PREDICT_BATCH = 1024


@keras.saving.register_keras_serializable(package="anomaly_models")
class LSTMAutoencoderAnomaly(keras.Model):
    """LSTM autoencoder for reconstruction-based anomaly detection on windows of a time series.

    Architecture (fusionlab-learn's ``LSTMAutoencoderAnomaly``, seed 004)::

        (batch, T, n_features)
          -> LSTM(lstm_units) x num_encoder_layers      (the last one returns its final state only)
          -> Dense(latent_dim)                           the bottleneck, (batch, latent_dim)
          -> RepeatVector(n_repeats)                     (batch, n_repeats, latent_dim)
          -> LSTM(lstm_units, return_sequences) x num_decoder_layers
          -> TimeDistributed(Dense(n_features, activation))   (batch, n_repeats, n_features)

    Train it on windows of normal data with ``fit(X, X)`` (or ``fit(X)``: the target defaults to
    the input). A model that was not compiled is compiled with Adam and MSE by ``fit``. For a
    reconstruction ``n_repeats`` must equal the window length ``T``.

    Scores:

    * ``compute_reconstruction_error(X)``: mean squared error per window over time steps and
      features, shape ``(n,)`` (a tensor; ``.numpy()`` gives the array). Higher = more anomalous.
    * ``compute_step_errors(X)``: squared error per time step averaged over features,
      shape ``(n, T)``; map it to points with
      :func:`anomaly_models.sequences.window_scores_to_points`.

    Args:
        latent_dim: Width of the bottleneck.
        lstm_units: Units of every encoder and decoder LSTM.
        n_features: Channels per time step of the input (and of the reconstruction).
        n_repeats: Time steps of the reconstruction (the window length).
        num_encoder_layers: Stacked LSTMs in the encoder, >= 1.
        num_decoder_layers: Stacked LSTMs in the decoder, >= 1.
        activation: Activation of the output Dense (``"linear"`` for standardized data).
        **kwargs: ``keras.Model`` arguments (``name``, ``trainable``, ...).

    Input shape: ``(batch, n_repeats, n_features)``. Output shape: the same.
    """

    def __init__(
        self,
        latent_dim: int,
        lstm_units: int,
        n_features: int,
        n_repeats: int,
        num_encoder_layers: int = 1,
        num_decoder_layers: int = 1,
        activation: str = "linear",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        self.lstm_units = check_positive_int("lstm_units", lstm_units)
        self.n_features = check_positive_int("n_features", n_features)
        self.n_repeats = check_positive_int("n_repeats", n_repeats)
        self.num_encoder_layers = check_positive_int("num_encoder_layers", num_encoder_layers)
        self.num_decoder_layers = check_positive_int("num_decoder_layers", num_decoder_layers)
        if not isinstance(activation, str):
            raise ValueError(
                f"`activation` must be the name of a Keras activation, received activation={activation!r}"
            )
        try:
            keras.activations.get(activation)
        except ValueError:
            raise ValueError(
                f"`activation` must be the name of a Keras activation, received activation={activation!r}"
            ) from None
        self.activation = activation

        self.encoder_layers = [
            keras.layers.LSTM(
                self.lstm_units,
                return_sequences=i < self.num_encoder_layers - 1,
                name=f"encoder_lstm_{i}",
            )
            for i in range(self.num_encoder_layers)
        ]
        self.bottleneck = keras.layers.Dense(self.latent_dim, name="bottleneck")
        self.repeater = keras.layers.RepeatVector(self.n_repeats, name="repeater")
        self.decoder_layers = [
            keras.layers.LSTM(self.lstm_units, return_sequences=True, name=f"decoder_lstm_{i}")
            for i in range(self.num_decoder_layers)
        ]
        self.output_dense = keras.layers.TimeDistributed(
            keras.layers.Dense(self.n_features, activation=self.activation),
            name="decoder_dense",
        )
        # Everything is known now: build, so `load_weights` works on a freshly constructed model.
        self.build((None, self.n_repeats, self.n_features))

    # ------------------------------------------------------------------------------- building
    def _check_input_shape(self, shape: tuple[Any, ...]) -> None:
        shape = tuple(shape)
        if len(shape) != 3:
            raise ValueError(
                "LSTMAutoencoderAnomaly expects windows of shape (batch, time_steps, n_features), "
                f"received shape {shape}"
            )
        if shape[-1] is not None and int(shape[-1]) != self.n_features:
            raise ValueError(
                f"LSTMAutoencoderAnomaly was built for n_features={self.n_features} channels, "
                f"received windows with {int(shape[-1])} channels (shape {shape})"
            )
        if shape[1] is not None and int(shape[1]) != self.n_repeats:
            raise ValueError(
                f"LSTMAutoencoderAnomaly reconstructs windows of n_repeats={self.n_repeats} steps, "
                f"received windows of {int(shape[1])} steps (shape {shape}); "
                "use windows as long as n_repeats"
            )

    def build(self, input_shape: tuple[int | None, ...] | None = None) -> None:
        """Build the layers for windows of ``input_shape = (batch, n_repeats, n_features)``."""
        if self.built:
            if input_shape is not None:
                self._check_input_shape(input_shape)
            return
        shape = (None, self.n_repeats, self.n_features) if input_shape is None else input_shape
        self._check_input_shape(shape)
        shape = (None, self.n_repeats, self.n_features)
        for layer in self.encoder_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.bottleneck.build(shape)
        shape = self.bottleneck.compute_output_shape(shape)
        self.repeater.build(shape)
        shape = self.repeater.compute_output_shape(shape)
        for layer in self.decoder_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.output_dense.build(shape)
        self.built = True

    # -------------------------------------------------------------------------------- forward
    def encode(self, inputs: Any, training: bool | None = None) -> Any:
        """The latent vector of each window, shape ``(batch, latent_dim)``."""
        hidden = ops.cast(inputs, self.compute_dtype)
        for layer in self.encoder_layers:
            hidden = layer(hidden, training=training)
        return self.bottleneck(hidden)

    def decode(self, latent: Any, training: bool | None = None) -> Any:
        """Windows reconstructed from latent vectors, shape ``(batch, n_repeats, n_features)``."""
        hidden = self.repeater(latent)
        for layer in self.decoder_layers:
            hidden = layer(hidden, training=training)
        return self.output_dense(hidden)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        self._check_input_shape(inputs.shape)
        return self.decode(self.encode(inputs, training=training), training=training)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], self.n_repeats, self.n_features)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # `fit(X)` without a target: an autoencoder reconstructs its input.
        if y is None:
            y = x
        return super().compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )

    # ------------------------------------------------------------------------------- training
    def fit(self, x=None, y=None, *args, **kwargs):  # noqa: D401 - Keras signature
        """``keras.Model.fit``; an uncompiled model is compiled with Adam and ``"mse"`` first."""
        if not self.compiled:
            self.compile(optimizer="adam", loss="mse")
        return super().fit(x, y, *args, **kwargs)

    # -------------------------------------------------------------------------------- scoring
    def _reconstruct(self, inputs: Any, batch_size: int | None) -> Any:
        data = np.asarray(ops.convert_to_numpy(inputs), dtype=self.compute_dtype)
        self._check_input_shape(data.shape)
        return data, self.predict(data, batch_size=batch_size or _PREDICT_BATCH, verbose=0)

    def compute_step_errors(
        self, inputs: Any, reconstructions: Any | None = None, batch_size: int | None = None
    ) -> Any:
        """Squared reconstruction error per time step, averaged over features: ``(n, n_repeats)``.

        ``reconstructions`` (``(n, n_repeats, n_features)``) skips the forward pass when given.
        """
        if reconstructions is None:
            inputs, reconstructions = self._reconstruct(inputs, batch_size)
        inputs = ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
        reconstructions = ops.convert_to_tensor(reconstructions, dtype=self.compute_dtype)
        if tuple(inputs.shape) != tuple(reconstructions.shape):
            raise ValueError(
                f"`inputs` {tuple(inputs.shape)} and `reconstructions` "
                f"{tuple(reconstructions.shape)} must have the same shape"
            )
        return ops.mean(ops.square(inputs - reconstructions), axis=-1)

    def compute_reconstruction_error(
        self, inputs: Any, reconstructions: Any | None = None, batch_size: int | None = None
    ) -> Any:
        """Mean squared reconstruction error per window, shape ``(n,)``; higher = more anomalous.

        Args:
            inputs: Windows ``(n, n_repeats, n_features)`` (array or tensor).
            reconstructions: Optional reconstructions of ``inputs``; computed in batches of
                ``batch_size`` (default 1024) with ``predict`` when omitted.
            batch_size: Batch size of the forward pass.

        Returns:
            A tensor of shape ``(n,)`` (``.numpy()`` / ``keras.ops.convert_to_numpy`` for NumPy).
        """
        return ops.mean(self.compute_step_errors(inputs, reconstructions, batch_size), axis=-1)

    # -------------------------------------------------------------------------- serialization
    def get_config(self) -> dict[str, Any]:
        return {
            "latent_dim": self.latent_dim,
            "lstm_units": self.lstm_units,
            "n_features": self.n_features,
            "n_repeats": self.n_repeats,
            "num_encoder_layers": self.num_encoder_layers,
            "num_decoder_layers": self.num_decoder_layers,
            "activation": self.activation,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LSTMAutoencoderAnomaly:
        return cls(**config)
