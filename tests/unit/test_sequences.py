"""create_sequences, sliding_windows, window_scores_to_points: shapes, values by hand, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anomaly_models import create_sequences
from anomaly_models.sequences import sliding_windows, window_scores_to_points


@pytest.fixture()
def frame():
    # two columns so that the window holds every column and the target picks one
    return pd.DataFrame({"a": np.arange(10.0), "b": 100.0 + np.arange(10.0)})


# ----------------------------------------------------------------------------- create_sequences
def test_horizon_0_gives_every_complete_window_and_reconstruction_targets(frame):
    sequences, targets = create_sequences(frame, sequence_length=4, target_col="b")
    assert sequences.shape == (7, 4, 2)  # n - L + 1
    assert targets.shape == (7, 4)
    for i in range(7):
        np.testing.assert_array_equal(sequences[i], frame.to_numpy()[i : i + 4])
        np.testing.assert_array_equal(targets[i], frame["b"].to_numpy()[i : i + 4])


def test_seed_shape_400_rows_window_20():
    df = pd.DataFrame({"Value_Scaled": np.linspace(-1, 1, 400)})
    sequences, _ = create_sequences(
        df, sequence_length=20, target_col="Value_Scaled", forecast_horizon=0, drop_last=False
    )
    assert sequences.reshape(sequences.shape[0], 20, 1).shape == (381, 20, 1)


def test_positive_horizon_targets_are_the_next_values(frame):
    sequences, targets = create_sequences(frame, 4, "a", forecast_horizon=2)
    assert sequences.shape == (5, 4, 2)  # n - L - h + 1
    assert targets.shape == (5, 2)
    np.testing.assert_array_equal(sequences[0, :, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(targets[0], [4, 5])
    np.testing.assert_array_equal(targets[-1], [8, 9])


def test_horizon_none_is_one_step_ahead(frame):
    sequences, targets = create_sequences(frame, 4, "a", forecast_horizon=None)
    assert sequences.shape == (6, 4, 2) and targets.shape == (6,)
    np.testing.assert_array_equal(targets, [4, 5, 6, 7, 8, 9])


def test_step_and_drop_last(frame):
    kept, _ = create_sequences(frame, 4, "a", step=4, drop_last=True)
    np.testing.assert_array_equal(kept[:, 0, 0], [0, 4])  # starts 0, 4; the last 2 rows uncovered
    full, targets = create_sequences(frame, 4, "a", step=4, drop_last=False)
    np.testing.assert_array_equal(full[:, 0, 0], [0, 4, 6])  # + one window aligned to the end
    np.testing.assert_array_equal(targets[-1], [6, 7, 8, 9])


def test_verbose_prints_a_summary(frame, capsys):
    create_sequences(frame, 4, "a", verbose=1)
    assert "7 sequences of length 4" in capsys.readouterr().out
    create_sequences(frame, 4, "a")
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sequence_length": 11}, "10 rows, fewer than sequence_length=11"),
        ({"sequence_length": 9, "forecast_horizon": 2}, "plus the forecast horizon of 2"),
        ({"sequence_length": 0}, "sequence_length=0"),
        ({"sequence_length": 2.5}, "sequence_length=2.5"),
        ({"sequence_length": True}, "sequence_length=True"),
        ({"sequence_length": 3, "forecast_horizon": -1}, "forecast_horizon=-1"),
        ({"sequence_length": 3, "target_col": "zzz"}, "target_col='zzz'"),
        ({"sequence_length": 3, "step": 0}, "step=0"),
    ],
)
def test_bad_arguments_name_the_value(frame, kwargs, message):
    kwargs = {"target_col": "a", **kwargs}
    with pytest.raises(ValueError, match=message):
        create_sequences(frame, **kwargs)


def test_nan_and_non_numeric_columns_are_refused(frame):
    with_nan = frame.copy()
    with_nan.loc[3, "b"] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN.*\['b'\].*row\(s\) \[3\]"):
        create_sequences(with_nan, 4, "a")
    with pytest.raises(ValueError, match="non-numeric column"):
        create_sequences(frame.assign(t=pd.date_range("2024", periods=10)), 4, "a")
    with pytest.raises(TypeError, match="ndarray"):
        create_sequences(frame.to_numpy(), 4, "a")


# ------------------------------------------------------------------------------ sliding_windows
def test_sliding_windows_shapes_and_values():
    values = np.arange(20.0).reshape(10, 2)
    windows = sliding_windows(values, window=4, stride=3)
    assert windows.shape == (3, 4, 2)  # starts 0, 3, 6
    np.testing.assert_array_equal(windows[1], values[3:7])
    assert sliding_windows(np.arange(5.0), 5).shape == (1, 5, 1)
    assert windows.flags.writeable and windows.flags.c_contiguous


def test_sliding_windows_errors():
    with pytest.raises(ValueError, match="3 points, fewer than the window of 4"):
        sliding_windows(np.zeros((3, 1)), 4)
    with pytest.raises(ValueError, match="NaN"):
        sliding_windows(np.array([0.0, np.nan, 1.0, 2.0]), 2)
    with pytest.raises(ValueError, match="window=0"):
        sliding_windows(np.zeros(5), 0)
    with pytest.raises(ValueError, match="stride=-1"):
        sliding_windows(np.zeros(5), 2, stride=-1)
    with pytest.raises(ValueError, match=r"shape \(2, 2, 2\)"):
        sliding_windows(np.zeros((2, 2, 2)), 1)


# ---------------------------------------------------------------------- window_scores_to_points
def test_window_scores_to_points_by_hand():
    # 6 points, windows of 3 with stride 1: w0=[0,1,2] w1=[1,2,3] w2=[2,3,4] w3=[3,4,5]
    scores = np.array([1.0, 5.0, 2.0, 0.0])
    np.testing.assert_allclose(
        window_scores_to_points(scores, 6, window=3, reduce="max"), [1, 5, 5, 5, 2, 0]
    )
    np.testing.assert_allclose(
        window_scores_to_points(scores, 6, window=3, reduce="mean"),
        [1, 3, 8 / 3, 7 / 3, 1, 0],
    )


def test_window_scores_to_points_with_stride_and_uncovered_tail():
    # 7 points, windows of 3 with stride 2: w0=[0,1,2] w1=[2,3,4]; points 5, 6 uncovered
    out = window_scores_to_points([1.0, 3.0], 7, window=3, stride=2, reduce="mean")
    np.testing.assert_allclose(out[:5], [1, 1, 2, 3, 3])
    assert np.isnan(out[5:]).all()


def test_window_scores_to_points_per_position_scores():
    # each window scores each of its own points; a point takes the max / mean of its values
    per_position = np.array([[1.0, 2.0, 3.0], [10.0, 0.0, 4.0]])
    np.testing.assert_allclose(
        window_scores_to_points(per_position, 4, window=3, reduce="max"), [1, 10, 3, 4]
    )
    np.testing.assert_allclose(
        window_scores_to_points(per_position, 4, window=3, reduce="mean"), [1, 6, 1.5, 4]
    )


def test_window_scores_to_points_errors():
    with pytest.raises(ValueError, match="reduce='median'"):
        window_scores_to_points([1.0], 3, 3, reduce="median")
    with pytest.raises(ValueError, match="span 6 points, more than n_points=5"):
        window_scores_to_points(np.zeros(4), 5, window=3)
    with pytest.raises(ValueError, match="NaN"):
        window_scores_to_points([1.0, np.nan], 4, window=3)
    with pytest.raises(ValueError, match=r"received shape \(2, 4\)"):
        window_scores_to_points(np.zeros((2, 4)), 5, window=3)
    with pytest.raises(ValueError, match="2 points, fewer than the window of 3"):
        window_scores_to_points([1.0], 2, window=3)
    with pytest.raises(ValueError, match="stride=0"):
        window_scores_to_points([1.0], 3, window=3, stride=0)


def test_dominant_period_and_auto_window():
    from anomaly_models.sequences import FALLBACK_WINDOW, auto_window, dominant_period

    t = np.arange(3000)
    rng = np.random.default_rng(1)
    assert dominant_period(np.sin(2 * np.pi * t / 50) + 0.3 * rng.normal(size=3000)) in (49, 50, 51)
    assert dominant_period(np.sin(2 * np.pi * t / 50)) == 50
    two = np.c_[np.sin(2 * np.pi * t / 37), np.cos(2 * np.pi * t / 37)]
    assert dominant_period(two) == 37 == auto_window(two)
    assert dominant_period(rng.normal(size=3000)) is None  # noise: no period
    assert dominant_period(t * 1.0) is None  # a trend never decorrelates
    assert auto_window(rng.normal(size=3000)) == FALLBACK_WINDOW
    assert auto_window(np.sin(2 * np.pi * t / 700)) == 256  # capped
    assert auto_window(rng.normal(size=60)) == 15  # at most a quarter of the series
    assert auto_window(np.sin(2 * np.pi * t / 3)) >= 8  # never below the floor
    with pytest.raises(ValueError, match="finite"):
        dominant_period([1.0, np.nan, 2.0])
