"""Choosing a sequence detector's point scoring without labels, from its own training series.

The sequence kinds turn per-window reconstruction errors into one score per point in two steps
that change what the detector finds: the errors a point gets from the windows covering it are
combined by their mean or their maximum (``point_aggregation``), and the point scores are
smoothed by a centred moving average (``smoothing`` points). No labelled anomaly is at hand at
``fit``, so :func:`choose_point_scoring` makes some: it copies the (scaled) training series once
per anomaly type of the UCR / TimeEval taxonomy that needs no model of the signal -

* ``spike``: one point moved by :data:`SPIKE_SIZE` channel standard deviations (sign drawn);
* ``level_shift``: a segment shifted by :data:`SHIFT_SIZE` standard deviations;
* ``variance``: Gaussian noise of :data:`NOISE_SIZE` standard deviations added to a segment;
* ``flatline``: a segment replaced by its own mean (a stuck sensor);

with segments of ``window // 2`` points, as many as fit in the series with more than a window of
normal points between them (at least one), each in one seeded channel. Every candidate (mean or max,
times a smoothing of ``round(f * window)`` points for each ``f`` in
:data:`SMOOTHING_FRACTIONS`) scores the copies, and the one with the best mean average
precision over the four types wins (ties: the earlier candidate, i.e. mean and less smoothing).

The trained network has seen the clean series, so injected points stand out against a low
background; that favours no candidate over another, and the choice then reflects how each
scoring localises anomalies of these shapes at this window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from sklearn.metrics import average_precision_score

from anomaly_models.sequences import moving_average

__all__ = [
    "ANOMALY_TYPES",
    "MAX_CHOICE_POINTS",
    "SMOOTHING_FRACTIONS",
    "PointScoringChoice",
    "choose_point_scoring",
    "inject_anomalies",
]

#: The injected anomaly types, in the order of :attr:`PointScoringChoice.average_precision`.
ANOMALY_TYPES = ("spike", "level_shift", "variance", "flatline")
#: Smoothing candidates as fractions of the window (0 = none).
SMOOTHING_FRACTIONS = (0.0, 0.125, 0.25, 0.5)
#: Sizes of the injected anomalies, in standard deviations of the scaled channel.
SPIKE_SIZE, SHIFT_SIZE, NOISE_SIZE = 4.0, 1.0, 1.0
#: At most this many (last) points of the training series are copied per type: bounds the
#: cost of the choice (4 types x 2 aggregations network passes over them) on long series.
MAX_CHOICE_POINTS = 20_000


class PointScoringChoice(NamedTuple):
    """The chosen ``point_aggregation`` and ``smoothing``, and the evidence.

    Attributes:
        point_aggregation: ``"mean"`` or ``"max"``.
        smoothing: moving-average length in points (0 = none).
        average_precision: ``{"mean/4": ap, ...}``, each candidate's mean average precision over
            :data:`ANOMALY_TYPES` on the injected copies, keyed ``"<aggregation>/<smoothing>"``.
    """

    point_aggregation: str
    smoothing: int
    average_precision: dict[str, float]


def inject_anomalies(
    scaled: np.ndarray, window: int, anomaly_type: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A copy of ``scaled`` ``(n, channels)`` with anomalies of ``anomaly_type`` injected.

    Returns:
        The copy (float32, same shape) and a boolean ``(n,)`` mask of the injected points.

    Raises:
        ValueError: an unknown ``anomaly_type``.
    """
    if anomaly_type not in ANOMALY_TYPES:
        raise ValueError(
            f"`anomaly_type` must be one of {list(ANOMALY_TYPES)}, received {anomaly_type!r}"
        )
    n, channels = scaled.shape
    length = 1 if anomaly_type == "spike" else max(2, window // 2)
    length = min(length, n)
    std = np.maximum(scaled.std(axis=0), 1e-6)
    injected = scaled.astype("float64")  # a copy
    mask = np.zeros(n, dtype=bool)
    # after a first normal window, slots of length + 2 windows: the anomaly starts at a random
    # offset of at most one window, so more than a window of normal points follows each one
    slot = length + 2 * window
    slots = max(1, (n - window) // slot)
    for index in range(slots):
        start = min(n - length, window + index * slot + int(rng.integers(0, window + 1)))
        stop = start + length
        channel = int(rng.integers(channels))
        segment = injected[start:stop, channel]
        if anomaly_type == "spike":
            segment += rng.choice((-1.0, 1.0)) * SPIKE_SIZE * std[channel]
        elif anomaly_type == "level_shift":
            segment += rng.choice((-1.0, 1.0)) * SHIFT_SIZE * std[channel]
        elif anomaly_type == "variance":
            segment += rng.normal(0.0, NOISE_SIZE * std[channel], size=length)
        else:  # flatline
            segment[:] = segment.mean()
        mask[start:stop] = True
    return injected.astype("float32"), mask


def choose_point_scoring(
    point_errors: Callable[[np.ndarray, str], np.ndarray],
    scaled: np.ndarray,
    window: int,
    seed: int,
    aggregations: tuple[str, ...] = ("mean", "max"),
    smoothings: tuple[int, ...] | None = None,
) -> PointScoringChoice:
    """The point scoring that best finds anomalies injected into the training series.

    Args:
        point_errors: ``point_errors(scaled_copy, aggregation)`` -> ``(n, channels)`` per-point
            errors of the trained network, each channel divided by its scale under that
            aggregation (as scoring will divide them), so that channels add up as in scoring.
        scaled: ``(n, channels)`` scaled training series, ``n >= window``.
        window: the network's window length.
        seed: seeds the injected positions, channels, signs and noise.
        aggregations: candidate ``point_aggregation`` values (one, when the user fixed it).
        smoothings: candidate ``smoothing`` values; default ``round(f * window)`` for ``f`` in
            :data:`SMOOTHING_FRACTIONS`.

    Returns:
        The :class:`PointScoringChoice`.
    """
    if smoothings is None:
        smoothings = tuple(dict.fromkeys(int(round(f * window)) for f in SMOOTHING_FRACTIONS))
    series = np.asarray(scaled)[-MAX_CHOICE_POINTS:]
    rng = np.random.default_rng(seed)
    copies = [inject_anomalies(series, window, t, rng) for t in ANOMALY_TYPES]
    precision: dict[str, float] = {}
    for aggregation in aggregations:
        errors = [point_errors(copy, aggregation) for copy, _ in copies]
        for smoothing in smoothings:
            per_type = [
                average_precision_score(mask, moving_average(e, smoothing).sum(axis=1))
                for e, (_, mask) in zip(errors, copies, strict=True)
            ]
            precision[f"{aggregation}/{smoothing}"] = float(np.mean(per_type))
    best = max(precision, key=precision.__getitem__)  # first of equals: dict order
    aggregation, smoothing = best.split("/")
    return PointScoringChoice(aggregation, int(smoothing), precision)
