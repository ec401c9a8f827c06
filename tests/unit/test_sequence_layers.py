"""SequenceAnomalyScoreLayer and PredictionErrorAnomalyScore: shapes, values, configs, bad args."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from anomaly_models import PredictionErrorAnomalyScore, SequenceAnomalyScoreLayer
from anomaly_models.layers import PredictionErrorAnomalyScore as FromLayers
from anomaly_models.layers import SequenceAnomalyScoreLayer as ScoreFromLayers

RNG = np.random.default_rng(0)


def test_exported_from_layers_package_too():
    assert FromLayers is PredictionErrorAnomalyScore
    assert ScoreFromLayers is SequenceAnomalyScoreLayer


# --------------------------------------------------------------------- SequenceAnomalyScoreLayer
def test_score_layer_shape_and_determinism_at_inference():
    layer = SequenceAnomalyScoreLayer(hidden_units=[32, 16], dropout_rate=0.1)
    features = RNG.normal(size=(16, 64)).astype("float32")
    scores = keras.ops.convert_to_numpy(layer(features, training=False))
    assert scores.shape == (16, 1)
    np.testing.assert_array_equal(scores, keras.ops.convert_to_numpy(layer(features)))
    assert [w.shape for w in layer.trainable_weights] == [
        (64, 32), (32,), (32, 16), (16,), (16, 1), (1,)
    ]


def test_score_layer_int_hidden_units_and_final_activation():
    layer = SequenceAnomalyScoreLayer(8, final_activation="sigmoid")
    scores = keras.ops.convert_to_numpy(layer(RNG.normal(size=(5, 3)).astype("float32")))
    assert scores.shape == (5, 1) and ((scores > 0) & (scores < 1)).all()
    assert layer.hidden_units == [8]


def test_score_layer_config_round_trip():
    layer = SequenceAnomalyScoreLayer([4, 2], activation="tanh", dropout_rate=0.2,
                                      final_activation="softplus", name="scorer")
    config = layer.get_config()
    assert {k: config[k] for k in ("hidden_units", "activation", "dropout_rate", "final_activation")} == {
        "hidden_units": [4, 2], "activation": "tanh", "dropout_rate": 0.2,
        "final_activation": "softplus",
    }
    clone = SequenceAnomalyScoreLayer.from_config(config)
    assert clone.get_config() == config


def test_score_layer_keras_round_trip(tmp_path):
    inputs = keras.Input((6,))
    outputs = SequenceAnomalyScoreLayer([5], dropout_rate=0.1)(inputs)
    model = keras.Model(inputs, outputs)
    x = RNG.normal(size=(7, 6)).astype("float32")
    path = tmp_path / "scorer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.layers[-1], SequenceAnomalyScoreLayer)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hidden_units": []}, r"hidden_units=\[\]"),
        ({"hidden_units": [8, 0]}, r"entry 1 is 0"),
        ({"hidden_units": "8"}, "hidden_units='8'"),
        ({"hidden_units": [8], "dropout_rate": 1.0}, "dropout_rate=1.0"),
        ({"hidden_units": [8], "dropout_rate": -0.1}, "dropout_rate=-0.1"),
        ({"hidden_units": [8], "activation": "nope"}, "activation='nope'"),
        ({"hidden_units": [8], "final_activation": 3}, "final_activation=3"),
    ],
)
def test_score_layer_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SequenceAnomalyScoreLayer(**kwargs)


def test_score_layer_refuses_sequences():
    with pytest.raises(ValueError, match=r"\(batch, features\).*\(None, 5, 3\)"):
        SequenceAnomalyScoreLayer([4]).build((None, 5, 3))


# -------------------------------------------------------------------- PredictionErrorAnomalyScore
@pytest.fixture(scope="module")
def pair():
    y_true = RNG.normal(size=(4, 10, 3)).astype("float32")
    y_pred = (y_true + RNG.normal(scale=0.5, size=y_true.shape)).astype("float32")
    y_pred[1, 3, 0] += 4.0
    return y_true, y_pred


@pytest.mark.parametrize("metric", ["mae", "mse"])
@pytest.mark.parametrize("aggregation", ["mean", "max"])
def test_prediction_error_values_by_hand(pair, metric, aggregation):
    y_true, y_pred = pair
    layer = PredictionErrorAnomalyScore(error_metric=metric, aggregation=aggregation)
    scores = keras.ops.convert_to_numpy(layer([y_true, y_pred]))
    diff = y_true - y_pred
    elementwise = np.abs(diff) if metric == "mae" else diff**2
    per_step = elementwise.mean(axis=-1)  # over features first
    expected = per_step.mean(axis=1) if aggregation == "mean" else per_step.max(axis=1)
    assert scores.shape == (4, 1)
    np.testing.assert_allclose(scores[:, 0], expected, rtol=1e-5)


def test_prediction_error_seed_semantics():
    # univariate, one +4 error at one step among N(0, 0.5) errors: max-MAE score ~ 4 (+ noise)
    rng = np.random.default_rng(3)
    y_true = rng.normal(size=(4, 10, 1)).astype("float32")
    y_pred = (y_true + rng.normal(scale=0.5, size=y_true.shape)).astype("float32")
    y_pred[1, 3, 0] += 4.0
    max_scores = keras.ops.convert_to_numpy(PredictionErrorAnomalyScore("mae", "max")([y_true, y_pred]))
    mean_scores = keras.ops.convert_to_numpy(PredictionErrorAnomalyScore("mae", "mean")([y_true, y_pred]))
    assert int(np.argmax(max_scores)) == 1
    assert max_scores[1, 0] == pytest.approx(abs(y_pred[1, 3, 0] - y_true[1, 3, 0]), rel=1e-6)
    assert 3.0 < max_scores[1, 0] < 5.5
    assert max_scores[1, 0] > mean_scores[1, 0] + 2.5  # the mean dilutes one step over 10


def test_prediction_error_two_dimensional_inputs_are_one_feature():
    y_true = np.zeros((2, 3), "float32")
    y_pred = np.array([[1, 2, 3], [0, 0, -6]], "float32")
    scores = keras.ops.convert_to_numpy(PredictionErrorAnomalyScore("mse", "mean")([y_true, y_pred]))
    np.testing.assert_allclose(scores[:, 0], [14 / 3, 12])


def test_prediction_error_config_and_keras_round_trip(tmp_path, pair):
    layer = PredictionErrorAnomalyScore(error_metric="MSE", aggregation="max", name="pe")
    config = layer.get_config()
    assert config["error_metric"] == "mse" and config["aggregation"] == "max"
    assert PredictionErrorAnomalyScore.from_config(config).get_config() == config

    y_true, y_pred = pair
    a, b = keras.Input((10, 3)), keras.Input((10, 3))
    model = keras.Model([a, b], PredictionErrorAnomalyScore("mse", "max")([a, b]))
    path = tmp_path / "pe.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert any(isinstance(lay, PredictionErrorAnomalyScore) for lay in loaded.layers)
    np.testing.assert_array_equal(
        loaded.predict([y_true, y_pred], verbose=0), model.predict([y_true, y_pred], verbose=0)
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"error_metric": "rmse"}, "error_metric='rmse'"),
        ({"error_metric": None}, "error_metric=None"),
        ({"aggregation": "median"}, "aggregation='median'"),
    ],
)
def test_prediction_error_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PredictionErrorAnomalyScore(**kwargs)


def test_prediction_error_bad_inputs():
    layer = PredictionErrorAnomalyScore()
    x = np.zeros((2, 5, 1), "float32")
    with pytest.raises(ValueError, match=r"list \[y_true, y_pred\]"):
        layer(x)
    with pytest.raises(ValueError, match=r"same shape.*\(2, 5, 1\).*\(2, 4, 1\)"):
        layer([x, np.zeros((2, 4, 1), "float32")])
    with pytest.raises(ValueError, match="y_true shape"):
        layer([np.zeros(3, "float32"), np.zeros(3, "float32")])
