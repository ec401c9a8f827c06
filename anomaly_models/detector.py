"""AnomalyDetector: the fit / calibrate / score / predict / save / load facade.

The contract follows scikit-learn and PyOD:

* ``fit(X)`` on normal rows (DataFrame or 2-D array of numbers) -> ``self``;
* ``calibrate(X_val, y_val=None, method=..., **params)`` sets ``threshold_`` (an absolute number in
  score units, see :mod:`anomaly_models.thresholds`) on data that training never saw;
* ``score_samples(X)`` -> ``(n,)`` float64, higher = more anomalous;
* ``feature_scores(X)`` -> ``(n, d)`` per-feature contributions; each row sums to its score;
* ``predict(X)`` -> ``(n,)`` int 0/1 with ``score > threshold_``;
* ``save(path)`` / ``AnomalyDetector.load(path)``: one ``.keras`` file (preprocessing, network,
  threshold and metadata inside) that reloads with ``safe_mode=True`` and gives identical scores.

Fitted attributes end in ``_``. No I/O besides ``save``/``load``; no tracking calls.

Kinds: ``"autoencoder"`` and ``"feature"`` score independent rows of a table;
``"lstm_autoencoder"`` scores the points of an ordered multichannel series (see
:class:`AnomalyDetector` and :class:`SequenceScoreNetwork`): the detector cuts sliding windows
itself, scores them by LSTM reconstruction error and maps the errors back to one score per point,
so every method above takes a series and returns one value per point.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from anomaly_models._checks import (
    check_finite_matrix,
    check_fraction,
    check_positive_int,
    check_positive_int_list,
)
from anomaly_models.layers.numerical_anomaly_detection import NumericalAnomalyDetection
from anomaly_models.models.autoencoder import Autoencoder
from anomaly_models.models.feature_score_network import FeatureScoreNetwork
from anomaly_models.models.lstm_autoencoder_anomaly import LSTMAutoencoderAnomaly
from anomaly_models.preprocessing import (
    build_preprocessing_model,
    frame_to_inputs,
    is_numeric_column,
)
from anomaly_models.sequences import moving_average
from anomaly_models.thresholds import ThresholdResult, calibrate_threshold

KINDS = ("autoencoder", "feature", "lstm_autoencoder")
SEQUENCE_KINDS = ("lstm_autoencoder",)
POINT_AGGREGATIONS = ("mean", "max")
_PREDICT_BATCH = 8192
_WINDOW_CHUNK = 4096  # windows per forward pass when scoring a series (bounds memory)
# Defaults of the arguments left as None, per family of kinds. Sequence: batch 32 and Adam 2e-3
# as in benchmarks/ucr_sequence.py; with them, 30 epochs and the default window / scaling, this
# kind scored UCR series 135 at point ROC-AUC 0.9996, PR-AUC 0.74, arg-max 4196 (seed 0).
_DEFAULTS = {
    "tabular": {"epochs": 30, "batch_size": 1024, "learning_rate": 3e-3},
    "sequence": {"epochs": 30, "batch_size": 32, "learning_rate": 2e-3},
}


@keras.saving.register_keras_serializable(package="anomaly_models")
class SequenceScoreNetwork(keras.Model):
    """The network behind the ``"lstm_autoencoder"`` kind of :class:`AnomalyDetector`.

    Holds what scoring a series needs, so one ``.keras`` file restores it:

    * ``preprocessing_model``: raw channels -> scaled channels, applied to each point (the
      preprocessing of the tabular kinds: median / IQR or mean / std, optional ``asinh``);
    * ``autoencoder``: an :class:`~anomaly_models.models.LSTMAutoencoderAnomaly` over windows of
      the scaled series; ``call(windows)`` returns its reconstruction
      ``(batch, window, num_channels)``;
    * ``channel_scale``: per channel, the mean squared reconstruction error on the training series
      (set by the detector), so every channel weighs about 1 on normal data;
    * ``detector_state``: JSON-serialisable state of the owning detector (saved in the config).

    Cutting windows and mapping errors back to points is done by the detector, in NumPy.
    """

    def __init__(
        self,
        preprocessing_model: keras.Model,
        autoencoder: LSTMAutoencoderAnomaly,
        num_channels: int,
        detector_state: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(autoencoder, LSTMAutoencoderAnomaly):
            raise ValueError(
                f"`autoencoder` must be an LSTMAutoencoderAnomaly, received {type(autoencoder).__name__}"
            )
        self.preprocessing_model = preprocessing_model
        self.autoencoder = autoencoder
        self.num_channels = check_positive_int("num_channels", num_channels)
        self.detector_state = dict(detector_state or {})
        self.channel_scale = self.add_weight(
            shape=(self.num_channels,), initializer="ones", trainable=False, name="channel_scale"
        )

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


def _check_non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, received {name}={value!r}")
    return int(value)


class NotFittedError(RuntimeError):
    """Raised when a detector is used before ``fit`` (or ``calibrate``)."""


class AnomalyDetector:
    """Detector of unusual rows in numerical tabular data, or of unusual points in an ordered
    multichannel series, built on Keras 3.

    Args:
        kind: ``"autoencoder"`` (the seed ``Autoencoder``; contributions are the squared
            reconstruction errors), ``"feature"`` (``NumericalAnomalyDetection``: reconstruction
            plus distance from a learned per-feature Gaussian), or ``"lstm_autoencoder"`` (an
            ordered series; see *Sequence kind* below).
        hidden_dims: Encoder widths, the last one is the bottleneck. For ``"autoencoder"`` the
            first entry is ``encoding_dim`` and the last ``intermediate_dim``. Ignored by
            ``"lstm_autoencoder"``.
        epochs: Maximum number of training epochs (early stopping may end sooner); default 30.
        batch_size: Training batch size (rows, or windows for the sequence kind); default 1024
            for the tabular kinds, 32 for ``"lstm_autoencoder"``.
        learning_rate: Adam learning rate; default 3e-3 for the tabular kinds, 2e-3 for
            ``"lstm_autoencoder"``.
        validation_fraction: Fraction of the fitted rows (windows for the sequence kind) held out
            at random for early stopping, in [0, 0.5]; 0 disables early stopping.
        patience: Epochs without improvement of the held-out loss before stopping.
        seed: Seed of weights, shuffling and the held-out split; same seed + data = same model.
        reconstruction_weight / distribution_weight: score weights of the ``"feature"`` kind.
        scaling: ``"robust"`` (median / IQR, default) or ``"standard"`` (mean / std), fitted on
            the rows given to ``fit``.
        tail_compression: Apply ``asinh`` after scaling (default True), so rare huge normal
            values do not outrank real anomalies; see ``layers.TailCompression``.
        verbose: Keras ``fit`` verbosity.
        window: (sequence kind) Window length in points, >= 2.
        stride: (sequence kind) Step between the starts of the training windows, 1 <= stride <=
            window. Scoring always uses stride 1, so every point gets a score.
        point_aggregation: (sequence kind) How a point's squared reconstruction error (per
            channel) is combined over the windows that cover it: ``"mean"`` (default, best on the
            UCR benchmark) or ``"max"``.
        smoothing: (sequence kind) Length in points of the centred moving average applied to the
            point scores (:func:`~anomaly_models.sequences.moving_average`); 0 or 1 = none;
            default ``window // 4``, the benchmark's choice.
        lstm_units: (sequence kind) Units of the encoder and decoder LSTMs.
        latent_dim: (sequence kind) Width of the bottleneck.

    Sequence kind (``kind="lstm_autoencoder"``):
        ``X`` is one ordered series: a DataFrame (rows = time points in order, columns =
        channels; a DatetimeIndex must be increasing), a 2-D array ``(n_points, n_channels)``, a
        1-D array or an unnamed Series (one channel), or a named Series (one channel, its name).
        ``fit`` scales the channels (``scaling`` / ``tail_compression``, fitted on ``X``), cuts
        windows of ``window`` points every ``stride`` points and trains an
        :class:`~anomaly_models.models.LSTMAutoencoderAnomaly` to reconstruct them. Scoring cuts
        every window (stride 1), takes each point's squared reconstruction error per channel,
        combines it over the windows covering the point (``point_aggregation``), divides each
        channel by its mean on the training series and by the number of channels (a typical
        training point scores about 1), then smooths over ``smoothing`` points.
        ``score_samples`` / ``predict`` return one value per input point, ``feature_scores`` one
        contribution per point and channel (rows sum to the score). Continue a stream with
        ``score_samples(X, context=previous_points)``, see :meth:`score_samples`.

        Bad input raises ``ValueError``: a series shorter than ``window`` (the message names
        both), NaN or inf (names the channels and the first positions: a window with a gap has
        no meaningful score, impute or split the series there), or channels other than the
        fitted ones at scoring (names expected vs received; extra columns are not dropped
        silently, unlike the tabular kinds).
    """

    def __init__(
        self,
        kind: str = "autoencoder",
        hidden_dims: Sequence[int] = (64, 32, 16),
        epochs: int | None = None,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        validation_fraction: float = 0.1,
        patience: int = 5,
        seed: int = 0,
        reconstruction_weight: float = 0.5,
        distribution_weight: float = 0.5,
        scaling: str = "robust",
        tail_compression: bool = True,
        verbose: int = 0,
        window: int = 32,
        stride: int = 1,
        point_aggregation: str = "mean",
        smoothing: int | None = None,
        lstm_units: int = 32,
        latent_dim: int = 16,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"`kind` must be one of {list(KINDS)}, received kind={kind!r}")
        self.kind = kind
        defaults = _DEFAULTS["sequence" if kind in SEQUENCE_KINDS else "tabular"]
        epochs = defaults["epochs"] if epochs is None else epochs
        batch_size = defaults["batch_size"] if batch_size is None else batch_size
        learning_rate = defaults["learning_rate"] if learning_rate is None else learning_rate
        self.hidden_dims = check_positive_int_list("hidden_dims", list(hidden_dims))
        self.epochs = check_positive_int("epochs", epochs)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.learning_rate = check_fraction("learning_rate", learning_rate, low=1e-12, high=10.0)
        self.validation_fraction = check_fraction(
            "validation_fraction", validation_fraction, high=0.5
        )
        self.patience = check_positive_int("patience", patience)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"`seed` must be a non-negative integer, received seed={seed!r}")
        self.seed = int(seed)
        self.reconstruction_weight = check_fraction("reconstruction_weight", reconstruction_weight)
        self.distribution_weight = check_fraction("distribution_weight", distribution_weight)
        if kind == "feature":  # let the layer reject an all-zero weighting now, not at fit
            NumericalAnomalyDetection(
                self.hidden_dims, self.reconstruction_weight, self.distribution_weight
            )
        if scaling not in ("standard", "robust"):
            raise ValueError(f"`scaling` must be 'standard' or 'robust', received scaling={scaling!r}")
        self.scaling = scaling
        self.tail_compression = bool(tail_compression)
        self.verbose = int(verbose)
        self.window = check_positive_int("window", window)
        if self.window < 2:
            raise ValueError(f"`window` must be at least 2 points, received window={window!r}")
        self.stride = check_positive_int("stride", stride)
        if self.stride > self.window:
            raise ValueError(
                f"`stride` must be at most window={self.window} (else training skips points), "
                f"received stride={stride!r}"
            )
        if point_aggregation not in POINT_AGGREGATIONS:
            raise ValueError(
                f"`point_aggregation` must be one of {list(POINT_AGGREGATIONS)}, "
                f"received point_aggregation={point_aggregation!r}"
            )
        self.point_aggregation = point_aggregation
        self.smoothing = (
            self.window // 4 if smoothing is None else _check_non_negative_int("smoothing", smoothing)
        )
        self.lstm_units = check_positive_int("lstm_units", lstm_units)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)

    @property
    def is_sequence(self) -> bool:
        """True for the kinds that score ordered series (``"lstm_autoencoder"``)."""
        return self.kind in SEQUENCE_KINDS

    @property
    def context_length(self) -> int:
        """Points of the previous batch that make ``score_samples(X, context=...)`` exact.

        ``window - 1`` (every window covering a point of ``X`` then lies inside context + ``X``)
        plus ``smoothing // 2`` (the look-back of the moving average); 0 for the tabular kinds.
        """
        if not self.is_sequence:
            return 0
        return self.window - 1 + (self.smoothing // 2 if self.smoothing > 1 else 0)

    # ------------------------------------------------------------------ parameters and state
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (scikit-learn style); the sequence arguments (``window`` ...
        ``latent_dim``) only for the sequence kind, which alone uses them."""
        params = {
            "kind": self.kind,
            "hidden_dims": list(self.hidden_dims),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "validation_fraction": self.validation_fraction,
            "patience": self.patience,
            "seed": self.seed,
            "reconstruction_weight": self.reconstruction_weight,
            "distribution_weight": self.distribution_weight,
            "scaling": self.scaling,
            "tail_compression": self.tail_compression,
            "verbose": self.verbose,
        }
        if self.is_sequence:
            params.update(
                {
                    "window": self.window,
                    "stride": self.stride,
                    "point_aggregation": self.point_aggregation,
                    "smoothing": self.smoothing,
                    "lstm_units": self.lstm_units,
                    "latent_dim": self.latent_dim,
                }
            )
        return params

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"AnomalyDetector({args})"

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "network_")

    @property
    def is_calibrated(self) -> bool:
        return getattr(self, "threshold_", None) is not None

    def _require_fitted(self, action: str) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"cannot {action}: this AnomalyDetector is not fitted; call fit(X) first")

    def _require_calibrated(self, action: str) -> None:
        self._require_fitted(action)
        if not self.is_calibrated:
            raise NotFittedError(
                f"cannot {action}: no threshold yet; call calibrate(X_val) (or set_threshold) first"
            )

    # ------------------------------------------------------------------------ input handling
    def _as_frame(self, X: Any, *, fitting: bool) -> pd.DataFrame:
        """Validate ``X`` and return it as a float DataFrame with the fitted column names."""
        if isinstance(X, pd.DataFrame):
            frame = X
        else:
            array = np.asarray(X)
            if array.ndim == 1 and not fitting and self.n_features_in_ == 1:
                array = array.reshape(-1, 1)
            if array.ndim != 2:
                raise ValueError(
                    f"X must be 2-D (n_rows, n_features), received an array with shape {array.shape}"
                )
            names = (
                [f"x{i}" for i in range(array.shape[1])] if fitting else list(self.feature_names_in_)
            )
            if not fitting and array.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {array.shape[1]} features, but this detector was fitted with "
                    f"{self.n_features_in_} features {list(self.feature_names_in_)}"
                )
            frame = pd.DataFrame(array, columns=names)
        if frame.shape[0] == 0:
            raise ValueError(f"X is empty (shape {frame.shape}): need at least one row")
        if fitting:
            if frame.shape[1] == 0:
                raise ValueError("X has no columns: need at least one numeric feature")
            columns = [str(c) for c in frame.columns]
            if len(set(columns)) != len(columns):
                raise ValueError(f"X has duplicate column names: {columns}")
        else:
            columns = list(self.feature_names_in_)
            present = {str(c) for c in frame.columns}
            missing = [c for c in columns if c not in present]
            if missing:
                raise ValueError(
                    f"X is missing feature column(s) {missing}; this detector was fitted on "
                    f"{columns}"
                )
            frame = frame.rename(columns=str)[columns]
        frame = frame.rename(columns=str)
        non_numeric = [c for c in frame.columns if not is_numeric_column(frame[c])]
        if non_numeric:
            examples = {c: frame[c].iloc[0] for c in non_numeric[:3]}
            raise ValueError(
                f"X has non-numeric column(s) {non_numeric} (first values: {examples}); "
                "AnomalyDetector takes numbers only"
            )
        values = frame.to_numpy(dtype="float64", na_value=np.nan)
        check_finite_matrix(values, "X", list(frame.columns))
        return frame.astype("float32")

    def _as_series_frame(self, X: Any, *, fitting: bool, what: str = "X") -> pd.DataFrame:
        """Validate an ordered series (sequence kind); a float64 DataFrame of the channels.

        Columns come back in the fitted order (when not fitting); the index is kept.
        """
        if isinstance(X, pd.Series):
            name = X.name
            if name is None:  # unnamed: one channel, named like a 1-D array's
                fitted_one = not fitting and self.n_features_in_ == 1
                name = str(self.feature_names_in_[0]) if fitted_one else "x0"
            X = X.to_frame(name=name)
        if isinstance(X, pd.DataFrame):
            frame = X.rename(columns=str)
        else:
            array = np.asarray(X)
            if array.ndim == 1:
                array = array.reshape(-1, 1)
            if array.ndim != 2:
                hint = (
                    " (windows? pass the series itself: the detector cuts the windows)"
                    if array.ndim == 3 else ""
                )
                raise ValueError(
                    f"{what} must be an ordered series: a DataFrame (rows = time points, columns "
                    "= channels), a 2-D array (n_points, n_channels) or a 1-D array (one "
                    f"channel); received an array with shape {array.shape}{hint}"
                )
            if fitting:
                names = [f"x{i}" for i in range(array.shape[1])]
            else:
                names = [str(c) for c in self.feature_names_in_]
                if array.shape[1] != len(names):
                    raise ValueError(
                        f"{what} has {array.shape[1]} channel(s), but this detector was fitted "
                        f"on {len(names)} channel(s) {names}"
                    )
            frame = pd.DataFrame(array, columns=names)
        columns = list(frame.columns)
        if fitting:
            if not columns:
                raise ValueError(f"{what} has no columns: need at least one numeric channel")
            if len(set(columns)) != len(columns):
                raise ValueError(f"{what} has duplicate column names: {columns}")
        else:
            expected = [str(c) for c in self.feature_names_in_]
            if len(set(columns)) != len(columns) or set(columns) != set(expected):
                missing = [c for c in expected if c not in columns]
                extra = [c for c in columns if c not in expected]
                raise ValueError(
                    f"{what} has channel column(s) {columns}, but this detector was fitted on "
                    f"{len(expected)} channel(s) {expected} (missing: {missing}, unexpected: "
                    f"{extra}); a sequence detector scores exactly the fitted channels, select "
                    "them first"
                )
            frame = frame[expected]
        non_numeric = [c for c in frame.columns if not is_numeric_column(frame[c])]
        if non_numeric:
            examples = {c: frame[c].iloc[0] for c in non_numeric[:3]} if len(frame) else {}
            raise ValueError(
                f"{what} has non-numeric column(s) {non_numeric} (first values: {examples}); "
                "AnomalyDetector takes numbers only"
            )
        index = frame.index
        if isinstance(index, (pd.DatetimeIndex, pd.TimedeltaIndex, pd.PeriodIndex)) and not (
            index.is_monotonic_increasing
        ):
            back = int(np.flatnonzero(np.diff(index.asi8) < 0)[0]) + 1 if len(index) > 1 else 0
            raise ValueError(
                f"{what} has a time index that is not increasing (it goes back at position "
                f"{back}, {index[back]}): sort the rows by time first, windows need time order"
            )
        values = frame.to_numpy(dtype="float64", na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            rows = np.flatnonzero(bad.any(axis=1))
            bad_columns = [str(frame.columns[j]) for j in np.flatnonzero(bad.any(axis=0))]
            labels = ""
            if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
                labels = f" (index {[str(v) for v in index[rows[:5]]]})"
            raise ValueError(
                f"{what} contains {int(np.isnan(values).sum())} NaN and "
                f"{int(np.isinf(values).sum())} infinite values in column(s) {bad_columns}, "
                f"first at position(s) {rows[:5].tolist()}{labels}. A window with a missing "
                "value has no meaningful score: impute the gap, or split the series there and "
                "score the parts separately."
            )
        return pd.DataFrame(values, index=frame.index, columns=list(frame.columns))

    # -------------------------------------------------------------------------------- fitting
    def build_preprocessing(self, X: Any) -> keras.Model:
        """The preprocessing model ``fit`` would build for normal rows ``X`` (scaling per params)."""
        frame = (
            self._as_series_frame(X, fitting=True)
            if self.is_sequence else self._as_frame(X, fitting=True)
        )
        return build_preprocessing_model(
            frame, scaling=self.scaling, tail_compression=self.tail_compression
        )

    def _build_network(
        self, train: pd.DataFrame, preprocessing: keras.Model | None
    ) -> FeatureScoreNetwork:
        if preprocessing is None:
            preprocessing = build_preprocessing_model(
                train, scaling=self.scaling, tail_compression=self.tail_compression
            )
        else:
            expected = list(train.columns)
            if list(preprocessing.input.keys()) != expected:
                raise ValueError(
                    f"the preprocessing model takes columns {list(preprocessing.input.keys())}, "
                    f"but X has {expected}"
                )
        d = int(preprocessing.output.shape[-1])
        if self.kind == "autoencoder":
            core: keras.layers.Layer = Autoencoder(
                input_dim=d,
                encoding_dim=self.hidden_dims[0],
                intermediate_dim=self.hidden_dims[-1],
                name="autoencoder",
            )
        else:
            core = NumericalAnomalyDetection(
                hidden_dims=self.hidden_dims,
                reconstruction_weight=self.reconstruction_weight,
                distribution_weight=self.distribution_weight,
                name="numerical_anomaly_detection",
            )
        network = FeatureScoreNetwork(preprocessing, core, num_features=d, name="anomaly_detector")
        network(frame_to_inputs(train.iloc[:2], preprocessing))  # build every weight
        return network

    def fit(
        self, X: Any, y: Any = None, preprocessing_model: keras.Model | None = None
    ) -> AnomalyDetector:
        """Fit on normal rows ``X`` of shape ``(n, d)``; ``y`` is ignored (API compatibility).

        For the sequence kind ``X`` is one normal ordered series (see the class docstring), at
        least ``window`` points long; ``training_scores_`` then holds one score per point.

        Preprocessing (median imputation, scaling, tail compression) is fitted on ``X`` too,
        unless a ready ``preprocessing_model`` (from ``build_preprocessing``, numeric columns
        only, inputs named like ``X``'s columns) is given. Sets
        ``network_``, ``feature_names_in_``, ``n_features_in_``, ``history_`` (loss per epoch),
        ``training_scores_`` (scores of ``X``), ``fit_seconds_``; clears any threshold.
        """
        if self.is_sequence:
            return self._fit_sequence(X, preprocessing_model)
        started = time.perf_counter()
        frame = self._as_frame(X, fitting=True)
        keras.utils.set_random_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(frame))
        n_holdout = int(round(self.validation_fraction * len(frame)))
        if n_holdout and len(frame) - n_holdout < 2:
            n_holdout = 0
        holdout, train = frame.iloc[order[:n_holdout]], frame.iloc[order[n_holdout:]]
        network = self._build_network(train, preprocessing_model)
        network.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss=None)
        history = self._train_network(
            network,
            frame_to_inputs(train, network.preprocessing_model),
            None,
            (frame_to_inputs(holdout, network.preprocessing_model),) if n_holdout else None,
        )
        # Each feature's contribution is scaled by its mean score on the training rows, so a
        # feature that is hard to reconstruct everywhere does not drown the others.
        raw = self._raw_feature_scores(network, frame)
        scale = np.maximum(raw.mean(axis=0), 1e-12).astype("float32")
        network.feature_scale.assign(scale)
        self.network_ = network
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.history_ = history
        self.threshold_: float | None = None
        self.threshold_record_: ThresholdResult | None = None
        # the network's output is raw / (scale * d): no second pass over the training rows
        self.training_scores_ = (raw / (scale.astype("float64") * raw.shape[1])).sum(axis=1)
        self.training_score_quantiles_ = {
            str(q): float(np.quantile(self.training_scores_, q)) for q in (0.5, 0.9, 0.99, 0.999)
        }
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _train_network(
        self, network: keras.Model, x: Any, y: Any, holdout: tuple[Any, ...] | None
    ) -> dict[str, list[float]]:
        """``network.fit`` for ``epochs`` with early stopping on the loss of ``holdout`` (the
        best weights restored) when there is one; returns the loss per epoch."""
        callbacks = []
        if holdout is not None:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=self.patience, restore_best_weights=True
                )
            )
        history = network.fit(
            x,
            y,
            epochs=self.epochs,
            batch_size=self.batch_size,
            validation_data=holdout,
            callbacks=callbacks,
            shuffle=True,
            verbose=self.verbose,
        )
        return {k: [float(v) for v in vals] for k, vals in history.history.items()}

    @staticmethod
    def _raw_feature_scores(network: FeatureScoreNetwork, frame: pd.DataFrame) -> np.ndarray:
        inputs = frame_to_inputs(frame, network.preprocessing_model)
        n = len(frame)
        parts = []
        for start in range(0, n, _PREDICT_BATCH):
            batch = {k: v[start : start + _PREDICT_BATCH] for k, v in inputs.items()}
            parts.append(keras.ops.convert_to_numpy(network.per_feature_scores(batch)))
        return np.concatenate(parts)

    # ----------------------------------------------------------------------- sequence fitting
    def _fit_sequence(self, X: Any, preprocessing_model: keras.Model | None) -> AnomalyDetector:
        started = time.perf_counter()
        frame = self._as_series_frame(X, fitting=True)
        if len(frame) < self.window:
            raise ValueError(
                f"X has {len(frame)} points, fewer than window={self.window}: no complete window "
                f"fits. Fit on a series of at least {self.window} points (many windows more to "
                "learn anything), or use a smaller window."
            )
        keras.utils.set_random_seed(self.seed)
        if preprocessing_model is None:
            preprocessing_model = build_preprocessing_model(
                frame, scaling=self.scaling, tail_compression=self.tail_compression
            )
        elif list(preprocessing_model.input.keys()) != list(frame.columns):
            raise ValueError(
                f"the preprocessing model takes columns {list(preprocessing_model.input.keys())}, "
                f"but X has {list(frame.columns)}"
            )
        scaled = self._scale_series(preprocessing_model, frame)
        n_channels = frame.shape[1]
        if scaled.shape[1] != n_channels:
            raise ValueError(
                f"the preprocessing model gives {scaled.shape[1]} features for {n_channels} "
                "channels; the sequence kind needs one scaled feature per channel"
            )
        windows = np.ascontiguousarray(self._window_view(scaled)[:: self.stride])
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(windows))
        n_holdout = int(round(self.validation_fraction * len(windows)))
        if n_holdout and len(windows) - n_holdout < 2:
            n_holdout = 0
        holdout, train = windows[order[:n_holdout]], windows[order[n_holdout:]]
        network = SequenceScoreNetwork(
            preprocessing_model,
            LSTMAutoencoderAnomaly(
                latent_dim=self.latent_dim,
                lstm_units=self.lstm_units,
                n_features=n_channels,
                n_repeats=self.window,
                name="lstm_autoencoder",
            ),
            num_channels=n_channels,
            name="sequence_anomaly_detector",
        )
        network(train[:1])  # build every weight
        network.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss="mse")
        history = self._train_network(
            network, train, train, (holdout, holdout) if n_holdout else None
        )
        # Each channel's error is scaled by its mean on the training series, as for the tabular
        # kinds: a typical training point scores about 1 and no channel drowns the others.
        raw = self._point_errors(network, scaled)
        network.channel_scale.assign(np.maximum(raw.mean(axis=0), 1e-12).astype("float32"))
        self.network_ = network
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = n_channels
        self.history_ = history
        self.threshold_ = None
        self.threshold_record_ = None
        self.training_scores_ = self._errors_to_contributions(network, raw).sum(axis=1)
        self.training_score_quantiles_ = {
            str(q): float(np.quantile(self.training_scores_, q)) for q in (0.5, 0.9, 0.99, 0.999)
        }
        self.fit_seconds_ = time.perf_counter() - started
        return self

    @staticmethod
    def _scale_series(preprocessing: keras.Model, frame: pd.DataFrame) -> np.ndarray:
        """The preprocessing applied to each point: ``(n, channels)`` float32."""
        inputs = frame_to_inputs(frame, preprocessing)
        parts = []
        for start in range(0, len(frame), _PREDICT_BATCH):
            batch = {k: v[start : start + _PREDICT_BATCH] for k, v in inputs.items()}
            parts.append(keras.ops.convert_to_numpy(preprocessing(batch)))
        return np.ascontiguousarray(np.concatenate(parts), dtype="float32")

    def _window_view(self, scaled: np.ndarray) -> np.ndarray:
        """Every window of ``scaled`` (stride 1), ``(n - window + 1, window, channels)``, a view."""
        return np.lib.stride_tricks.sliding_window_view(scaled, self.window, axis=0).transpose(
            0, 2, 1
        )

    def _point_errors(self, network: SequenceScoreNetwork, scaled: np.ndarray) -> np.ndarray:
        """Squared reconstruction error of each point and channel, combined over the windows
        (stride 1) covering the point by ``point_aggregation``: ``(n, channels)`` float64."""
        n, window = len(scaled), self.window
        view = self._window_view(scaled)
        n_windows = len(view)
        use_max = self.point_aggregation == "max"
        out = np.full(scaled.shape, -np.inf) if use_max else np.zeros(scaled.shape)
        for start in range(0, n_windows, _WINDOW_CHUNK):
            windows = np.ascontiguousarray(view[start : start + _WINDOW_CHUNK])
            reconstruction = network.predict(windows, batch_size=1024, verbose=0)
            errors = np.square(windows.astype("float64") - np.asarray(reconstruction, "float64"))
            starts = np.arange(start, start + len(windows))
            for j in range(window):  # window starts are distinct: each index once per j
                idx = starts + j
                if use_max:
                    out[idx] = np.maximum(out[idx], errors[:, j, :])
                else:
                    out[idx] += errors[:, j, :]
        if not use_max:
            points = np.arange(n)
            count = np.minimum(points, n_windows - 1) - np.maximum(0, points - window + 1) + 1
            out /= count[:, None]
        return out

    def _errors_to_contributions(
        self, network: SequenceScoreNetwork, errors: np.ndarray
    ) -> np.ndarray:
        """Per-point errors -> contributions: divided by the channel scale and the number of
        channels, then smoothed; rows sum to the score."""
        scale = keras.ops.convert_to_numpy(network.channel_scale).astype("float64")
        return moving_average(errors / (scale * errors.shape[1]), self.smoothing)

    def _sequence_contributions(self, X: Any, context: Any) -> np.ndarray:
        frame = self._as_series_frame(X, fitting=False)
        if len(frame) == 0:
            raise ValueError(f"X is empty (shape {frame.shape}): need at least one point")
        n_context = 0
        if context is not None:
            previous = self._as_series_frame(context, fitting=False, what="context")
            # points older than context_length change no score of X: leave them out
            previous = previous.iloc[max(0, len(previous) - self.context_length) :]
            n_context = len(previous)
            frame = pd.concat([previous, frame], ignore_index=True)
        if len(frame) < self.window:
            with_context = f" (with {n_context} points of context)" if context is not None else ""
            raise ValueError(
                f"X has {len(frame) - n_context} points{with_context}, fewer than "
                f"window={self.window}: no complete window fits. Score at least {self.window} "
                "points at once, or pass the previous points as `context`."
            )
        scaled = self._scale_series(self.network_.preprocessing_model, frame)
        errors = self._point_errors(self.network_, scaled)
        return self._errors_to_contributions(self.network_, errors)[n_context:]

    # ------------------------------------------------------------------------------- scoring
    def _contributions(self, frame: pd.DataFrame) -> np.ndarray:
        return self.network_.contributions(
            frame_to_inputs(frame, self.network_.preprocessing_model)
        )

    def feature_scores(self, X: Any, context: Any = None) -> np.ndarray:
        """Per-feature contributions, ``(n, d)`` float64, >= 0; row sums = ``score_samples``.

        Sequence kind: one row per point of ``X`` and one column per channel; ``context`` as
        for :meth:`score_samples`.
        """
        self._require_fitted("score")
        if self.is_sequence:
            return self._sequence_contributions(X, context)
        if context is not None:
            raise ValueError(
                f"`context` is for the sequence kinds {list(SEQUENCE_KINDS)}; kind={self.kind!r} "
                "scores each row on its own: leave context=None"
            )
        return self._contributions(self._as_frame(X, fitting=False))

    def score_samples(self, X: Any, context: Any = None) -> np.ndarray:
        """Anomaly score per row, ``(n,)`` float64; higher = more anomalous.

        The score is the mean over features of each feature's score divided by its mean on the
        training rows: about 1 for a typical training row.

        Sequence kind: one score per point of the series ``X`` (``len(X)`` scores). ``context``
        continues a stream: the points just before ``X`` (the end of the previous batch, same
        channels, or None). Windows then span the boundary, and the scores, still for ``X``'s
        points only, equal those of the whole series scored at once when ``context`` holds at
        least :attr:`context_length` points (``window - 1 + smoothing // 2``; older points are
        ignored). A shorter context is allowed: ``X``'s first points then get the scores of a
        series start (covered by fewer windows). Note that the last ``window - 1`` (plus
        ``(smoothing - 1) // 2``) points of any batch are scored without the windows still to
        come, so their scores can differ from a later scoring with more future points.
        """
        return self.feature_scores(X, context=context).sum(axis=1)

    def decision_function(self, X: Any, context: Any = None) -> np.ndarray:
        """``score_samples(X) - threshold_``: positive = flagged."""
        self._require_calibrated("compute decision_function")
        return self.score_samples(X, context=context) - self.threshold_

    def predict(self, X: Any, context: Any = None) -> np.ndarray:
        """0/1 flags, ``(n,)`` int64: 1 where ``score > threshold_`` (one per point for the
        sequence kind; ``context`` as for :meth:`score_samples`)."""
        self._require_calibrated("predict")
        return (self.score_samples(X, context=context) > self.threshold_).astype("int64")

    def score_frame(self, X: Any, context: Any = None) -> pd.DataFrame:
        """Scores as a DataFrame: ``anomaly_score``, ``is_anomaly`` (needs a threshold) and one
        ``contribution_<feature>`` column per feature; index follows ``X`` when it is a frame.
        Sequence kind: one row per point, one contribution per channel; ``context`` as for
        :meth:`score_samples`."""
        self._require_calibrated("score")
        contributions = self.feature_scores(X, context=context)
        score = contributions.sum(axis=1)
        out = pd.DataFrame(
            contributions, columns=[f"contribution_{c}" for c in self.feature_names_in_]
        )
        out.insert(0, "is_anomaly", (score > self.threshold_).astype("int64"))
        out.insert(0, "anomaly_score", score)
        if isinstance(X, pd.DataFrame):
            out.index = X.index
        return out

    # --------------------------------------------------------------------------- calibration
    def calibrate(
        self,
        X_val: Any,
        y_val: Any = None,
        method: str = "quantile",
        *,
        context: Any = None,
        **params: Any,
    ) -> ThresholdResult:
        """Set ``threshold_`` from scores of ``X_val`` (never seen in training).

        Sequence kind: ``X_val`` is a normal series (the threshold is set on its per-point
        scores) and ``y_val``, if given, has one label per point; ``context`` (the points just
        before ``X_val``, e.g. the end of the training series) as for :meth:`score_samples`.

        ``method`` and ``params`` go to :func:`anomaly_models.thresholds.calibrate_threshold`
        (``quantile`` q, ``mean_std`` k, ``median_mad`` k, ``iqr`` k, ``best_f1`` with labels,
        ``pot`` target_false_alarm_rate). With ``y_val`` (1 = anomaly) unsupervised methods use
        the normal rows only. Returns and stores the record as ``threshold_record_``.
        """
        self._require_fitted("calibrate")
        scores = self.score_samples(X_val, context=context)
        labels = None
        if y_val is not None:
            labels = np.asarray(y_val).reshape(-1)
            if labels.shape[0] != scores.shape[0]:
                raise ValueError(
                    f"y_val has {labels.shape[0]} labels but X_val has {scores.shape[0]} rows"
                )
        record = calibrate_threshold(scores, method=method, labels=labels, **params)
        self.threshold_ = float(record.threshold)
        self.threshold_record_ = record
        return record

    def set_threshold(self, threshold: float) -> None:
        """Set ``threshold_`` by hand (``threshold_record_`` becomes None)."""
        self._require_fitted("set a threshold")
        value = float(threshold)
        if not math.isfinite(value):
            raise ValueError(f"`threshold` must be a finite number, received threshold={threshold!r}")
        self.threshold_ = value
        self.threshold_record_ = None

    # ------------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, Any]:
        return {
            "params": self.get_params(),
            "feature_names_in": [str(c) for c in self.feature_names_in_],
            "threshold": self.threshold_,
            "threshold_record": (
                self.threshold_record_.to_dict() if self.threshold_record_ is not None else None
            ),
            "history": self.history_,
            "fit_seconds": self.fit_seconds_,
            "training_score_quantiles": self.training_score_quantiles_,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write one ``.keras`` file with everything needed to score; returns its path."""
        self._require_fitted("save")
        path = Path(path)
        if path.suffix != ".keras":
            raise ValueError(f"the file name must end in '.keras', received {str(path)!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.network_.detector_state = self._state()
        self.network_.save(path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AnomalyDetector:
        """Load a detector written by ``save`` (``safe_mode=True``: no arbitrary code runs)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no detector file at {str(path)!r}")
        with warnings.catch_warnings():
            # the preprocessing model's dict keys are column names, its tensor names Keras-safe
            warnings.filterwarnings("ignore", message="When providing `inputs` as a dict")
            network = keras.models.load_model(path, safe_mode=True)
        if not isinstance(network, (FeatureScoreNetwork, SequenceScoreNetwork)):
            raise ValueError(f"{str(path)!r} holds a {type(network).__name__}, not an AnomalyDetector")
        state = network.detector_state
        detector = cls(**state["params"])
        detector.network_ = network
        detector.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
        detector.n_features_in_ = len(state["feature_names_in"])
        detector.history_ = state.get("history", {})
        detector.fit_seconds_ = state.get("fit_seconds")
        detector.threshold_ = state.get("threshold")
        record = state.get("threshold_record")
        detector.threshold_record_ = ThresholdResult.from_dict(record) if record else None
        detector.training_scores_ = None  # not saved: only their quantiles are
        detector.training_score_quantiles_ = state.get("training_score_quantiles", {})
        return detector
