"""Scoring an ordered series with a :class:`~anomaly_models.models.SequenceScoreNetwork`.

The machinery behind ``AnomalyDetector(kind="lstm_autoencoder")``, in NumPy around the network:

1. :func:`scale_series` - the preprocessing applied to each point, ``(n, channels)``;
2. :func:`point_errors` - every window (stride 1) reconstructed, block by block of windows, and
   each point's squared error per channel combined over the windows covering it (mean or max,
   by :func:`~anomaly_models.sequences.aggregate_window_values`);
3. :func:`errors_to_contributions` - divided by the channel scale and the number of channels,
   then smoothed (:func:`~anomaly_models.sequences.moving_average`); rows sum to the score.

:func:`context_length` says how many earlier points make the scores of a continued stream
exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import pandas as pd

from anomaly_models.models.sequence_score_network import SequenceScoreNetwork
from anomaly_models.preprocessing import apply_in_batches, frame_to_inputs
from anomaly_models.sequences import aggregate_window_values, moving_average

__all__ = [
    "WINDOW_CHUNK",
    "context_length",
    "errors_to_contributions",
    "point_errors",
    "scale_series",
    "window_view",
]

#: Windows per forward pass when scoring a series: bounds memory (a block of windows and its
#: reconstruction, ``WINDOW_CHUNK * window * channels`` floats each) on long series.
WINDOW_CHUNK = 4096


def context_length(window: int, smoothing: int) -> int:
    """Points before a batch that make its scores exact: ``window - 1`` (every window covering
    a point of the batch then lies inside context + batch) plus ``smoothing // 2`` (the look-back
    of the moving average; none for ``smoothing`` 0 or 1)."""
    return int(window) - 1 + (int(smoothing) // 2 if smoothing > 1 else 0)


def scale_series(preprocessing: keras.Model, frame: pd.DataFrame) -> np.ndarray:
    """The preprocessing applied to each point of ``frame``: ``(n, channels)`` float32."""
    scaled = apply_in_batches(preprocessing, frame_to_inputs(frame, preprocessing))
    return np.ascontiguousarray(scaled, dtype="float32")


def window_view(scaled: np.ndarray, window: int) -> np.ndarray:
    """Every window of ``scaled`` (stride 1), ``(n - window + 1, window, channels)``, a view."""
    return np.lib.stride_tricks.sliding_window_view(scaled, window, axis=0).transpose(0, 2, 1)


def _window_errors(network: SequenceScoreNetwork, view: np.ndarray) -> Iterator[np.ndarray]:
    """Squared reconstruction errors, ``(k, window, channels)`` float64, block by block."""
    for start in range(0, len(view), WINDOW_CHUNK):
        windows = np.ascontiguousarray(view[start : start + WINDOW_CHUNK])
        reconstruction = network.predict(windows, batch_size=1024, verbose=0)
        yield np.square(windows.astype("float64") - np.asarray(reconstruction, "float64"))


def point_errors(
    network: SequenceScoreNetwork, scaled: np.ndarray, window: int, point_aggregation: str
) -> np.ndarray:
    """Squared reconstruction error of each point and channel, combined over the windows
    (stride 1) covering the point by ``point_aggregation`` (``"mean"`` or ``"max"``).

    Args:
        network: the fitted network.
        scaled: ``(n, channels)`` scaled series (:func:`scale_series`), ``n >= window``.
        window: the window length the network was built for.
        point_aggregation: ``"mean"`` or ``"max"``.

    Returns:
        ``(n, channels)`` float64, in squared scaled units.
    """
    view = window_view(scaled, window)
    return aggregate_window_values(
        _window_errors(network, view), len(scaled), window, 1, point_aggregation
    )


def errors_to_contributions(errors: np.ndarray, channel_scale: Any, smoothing: int) -> np.ndarray:
    """Per-point errors -> contributions, ``(n, channels)`` float64: divided by
    ``channel_scale`` (``(channels,)``, the mean training error per channel) and by the number
    of channels, so a typical training point scores about 1, then smoothed over ``smoothing``
    points; rows sum to the score."""
    scale = keras.ops.convert_to_numpy(channel_scale).astype("float64")
    return moving_average(errors / (scale * errors.shape[1]), smoothing)
