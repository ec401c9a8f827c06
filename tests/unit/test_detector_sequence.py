"""AnomalyDetector(kind="lstm_autoencoder"): series in, one score per point out.

Shapes, the scores recomputed by hand from the LSTM's reconstruction, continuation with
``context``, the ``.keras`` round trip, an injected anomaly, and every bad-input message.
Data are tiny (a few hundred points) and training runs 2-3 epochs, so each test takes seconds.
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pandas as pd
import pytest

from anomaly_models import AnomalyDetector
from anomaly_models.models import SequenceScoreNetwork
from anomaly_models.preprocessing import frame_to_inputs
from anomaly_models.sequences import moving_average, sliding_windows, window_scores_to_points

WINDOW = 16
PERIOD = 25  # points per sine period
ANOMALY = slice(300, 312)  # injected into channel "b" of the test series


def two_channel_series(n: int, seed: int, start: int = 0) -> pd.DataFrame:
    """A sine and a shifted sine (two channels) with small noise, on a minute DatetimeIndex."""
    rng = np.random.default_rng(seed)
    t = np.arange(start, start + n)
    data = {
        "a": np.sin(2 * np.pi * t / PERIOD) + rng.normal(0, 0.05, n),
        "b": 0.5 * np.cos(2 * np.pi * t / PERIOD) + 1.0 + rng.normal(0, 0.05, n),
    }
    index = pd.date_range("2026-01-01", periods=n, freq="min") + pd.Timedelta(minutes=start)
    return pd.DataFrame(data, index=index)


def with_anomaly(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out.iloc[ANOMALY, out.columns.get_loc("b")] += 2.0
    return out


@pytest.fixture(scope="module")
def detector() -> AnomalyDetector:
    """Mean over covering windows, smoothing window // 4 = 4 (both given), two channels."""
    det = AnomalyDetector(
        kind="lstm_autoencoder", window=WINDOW, point_aggregation="mean", smoothing=WINDOW // 4,
        lstm_units=16, latent_dim=8, epochs=3, seed=0,
    )
    det.fit(two_channel_series(477, seed=0))  # 416 training windows: 13 full batches
    det.calibrate(two_channel_series(400, seed=1, start=512), method="quantile", q=0.995)
    return det


@pytest.fixture(scope="module")
def max_detector() -> AnomalyDetector:
    """Max over covering windows, no smoothing, stride 2, one channel fitted from a 1-D array."""
    t = np.arange(390)  # 192 training windows of 8 points, stride 2: 6 full batches
    series = np.sin(2 * np.pi * t / PERIOD) + np.random.default_rng(2).normal(0, 0.05, len(t))
    det = AnomalyDetector(
        kind="lstm_autoencoder", window=8, stride=2, point_aggregation="max", smoothing=0,
        lstm_units=8, latent_dim=4, epochs=2, validation_fraction=0.0, seed=1,
    )
    return det.fit(series)


def reconstruction_errors(det: AnomalyDetector, frame: pd.DataFrame) -> np.ndarray:
    """Squared errors of every stride-1 window, ``(n_windows, window, channels)``, by hand."""
    preprocessing = det.network_.preprocessing_model
    scaled = keras.ops.convert_to_numpy(preprocessing(frame_to_inputs(frame, preprocessing)))
    windows = sliding_windows(scaled, det.window).astype("float32")
    reconstruction = det.network_.autoencoder.predict(windows, verbose=0)
    return (windows.astype("float64") - reconstruction) ** 2


# ----------------------------------------------------------------------------------- fitting
def test_fit_sets_sequence_attributes(detector):
    assert isinstance(detector.network_, SequenceScoreNetwork)
    assert list(detector.feature_names_in_) == ["a", "b"] and detector.n_features_in_ == 2
    assert len(detector.history_["loss"]) == 3 and "val_loss" in detector.history_
    assert detector.training_scores_.shape == (477,)
    # each channel is divided by its mean training error: a typical training point scores ~1
    assert np.mean(detector.training_scores_) == pytest.approx(1.0, rel=0.05)
    params = detector.get_params()
    assert {k: params[k] for k in ("window", "stride", "point_aggregation", "smoothing")} == {
        "window": WINDOW, "stride": 1, "point_aggregation": "mean", "smoothing": WINDOW // 4,
    }
    assert (detector.point_aggregation_, detector.smoothing_) == ("mean", WINDOW // 4)
    assert params["batch_size"] is None and params["learning_rate"] is None  # stored as given
    # the schedule rule on the 462 training windows (a batch of 462 / 32, at least 32), and
    # Keras' default Adam learning rate
    assert detector.batch_size_ == 32 and detector.learning_rate_ == 1e-3
    assert detector.epochs_ == 3
    assert detector.context_length == WINDOW - 1 + WINDOW // 8


def test_get_params_round_trip(detector):
    params = detector.get_params()
    assert AnomalyDetector(**params).get_params() == params
    # every kind has every parameter; the tabular kinds keep their defaults exactly
    tabular = AnomalyDetector()
    assert tabular.get_params()["window"] is None and tabular.get_params()["batch_size"] is None
    resolved = tabular.resolve_params()  # the tabular schedule waits for the rows (fit)
    assert resolved["batch_size"] is None and resolved["epochs"] is None


# ----------------------------------------------------------------------------------- scoring
def test_one_score_per_point(detector):
    X = two_channel_series(100, seed=3)
    scores = detector.score_samples(X)
    contributions = detector.feature_scores(X)
    assert scores.shape == (100,) and scores.dtype == np.float64 and np.isfinite(scores).all()
    assert contributions.shape == (100, 2) and (contributions >= 0).all()
    np.testing.assert_allclose(contributions.sum(axis=1), scores, rtol=1e-12)
    flags = detector.predict(X)
    assert flags.shape == (100,) and flags.dtype == np.int64 and set(np.unique(flags)) <= {0, 1}
    np.testing.assert_array_equal(flags, (detector.decision_function(X) > 0).astype(int))
    frame = detector.score_frame(X)
    assert list(frame.columns) == ["anomaly_score", "is_anomaly", "contribution_a", "contribution_b"]
    assert frame.index.equals(X.index)
    np.testing.assert_allclose(frame["anomaly_score"], scores)


def test_scores_are_point_errors_averaged_over_windows_then_smoothed(detector):
    X = two_channel_series(80, seed=4)
    errors = reconstruction_errors(detector, X)  # (65, 16, 2)
    scale = keras.ops.convert_to_numpy(detector.network_.channel_scale).astype("float64")
    per_channel = np.stack(
        [window_scores_to_points(errors[:, :, c], 80, WINDOW, reduce="mean") for c in range(2)],
        axis=1,
    )
    expected = moving_average(per_channel / (2 * scale), WINDOW // 4)
    np.testing.assert_allclose(detector.feature_scores(X), expected, rtol=1e-5, atol=1e-9)


def test_max_aggregation_by_hand_and_one_dimensional_input(max_detector):
    t = np.arange(384, 470)
    x = np.sin(2 * np.pi * t / PERIOD)
    errors = reconstruction_errors(max_detector, pd.DataFrame({"x0": x}))[:, :, 0]
    scale = float(keras.ops.convert_to_numpy(max_detector.network_.channel_scale)[0])
    expected = window_scores_to_points(errors, len(x), 8, reduce="max") / scale
    scores = max_detector.score_samples(x)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-9)
    # a (n, 1) array, an unnamed Series and a frame with the fitted name are the same series
    np.testing.assert_array_equal(max_detector.score_samples(x[:, None]), scores)
    np.testing.assert_array_equal(max_detector.score_samples(pd.Series(x)), scores)
    np.testing.assert_array_equal(max_detector.score_samples(pd.DataFrame({"x0": x})), scores)


def test_inputs_as_array_and_reordered_columns_match(detector):
    X = two_channel_series(60, seed=5)
    scores = detector.score_samples(X)
    np.testing.assert_array_equal(detector.score_samples(X.to_numpy()), scores)
    np.testing.assert_array_equal(detector.score_samples(X[["b", "a"]]), scores)


# ------------------------------------------------------------------------------ continuation
def test_continuation_with_context_equals_scoring_the_whole_series(detector):
    whole = two_channel_series(300, seed=6)
    expected = detector.score_samples(whole)
    first, second = whole.iloc[:180], whole.iloc[180:]
    # context_length points (window - 1 for the windows + smoothing // 2 for the average) make
    # every score of the second piece exact; a longer context changes nothing
    for context in (first.iloc[-detector.context_length :], first):
        scores = detector.score_samples(second, context=context)
        assert scores.shape == (len(second),)
        np.testing.assert_allclose(scores, expected[180:], rtol=1e-5, atol=1e-8)
    # with only window - 1 points the windows are right but the average's look-back is not:
    # the first smoothing // 2 points differ, all later ones are exact
    short = detector.score_samples(second, context=first.iloc[-(WINDOW - 1) :])
    np.testing.assert_allclose(short[WINDOW // 8 :], expected[180 + WINDOW // 8 :], rtol=1e-5, atol=1e-8)
    # the same for contributions and flags
    np.testing.assert_allclose(
        detector.feature_scores(second, context=first), detector.feature_scores(whole)[180:],
        rtol=1e-5, atol=1e-8,
    )
    assert detector.score_frame(second, context=first).index.equals(second.index)


def test_continuation_max_without_smoothing_needs_window_minus_one_points(max_detector):
    t = np.arange(200)
    x = np.sin(2 * np.pi * t / PERIOD) + 0.3 * (t > 150)
    assert max_detector.context_length == 8 - 1
    expected = max_detector.score_samples(x)
    for cut in (60, 195):  # the second piece may even be shorter than a window
        scores = max_detector.score_samples(x[cut:], context=x[cut - 7 : cut])
        np.testing.assert_allclose(scores, expected[cut:], rtol=1e-5, atol=1e-8)


def test_short_context_scores_like_a_series_start(max_detector):
    x = np.sin(2 * np.pi * np.arange(40) / PERIOD)
    scores = max_detector.score_samples(x[3:], context=x[:3])  # fewer than window - 1 points
    np.testing.assert_allclose(scores, max_detector.score_samples(x)[3:], rtol=1e-5, atol=1e-8)


# ---------------------------------------------------------------------------- save and load
def test_save_load_round_trip_is_exact(detector, tmp_path):
    X = with_anomaly(two_channel_series(400, seed=7, start=512))
    loaded = AnomalyDetector.load(detector.save(tmp_path / "sequence.keras"))
    assert isinstance(loaded.network_, SequenceScoreNetwork)
    assert loaded.get_params() == detector.get_params()
    assert loaded.threshold_ == detector.threshold_
    assert loaded.threshold_record_ == detector.threshold_record_
    assert list(loaded.feature_names_in_) == ["a", "b"]
    np.testing.assert_array_equal(loaded.score_samples(X), detector.score_samples(X))
    np.testing.assert_array_equal(loaded.predict(X), detector.predict(X))
    np.testing.assert_array_equal(
        loaded.score_samples(X.iloc[200:], context=X.iloc[:200]),
        detector.score_samples(X.iloc[200:], context=X.iloc[:200]),
    )
    AnomalyDetector.load(loaded.save(tmp_path / "again.keras"))  # saves again


# ------------------------------------------------------------------------- injected anomaly
def test_injected_anomaly_is_flagged_and_blamed_on_its_channel(detector):
    X = with_anomaly(two_channel_series(400, seed=8, start=512))
    scores = detector.score_samples(X)
    assert ANOMALY.start <= int(np.argmax(scores)) < ANOMALY.stop
    flags = detector.predict(X)
    injected = np.zeros(len(X), dtype=bool)
    injected[ANOMALY] = True
    assert flags[injected].mean() > 0.5  # most injected points flagged
    # outside the injected period, flags only where windows touch it, or rare false alarms
    near = np.zeros(len(X), dtype=bool)
    near[ANOMALY.start - WINDOW : ANOMALY.stop + WINDOW] = True
    assert flags[~near].mean() < 0.03
    contributions = detector.feature_scores(X)
    assert (contributions[injected].argmax(axis=1) == 1).mean() > 0.8  # channel "b"
    # the same points on a normal series are not flagged
    assert detector.predict(two_channel_series(400, seed=8, start=512))[injected].sum() == 0


def test_calibrate_on_per_point_scores(detector):
    X_val = two_channel_series(300, seed=9, start=512)
    record = detector.calibrate(X_val, method="quantile", q=0.9)
    assert detector.threshold_ == pytest.approx(np.quantile(detector.score_samples(X_val), 0.9))
    assert record.false_alarm_rate == pytest.approx(0.1, abs=0.01)
    with pytest.raises(ValueError, match="y_val has 3 labels but X_val has 300 rows"):
        detector.calibrate(X_val, y_val=[0, 1, 0])
    detector.calibrate(two_channel_series(400, seed=1, start=512), method="quantile", q=0.995)


# ------------------------------------------------------------------------------- bad input
def test_series_shorter_than_the_window(detector):
    with pytest.raises(ValueError, match=r"X has 10 points, fewer than window=16"):
        AnomalyDetector(kind="lstm_autoencoder", window=16).fit(np.zeros(10))
    X = two_channel_series(40, seed=10)
    with pytest.raises(ValueError, match=r"X has 5 points, fewer than window=16"):
        detector.score_samples(X.iloc[:5])
    with pytest.raises(ValueError, match=r"X has 5 points \(with 3 points of context\), fewer than window=16"):
        detector.score_samples(X.iloc[3:8], context=X.iloc[:3])
    with pytest.raises(ValueError, match="X is empty"):
        detector.score_samples(X.iloc[:0], context=X)
    # enough context makes a short batch scorable
    assert detector.score_samples(X.iloc[30:35], context=X.iloc[:30]).shape == (5,)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_name_the_channel_and_position(detector, bad):
    X = two_channel_series(40, seed=11)
    X.iloc[7, 1] = bad
    X.iloc[9, 1] = bad
    message = r"in column\(s\) \['b'\], first at position\(s\) \[7, 9\] \(index \['2026-01-01 00:07:00'"
    with pytest.raises(ValueError, match=message):
        detector.score_samples(X)
    with pytest.raises(ValueError, match=r"^context contains .* column\(s\) \['b'\]"):
        detector.score_samples(two_channel_series(40, seed=12), context=X)
    with pytest.raises(ValueError, match=r"first at position\(s\) \[7, 9\]"):
        AnomalyDetector(kind="lstm_autoencoder", window=4).fit(X.to_numpy())


def test_wrong_channels_at_scoring(detector):
    X = two_channel_series(40, seed=13)
    with pytest.raises(ValueError, match=re.escape("X has 3 channel(s), but this detector was fitted on 2 channel(s) ['a', 'b']")):
        detector.score_samples(np.zeros((40, 3)))
    with pytest.raises(ValueError, match=re.escape("X has 1 channel(s), but this detector was fitted on 2")):
        detector.score_samples(np.zeros(40))
    renamed = X.rename(columns={"b": "c"})
    with pytest.raises(ValueError, match=re.escape("fitted on 2 channel(s) ['a', 'b'] (missing: ['b'], unexpected: ['c'])")):
        detector.score_samples(renamed)
    with pytest.raises(ValueError, match=re.escape("unexpected: ['extra']")):
        detector.score_samples(X.assign(extra=1.0))
    with pytest.raises(ValueError, match=r"^context has channel column\(s\) \['a'\]"):
        detector.score_samples(X, context=X[["a"]])


def test_windows_unsorted_time_and_text_are_rejected(detector):
    X = two_channel_series(40, seed=14)
    with pytest.raises(ValueError, match=r"shape \(5, 16, 2\) \(windows\? pass the series itself"):
        detector.score_samples(np.zeros((5, 16, 2)))
    with pytest.raises(ValueError, match="time index that is not increasing"):
        detector.score_samples(X.iloc[::-1])
    with pytest.raises(ValueError, match=r"non-numeric column\(s\) \['a'\]"):
        detector.score_samples(X.astype({"a": str}))


def test_context_is_refused_by_the_tabular_kinds():
    rows = pd.DataFrame(np.random.default_rng(0).normal(size=(64, 2)), columns=["u", "v"])
    det = AnomalyDetector(hidden_dims=[4, 2], epochs=1, batch_size=64).fit(rows)
    with pytest.raises(ValueError, match="`context` is for the sequence kinds"):
        det.score_samples(rows, context=rows)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 1}, "window=1"),
        ({"window": 0}, "window=0"),
        ({"window": 8, "stride": 9}, "stride=9"),
        ({"stride": 0}, "stride=0"),
        ({"point_aggregation": "median"}, "point_aggregation='median'"),
        ({"smoothing": -1}, "smoothing=-1"),
        ({"smoothing": 2.5}, "smoothing=2.5"),
        ({"lstm_units": 0}, "lstm_units=0"),
        ({"latent_dim": 1.5}, "latent_dim=1.5"),
        ({"batch_size": 0}, "batch_size=0"),
    ],
)
def test_bad_sequence_arguments(kwargs, match):
    detector = AnomalyDetector(kind="lstm_autoencoder", **kwargs)  # stored as given
    with pytest.raises(ValueError, match=re.escape(match)):
        detector.fit(np.zeros(40))


# ----------------------------------------------------------------------- the smoothing helper
@pytest.mark.parametrize("length", [0, 1, 2, 5, 8, 50])
def test_moving_average_matches_pandas_centred_rolling_mean(length):
    values = np.random.default_rng(length).normal(size=(30, 2))
    values[4, 0] = np.nan
    expected = pd.DataFrame(values).rolling(max(length, 1), center=True, min_periods=1).mean()
    np.testing.assert_allclose(moving_average(values, length), expected.to_numpy(), equal_nan=True)
    np.testing.assert_allclose(moving_average(values[:, 1], length), expected[1].to_numpy())


def test_moving_average_rejects_bad_length():
    with pytest.raises(ValueError, match="length=-1"):
        moving_average(np.zeros(5), -1)


def test_window_none_is_chosen_from_the_training_series_period(tmp_path):
    """The default window comes from the training series alone (its period by autocorrelation),
    is kept as ``window_`` with the point scoring chosen after training, and survives save /
    load."""
    t = np.arange(600)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": np.sin(2 * np.pi * t / 40) + 0.1 * rng.normal(size=600),
                      "b": np.cos(2 * np.pi * t / 40) + 0.1 * rng.normal(size=600)})
    detector = AnomalyDetector(kind="lstm_autoencoder", epochs=1, lstm_units=4, latent_dim=2)
    assert detector.window is None
    with pytest.raises(ValueError, match="context_length is known after fit"):
        _ = detector.context_length
    detector.fit(X)
    assert detector.window is None and detector.window_ == 40
    # the point scoring is chosen among mean / max and 0, 40 / 8, 40 / 4, 40 / 2 points
    assert detector.point_aggregation_ in ("mean", "max") and detector.smoothing_ in (0, 5, 10, 20)
    assert detector.context_length == 39 + detector.smoothing_ // 2
    assert detector.score_samples(X.iloc[:100]).shape == (100,)
    loaded = AnomalyDetector.load(detector.save(tmp_path / "auto.keras"))
    assert (loaded.window, loaded.window_, loaded.point_aggregation_, loaded.smoothing_) == (
        None, 40, detector.point_aggregation_, detector.smoothing_,
    )
    np.testing.assert_allclose(loaded.score_samples(X.iloc[:100]),
                               detector.score_samples(X.iloc[:100]), rtol=1e-6)
    fixed = AnomalyDetector(kind="lstm_autoencoder", window=16, epochs=1, lstm_units=4,
                            latent_dim=2).fit(X)
    assert fixed.window_ == 16 and fixed.smoothing_ in (0, 2, 4, 8)
