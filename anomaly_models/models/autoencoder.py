"""Autoencoder: a dense reconstruction model with a calibrated anomaly threshold."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from anomaly_models.checks import check_finite_float, check_positive_int

_STD_FLOOR = 1e-12


@keras.saving.register_keras_serializable(package="anomaly_models")
class Autoencoder(keras.Model):
    """Dense autoencoder that flags rows it cannot reconstruct.

    Architecture: ``input_dim -> encoding_dim -> intermediate_dim -> encoding_dim -> input_dim``
    (ReLU hidden layers, linear output). Train it on normal rows with ``fit(X, X)``.

    Scores (one meaning, used everywhere):

    * ``reconstruction_error``: mean squared error over the features of a row, shape ``(n,)``,
      in squared units of the model's input (of the preprocessed input with ``preprocessing_model``).
    * ``anomaly_score = (reconstruction_error - median_) / std_``, where ``median_`` and ``std_``
      are the median and standard deviation of the reconstruction errors of the **whole**
      training data, computed at the end of ``fit``. It says how many training standard
      deviations a row's error lies above the typical training error.
    * ``anomaly = anomaly_score > threshold``: ``threshold`` is an absolute cut in units of
      ``anomaly_score`` (default 2.0). Higher threshold = fewer rows flagged. Change it with
      ``update_threshold``; it is saved with the model.

    Args:
        input_dim: Number of features the autoencoder reconstructs (after preprocessing).
        encoding_dim: Width of the outer hidden layers.
        intermediate_dim: Width of the bottleneck.
        threshold: Cut on ``anomaly_score`` above which a row is an anomaly.
        preprocessing_model: Optional Keras model applied to raw inputs first (e.g. from
            ``DataAnalyzer.create_preprocessing_model()``); it is saved inside this model. With it,
            inputs may be a dict of columns or a 2-D array whose columns follow the preprocessing
            model's input order, and the reconstruction target is the preprocessed input.
        inputs: Optional ``{name: shape}`` of the raw inputs, recorded for ``build``.
        name: Model name.
    """

    def __init__(
        self,
        input_dim: int,
        encoding_dim: int = 64,
        intermediate_dim: int = 32,
        threshold: float = 2.0,
        preprocessing_model: keras.Model | None = None,
        inputs: dict[str, tuple[int, ...]] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.input_dim = check_positive_int("input_dim", input_dim)
        self.encoding_dim = check_positive_int("encoding_dim", encoding_dim)
        self.intermediate_dim = check_positive_int("intermediate_dim", intermediate_dim)
        initial_threshold = check_finite_float("threshold", threshold)
        if preprocessing_model is not None and not isinstance(preprocessing_model, keras.Model):
            raise ValueError(
                "`preprocessing_model` must be a keras.Model or None, "
                f"received preprocessing_model={preprocessing_model!r}"
            )
        self.preprocessing_model = preprocessing_model
        self.input_spec_shapes = (
            {str(k): tuple(v) for k, v in inputs.items()} if inputs is not None else None
        )
        self.encoder_dense = keras.layers.Dense(encoding_dim, activation="relu", name="encoder_dense")
        self.encoder_bottleneck = keras.layers.Dense(
            intermediate_dim, activation="relu", name="encoder_bottleneck"
        )
        self.decoder_dense = keras.layers.Dense(encoding_dim, activation="relu", name="decoder_dense")
        self.decoder_output = keras.layers.Dense(input_dim, name="decoder_output")
        self.threshold_var = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(initial_threshold),
            trainable=False, name="threshold",
        )
        self.median_var = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="score_median"
        )
        self.std_var = self.add_weight(
            shape=(), initializer="ones", trainable=False, name="score_std"
        )
        # The dense stack's input width is known now: build it, so `load_weights` works on a
        # freshly constructed model (the seed's save_weights / load_weights round trip).
        shape: tuple[int | None, ...] = (None, self.input_dim)
        for layer in (
            self.encoder_dense, self.encoder_bottleneck, self.decoder_dense, self.decoder_output
        ):
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True  # a preprocessing model, if any, is a built functional model

    # ----------------------------------------------------------------------------- properties
    @property
    def threshold(self) -> float:
        """Current cut on ``anomaly_score``."""
        return float(ops.convert_to_numpy(self.threshold_var))

    @property
    def median(self) -> float:
        """Median of the training reconstruction errors (set by ``fit``)."""
        return float(ops.convert_to_numpy(self.median_var))

    @property
    def std(self) -> float:
        """Standard deviation of the training reconstruction errors (set by ``fit``)."""
        return float(ops.convert_to_numpy(self.std_var))

    # ------------------------------------------------------------------------------- forward
    def preprocessed(self, inputs: Any) -> Any:
        """The features the autoencoder reconstructs: ``preprocessing_model(inputs)`` or ``inputs``."""
        if self.preprocessing_model is None:
            return ops.cast(inputs, self.compute_dtype)
        if not isinstance(inputs, dict):
            inputs = self._columns_as_dict(inputs)
        return ops.cast(self.preprocessing_model(inputs), self.compute_dtype)

    def _columns_as_dict(self, inputs: Any) -> dict[str, Any]:
        """Split a 2-D array into the preprocessing model's named inputs, in its input order."""
        names = list(self.preprocessing_model.input.keys())
        inputs = ops.convert_to_tensor(inputs)
        if inputs.shape[-1] != len(names):
            raise ValueError(
                f"The preprocessing model expects {len(names)} columns {names[:5]}..., "
                f"received an array with shape {tuple(inputs.shape)}"
            )
        dtypes = {name: t.dtype for name, t in self.preprocessing_model.input.items()}
        return {
            name: ops.cast(inputs[:, i : i + 1], dtypes[name]) for i, name in enumerate(names)
        }

    def reconstruct_features(self, features: Any, training: bool | None = None) -> Any:
        hidden = self.encoder_dense(features)
        hidden = self.encoder_bottleneck(hidden)
        hidden = self.decoder_dense(hidden)
        return self.decoder_output(hidden)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self.reconstruct_features(self.preprocessed(inputs), training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # With preprocessing inside, the reconstruction lives in preprocessed space: the target
        # must be the preprocessed input, not the raw y the seed's fit(X, X) passes.
        if self.preprocessing_model is not None or y is None:
            y = ops.stop_gradient(self.preprocessed(x))
        return super().compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )

    # ------------------------------------------------------------------------------ training
    def fit(self, x=None, y=None, batch_size=None, **kwargs):  # noqa: D401 - Keras signature
        """``keras.Model.fit``; afterwards sets ``median``/``std`` from the whole training data.

        A model that was not compiled is compiled with ``Adam`` and ``"mse"`` first.
        """
        if not self.compiled:
            self.compile(optimizer="adam", loss="mse")
        history = super().fit(x, y, batch_size=batch_size, **kwargs)
        errors = self._errors_over(x, batch_size or 256)
        if errors.size:
            self.median_var.assign(float(np.median(errors)))
            self.std_var.assign(max(float(np.std(errors)), _STD_FLOOR))
        return history

    def _errors_over(self, x: Any, batch_size: int) -> np.ndarray:
        """Reconstruction errors of every row of ``x`` (array, dict of arrays or tf.data)."""
        if isinstance(x, (np.ndarray, dict)) or hasattr(x, "shape"):
            return self.feature_errors_numpy(x, batch_size=batch_size).mean(axis=1)
        chunks = []
        for batch in x:  # a dataset of (x, y) or x
            batch_x = batch[0] if isinstance(batch, (tuple, list)) else batch
            chunks.append(self.feature_errors_numpy(batch_x, batch_size=batch_size).mean(axis=1))
        return np.concatenate(chunks) if chunks else np.zeros(0)

    # ------------------------------------------------------------------------------- scoring
    def feature_errors(self, data: Any) -> Any:
        """Squared reconstruction error per feature, shape ``(n, input_dim)`` (one tensor)."""
        features = self.preprocessed(data)
        return ops.square(features - self.reconstruct_features(features, training=False))

    def feature_errors_numpy(self, data: Any, batch_size: int = 8192) -> np.ndarray:
        """``feature_errors`` computed in batches, as a NumPy array ``(n, input_dim)``."""
        n = len(next(iter(data.values()))) if isinstance(data, dict) else len(data)
        parts = []
        for start in range(0, n, batch_size):
            if isinstance(data, dict):
                batch = {k: v[start : start + batch_size] for k, v in data.items()}
            else:
                batch = data[start : start + batch_size]
            parts.append(ops.convert_to_numpy(self.feature_errors(batch)))
        return np.concatenate(parts) if parts else np.zeros((0, self.input_dim), "float32")

    def reconstruction_error(self, data: Any) -> Any:
        """Mean squared reconstruction error per row, shape ``(n,)``."""
        return ops.mean(self.feature_errors(data), axis=-1)

    def anomaly_score(self, data: Any) -> Any:
        """``(reconstruction_error - median) / std``, shape ``(n,)``; higher = more anomalous."""
        return (self.reconstruction_error(data) - self.median_var) / self.std_var

    def is_anomaly(self, data: Any) -> dict[str, Any]:
        """Score ``data``.

        Returns:
            ``{"reconstruction_error": (n,), "anomaly_score": (n,), "anomaly": (n,) float32 0/1}``.
        """
        error = self.reconstruction_error(data)
        score = (error - self.median_var) / self.std_var
        return {
            "reconstruction_error": error,
            "anomaly": ops.cast(ops.greater(score, self.threshold_var), "float32"),
            "anomaly_score": score,
        }

    def update_threshold(self, threshold: float) -> None:
        """Set the cut on ``anomaly_score`` (a finite number)."""
        self.threshold_var.assign(check_finite_float("threshold", threshold))

    # ------------------------------------------------------------------------- serialization
    def get_config(self) -> dict[str, Any]:
        return {
            "input_dim": self.input_dim,
            "encoding_dim": self.encoding_dim,
            "intermediate_dim": self.intermediate_dim,
            "threshold": self.threshold,
            "preprocessing_model": (
                keras.saving.serialize_keras_object(self.preprocessing_model)
                if self.preprocessing_model is not None
                else None
            ),
            "inputs": self.input_spec_shapes,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Autoencoder:
        config = dict(config)
        if config.get("preprocessing_model") is not None:
            config["preprocessing_model"] = keras.saving.deserialize_keras_object(
                config["preprocessing_model"]
            )
        return cls(**config)
