"""The checks of ``AnomalyDetector``'s constructor arguments, and their kind-dependent defaults.

``AnomalyDetector.__init__`` stores its arguments as given (scikit-learn's rule); ``fit`` (and
``AnomalyDetector.resolve_params``) run :func:`check_detector_params`, which checks each one with
a message that shows the received value, and fills in the arguments left as ``None``: ``epochs``,
``batch_size`` and ``learning_rate`` from the kind's :class:`~anomaly_models.kinds.TrainingDefaults`,
``window`` None (the sequence kind's default) is chosen at fit from the training series'
period (:func:`resolve_window`), and ``point_aggregation`` / ``smoothing`` None after training
(:mod:`anomaly_models.point_scoring_choice`), since they need the data.

Imports NumPy and the standard library only (Keras only for the ``"feature"`` kind's weights).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from anomaly_models.checks import (
    check_fraction,
    check_non_negative_int,
    check_positive_int,
    check_positive_int_list,
)
from anomaly_models.kinds import get_kind

__all__ = [
    "POINT_AGGREGATIONS",
    "RESOLVED_PARAMS",
    "SCALINGS",
    "check_detector_params",
    "check_window",
    "resolve_schedule",
    "resolve_smoothing",
    "resolve_window",
    "table_schedule",
    "training_windows",
]

#: The arguments whose ``None`` is resolved by :func:`check_detector_params`; a fitted detector
#: keeps the value it used as ``<name>_`` (``epochs_``, ``batch_size_``, ...).
RESOLVED_PARAMS = (
    "epochs", "batch_size", "learning_rate", "window", "point_aggregation", "smoothing"
)
#: ``point_aggregation`` choices of the sequence kinds.
POINT_AGGREGATIONS = ("mean", "max")
#: ``scaling`` choices of the preprocessing.
SCALINGS = ("standard", "robust")


def check_window(window: Any) -> int | None:
    """``window`` as int when it is an integer >= 2, None (chosen at fit from the training
    series: :func:`anomaly_models.sequences.auto_window`) when None, else ``ValueError``
    showing it."""
    if window is None:
        return None
    checked = check_positive_int("window", window)
    if checked < 2:
        raise ValueError(f"`window` must be at least 2 points, received window={window!r}")
    return checked


def resolve_smoothing(smoothing: Any) -> int | None:
    """``smoothing`` as int, None (chosen at fit) when None, else ``ValueError`` showing it."""
    if smoothing is None:
        return None
    return check_non_negative_int("smoothing", smoothing)


def resolve_window(params: Mapping[str, Any], series: Any) -> dict[str, Any]:
    """``params`` (checked) with ``window`` chosen from the training ``series`` when it is None
    (:func:`anomaly_models.sequences.auto_window`), and ``stride`` checked against it."""
    from anomaly_models.sequences import auto_window

    if params["window"] is not None:
        return dict(params)
    window = auto_window(series)
    resolved = {**params, "window": window}
    if resolved["stride"] > window:
        raise ValueError(
            f"`stride` must be at most the window ({window}, chosen from the series' period), "
            f"received stride={params['stride']!r}"
        )
    return resolved


#: The rule of :func:`table_schedule`: about ``n / ROWS_PER_BATCH`` rows per batch (a power of
#: two in [MIN_BATCH, MAX_BATCH]) and enough epochs for ``MIN_STEPS`` gradient steps, within
#: [MIN_EPOCHS, MAX_EPOCHS]. Chosen on the tuning half of benchmarks/suite.py (mean PR-AUC of the
#: autoencoder part 0.464 against 0.439 with the former fixed 1,024 rows x 30 epochs).
ROWS_PER_BATCH, MIN_BATCH, MAX_BATCH = 32, 32, 1024
MIN_STEPS, MIN_EPOCHS, MAX_EPOCHS = 1500, 30, 200


def table_schedule(n_rows: int, validation_fraction: float) -> tuple[int, int]:
    """``(batch_size, epochs)`` for training a tabular kind on ``n_rows`` rows, of which
    ``validation_fraction`` are held out: e.g. 300 rows -> (32, 167), 5,000 -> (128, 42),
    30,000 -> (1024, 56). Early stopping usually ends training sooner."""
    batch_size = 2 ** round(math.log2(max(n_rows, 1) / ROWS_PER_BATCH))
    batch_size = int(min(MAX_BATCH, max(MIN_BATCH, batch_size)))
    steps_per_epoch = max(1, math.ceil((1.0 - validation_fraction) * n_rows / batch_size))
    epochs = int(min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch))))
    return batch_size, epochs


def training_windows(n_points: int, window: int, stride: int) -> int:
    """How many training windows of ``window`` points, ``stride`` apart, a series of
    ``n_points`` gives (0 when it is shorter than the window)."""
    return max(0, (n_points - window) // stride + 1)


def resolve_schedule(params: Mapping[str, Any], n_rows: int) -> dict[str, Any]:
    """``params`` with ``batch_size`` / ``epochs`` left as None filled by :func:`table_schedule`."""
    batch_size, epochs = table_schedule(n_rows, params["validation_fraction"])
    resolved = dict(params)
    if resolved["batch_size"] is None:
        resolved["batch_size"] = batch_size
    if resolved["epochs"] is None:
        resolved["epochs"] = epochs
    return resolved


def _check_hidden_dims(hidden_dims: Any) -> list[int]:
    try:
        as_list = list(hidden_dims)
    except TypeError:  # not iterable: let the check name the value
        as_list = hidden_dims
    return check_positive_int_list("hidden_dims", as_list)


def _check_sequence_params(params: Mapping[str, Any]) -> dict[str, Any]:
    window = check_window(params["window"])
    stride = check_positive_int("stride", params["stride"])
    if window is not None and stride > window:
        raise ValueError(
            f"`stride` must be at most window={window} (else training skips points), "
            f"received stride={params['stride']!r}"
        )
    point_aggregation = params["point_aggregation"]
    if point_aggregation is not None and point_aggregation not in POINT_AGGREGATIONS:
        raise ValueError(
            f"`point_aggregation` must be one of {list(POINT_AGGREGATIONS)} or None, "
            f"received point_aggregation={point_aggregation!r}"
        )
    return {
        "window": window,
        "stride": stride,
        "point_aggregation": point_aggregation,
        "smoothing": resolve_smoothing(params["smoothing"]),
        "lstm_units": check_positive_int("lstm_units", params["lstm_units"]),
        "latent_dim": check_positive_int("latent_dim", params["latent_dim"]),
    }


def check_detector_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``AnomalyDetector``'s constructor arguments and fill in the ``None`` defaults.

    Args:
        params: every constructor argument (``AnomalyDetector.get_params()``).

    Returns:
        A new dict with the same keys: plain ``int`` / ``float`` / ``bool`` / ``str`` values,
        ``hidden_dims`` as a list, ``learning_rate`` resolved; ``epochs`` / ``batch_size``
        None only where the kind's rule fills them at fit (:func:`resolve_schedule`), and
        ``window`` / ``point_aggregation`` / ``smoothing`` None where fit chooses them from
        the data. Every argument is checked, whatever the kind.

    Raises:
        ValueError: the first bad argument, the message showing its value
            (e.g. ``received epochs=0``).
    """
    kind = get_kind(params["kind"])
    defaults = kind.defaults

    def default(name: str) -> Any:
        return getattr(defaults, name) if params[name] is None else params[name]

    checked: dict[str, Any] = {"kind": kind.name}
    checked["hidden_dims"] = _check_hidden_dims(params["hidden_dims"])
    for name in ("epochs", "batch_size"):  # None left for table_schedule at fit
        value = default(name)
        checked[name] = None if value is None else check_positive_int(name, value)
    checked["learning_rate"] = check_fraction(
        "learning_rate", default("learning_rate"), low=1e-12, high=10.0
    )
    checked["validation_fraction"] = check_fraction(
        "validation_fraction", params["validation_fraction"], high=0.5
    )
    checked["patience"] = check_positive_int("patience", params["patience"])
    checked["seed"] = check_non_negative_int("seed", params["seed"])
    for name in ("reconstruction_weight", "distribution_weight"):
        checked[name] = check_fraction(name, params[name])
    if kind.name == "feature":
        # the layer owns the rule on its weights (not both 0): let it say so before training
        from anomaly_models.layers.numerical_anomaly_detection import NumericalAnomalyDetection

        NumericalAnomalyDetection(
            checked["hidden_dims"], checked["reconstruction_weight"], checked["distribution_weight"]
        )
    if params["scaling"] not in SCALINGS:
        raise ValueError(
            f"`scaling` must be 'standard' or 'robust', received scaling={params['scaling']!r}"
        )
    checked["scaling"] = params["scaling"]
    checked["tail_compression"] = bool(params["tail_compression"])
    checked["n_neighbors"] = check_positive_int("n_neighbors", params["n_neighbors"])
    checked["reference_rows"] = check_positive_int("reference_rows", params["reference_rows"])
    if checked["reference_rows"] < 2:
        raise ValueError(
            "`reference_rows` must be at least 2 (a row's neighbours other than itself), "
            f"received reference_rows={params['reference_rows']!r}"
        )
    checked["verbose"] = int(params["verbose"])
    checked.update(_check_sequence_params(params))
    return checked
