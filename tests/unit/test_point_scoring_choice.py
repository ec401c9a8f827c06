"""The label-free choice of a sequence detector's point scoring (anomalies injected into TRAIN)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from anomaly_models import AnomalyDetector
from anomaly_models.point_scoring_choice import (
    ANOMALY_TYPES,
    SPIKE_SIZE,
    choose_point_scoring,
    inject_anomalies,
)
from anomaly_models.sequences import moving_average

pytestmark = pytest.mark.timeout(120)

WINDOW = 20


def periodic_series(n: int = 1000, channels: int = 2, seed: int = 0) -> np.ndarray:
    t = np.arange(n)[:, None]
    rng = np.random.default_rng(seed)
    phase = np.arange(channels)[None, :]
    return (np.sin(2 * np.pi * t / WINDOW + phase) + 0.05 * rng.normal(size=(n, channels))).astype(
        "float32"
    )


@pytest.mark.parametrize("anomaly_type", ANOMALY_TYPES)
def test_injection_changes_the_masked_points_only(anomaly_type):
    clean = periodic_series()
    injected, mask = inject_anomalies(clean, WINDOW, anomaly_type, np.random.default_rng(1))
    assert injected.shape == clean.shape and injected.dtype == np.float32
    assert mask.dtype == bool and mask.any()
    changed = (injected != clean).any(axis=1)
    assert not changed[~mask].any()  # nothing outside the mask moves
    assert changed[mask].mean() > 0.9  # (a flat line may keep a point that equals the mean)
    assert not mask[:WINDOW].any()  # the first window stays normal
    length = 1 if anomaly_type == "spike" else WINDOW // 2
    starts = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int)])) == 1)
    ends = np.flatnonzero(np.diff(np.concatenate([mask.astype(int), [0]])) == -1)
    assert set(ends - starts + 1) == {length}
    assert (starts[1:] - ends[:-1] > WINDOW).all()  # a window of normal points between anomalies
    if anomaly_type == "spike":
        moved = np.abs(injected - clean).max(axis=1)[mask]
        np.testing.assert_allclose(moved, SPIKE_SIZE * clean.std(axis=0).max(), rtol=0.3)


def test_injection_rejects_an_unknown_type():
    with pytest.raises(ValueError, match="received 'drift'"):
        inject_anomalies(periodic_series(), WINDOW, "drift", np.random.default_rng(0))


def test_a_perfect_detector_is_best_scored_without_smoothing():
    """Errors = the exact deviation from the clean series: only the injected points are
    non-zero, so no smoothing ranks them all first (AP 1) and any smoothing spreads them."""
    clean = periodic_series()

    def deviation(copy: np.ndarray, aggregation: str) -> np.ndarray:
        return np.square(copy.astype("float64") - clean)

    choice = choose_point_scoring(deviation, clean, WINDOW, seed=0)
    assert (choice.point_aggregation, choice.smoothing) == ("mean", 0)
    assert set(choice.average_precision) == {
        f"{a}/{s}" for a in ("mean", "max") for s in (0, 2, 5, 10)
    }
    assert choice.average_precision["mean/0"] == pytest.approx(1.0)
    assert choice.average_precision["mean/10"] < 1.0


def test_the_choice_is_the_best_mean_average_precision_computed_by_hand():
    """A detector whose errors are smeared over a window: smoothing helps, and the reported
    precision of each candidate equals the mean AP over the four types recomputed here."""
    clean = periodic_series(channels=1)
    rng = np.random.default_rng(5)
    noise = rng.exponential(0.3, size=clean.shape)

    def smeared(copy: np.ndarray, aggregation: str) -> np.ndarray:
        deviation = np.square(copy.astype("float64") - clean)
        spread = moving_average(deviation, WINDOW) if aggregation == "mean" else deviation
        return spread + noise

    choice = choose_point_scoring(smeared, clean, WINDOW, seed=3)
    best = max(choice.average_precision.values())
    assert choice.average_precision[f"{choice.point_aggregation}/{choice.smoothing}"] == best
    # recompute one candidate by hand, with the same seeded injections
    rng = np.random.default_rng(3)
    copies = [inject_anomalies(clean, WINDOW, t, rng) for t in ANOMALY_TYPES]
    by_hand = np.mean(
        [
            average_precision_score(m, moving_average(smeared(c, "max"), 5).sum(axis=1))
            for c, m in copies
        ]
    )
    assert choice.average_precision["max/5"] == pytest.approx(by_hand)


def test_fit_chooses_what_is_left_none_and_keeps_what_is_given():
    X = periodic_series(600, channels=1)[:, 0]
    common = dict(
        kind="lstm_autoencoder", window=WINDOW, epochs=1, lstm_units=4, latent_dim=2, seed=0
    )
    given_smoothing = AnomalyDetector(smoothing=3, **common).fit(X)
    assert given_smoothing.smoothing_ == 3 and given_smoothing.point_aggregation_ in ("mean", "max")
    assert given_smoothing.get_params()["point_aggregation"] is None  # stored as given
    both = AnomalyDetector(point_aggregation="max", smoothing=0, **common).fit(X)
    assert (both.point_aggregation_, both.smoothing_) == ("max", 0)
    assert both.context_length == WINDOW - 1
