"""LSTMAutoencoderAnomaly: the seed API, shapes, reconstruction error by hand, exact round trip."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from anomaly_models import LSTMAutoencoderAnomaly
from anomaly_models.models import LSTMAutoencoderAnomaly as FromModels

WINDOW, CHANNELS = 12, 2


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    t = np.arange(200 * WINDOW, dtype="float32").reshape(200, WINDOW)
    X = np.stack([np.sin(0.3 * t), np.cos(0.3 * t)], axis=-1).astype("float32")
    model = LSTMAutoencoderAnomaly(
        latent_dim=4, lstm_units=8, n_features=CHANNELS, n_repeats=WINDOW,
        num_encoder_layers=2, num_decoder_layers=2, activation="linear",
    )
    model.compile(optimizer="adam", loss="mse")
    model.build(input_shape=(None, WINDOW, CHANNELS))
    history = model.fit(X, X, epochs=2, batch_size=32, verbose=0)
    return model, X, history


def test_exported_from_models_package_too():
    assert FromModels is LSTMAutoencoderAnomaly


def test_shapes_and_architecture(trained):
    model, X, history = trained
    assert len(history.history["loss"]) == 2
    assert model.predict(X[:5], verbose=0).shape == (5, WINDOW, CHANNELS)
    names = [layer.name for layer in model.layers]
    assert names == [
        "encoder_lstm_0", "encoder_lstm_1", "bottleneck", "repeater",
        "decoder_lstm_0", "decoder_lstm_1", "decoder_dense",
    ]
    assert model.get_layer("bottleneck").units == 4
    assert model.encode(X[:3]).shape == (3, 4)


def test_reconstruction_error_by_hand(trained):
    model, X, _ = trained
    errors = model.compute_reconstruction_error(X).numpy()  # the seed's `.numpy()` works
    expected = np.mean((X - model.predict(X, verbose=0)) ** 2, axis=(1, 2))
    assert errors.shape == (len(X),)
    np.testing.assert_allclose(errors, expected, rtol=1e-5, atol=1e-7)
    steps = keras.ops.convert_to_numpy(model.compute_step_errors(X[:10]))
    assert steps.shape == (10, WINDOW)
    np.testing.assert_allclose(steps.mean(axis=1), expected[:10], rtol=1e-5, atol=1e-7)
    given = keras.ops.convert_to_numpy(
        model.compute_reconstruction_error(X[:3], reconstructions=np.zeros_like(X[:3]))
    )
    np.testing.assert_allclose(given, np.mean(X[:3] ** 2, axis=(1, 2)), rtol=1e-6)


def test_keras_round_trip_is_exact(trained, tmp_path):
    model, X, _ = trained
    path = tmp_path / "lstm_ae.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, LSTMAutoencoderAnomaly)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), model.predict(X, verbose=0))
    weights = tmp_path / "w.weights.h5"
    model.save_weights(weights)
    fresh = LSTMAutoencoderAnomaly.from_config(model.get_config())
    fresh.load_weights(weights)
    np.testing.assert_array_equal(fresh.predict(X[:4], verbose=0), model.predict(X[:4], verbose=0))


def test_fit_without_compile_or_target():
    keras.utils.set_random_seed(1)
    X = np.random.default_rng(1).normal(size=(16, 5, 1)).astype("float32")
    model = LSTMAutoencoderAnomaly(latent_dim=2, lstm_units=4, n_features=1, n_repeats=5)
    history = model.fit(X, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_config_is_complete():
    model = LSTMAutoencoderAnomaly(3, 5, 2, 7, num_encoder_layers=2, activation="tanh", name="m")
    assert model.get_config() == {
        "latent_dim": 3, "lstm_units": 5, "n_features": 2, "n_repeats": 7,
        "num_encoder_layers": 2, "num_decoder_layers": 1, "activation": "tanh",
        "name": "m", "trainable": True,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latent_dim": 0}, "latent_dim=0"),
        ({"lstm_units": 2.0}, "lstm_units=2.0"),
        ({"n_features": None}, "n_features=None"),
        ({"n_repeats": -3}, "n_repeats=-3"),
        ({"num_decoder_layers": 0}, "num_decoder_layers=0"),
        ({"activation": "wiggle"}, "activation='wiggle'"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, message):
    args = {"latent_dim": 2, "lstm_units": 4, "n_features": 1, "n_repeats": 5, **kwargs}
    with pytest.raises(ValueError, match=message):
        LSTMAutoencoderAnomaly(**args)


def test_wrong_windows_are_refused(trained):
    model, X, _ = trained
    with pytest.raises(ValueError, match="n_features=2 channels, received windows with 3"):
        model.compute_reconstruction_error(np.zeros((2, WINDOW, 3), "float32"))
    with pytest.raises(ValueError, match="n_repeats=12 steps, received windows of 10"):
        model.compute_reconstruction_error(np.zeros((2, 10, CHANNELS), "float32"))
    with pytest.raises(ValueError, match=r"\(batch, time_steps, n_features\)"):
        model.build((None, WINDOW))
