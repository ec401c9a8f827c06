"""Preprocessing model: values against hand-computed ones, NaN, categories, serialization."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from anomaly_models.layers import MissingValueImputation, TailCompression
from anomaly_models.preprocessing import DataAnalyzer, build_preprocessing_model, frame_to_inputs
from anomaly_models.utils.data_analyzer import DataAnalyzer as SeedPathAnalyzer


@pytest.fixture
def frame():
    return pd.DataFrame(
        {
            "temp": [1.0, 2.0, 3.0, 4.0, np.nan],
            "load": [10.0, 10.0, 10.0, 10.0, 10.0],  # constant
            "site": ["a", "b", "a", "a", None],
        }
    )


def test_seed_import_path_is_the_same_class():
    assert SeedPathAnalyzer is DataAnalyzer


def test_profile(frame):
    profiles = DataAnalyzer(frame).analyze()
    assert profiles["temp"].kind == "numeric" and profiles["temp"].n_missing == 1
    assert profiles["temp"].mean == pytest.approx(2.5) and profiles["temp"].median == pytest.approx(2.5)
    assert profiles["site"].kind == "categorical" and profiles["site"].categories == ["a", "b"]


def test_standardization_imputation_and_one_hot(frame):
    model = DataAnalyzer(frame).create_preprocessing_model()
    assert list(model.input.keys()) == ["temp", "load", "site"]
    out = keras.ops.convert_to_numpy(model(frame_to_inputs(frame, model)))
    std = np.std([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(out[:, 0], (np.array([1, 2, 3, 4, 2.5]) - 2.5) / std, rtol=1e-5)
    np.testing.assert_allclose(out[:, 1], 0.0)  # constant column: centred, not divided by 0
    # one-hot: [OOV, "a", "b"]; a missing category is out of vocabulary
    np.testing.assert_array_equal(out[:, 2:], [[0, 1, 0], [0, 0, 1], [0, 1, 0], [0, 1, 0], [1, 0, 0]])


def test_robust_scaling_and_tail_compression():
    df = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 1000.0]})
    model = build_preprocessing_model(df, scaling="robust", tail_compression=True)
    out = keras.ops.convert_to_numpy(model(frame_to_inputs(df, model)))[:, 0]
    median, iqr = 2.5, np.subtract(*np.percentile(df["x"], [75, 25]))
    np.testing.assert_allclose(out, np.arcsinh((df["x"].to_numpy() - median) / iqr), rtol=1e-5)


def test_column_names_that_keras_rejects_still_work(tmp_path):
    df = pd.DataFrame({"a/b": [1.0, 2.0], "a b": [3.0, 4.0], 7: [5.0, 6.0]})
    model = build_preprocessing_model(df)
    assert list(model.input.keys()) == ["a/b", "a b", "7"]
    path = tmp_path / "pre.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(frame_to_inputs(df, loaded))),
        keras.ops.convert_to_numpy(model(frame_to_inputs(df, model))),
    )


def test_missing_column_is_named():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    model = build_preprocessing_model(df)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['b'\]"):
        frame_to_inputs(df[["a"]], model)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (pd.DataFrame(), "empty DataFrame"),
        (pd.DataFrame({"a": [np.nan, np.nan]}), "'a' has no finite value"),
        ([[1, 2]], "expected a pandas DataFrame"),
    ],
)
def test_bad_frames(data, match):
    with pytest.raises(ValueError, match=match):
        build_preprocessing_model(data)


def test_bad_scaling_name():
    with pytest.raises(ValueError, match="scaling='minmax'"):
        build_preprocessing_model(pd.DataFrame({"a": [1.0]}), scaling="minmax")


def test_imputation_layer_config_and_checks():
    layer = MissingValueImputation([1.0, 2.0])
    assert MissingValueImputation.from_config(layer.get_config()).fill_values == [1.0, 2.0]
    x = np.array([[np.nan, 5.0], [3.0, np.nan]], dtype="float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), [[1.0, 5.0], [3.0, 2.0]])
    with pytest.raises(ValueError, match=r"fill_values=\[nan\]"):
        MissingValueImputation([float("nan")])
    with pytest.raises(ValueError, match="2 fill values but the input has 3"):
        MissingValueImputation([1.0, 2.0])(np.zeros((1, 3), "float32"))
    assert TailCompression.from_config(TailCompression(name="t").get_config()).name == "t"
