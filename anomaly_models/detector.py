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
from anomaly_models.preprocessing import (
    build_preprocessing_model,
    frame_to_inputs,
    is_numeric_column,
)
from anomaly_models.thresholds import ThresholdResult, calibrate_threshold

KINDS = ("autoencoder", "feature")
_PREDICT_BATCH = 8192


class NotFittedError(RuntimeError):
    """Raised when a detector is used before ``fit`` (or ``calibrate``)."""


class AnomalyDetector:
    """Detector of unusual rows in numerical tabular data, built on Keras 3.

    Args:
        kind: ``"autoencoder"`` (the seed ``Autoencoder``; contributions are the squared
            reconstruction errors) or ``"feature"`` (``NumericalAnomalyDetection``: reconstruction
            plus distance from a learned per-feature Gaussian).
        hidden_dims: Encoder widths, the last one is the bottleneck. For ``"autoencoder"`` the
            first entry is ``encoding_dim`` and the last ``intermediate_dim``.
        epochs: Maximum number of training epochs (early stopping may end sooner).
        batch_size: Training batch size.
        learning_rate: Adam learning rate.
        validation_fraction: Fraction of the fitted rows held out for early stopping, in [0, 0.5];
            0 disables early stopping.
        patience: Epochs without improvement of the held-out loss before stopping.
        seed: Seed of weights, shuffling and the held-out split; same seed + data = same model.
        reconstruction_weight / distribution_weight: score weights of the ``"feature"`` kind.
        scaling: ``"robust"`` (median / IQR, default) or ``"standard"`` (mean / std), fitted on
            the rows given to ``fit``.
        tail_compression: Apply ``asinh`` after scaling (default True), so rare huge normal
            values do not outrank real anomalies; see ``layers.TailCompression``.
        verbose: Keras ``fit`` verbosity.
    """

    def __init__(
        self,
        kind: str = "autoencoder",
        hidden_dims: Sequence[int] = (64, 32, 16),
        epochs: int = 30,
        batch_size: int = 1024,
        learning_rate: float = 3e-3,
        validation_fraction: float = 0.1,
        patience: int = 5,
        seed: int = 0,
        reconstruction_weight: float = 0.5,
        distribution_weight: float = 0.5,
        scaling: str = "robust",
        tail_compression: bool = True,
        verbose: int = 0,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"`kind` must be one of {list(KINDS)}, received kind={kind!r}")
        self.kind = kind
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

    # ------------------------------------------------------------------ parameters and state
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (scikit-learn style)."""
        return {
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

    # -------------------------------------------------------------------------------- fitting
    def build_preprocessing(self, X: Any) -> keras.Model:
        """The preprocessing model ``fit`` would build for normal rows ``X`` (scaling per params)."""
        return build_preprocessing_model(
            self._as_frame(X, fitting=True), scaling=self.scaling,
            tail_compression=self.tail_compression,
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

        Preprocessing (median imputation, scaling, tail compression) is fitted on ``X`` too,
        unless a ready ``preprocessing_model`` (from ``build_preprocessing``, numeric columns
        only, inputs named like ``X``'s columns) is given. Sets
        ``network_``, ``feature_names_in_``, ``n_features_in_``, ``history_`` (loss per epoch),
        ``training_scores_`` (scores of ``X``), ``fit_seconds_``; clears any threshold.
        """
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
        callbacks = []
        validation_data = None
        if n_holdout:
            validation_data = (frame_to_inputs(holdout, network.preprocessing_model),)
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=self.patience, restore_best_weights=True
                )
            )
        history = network.fit(
            frame_to_inputs(train, network.preprocessing_model),
            epochs=self.epochs,
            batch_size=self.batch_size,
            validation_data=validation_data,
            callbacks=callbacks,
            shuffle=True,
            verbose=self.verbose,
        )
        # Each feature's contribution is scaled by its mean score on the training rows, so a
        # feature that is hard to reconstruct everywhere does not drown the others.
        raw = self._raw_feature_scores(network, frame)
        scale = np.maximum(raw.mean(axis=0), 1e-12).astype("float32")
        network.feature_scale.assign(scale)
        self.network_ = network
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.history_ = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        self.threshold_: float | None = None
        self.threshold_record_: ThresholdResult | None = None
        # the network's output is raw / (scale * d): no second pass over the training rows
        self.training_scores_ = (raw / (scale.astype("float64") * raw.shape[1])).sum(axis=1)
        self.training_score_quantiles_ = {
            str(q): float(np.quantile(self.training_scores_, q)) for q in (0.5, 0.9, 0.99, 0.999)
        }
        self.fit_seconds_ = time.perf_counter() - started
        return self

    @staticmethod
    def _raw_feature_scores(network: FeatureScoreNetwork, frame: pd.DataFrame) -> np.ndarray:
        inputs = frame_to_inputs(frame, network.preprocessing_model)
        n = len(frame)
        parts = []
        for start in range(0, n, _PREDICT_BATCH):
            batch = {k: v[start : start + _PREDICT_BATCH] for k, v in inputs.items()}
            parts.append(keras.ops.convert_to_numpy(network.per_feature_scores(batch)))
        return np.concatenate(parts)

    # ------------------------------------------------------------------------------- scoring
    def _contributions(self, frame: pd.DataFrame) -> np.ndarray:
        inputs = frame_to_inputs(frame, self.network_.preprocessing_model)
        return np.asarray(
            self.network_.predict(inputs, batch_size=_PREDICT_BATCH, verbose=0), dtype="float64"
        )

    def feature_scores(self, X: Any) -> np.ndarray:
        """Per-feature contributions, ``(n, d)`` float64, >= 0; row sums = ``score_samples``."""
        self._require_fitted("score")
        return self._contributions(self._as_frame(X, fitting=False))

    def score_samples(self, X: Any) -> np.ndarray:
        """Anomaly score per row, ``(n,)`` float64; higher = more anomalous.

        The score is the mean over features of each feature's score divided by its mean on the
        training rows: about 1 for a typical training row.
        """
        return self.feature_scores(X).sum(axis=1)

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - threshold_``: positive = flagged."""
        self._require_calibrated("compute decision_function")
        return self.score_samples(X) - self.threshold_

    def predict(self, X: Any) -> np.ndarray:
        """0/1 flags, ``(n,)`` int64: 1 where ``score > threshold_``."""
        self._require_calibrated("predict")
        return (self.score_samples(X) > self.threshold_).astype("int64")

    def score_frame(self, X: Any) -> pd.DataFrame:
        """Scores as a DataFrame: ``anomaly_score``, ``is_anomaly`` (needs a threshold) and one
        ``contribution_<feature>`` column per feature; index follows ``X`` when it is a frame."""
        self._require_calibrated("score")
        contributions = self.feature_scores(X)
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
        self, X_val: Any, y_val: Any = None, method: str = "quantile", **params: Any
    ) -> ThresholdResult:
        """Set ``threshold_`` from scores of ``X_val`` (never seen in training).

        ``method`` and ``params`` go to :func:`anomaly_models.thresholds.calibrate_threshold`
        (``quantile`` q, ``mean_std`` k, ``median_mad`` k, ``iqr`` k, ``best_f1`` with labels,
        ``pot`` target_false_alarm_rate). With ``y_val`` (1 = anomaly) unsupervised methods use
        the normal rows only. Returns and stores the record as ``threshold_record_``.
        """
        self._require_fitted("calibrate")
        scores = self.score_samples(X_val)
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
        if not isinstance(network, FeatureScoreNetwork):
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
