"""NumericalAnomalyDetection: shapes, values, argument checks, serialization, self-training."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from anomaly_models.layers import NumericalAnomalyDetection


def test_output_shape_equals_input_shape():
    layer = NumericalAnomalyDetection(hidden_dims=[8, 4])
    assert layer(keras.random.normal((32, 5))).shape == (32, 5)
    assert layer.compute_output_shape((None, 5)) == (None, 5)


def test_scores_match_hand_computed_formula():
    layer = NumericalAnomalyDetection(hidden_dims=[3], reconstruction_weight=0.25, distribution_weight=0.75)
    x = np.array([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]], dtype="float32")
    scores = keras.ops.convert_to_numpy(layer(x))
    recon = keras.ops.convert_to_numpy(layer.reconstruct(x))
    mean = keras.ops.convert_to_numpy(layer.mean)
    var = keras.ops.convert_to_numpy(layer.variance())
    expected = 0.25 * (x - recon) ** 2 + 0.75 * (x - mean) ** 2 / var
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var, 1.0, rtol=1e-5)  # standard-normal prior at initialisation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden_dims": []}, r"hidden_dims=\[\]"),
        ({"hidden_dims": [8, 0]}, r"entry 1 is 0"),
        ({"hidden_dims": [8, -2]}, r"entry 1 is -2"),
        ({"hidden_dims": 8}, r"hidden_dims=8"),
        ({"hidden_dims": [4], "reconstruction_weight": 1.5}, r"reconstruction_weight=1.5"),
        ({"hidden_dims": [4], "distribution_weight": -0.1}, r"distribution_weight=-0.1"),
        ({"hidden_dims": [4], "reconstruction_weight": 0, "distribution_weight": 0}, "cannot both be 0"),
    ],
)
def test_bad_arguments_are_rejected_with_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NumericalAnomalyDetection(**kwargs)


def test_input_of_wrong_rank_is_rejected():
    with pytest.raises(ValueError, match=r"input_shape=\(4, 3, 2\)"):
        NumericalAnomalyDetection(hidden_dims=[4])(np.zeros((4, 3, 2), "float32"))


def test_get_config_round_trip():
    layer = NumericalAnomalyDetection(
        hidden_dims=[6, 3], reconstruction_weight=0.3, distribution_weight=0.7, activation="tanh",
        min_variance=1e-3, name="nad",
    )
    clone = NumericalAnomalyDetection.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.hidden_dims == [6, 3] and clone.activation == "tanh" and clone.min_variance == 1e-3


def test_keras_file_round_trip_gives_identical_scores(tmp_path):
    inputs = keras.Input(shape=(4,))
    model = keras.Model(inputs, NumericalAnomalyDetection(hidden_dims=[8, 2])(inputs))
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    path = tmp_path / "nad.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


@pytest.mark.slow
def test_layer_learns_by_itself_in_a_multi_output_model():
    """No loss is given for its output, yet after fit a corrupted feature scores far higher."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    scale = np.array([1, 2, 0.5, 1, 1, 3], dtype="float32")
    X = (rng.normal(size=(2000, 6)) * scale + 1.0).astype("float32")
    y = (X[:, 0] > 1.0).astype("float32")
    inputs = keras.Input(shape=(6,))
    scores = NumericalAnomalyDetection(hidden_dims=[8, 4], name="nad")(inputs)
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    out = keras.layers.Dense(1, activation="sigmoid", name="cls")(hidden)
    model = keras.Model(inputs, [out, scores])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=["binary_crossentropy", None])
    model.fit(X, y, epochs=30, batch_size=64, verbose=0)

    layer = model.get_layer("nad")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.mean), 1.0, atol=0.2)
    normal = (rng.normal(size=(300, 6)) * scale + 1.0).astype("float32")
    corrupted = normal.copy()
    corrupted[:, 2] += 5.0  # 10 standard deviations of feature 2
    _, s_normal = model.predict(normal, verbose=0)
    _, s_corrupt = model.predict(corrupted, verbose=0)
    # the corrupted feature is the one that lights up, row by row
    assert (s_corrupt.argmax(axis=1) == 2).mean() > 0.95
    assert np.median(s_corrupt[:, 2]) > 10 * np.median(s_normal[:, 2])
    # untouched features keep normal-looking scores
    np.testing.assert_allclose(np.median(s_corrupt[:, [0, 1, 3, 4, 5]], axis=0),
                               np.median(s_normal[:, [0, 1, 3, 4, 5]], axis=0), rtol=0.5)
