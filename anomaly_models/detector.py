"""AnomalyDetector: the fit / calibrate / score / predict / save / load facade.

The contract follows scikit-learn and PyOD:

* ``fit(X)`` on normal rows (DataFrame or 2-D array of numbers) -> ``self``; for the tabular
  kinds a NaN is a missing value, replaced by the feature's training median inside the model
  (at fit and at scoring alike), while inf is refused;
* ``calibrate(X_val, y_val=None, method=..., **params)`` sets ``threshold_`` (an absolute number in
  score units, see :mod:`anomaly_models.thresholds`) on data that training never saw;
* ``score_samples(X)`` -> ``(n,)`` float64, higher = more anomalous;
* ``feature_scores(X)`` -> ``(n, d)`` per-feature contributions; each row sums to its score;
* ``predict(X)`` -> ``(n,)`` int 0/1 with ``score > threshold_``;
* ``save(path)`` / ``AnomalyDetector.load(path)``: one ``.keras`` file (preprocessing, network,
  threshold and metadata inside) that reloads with ``safe_mode=True`` and gives identical scores.

It is a scikit-learn estimator (``get_params`` / ``set_params``, ``sklearn.base.clone``; see
:mod:`anomaly_models.estimator`) without importing scikit-learn. Fitted attributes end in ``_``.
No I/O besides ``save``/``load``; no tracking calls.

Kinds (the table: :mod:`anomaly_models.kinds`): ``"autoencoder"`` and ``"feature"`` score
independent rows of a table; ``"lstm_autoencoder"`` scores the points of an ordered multichannel
series (see :class:`AnomalyDetector` and :mod:`anomaly_models.sequence_scoring`): the detector
cuts sliding windows itself, scores them by LSTM reconstruction error and maps the errors back
to one score per point, so every method above takes a series and returns one value per point.
The helpers live in :mod:`anomaly_models.inputs` (checking ``X``),
:mod:`anomaly_models.detector_params` (checking the arguments) and
:mod:`anomaly_models.training`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from anomaly_models.detector_params import (
    POINT_AGGREGATIONS,
    RESOLVED_PARAMS,
    check_detector_params,
    check_window,
    resolve_schedule,
    resolve_smoothing,
    resolve_window,
    training_windows,
)
from anomaly_models.estimator import BaseEstimator
from anomaly_models.inputs import as_series, as_table
from anomaly_models.kinds import KINDS, SEQUENCE_KINDS
from anomaly_models.models.sequence_score_network import SequenceScoreNetwork
from anomaly_models.persistence import read_detector, write_detector
from anomaly_models.preprocessing import build_preprocessing_model, frame_to_inputs
from anomaly_models.sequence_scoring import (
    context_length,
    errors_to_contributions,
    point_errors,
    scale_series,
)
from anomaly_models.thresholds import ThresholdResult, calibrate_threshold
from anomaly_models.training import (
    FittedNetwork,
    fit_series_network,
    fit_table_network,
    score_quantiles,
)

__all__ = [
    "KINDS",
    "POINT_AGGREGATIONS",
    "SEQUENCE_KINDS",
    "AnomalyDetector",
    "NotFittedError",
    "SequenceScoreNetwork",
]

class NotFittedError(RuntimeError):
    """Raised when a detector is used before ``fit`` (or ``calibrate``)."""


class AnomalyDetector(BaseEstimator):
    """Detector of unusual rows in numerical tabular data, or of unusual points in an ordered
    multichannel series, built on Keras 3.

    Args:
        kind: ``"ensemble"`` (default: the ``"autoencoder"`` network's reconstruction error,
            the distance to the ``n_neighbors`` nearest of ``reference_rows`` sampled training
            rows and each feature's empirical tail rarity, combined by ``log1p``-weighted sum:
            see :class:`~anomaly_models.models.FeatureScoreNetwork`), ``"autoencoder"`` (the
            seed ``Autoencoder``; contributions are the squared reconstruction errors),
            ``"feature"`` (``NumericalAnomalyDetection``: reconstruction
            plus distance from a learned per-feature Gaussian), or ``"lstm_autoencoder"`` (an
            ordered series; see *Sequence kind* below).
        hidden_dims: Encoder widths, the last one is the bottleneck. For ``"autoencoder"`` the
            first entry is ``encoding_dim`` and the last ``intermediate_dim``. Ignored by
            ``"lstm_autoencoder"``.
        epochs: Maximum number of training epochs (early stopping may end sooner); default:
            enough for 1,500 gradient steps within [30, 200] epochs.
        batch_size: Training batch size (rows, or windows for the sequence kind); default
            about rows (windows) / 32, a power of two in [32, 1024]
            (:func:`anomaly_models.detector_params.table_schedule`: 300 rows -> 32 rows x 167
            epochs, 30,000 -> 1024 x 56), the rule chosen on the tabular suite's tuning half.
        learning_rate: Adam learning rate; default 3e-3 for the tabular kinds (chosen on the
            tuning half too), 1e-3 (Keras' default for Adam) for ``"lstm_autoencoder"``.
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
        window: (sequence kind) Window length in points, >= 2; None (default) = chosen at
            ``fit`` from the training series alone: its dominant period by autocorrelation
            (one window spans one cycle), 32 when it has none, kept in [8, 256] and at most a
            quarter of the series (:func:`anomaly_models.sequences.auto_window`). The chosen
            value is ``window_``.
        stride: (sequence kind) Step between the starts of the training windows, 1 <= stride <=
            window. Scoring always uses stride 1, so every point gets a score.
        point_aggregation: (sequence kind) How a point's squared reconstruction error (per
            channel) is combined over the windows that cover it: ``"mean"``, ``"max"``, or None
            (default) = chosen at ``fit`` from the training series alone, with ``smoothing``
            (:func:`anomaly_models.point_scoring_choice.choose_point_scoring`: the scoring that
            best finds spikes, level shifts, variance changes and flat lines injected into a
            copy of the training series). The value used is ``point_aggregation_``.
        smoothing: (sequence kind) Length in points of the centred moving average applied to the
            point scores (:func:`~anomaly_models.sequences.moving_average`); 0 or 1 = none;
            None (default) = chosen at ``fit`` among 0, window / 8, window / 4 and window / 2
            the same way. The value used is ``smoothing_``.
        lstm_units: (sequence kind) Units of the encoder and decoder LSTMs.
        latent_dim: (sequence kind) Width of the bottleneck.
        n_neighbors: (``"ensemble"``) Nearest reference rows averaged by the distance part.
        reference_rows: (``"ensemble"``) At most this many training rows (a seeded sample) are
            kept, preprocessed, inside the model as the reference of the distance and tail
            parts; scoring work per row grows with it. Note that the saved file holds them.

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

    Fitted attributes (set by ``fit``; all of them saved by ``save`` and restored by ``load``):
        network_: the Keras network (``FeatureScoreNetwork`` or ``SequenceScoreNetwork``).
        feature_names_in_: ``(d,)`` object array of the fitted column (channel) names, str.
        n_features_in_: ``d``, the number of features (channels).
        history_: loss per epoch, ``{"loss": [...], "val_loss": [...]}``.
        training_scores_: ``(n,)`` float64, the score of each row (point) of ``X``.
        training_score_quantiles_: ``{"0.5": ..., "0.9": ..., "0.99": ..., "0.999": ...}`` of
            ``training_scores_``.
        fit_seconds_: wall time of ``fit`` in seconds.
        epochs_ / batch_size_ / learning_rate_: the training arguments used, ``None`` resolved
            to the kind's defaults (:data:`anomaly_models.kinds.DETECTOR_KINDS`).
        window_: the window used (the sequence kinds; ``window`` or the one chosen from the
            series; None for the tabular kinds).
        point_aggregation_ / smoothing_: the point aggregation and smoothing length used by
            scoring (``point_aggregation`` / ``smoothing``, or the ones chosen at ``fit`` when
            None; used by the sequence kinds only).
        threshold_ / threshold_record_: set by ``calibrate`` (None until then).

    Parameters follow scikit-learn's rules: ``__init__`` stores each argument as given,
    ``get_params`` / ``set_params`` read and change them (``sklearn.base.clone`` works), and
    ``fit`` checks them (``resolve_params`` runs the same checks without fitting). A parameter
    changed on a fitted detector takes effect at the next ``fit``.
    """

    repr_always = ("kind",)

    def __init__(
        self,
        kind: str = "ensemble",
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
        window: int | None = None,
        stride: int = 1,
        point_aggregation: str | None = None,
        smoothing: int | None = None,
        lstm_units: int = 32,
        latent_dim: int = 16,
        n_neighbors: int = 5,
        reference_rows: int = 4096,
    ) -> None:
        # stored as given (scikit-learn's rule): checks and defaults wait for fit
        self.kind = kind
        self.hidden_dims = hidden_dims
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.seed = seed
        self.reconstruction_weight = reconstruction_weight
        self.distribution_weight = distribution_weight
        self.scaling = scaling
        self.tail_compression = tail_compression
        self.verbose = verbose
        self.window = window
        self.stride = stride
        self.point_aggregation = point_aggregation
        self.smoothing = smoothing
        self.lstm_units = lstm_units
        self.latent_dim = latent_dim
        self.n_neighbors = n_neighbors
        self.reference_rows = reference_rows

    # ------------------------------------------------------------------ parameters and state
    def resolve_params(self) -> dict[str, Any]:
        """Every constructor argument checked, with the ``None`` defaults filled in (what
        ``fit`` uses); the arguments themselves are left as they are.

        Raises:
            ValueError: the first bad argument, the message showing its value; ``fit`` raises
                the same.
        """
        return check_detector_params(self.get_params(deep=False))

    @property
    def is_sequence(self) -> bool:
        """True for the kinds that score ordered series (``"lstm_autoencoder"``)."""
        return self.kind in SEQUENCE_KINDS

    @property
    def context_length(self) -> int:
        """Points of the previous batch that make ``score_samples(X, context=...)`` exact.

        ``window - 1`` (every window covering a point of ``X`` then lies inside context + ``X``)
        plus ``smoothing // 2`` (the look-back of the moving average); 0 for the tabular kinds.
        Before ``fit`` it is computed from the (checked) ``window`` and ``smoothing`` when both
        are given (``ValueError`` when either is None: it is chosen at fit).
        """
        if not self.is_sequence:
            return 0
        if self.is_fitted:
            return context_length(self.window_, self.smoothing_)
        window = check_window(self.window)
        smoothing = resolve_smoothing(self.smoothing)
        if window is None or smoothing is None:
            unset = "window" if window is None else "smoothing"
            raise ValueError(
                f"context_length is known after fit: {unset}=None is chosen from the training "
                "series"
            )
        return context_length(window, smoothing)

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "network_")

    def __sklearn_is_fitted__(self) -> bool:
        return self.is_fitted

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

    def _fitted_names(self) -> list[str]:
        return [str(c) for c in self.feature_names_in_]

    # -------------------------------------------------------------------------------- fitting
    def build_preprocessing(self, X: Any) -> keras.Model:
        """The preprocessing model ``fit`` would build for normal rows ``X`` (scaling per params)."""
        params = self.resolve_params()
        frame = as_series(X) if self.is_sequence else as_table(X)
        return build_preprocessing_model(
            frame, scaling=params["scaling"], tail_compression=params["tail_compression"]
        )

    def fit(
        self, X: Any, y: Any = None, preprocessing_model: keras.Model | None = None
    ) -> AnomalyDetector:
        """Fit on normal rows ``X`` of shape ``(n, d)``; ``y`` is ignored (API compatibility).

        For the sequence kind ``X`` is one normal ordered series (see the class docstring), at
        least ``window`` points long; ``training_scores_`` then holds one score per point.

        The constructor arguments are checked first (``ValueError`` showing the bad value).
        Preprocessing (median imputation, scaling, tail compression) is fitted on ``X`` too,
        unless a ready ``preprocessing_model`` (from ``build_preprocessing``, numeric columns
        only, inputs named like ``X``'s columns) is given. Sets the fitted attributes listed in
        the class docstring; clears any threshold.
        """
        started = time.perf_counter()
        params = self.resolve_params()
        if self.is_sequence:
            frame = as_series(X)
            params = resolve_window(params, frame.to_numpy(dtype="float64", na_value=np.nan))
            params = resolve_schedule(
                params, training_windows(len(frame), params["window"], params["stride"])
            )
            fitted = fit_series_network(frame, params, preprocessing_model)
            params = {**params, **fitted.chosen_params}
        else:
            frame = as_table(X)
            params = resolve_schedule(params, len(frame))
            fitted = fit_table_network(frame, params, preprocessing_model)
        return self._set_fitted(fitted, frame, params, started)

    def _set_fitted(
        self, fitted: FittedNetwork, frame: pd.DataFrame, params: dict[str, Any], started: float
    ) -> AnomalyDetector:
        self.network_ = fitted.network
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = int(frame.shape[1])
        self.history_ = fitted.history
        self.threshold_: float | None = None
        self.threshold_record_: ThresholdResult | None = None
        self.training_scores_ = fitted.training_scores
        self.training_score_quantiles_ = score_quantiles(self.training_scores_)
        for name in RESOLVED_PARAMS:
            setattr(self, f"{name}_", params[name])
        self.fit_seconds_ = time.perf_counter() - started
        return self

    # ------------------------------------------------------------------------------- scoring
    def _sequence_contributions(self, X: Any, context: Any) -> np.ndarray:
        names = self._fitted_names()
        window = int(self.window_)
        frame = as_series(X, names)
        if len(frame) == 0:
            raise ValueError(f"X is empty (shape {frame.shape}): need at least one point")
        n_context = 0
        if context is not None:
            previous = as_series(context, names, what="context")
            # points older than context_length change no score of X: leave them out
            previous = previous.iloc[max(0, len(previous) - self.context_length) :]
            n_context = len(previous)
            frame = pd.concat([previous, frame], ignore_index=True)
        if len(frame) < window:
            with_context = f" (with {n_context} points of context)" if context is not None else ""
            raise ValueError(
                f"X has {len(frame) - n_context} points{with_context}, fewer than "
                f"window={window}: no complete window fits. Score at least {window} "
                "points at once, or pass the previous points as `context`."
            )
        scaled = scale_series(self.network_.preprocessing_model, frame)
        errors = point_errors(self.network_, scaled, window, self.point_aggregation_)
        contributions = errors_to_contributions(errors, self.network_.channel_scale, self.smoothing_)
        return contributions[n_context:]

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
        frame = as_table(X, self._fitted_names())
        return self.network_.contributions(frame_to_inputs(frame, self.network_.preprocessing_model))

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
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write one ``.keras`` file with everything needed to score (network, preprocessing,
        threshold, every fitted attribute); returns its path. See :mod:`anomaly_models.persistence`."""
        self._require_fitted("save")
        return write_detector(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AnomalyDetector:
        """Load a detector written by ``save`` (``safe_mode=True``: no arbitrary code runs);
        every fitted attribute is restored as it was saved."""
        return read_detector(cls, path)
