"""Autoencoder: the seed API, one threshold meaning, whole-data statistics, serialization."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from anomaly_models.models import Autoencoder
from anomaly_models.preprocessing import DataAnalyzer


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(1)
    X = np.random.default_rng(1).normal(size=(600, 8)).astype("float32")
    model = Autoencoder(input_dim=8, encoding_dim=16, intermediate_dim=4)
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, X, epochs=3, batch_size=32, verbose=0)
    return model, X


def test_median_and_std_come_from_the_whole_training_data(trained):
    model, X = trained
    recon = model.predict(X, verbose=0)
    errors = ((X - recon) ** 2).mean(axis=1)
    assert model.median == pytest.approx(float(np.median(errors)), rel=1e-4)
    assert model.std == pytest.approx(float(np.std(errors)), rel=1e-4)


def test_one_threshold_meaning_everywhere(trained):
    model, X = trained
    result = {k: keras.ops.convert_to_numpy(v) for k, v in model.is_anomaly(X).items()}
    assert set(result) == {"reconstruction_error", "anomaly", "anomaly_score"}
    expected_score = (result["reconstruction_error"] - model.median) / model.std
    np.testing.assert_allclose(result["anomaly_score"], expected_score, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(result["anomaly"], (expected_score > model.threshold).astype("float32"))
    assert result["anomaly"].dtype == np.float32
    # raising the cut can only flag fewer rows
    before = result["anomaly"].sum()
    model.update_threshold(4.0)
    after = keras.ops.convert_to_numpy(model.is_anomaly(X)["anomaly"]).sum()
    model.update_threshold(2.0)
    assert model.threshold == 2.0 and after <= before


def test_save_and_load_keep_threshold_and_statistics(trained, tmp_path):
    model, X = trained
    model.update_threshold(2.5)
    path = tmp_path / "ae.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert (loaded.threshold, loaded.median, loaded.std) == (2.5, model.median, model.std)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded.is_anomaly(X)["anomaly_score"]),
        keras.ops.convert_to_numpy(model.is_anomaly(X)["anomaly_score"]),
    )
    model.update_threshold(2.0)


def test_weights_round_trip_into_a_fresh_model(trained, tmp_path):
    model, X = trained
    path = tmp_path / "ae.weights.h5"
    model.save_weights(path)
    fresh = Autoencoder(input_dim=8, encoding_dim=16, intermediate_dim=4)
    fresh.load_weights(path)
    np.testing.assert_allclose(fresh.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-6)


def test_preprocessing_travels_inside_the_saved_model(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(loc=50, scale=10, size=(400, 3)), columns=["a", "b c", "d/e"])
    pre = DataAnalyzer(df).create_preprocessing_model()
    model = Autoencoder(input_dim=3, encoding_dim=8, intermediate_dim=2, preprocessing_model=pre)
    model.fit(df.to_numpy("float32"), df.to_numpy("float32"), epochs=2, verbose=0)  # uncompiled: compiles itself
    # the target was the standardized input, so errors are O(1), not O(2500)
    assert model.median < 5
    as_dict = {c: df[[c]].to_numpy("float32") for c in df.columns}
    from_dict = keras.ops.convert_to_numpy(model.is_anomaly(as_dict)["anomaly_score"])
    from_array = keras.ops.convert_to_numpy(model.is_anomaly(df.to_numpy("float32"))["anomaly_score"])
    np.testing.assert_allclose(from_dict, from_array, rtol=1e-5)
    path = tmp_path / "ae_pre.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded.is_anomaly(as_dict)["anomaly_score"]), from_dict
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input_dim": 0}, r"input_dim=0"),
        ({"input_dim": 4, "encoding_dim": -1}, r"encoding_dim=-1"),
        ({"input_dim": 4, "intermediate_dim": 2.5}, r"intermediate_dim=2.5"),
        ({"input_dim": 4, "threshold": float("nan")}, r"threshold=nan"),
        ({"input_dim": 4, "preprocessing_model": "scaler"}, r"preprocessing_model='scaler'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Autoencoder(**kwargs)


def test_update_threshold_rejects_non_numbers(trained):
    model, _ = trained
    with pytest.raises(ValueError, match="threshold='high'"):
        model.update_threshold("high")
