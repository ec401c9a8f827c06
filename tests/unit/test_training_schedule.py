"""The default training schedule: batch size and epochs from the number of rows (windows)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anomaly_models import AnomalyDetector
from anomaly_models.detector_params import table_schedule, training_windows

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("n_rows", "expected"),
    [
        (300, (32, 167)),
        (5_000, (128, 42)),
        (30_000, (1024, 56)),
        (10, (32, 200)),
        (10**7, (1024, 30)),
    ],
)
def test_table_schedule_examples(n_rows, expected):
    assert table_schedule(n_rows, 0.1) == expected


@pytest.mark.parametrize("n_rows", [50, 700, 4_321, 65_000])
def test_table_schedule_is_the_documented_rule(n_rows):
    batch, epochs = table_schedule(n_rows, 0.2)
    # a power of two within [32, 1024], the nearest (in log scale) to rows / 32
    assert batch in [2**k for k in range(5, 11)]
    if 32 < batch < 1024:
        assert abs(math.log2(batch) - math.log2(n_rows / 32)) <= 0.5
    steps = math.ceil(0.8 * n_rows / batch)
    assert 30 <= epochs <= 200
    if 30 < epochs < 200:  # the fewest epochs that reach 1,500 steps
        assert epochs * steps >= 1500 > (epochs - 1) * steps


def test_training_windows():
    assert training_windows(100, 10, 1) == 91
    assert training_windows(100, 10, 3) == 31  # starts 0, 3, ..., 90
    assert training_windows(9, 10, 1) == 0


def test_sequence_kind_uses_the_rule_on_its_training_windows():
    t = np.arange(160)
    series = np.sin(2 * np.pi * t / 20) + 0.05 * np.random.default_rng(0).normal(size=160)
    detector = AnomalyDetector(
        kind="lstm_autoencoder",
        window=20,
        stride=2,
        lstm_units=4,
        latent_dim=2,
        point_aggregation="mean",
        smoothing=0,
        patience=1,
        seed=0,
    ).fit(series)
    windows = training_windows(160, 20, 2)  # 71: 2 steps of 32 per epoch, so the most epochs
    assert (detector.batch_size_, detector.epochs_) == table_schedule(windows, 0.1) == (32, 200)
    assert detector.learning_rate_ == pytest.approx(1e-3)
    assert detector.get_params()["epochs"] is None  # stored as given
    assert 1 <= len(detector.history_["loss"]) <= detector.epochs_
