"""``AnomalyDetector.save`` / ``load``: one ``.keras`` file that reloads with ``safe_mode=True``.

The file is the detector's network (``FeatureScoreNetwork`` or ``SequenceScoreNetwork``), whose
config carries the detector's state as JSON (``detector_state``) and whose weights carry the
arrays: the preprocessing, the trained layers, the feature / channel scale and the training
scores (``training_scores``, float64). :func:`detector_state` lists what the state holds.

Files written before a field existed still load: without ``resolved_params`` the resolved
training arguments are recomputed from ``params`` (such files stored them resolved, e.g.
``epochs=30``); without a ``training_scores`` weight ``training_scores_`` is None.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, TypeVar

import keras
import numpy as np

from anomaly_models.detector_params import RESOLVED_PARAMS
from anomaly_models.models.feature_score_network import FeatureScoreNetwork
from anomaly_models.models.sequence_score_network import SequenceScoreNetwork
from anomaly_models.thresholds import ThresholdResult

__all__ = ["detector_state", "read_detector", "restore_detector", "write_detector"]

Detector = TypeVar("Detector")


def _plain(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays as Python numbers and lists, for JSON; tuples
    become lists (:func:`detector_state` records which parameters were tuples)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    return value


def detector_state(detector: Any) -> dict[str, Any]:
    """The JSON-serialisable state of a fitted detector, saved in its network's config.

    Keys: ``params`` (every constructor argument as given), ``tuple_params`` (the names of
    those given as tuples, which JSON turns into lists), ``resolved_params`` (the training
    arguments used, ``None`` resolved), ``feature_names_in``, ``threshold``,
    ``threshold_record``, ``history``, ``fit_seconds``, ``training_score_quantiles``.
    """
    params = detector.get_params(deep=False)
    record = detector.threshold_record_
    return {
        "params": {name: _plain(value) for name, value in params.items()},
        "tuple_params": [name for name, value in params.items() if isinstance(value, tuple)],
        "resolved_params": {name: _plain(getattr(detector, f"{name}_")) for name in RESOLVED_PARAMS},
        "feature_names_in": [str(c) for c in detector.feature_names_in_],
        "threshold": detector.threshold_,
        "threshold_record": record.to_dict() if record is not None else None,
        "history": detector.history_,
        "fit_seconds": detector.fit_seconds_,
        "training_score_quantiles": detector.training_score_quantiles_,
    }


def write_detector(detector: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``detector`` (fitted) to one ``.keras`` file; returns its path."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"the file name must end in '.keras', received {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    detector.network_.detector_state = detector_state(detector)
    detector.network_.save(path)
    return path


def restore_detector(cls: type[Detector], network: keras.Model) -> Detector:
    """A fitted ``cls`` instance from a loaded network and the state in its config."""
    state = network.detector_state
    params = dict(state["params"])
    for name in state.get("tuple_params", []):
        params[name] = tuple(params[name])
    detector = cls(**params)
    resolved = state.get("resolved_params")
    if resolved is None:  # written before resolved_params existed: its params are resolved
        checked = detector.resolve_params()
        resolved = {name: checked[name] for name in RESOLVED_PARAMS}
    for name in RESOLVED_PARAMS:  # a file from before `window` was resolved: its argument
        setattr(detector, f"{name}_", resolved[name] if name in resolved else params.get(name))
    detector.network_ = network
    detector.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
    detector.n_features_in_ = len(state["feature_names_in"])
    detector.history_ = state.get("history", {})
    detector.fit_seconds_ = state.get("fit_seconds")
    detector.threshold_ = state.get("threshold")
    record = state.get("threshold_record")
    detector.threshold_record_ = ThresholdResult.from_dict(record) if record else None
    weight = getattr(network, "training_scores", None)
    detector.training_scores_ = (
        None if weight is None else keras.ops.convert_to_numpy(weight).astype("float64")
    )
    detector.training_score_quantiles_ = state.get("training_score_quantiles", {})
    return detector


def read_detector(cls: type[Detector], path: str | os.PathLike[str]) -> Detector:
    """Load a detector written by :func:`write_detector` (``safe_mode=True``: no arbitrary
    code runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no detector file at {str(path)!r}")
    with warnings.catch_warnings():
        # the preprocessing model's dict keys are column names, its tensor names Keras-safe
        warnings.filterwarnings("ignore", message="When providing `inputs` as a dict")
        network = keras.models.load_model(path, safe_mode=True)
    if not isinstance(network, (FeatureScoreNetwork, SequenceScoreNetwork)):
        raise ValueError(f"{str(path)!r} holds a {type(network).__name__}, not an AnomalyDetector")
    return restore_detector(cls, network)
