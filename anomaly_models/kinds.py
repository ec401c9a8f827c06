"""The one table of detector kinds: what ``AnomalyDetector(kind=...)`` accepts.

Each :class:`DetectorKind` says whether the kind scores an ordered series (one score per point)
or independent table rows, the defaults of the training arguments left as ``None``
(``epochs``, ``batch_size``, ``learning_rate``), the constructor arguments only this kind uses,
and how its network is built. :data:`KINDS` and :data:`SEQUENCE_KINDS` are derived from the
table; configuration code (e.g. the pipeline's ``model.kind`` choices) should derive its choices
from it too.

This module imports only the standard library: reading the table does not import Keras or
TensorFlow. Keras is imported when a network is built (:meth:`DetectorKind.build_network`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: importing this module must not import Keras
    import keras

__all__ = [
    "DETECTOR_KINDS",
    "KINDS",
    "SEQUENCE_KINDS",
    "SEQUENCE_DEFAULTS",
    "TABULAR_DEFAULTS",
    "DetectorKind",
    "TrainingDefaults",
    "get_kind",
]

#: ``build(params, preprocessing_model, num_features, num_training_scores) -> keras.Model``:
#: ``params`` are the detector's checked constructor arguments (defaults filled in),
#: ``num_features`` the width of the preprocessed features (channels for a sequence kind) and
#: ``num_training_scores`` the length of the ``training_scores`` weight (rows or points of ``X``).
NetworkBuilder = Callable[[Mapping[str, Any], "keras.Model", int, int], "keras.Model"]


@dataclass(frozen=True)
class TrainingDefaults:
    """Values of the training arguments that ``AnomalyDetector`` leaves as ``None``.

    Attributes:
        epochs: maximum number of training epochs; None = from the training rows at ``fit``
            (:func:`anomaly_models.detector_params.table_schedule`).
        batch_size: rows (tabular kinds) or windows (sequence kinds) per gradient step; None =
            from the training rows at ``fit``, like ``epochs``.
        learning_rate: Adam learning rate.
    """

    epochs: int | None
    batch_size: int | None
    learning_rate: float


#: Tabular kinds: the schedule follows the number of training rows (``table_schedule``), since a
#: fixed batch of 1,024 rows for 30 epochs is 30 gradient steps in all on 1,000 rows.
TABULAR_DEFAULTS = TrainingDefaults(epochs=None, batch_size=None, learning_rate=3e-3)
#: Sequence kinds: the same schedule rule on the number of training windows, and Keras' default
#: Adam learning rate. (The former batch 32, Adam 2e-3 and 30 epochs were picked on UCR series
#: 135's test labels, so they are no longer the defaults; benchmarks/ucr_sequence.py still
#: passes them explicitly.)
SEQUENCE_DEFAULTS = TrainingDefaults(epochs=None, batch_size=None, learning_rate=1e-3)


@dataclass(frozen=True)
class DetectorKind:
    """One row of the table of kinds.

    Attributes:
        name: the value of ``AnomalyDetector(kind=...)``.
        is_sequence: True when ``X`` is one ordered series scored per point (windows cut by the
            detector); False when ``X`` is a table whose rows are scored independently.
        defaults: values of ``epochs`` / ``batch_size`` / ``learning_rate`` left as ``None``.
        parameters: constructor arguments only this kind uses (the other kinds ignore them).
        builder: builds the kind's (unfitted, unbuilt) network, see :data:`NetworkBuilder`.
        summary: one line for documentation and error messages.
        reference_scorers: True when, after training, the network gets the neighbour-distance
            and tail-rarity parts on a reference sample of the training rows
            (:func:`anomaly_models.training.with_reference_scorers`).
    """

    name: str
    is_sequence: bool
    defaults: TrainingDefaults
    parameters: tuple[str, ...]
    builder: NetworkBuilder
    summary: str
    reference_scorers: bool = False

    def build_network(
        self,
        params: Mapping[str, Any],
        preprocessing_model: keras.Model,
        num_features: int,
        num_training_scores: int,
    ) -> keras.Model:
        """The network of this kind for checked ``params`` (imports Keras)."""
        return self.builder(params, preprocessing_model, num_features, num_training_scores)


# ------------------------------------------------------------------------- network builders
# Keras is imported inside the builders, so that reading the table stays free of it.
def _feature_score_network(
    core: Any, preprocessing_model: Any, num_features: int, num_training_scores: int
) -> Any:
    from anomaly_models.models.feature_score_network import FeatureScoreNetwork

    return FeatureScoreNetwork(
        preprocessing_model,
        core,
        num_features=num_features,
        num_training_scores=num_training_scores,
        name="anomaly_detector",
    )


def _build_autoencoder(
    params: Mapping[str, Any], preprocessing_model: Any, num_features: int, num_training_scores: int
) -> Any:
    from anomaly_models.models.autoencoder import Autoencoder

    core = Autoencoder(
        input_dim=num_features,
        encoding_dim=params["hidden_dims"][0],
        intermediate_dim=params["hidden_dims"][-1],
        name="autoencoder",
    )
    return _feature_score_network(core, preprocessing_model, num_features, num_training_scores)


def _build_feature(
    params: Mapping[str, Any], preprocessing_model: Any, num_features: int, num_training_scores: int
) -> Any:
    from anomaly_models.layers.numerical_anomaly_detection import NumericalAnomalyDetection

    core = NumericalAnomalyDetection(
        hidden_dims=params["hidden_dims"],
        reconstruction_weight=params["reconstruction_weight"],
        distribution_weight=params["distribution_weight"],
        name="numerical_anomaly_detection",
    )
    return _feature_score_network(core, preprocessing_model, num_features, num_training_scores)


def _build_lstm_autoencoder(
    params: Mapping[str, Any], preprocessing_model: Any, num_features: int, num_training_scores: int
) -> Any:
    from anomaly_models.models.lstm_autoencoder_anomaly import LSTMAutoencoderAnomaly
    from anomaly_models.models.sequence_score_network import SequenceScoreNetwork

    autoencoder = LSTMAutoencoderAnomaly(
        latent_dim=params["latent_dim"],
        lstm_units=params["lstm_units"],
        n_features=num_features,
        n_repeats=params["window"],
        name="lstm_autoencoder",
    )
    return SequenceScoreNetwork(
        preprocessing_model,
        autoencoder,
        num_channels=num_features,
        num_training_scores=num_training_scores,
        name="sequence_anomaly_detector",
    )


# ------------------------------------------------------------------------------------ table
#: The one table of kinds, keyed by name (in the order users see them).
DETECTOR_KINDS: dict[str, DetectorKind] = {
    kind.name: kind
    for kind in (
        DetectorKind(
            name="ensemble",
            is_sequence=False,
            defaults=TABULAR_DEFAULTS,
            parameters=("hidden_dims", "n_neighbors", "reference_rows"),
            builder=_build_autoencoder,
            summary="table rows; mean of autoencoder reconstruction, k-nearest-neighbour "
            "distance and per-feature tail rarity",
            reference_scorers=True,
        ),
        DetectorKind(
            name="autoencoder",
            is_sequence=False,
            defaults=TABULAR_DEFAULTS,
            parameters=("hidden_dims",),
            builder=_build_autoencoder,
            summary="table rows; the seed Autoencoder, contributions = squared reconstruction errors",
        ),
        DetectorKind(
            name="feature",
            is_sequence=False,
            defaults=TABULAR_DEFAULTS,
            parameters=("hidden_dims", "reconstruction_weight", "distribution_weight"),
            builder=_build_feature,
            summary="table rows; NumericalAnomalyDetection, reconstruction + per-feature Gaussian",
        ),
        DetectorKind(
            name="lstm_autoencoder",
            is_sequence=True,
            defaults=SEQUENCE_DEFAULTS,
            parameters=(
                "window", "stride", "point_aggregation", "smoothing", "lstm_units", "latent_dim",
            ),
            builder=_build_lstm_autoencoder,
            summary="an ordered series, one score per point; LSTM autoencoder over windows",
        ),
    )
}

#: Names of every kind, in table order.
KINDS: tuple[str, ...] = tuple(DETECTOR_KINDS)
#: Names of the kinds that score ordered series (one score per point).
SEQUENCE_KINDS: tuple[str, ...] = tuple(k.name for k in DETECTOR_KINDS.values() if k.is_sequence)


def get_kind(kind: Any) -> DetectorKind:
    """The table row of ``kind``; ``ValueError`` naming the received value and the choices."""
    if not isinstance(kind, str) or kind not in DETECTOR_KINDS:
        raise ValueError(f"`kind` must be one of {list(KINDS)}, received kind={kind!r}")
    return DETECTOR_KINDS[kind]
