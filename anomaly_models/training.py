"""How ``AnomalyDetector.fit`` trains a network, for each family of kinds.

* :func:`fit_table_network` - the tabular kinds: rows -> ``FeatureScoreNetwork``;
* :func:`fit_series_network` - the sequence kinds: one series -> windows ->
  ``SequenceScoreNetwork``;

both from checked parameters (:func:`anomaly_models.detector_params.check_detector_params`)
and an already checked frame (:mod:`anomaly_models.inputs`), with the helpers they share: the
held-out split for early stopping, the Keras fit, the score summaries. The network of each kind
comes from the table of kinds (:mod:`anomaly_models.kinds`). No I/O, no tracking calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import keras
import numpy as np
import pandas as pd

from anomaly_models.detector_params import POINT_AGGREGATIONS
from anomaly_models.kinds import get_kind
from anomaly_models.layers.neighbour_distance import NeighbourDistance
from anomaly_models.layers.tail_rarity import TailRarity
from anomaly_models.models.feature_score_network import (
    PART_WEIGHTS,
    CoreTrainer,
    FeatureScoreNetwork,
    combine_parts,
)
from anomaly_models.point_scoring_choice import choose_point_scoring
from anomaly_models.preprocessing import (
    apply_in_batches,
    build_preprocessing_model,
    frame_to_inputs,
)
from anomaly_models.sequence_scoring import (
    errors_to_contributions,
    point_errors,
    scale_series,
    window_view,
)

__all__ = [
    "TRAINING_SCORE_QUANTILES",
    "FittedNetwork",
    "fit_series_network",
    "fit_table_network",
    "preprocessing_for",
    "holdout_split",
    "raw_feature_scores",
    "score_quantiles",
    "train_network",
    "with_reference_scorers",
]

#: Quantiles of the training scores kept as ``training_score_quantiles_`` (a quick summary of
#: what normal scores look like, e.g. for choosing or checking a threshold).
TRAINING_SCORE_QUANTILES = (0.5, 0.9, 0.99, 0.999)
#: Gradient steps per call of the compiled training function: the same steps, with less
#: Python and ``tf.function`` overhead per step (which dominates for networks this small).
STEPS_PER_EXECUTION = 32


def holdout_split(
    n: int, validation_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Random ``(holdout, train)`` positions among ``n`` samples (rows or windows).

    ``round(validation_fraction * n)`` samples are held out for early stopping, none when that
    would leave fewer than 2 to train on. The permutation depends on ``seed`` only.

    Returns:
        Two int arrays of positions, ``(n_holdout,)`` and ``(n - n_holdout,)``.
    """
    order = np.random.default_rng(seed).permutation(n)
    n_holdout = int(round(validation_fraction * n))
    if n_holdout and n - n_holdout < 2:
        n_holdout = 0
    return order[:n_holdout], order[n_holdout:]


def train_network(
    network: keras.Model,
    x: Any,
    y: Any,
    holdout: tuple[Any, ...] | None,
    *,
    epochs: int,
    batch_size: int,
    patience: int,
    verbose: int,
) -> dict[str, list[float]]:
    """``network.fit`` for ``epochs`` with early stopping on the loss of ``holdout`` (the best
    weights restored) when there is one.

    Returns:
        The loss per epoch, ``{"loss": [...], "val_loss": [...]}`` (``val_loss`` with a holdout),
        as plain floats.
    """
    callbacks = []
    if holdout is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=patience, restore_best_weights=True
            )
        )
    history = network.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=holdout,
        callbacks=callbacks,
        shuffle=True,
        verbose=verbose,
    )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def raw_feature_scores(network: FeatureScoreNetwork, frame: Any) -> np.ndarray:
    """The core's unscaled per-feature scores of the rows of ``frame``, ``(n, d)`` float32."""
    inputs = frame_to_inputs(frame, network.preprocessing_model)
    return apply_in_batches(network.per_feature_scores, inputs)


def score_quantiles(scores: np.ndarray) -> dict[str, float]:
    """``{str(q): quantile}`` of ``scores`` for each q of :data:`TRAINING_SCORE_QUANTILES`."""
    return {str(q): float(np.quantile(scores, q)) for q in TRAINING_SCORE_QUANTILES}


class FittedNetwork(NamedTuple):
    """What training one network gives.

    Attributes:
        network: the trained network; its scale weight and ``training_scores`` weight are set.
        history: loss per epoch (see :func:`train_network`).
        training_scores: ``(n,)`` float64, the score of each training row or point.
        chosen_params: the parameters left None that training chose from the data
            (``point_aggregation`` / ``smoothing`` of the sequence kinds), by name.
    """

    network: keras.Model
    history: dict[str, list[float]]
    training_scores: np.ndarray
    chosen_params: Mapping[str, Any] = MappingProxyType({})


def preprocessing_for(
    frame: pd.DataFrame, params: Mapping[str, Any], preprocessing_model: keras.Model | None
) -> keras.Model:
    """The given preprocessing model (its inputs checked against ``frame``'s columns), or a new
    one fitted on ``frame`` with ``params["scaling"]`` / ``params["tail_compression"]``."""
    if preprocessing_model is None:
        return build_preprocessing_model(
            frame, scaling=params["scaling"], tail_compression=params["tail_compression"]
        )
    if list(preprocessing_model.input.keys()) != list(frame.columns):
        raise ValueError(
            f"the preprocessing model takes columns {list(preprocessing_model.input.keys())}, "
            f"but X has {list(frame.columns)}"
        )
    return preprocessing_model


def _train(
    network: keras.Model, params: Mapping[str, Any], x: Any, y: Any, holdout: Any
) -> dict[str, list[float]]:
    return train_network(
        network,
        x,
        y,
        holdout,
        epochs=params["epochs"],
        batch_size=params["batch_size"],
        patience=params["patience"],
        verbose=params["verbose"],
    )


def _store_training_scores(network: keras.Model, scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype="float64")
    network.training_scores.assign(scores)  # saved with the network, exactly (float64)
    return scores


def fit_table_network(
    frame: pd.DataFrame, params: Mapping[str, Any], preprocessing_model: keras.Model | None
) -> FittedNetwork:
    """Train the network of a tabular kind on the normal rows ``frame`` ``(n, d)``.

    ``round(validation_fraction * n)`` random rows are held out for early stopping; the
    preprocessing is fitted on the other rows unless ``preprocessing_model`` is given. After
    training, each feature's contribution is divided by its mean on all ``n`` rows
    (``feature_scale``), so a typical training row scores about 1.
    """
    keras.utils.set_random_seed(params["seed"])
    holdout_rows, train_rows = holdout_split(
        len(frame), params["validation_fraction"], params["seed"]
    )
    train = frame.iloc[train_rows]
    preprocessing = preprocessing_for(train, params, preprocessing_model)
    d = int(preprocessing.output.shape[-1])
    network = get_kind(params["kind"]).build_network(params, preprocessing, d, len(frame))
    network(frame_to_inputs(train.iloc[:2], preprocessing))  # build every weight
    # The preprocessing is fixed from here on: the core trains on its output, computed once.
    features = apply_in_batches(network.features, frame_to_inputs(frame, preprocessing))
    trainer = CoreTrainer(network.core)
    trainer.compile(
        optimizer=keras.optimizers.Adam(params["learning_rate"]),
        loss=None,
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    history = _train(
        trainer,
        params,
        features[train_rows],
        None,
        (features[holdout_rows],) if len(holdout_rows) else None,
    )
    # Each feature's contribution is scaled by its mean score on the training rows, so a
    # feature that is hard to reconstruct everywhere does not drown the others.
    raw = raw_feature_scores(network, frame)
    scale = np.maximum(raw.mean(axis=0), 1e-12).astype("float32")
    network.feature_scale.assign(scale)
    # the network's output is raw / (scale * d): no second pass over the training rows
    contributions = raw / (scale.astype("float64") * raw.shape[1])
    if get_kind(params["kind"]).reference_scorers:
        network, contributions = with_reference_scorers(
            network, features, contributions, holdout_rows, train_rows, params
        )
    scores = contributions.sum(axis=1)
    return FittedNetwork(network, history, _store_training_scores(network, scores))


def with_reference_scorers(
    network: FeatureScoreNetwork,
    features: np.ndarray,
    core_contributions: np.ndarray,
    holdout_rows: np.ndarray,
    train_rows: np.ndarray,
    params: Mapping[str, Any],
) -> tuple[FeatureScoreNetwork, np.ndarray]:
    """The trained ``network`` (its preprocessing and core, shared) with the neighbour-distance
    and tail-rarity parts added, and the contributions of the fitted rows under it.

    The reference is ``min(reference_rows, len(train_rows))`` of the training rows (a seeded
    sample), preprocessed. Each part is scaled by its mean row sum on the held-out rows, which
    are not in the reference; with no held-out rows, on the training rows with each reference
    row's own entry left out (``exclude_nearest``), so the scale is not shrunk by the zero
    distance of a row to itself. A reference row's training score leaves itself out too.

    Args:
        network: trained, ``feature_scale`` set.
        features: ``(n, d)`` the preprocessed rows given to ``fit`` (``network.features``);
            ``holdout_rows`` / ``train_rows`` split their positions.
        core_contributions: ``(n, d)`` float64, the core's scaled contributions of the rows.
        params: checked detector parameters (``reference_rows``, ``n_neighbors``, ``seed``).

    Returns:
        The new network, and ``(n, d)`` float64 contributions (rows sum to the training scores).
    """
    rng = np.random.default_rng(params["seed"])
    m = min(params["reference_rows"], len(train_rows))
    reference_rows = np.sort(rng.choice(train_rows, size=m, replace=False))
    n, d = features.shape
    neighbours = NeighbourDistance(m, d, k=min(params["n_neighbors"], m - 1), name="neighbour_distance")
    tail = TailRarity(m, d, name="tail_rarity")
    neighbours.set_reference(features[reference_rows])
    tail.set_reference(features[reference_rows])
    combined = FeatureScoreNetwork(
        network.preprocessing_model,
        network.core,
        num_features=network.num_features,
        num_training_scores=network.num_training_scores,
        neighbour_distance=neighbours,
        tail_rarity=tail,
        name=network.name,
    )
    combined.feature_scale.assign(network.feature_scale)

    in_reference = np.zeros(n, dtype=bool)
    in_reference[reference_rows] = True
    neighbour_part = np.zeros((n, d))
    tail_part = np.zeros((n, d))
    for exclude_nearest in (False, True):
        rows = np.flatnonzero(in_reference == exclude_nearest)
        if not len(rows):  # every row is in the reference, or none is outside it
            continue
        neighbour_part[rows], tail_part[rows] = apply_in_batches(
            lambda batch, exclude=exclude_nearest: combined.reference_parts(batch, exclude),
            features[rows],
            neighbours.max_batch_rows,
        )
    scale_rows = holdout_rows if len(holdout_rows) else np.arange(n)
    neighbour_scale = max(float(neighbour_part[scale_rows].sum(axis=1).mean()), 1e-12)
    tail_scale = max(float(tail_part[scale_rows].sum(axis=1).mean()), 1e-12)
    combined.neighbour_scale.assign(neighbour_scale)
    combined.tail_scale.assign(tail_scale)
    # the network's output, computed from the parts already at hand
    contributions = keras.ops.convert_to_numpy(
        combine_parts(
            (core_contributions, neighbour_part / neighbour_scale, tail_part / tail_scale),
            PART_WEIGHTS,
        )
    )
    return combined, np.asarray(contributions, dtype="float64")


def fit_series_network(
    frame: pd.DataFrame, params: Mapping[str, Any], preprocessing_model: keras.Model | None
) -> FittedNetwork:
    """Train the network of a sequence kind on one normal series ``frame`` ``(n, channels)``.

    The preprocessing is fitted on the whole series (unless given), windows of ``window``
    points are cut every ``stride`` points, ``round(validation_fraction * n_windows)`` random
    windows are held out for early stopping. After training, each channel's error is divided
    by its mean on the series (``channel_scale``), so a typical training point scores about 1.

    Raises:
        ValueError: a series shorter than ``window``, or a preprocessing model that does not
            give one feature per channel.
    """
    window = params["window"]
    if len(frame) < window:
        raise ValueError(
            f"X has {len(frame)} points, fewer than window={window}: no complete window "
            f"fits. Fit on a series of at least {window} points (many windows more to "
            "learn anything), or use a smaller window."
        )
    keras.utils.set_random_seed(params["seed"])
    preprocessing = preprocessing_for(frame, params, preprocessing_model)
    scaled = scale_series(preprocessing, frame)
    n_channels = frame.shape[1]
    if scaled.shape[1] != n_channels:
        raise ValueError(
            f"the preprocessing model gives {scaled.shape[1]} features for {n_channels} "
            "channels; the sequence kind needs one scaled feature per channel"
        )
    windows = np.ascontiguousarray(window_view(scaled, window)[:: params["stride"]])
    holdout_rows, train_rows = holdout_split(
        len(windows), params["validation_fraction"], params["seed"]
    )
    holdout, train = windows[holdout_rows], windows[train_rows]
    kind = get_kind(params["kind"])
    network = kind.build_network(params, preprocessing, n_channels, len(frame))
    network(train[:1])  # build every weight
    network.compile(optimizer=keras.optimizers.Adam(params["learning_rate"]), loss="mse")
    history = _train(
        network, params, train, train, (holdout, holdout) if len(holdout_rows) else None
    )
    # Each channel's error is scaled by its mean on the training series, as for the tabular
    # kinds: a typical training point scores about 1 and no channel drowns the others.
    given = params["point_aggregation"]
    aggregations = POINT_AGGREGATIONS if given is None else (given,)
    raw = {a: point_errors(network, scaled, window, a) for a in aggregations}
    scales = {a: np.maximum(errors.mean(axis=0), 1e-12) for a, errors in raw.items()}
    chosen: dict[str, Any] = {}
    if given is None or params["smoothing"] is None:
        choice = choose_point_scoring(
            lambda copy, a: point_errors(network, copy, window, a) / scales[a],
            scaled,
            window,
            params["seed"],
            aggregations,
            None if params["smoothing"] is None else (params["smoothing"],),
        )
        chosen = {"point_aggregation": choice.point_aggregation, "smoothing": choice.smoothing}
    aggregation = chosen.get("point_aggregation", given)
    smoothing = chosen.get("smoothing", params["smoothing"])
    network.channel_scale.assign(scales[aggregation].astype("float32"))
    scores = errors_to_contributions(raw[aggregation], network.channel_scale, smoothing).sum(axis=1)
    return FittedNetwork(network, history, _store_training_scores(network, scores), chosen)
