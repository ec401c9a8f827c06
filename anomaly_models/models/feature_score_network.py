"""FeatureScoreNetwork: raw columns in, per-feature anomaly contributions out."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from anomaly_models.checks import check_non_negative_int, check_positive_int
from anomaly_models.layers.neighbour_distance import NeighbourDistance
from anomaly_models.layers.numerical_anomaly_detection import NumericalAnomalyDetection
from anomaly_models.layers.tail_rarity import TailRarity
from anomaly_models.models.autoencoder import Autoencoder
from anomaly_models.models.score_weights import training_scores_weight

#: Weights of the (core, neighbour, tail) parts in :func:`combine_parts`, chosen on the tuning
#: half of the tabular suite (benchmarks/suite.py): the tail part twice, summing to 1.
PART_WEIGHTS = (0.25, 0.25, 0.5)
_LOG_2 = float(np.log(2.0))


def combine_parts(parts: tuple[Any, ...], weights: tuple[float, ...]) -> Any:
    """``sum_c w_c * log1p(S_c) / log(2)`` per row, split over the features in proportion to
    each part (a row with every part at its normal level, ``S_c = 1``, scores 1).

    Each part is ``(batch, d)``, >= 0, scaled to a mean row sum ``S_c`` of 1 on normal rows.
    ``log1p`` keeps the order within a part and grows without bound, but stops one part with a
    heavy tail (a reconstruction error 1,000x its normal value) from outvoting the other two:
    on the suite a plain sum lost 0.04 mean PR-AUC to this. Feature ``j`` gets
    ``w_c * part_cj * log1p(S_c) / (S_c log 2)`` from each part (``w_c * part_cj / log 2``
    where ``S_c`` is 0), so rows sum to the score.
    """
    total = None
    for part, weight in zip(parts, weights, strict=True):
        row_sum = ops.sum(part, axis=1, keepdims=True)
        safe = ops.maximum(row_sum, 1e-12)
        ratio = ops.where(row_sum > 1e-12, ops.log1p(safe) / safe, ops.ones_like(safe))
        term = (weight / _LOG_2) * part * ratio
        total = term if total is None else total + term
    return total


def core_scores(owner: keras.Layer, core: keras.Layer, features: Any, training: bool | None) -> Any:
    """The unscaled ``(batch, d)`` per-feature scores of ``core`` on preprocessed ``features``.

    For an :class:`Autoencoder` core they are the squared reconstruction errors, and in fit /
    evaluate (``training`` not None) their mean is added to ``owner``'s losses; a
    ``NumericalAnomalyDetection`` core adds its own loss.
    """
    if isinstance(core, Autoencoder):
        errors = ops.square(features - core(features, training=training))
        if training is not None:  # fit and evaluate: reconstruction MSE is the loss
            owner.add_loss(ops.mean(errors))
        return errors
    return core(features, training=training)


class CoreTrainer(keras.Model):
    """The core of a :class:`FeatureScoreNetwork` on preprocessed ``(batch, d)`` features: the
    model that ``fit`` trains.

    The fitted preprocessing has no trainable weights, so training the core on its output,
    computed once, minimises the same loss as training the whole network on raw columns, while a
    gradient step no longer runs the per-column preprocessing graph (one input, normalisation and
    imputation per column). Not saved: its only weights are the core's, shared with the network.
    """

    def __init__(self, core: keras.Layer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.core = core

    def call(self, features: Any, training: bool | None = None) -> Any:
        return core_scores(self, self.core, features, training)


@keras.saving.register_keras_serializable(package="anomaly_models")
class FeatureScoreNetwork(keras.Model):
    """The network behind ``AnomalyDetector``: ``preprocessing -> core -> contributions``.

    Input: the dict of ``(batch, 1)`` columns the preprocessing model takes.
    Output: ``(batch, d)`` non-negative per-feature contributions whose row sum is the anomaly
    score. The contribution of feature ``j`` is the core's per-feature score divided by
    ``feature_scale[j]`` (the mean of that score on the training rows, set by the detector, so each
    feature weighs about 1 on normal data) and by ``d`` (so the score is a mean over features).

    Cores:
        * ``Autoencoder``: squared reconstruction error per feature; trained on its mean.
        * ``NumericalAnomalyDetection``: the layer's scores; trained by the layer's own loss.

    Reference scorers (the ``"ensemble"`` kind): with ``neighbour_distance`` and
    ``tail_rarity`` (set after the core is trained, on a sample of the preprocessed training
    rows) the output is the mean of three parts, each scaled to about 1 on normal rows: the
    core's contributions as above, the ``NeighbourDistance`` parts divided by the weight
    ``neighbour_scale`` and the ``TailRarity`` parts divided by ``tail_scale`` (each the mean
    row sum of its part on held-out normal rows). Per feature the three parts are added, so
    rows still sum to the score.

    Args:
        preprocessing_model: Keras model, raw columns -> ``(batch, d)`` float features.
        core: ``Autoencoder`` (without preprocessing) or ``NumericalAnomalyDetection``.
        num_features: ``d``, the width of the preprocessed features.
        detector_state: JSON-serialisable state of the owning detector (saved in the config).
        num_training_scores: length of the non-trainable float64 weight ``training_scores``, the
            detector's score of each training row (set by the detector); 0 (the value of files
            written before this argument existed) creates no weight.
        neighbour_distance / tail_rarity: the reference scorers, both or neither (None, the
            value of files written before they existed).
    """

    def __init__(
        self,
        preprocessing_model: keras.Model,
        core: keras.layers.Layer,
        num_features: int,
        detector_state: dict[str, Any] | None = None,
        num_training_scores: int = 0,
        neighbour_distance: NeighbourDistance | None = None,
        tail_rarity: TailRarity | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(core, (Autoencoder, NumericalAnomalyDetection)):
            raise ValueError(
                "`core` must be an Autoencoder or a NumericalAnomalyDetection layer, "
                f"received core={core!r} ({type(core).__name__})"
            )
        if detector_state is not None and not isinstance(detector_state, dict):
            raise ValueError(
                f"`detector_state` must be a dict or None, received detector_state={detector_state!r}"
            )
        self.preprocessing_model = preprocessing_model
        self.core = core
        self.num_features = check_positive_int("num_features", num_features)
        self.num_training_scores = check_non_negative_int("num_training_scores", num_training_scores)
        self.detector_state = dict(detector_state or {})
        self.feature_scale = self.add_weight(
            shape=(self.num_features,), initializer="ones", trainable=False, name="feature_scale"
        )
        self.training_scores = training_scores_weight(self, self.num_training_scores)
        if (neighbour_distance is None) != (tail_rarity is None):
            raise ValueError(
                "`neighbour_distance` and `tail_rarity` go together, received "
                f"neighbour_distance={neighbour_distance!r}, tail_rarity={tail_rarity!r}"
            )
        for name, layer, expected in (
            ("neighbour_distance", neighbour_distance, NeighbourDistance),
            ("tail_rarity", tail_rarity, TailRarity),
        ):
            if layer is not None and not isinstance(layer, expected):
                raise ValueError(
                    f"`{name}` must be a {expected.__name__} layer or None, received "
                    f"{name}={layer!r} ({type(layer).__name__})"
                )
            if layer is not None and layer.num_features != self.num_features:
                raise ValueError(
                    f"`{name}` has num_features={layer.num_features}, the network "
                    f"num_features={self.num_features}"
                )
        self.neighbour_distance = neighbour_distance
        self.tail_rarity = tail_rarity
        self.neighbour_scale = self.tail_scale = None
        if self.has_reference_scorers:
            self.neighbour_scale = self.add_weight(
                shape=(), initializer="ones", trainable=False, name="neighbour_scale"
            )
            self.tail_scale = self.add_weight(
                shape=(), initializer="ones", trainable=False, name="tail_scale"
            )

    @property
    def has_reference_scorers(self) -> bool:
        """True when the network adds the neighbour-distance and tail-rarity parts."""
        return self.neighbour_distance is not None

    @property
    def slice_rows(self) -> int:
        """Rows per forward pass of :meth:`contributions` (fewer with a neighbour reference,
        whose distance matrix grows with the rows of a pass)."""
        if self.has_reference_scorers:
            return self.neighbour_distance.max_batch_rows
        return 65_536

    def features(self, inputs: Any) -> Any:
        """The preprocessed ``(batch, d)`` features of the dict of raw columns ``inputs``."""
        return ops.cast(self.preprocessing_model(inputs), self.compute_dtype)

    def per_feature_scores(self, inputs: Any, training: bool | None = None) -> Any:
        """The core's unscaled per-feature scores, ``(batch, d)``."""
        return self._core_scores(self.features(inputs), training)

    def _core_scores(self, features: Any, training: bool | None) -> Any:
        return core_scores(self, self.core, features, training)

    def reference_parts(self, features: Any, exclude_nearest: bool = False) -> tuple[Any, Any]:
        """The unscaled ``(neighbour, tail)`` parts of preprocessed ``features``, each
        ``(batch, d)`` (``exclude_nearest``: see ``NeighbourDistance.call``)."""
        return (
            self.neighbour_distance(features, exclude_nearest=exclude_nearest),
            self.tail_rarity(features),
        )

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        features = self.features(inputs)
        core = self._core_scores(features, training) / (self.feature_scale * float(self.num_features))
        if not self.has_reference_scorers:
            return core
        neighbour, tail = self.reference_parts(features)
        return combine_parts(
            (core, neighbour / self.neighbour_scale, tail / self.tail_scale), PART_WEIGHTS
        )

    def contributions(
        self, inputs: dict[str, np.ndarray], slice_rows: int | None = None
    ) -> np.ndarray:
        """``call`` in inference mode on NumPy columns, ``(n, d)`` float64, ``slice_rows`` rows
        per forward pass (default :attr:`slice_rows`).

        The same numbers as ``predict``, about three times faster on CPU: ``predict`` pays for a
        ``tf.data`` pipeline and callbacks per call and per batch, which for a network this small
        cost more than the arithmetic. With the TensorFlow backend one graph is traced on the
        first call (batch dimension left open, so the last, shorter slice reuses it) and kept;
        other backends use ``predict``.
        """
        n = len(next(iter(inputs.values())))
        slice_rows = slice_rows or self.slice_rows
        if keras.backend.backend() != "tensorflow":
            out = self.predict(inputs, batch_size=slice_rows, verbose=0)
            return np.asarray(out, dtype="float64").reshape(n, self.num_features)
        forward = getattr(self, "_inference_forward", None)
        if forward is None:
            forward = self._trace_inference_forward()
        out = np.empty((n, self.num_features), dtype="float64")
        for start in range(0, n, slice_rows):
            piece = {k: v[start : start + slice_rows] for k, v in inputs.items()}
            out[start : start + slice_rows] = forward(piece).numpy()
        return out

    def _trace_inference_forward(self) -> Any:
        import tensorflow as tf

        signature = {
            name: tf.TensorSpec(
                shape=(None, *tuple(spec.shape)[1:]),
                dtype=tf.string if spec.dtype == "string" else spec.dtype,
                name=None,
            )
            for name, spec in self.preprocessing_model.input.items()
        }
        forward = tf.function(
            lambda batch: self(batch, training=False),
            input_signature=[signature],
            autograph=False,
        )
        self._inference_forward = forward
        return forward

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "preprocessing_model": keras.saving.serialize_keras_object(self.preprocessing_model),
                "core": keras.saving.serialize_keras_object(self.core),
                "num_features": self.num_features,
                "detector_state": self.detector_state,
                "num_training_scores": self.num_training_scores,
            }
        )
        if self.has_reference_scorers:
            config["neighbour_distance"] = keras.saving.serialize_keras_object(
                self.neighbour_distance
            )
            config["tail_rarity"] = keras.saving.serialize_keras_object(self.tail_rarity)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FeatureScoreNetwork:
        config = dict(config)
        config["preprocessing_model"] = keras.saving.deserialize_keras_object(
            config["preprocessing_model"]
        )
        for name in ("core", "neighbour_distance", "tail_rarity"):
            if config.get(name) is not None:
                config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)
