"""AnomalyDetector: the fit / calibrate / score / predict / save / load contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anomaly_models import AnomalyDetector, NotFittedError
from anomaly_models.thresholds import ThresholdResult

FEATURES = ["temp", "pressure", "flow"]


def normal_rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 1))
    # correlated sensors driven by one hidden state, each with its own small noise
    data = np.hstack([base * 3 + 20, -0.5 * base + 1, base * 2 + 5])
    data += rng.normal(size=(n, 3)) * np.array([0.1, 0.02, 0.1])
    return pd.DataFrame(data, columns=FEATURES)


@pytest.fixture(scope="module")
def trained() -> AnomalyDetector:
    """The module's one training (read-only: tests that calibrate take a copy)."""
    det = AnomalyDetector(hidden_dims=[16, 8, 2], epochs=25, batch_size=64, learning_rate=5e-3, seed=3)
    return det.fit(normal_rows(1500, 0))


@pytest.fixture(scope="module")
def trained_file(trained, tmp_path_factory):
    return trained.save(tmp_path_factory.mktemp("detector") / "trained.keras")


@pytest.fixture
def fitted(trained_file) -> AnomalyDetector:
    """A private copy of the trained, uncalibrated detector: a test may calibrate it."""
    return AnomalyDetector.load(trained_file)


@pytest.fixture(scope="module")
def calibrated(trained_file) -> AnomalyDetector:
    det = AnomalyDetector.load(trained_file)
    det.calibrate(normal_rows(500, 1), method="quantile", q=0.99)
    return det


def test_fit_sets_fitted_attributes(trained):
    fitted = trained
    assert list(fitted.feature_names_in_) == FEATURES and fitted.n_features_in_ == 3
    assert len(fitted.history_["loss"]) >= 1 and "val_loss" in fitted.history_
    assert fitted.training_scores_.shape == (1500,) and fitted.fit_seconds_ > 0
    assert fitted.threshold_ is None
    # each part is scaled to 1 on normal rows and log1p-combined: a typical row scores about 1
    # (a little less: the mean of log1p is below log1p of the mean)
    assert 0.85 <= np.mean(fitted.training_scores_) <= 1.0


def test_score_shapes_and_contributions_sum_to_the_score(calibrated):
    X = normal_rows(50, 2)
    scores = calibrated.score_samples(X)
    contributions = calibrated.feature_scores(X)
    assert scores.shape == (50,) and contributions.shape == (50, 3)
    assert scores.dtype == np.float64 and (contributions >= 0).all()
    np.testing.assert_allclose(contributions.sum(axis=1), scores, rtol=1e-6)


def test_threshold_is_the_quantile_of_validation_scores(fitted):
    X_val = normal_rows(400, 5)
    record = fitted.calibrate(X_val, method="quantile", q=0.9)
    assert isinstance(record, ThresholdResult) and record.method == "quantile"
    assert fitted.threshold_ == pytest.approx(np.quantile(fitted.score_samples(X_val), 0.9))
    assert record.false_alarm_rate == pytest.approx(0.1, abs=0.005)


def test_calibration_with_labels_uses_normal_rows_only(fitted):
    X_val = pd.concat([normal_rows(300, 6), normal_rows(30, 7) * 10], ignore_index=True)
    y_val = np.r_[np.zeros(300), np.ones(30)]
    fitted.calibrate(X_val, y_val, method="median_mad", k=3.0)
    normal_scores = fitted.score_samples(X_val.iloc[:300])
    mad = np.median(np.abs(normal_scores - np.median(normal_scores)))
    assert fitted.threshold_ == pytest.approx(np.median(normal_scores) + 3.0 * 1.4826 * mad)
    fitted.calibrate(normal_rows(500, 1), method="quantile", q=0.99)


def test_outliers_are_flagged_and_the_corrupted_feature_is_blamed(calibrated):
    X = normal_rows(200, 9)
    corrupted = X.copy()
    corrupted["pressure"] += 1.0  # 2 standard deviations of pressure, 50 of its noise
    assert calibrated.predict(X).mean() < 0.05
    assert calibrated.predict(corrupted).mean() > 0.95
    assert (calibrated.feature_scores(corrupted).argmax(axis=1) == 1).mean() > 0.9
    # breaking the correlation is caught, though each value on its own is ordinary
    swapped = X.copy()
    swapped["flow"] = X["flow"].sample(frac=1.0, random_state=0).to_numpy()
    assert np.median(calibrated.score_samples(swapped)) > 3 * np.median(calibrated.score_samples(X))


def test_predict_and_decision_function_agree(calibrated):
    X = pd.concat([normal_rows(100, 10), normal_rows(10, 11) * 3], ignore_index=True)
    flags = calibrated.predict(X)
    assert set(np.unique(flags)) <= {0, 1} and flags.dtype == np.int64
    np.testing.assert_array_equal(flags, (calibrated.decision_function(X) > 0).astype(int))


def test_score_frame_columns(calibrated):
    X = normal_rows(20, 12).set_index(pd.RangeIndex(100, 120))
    frame = calibrated.score_frame(X)
    assert list(frame.columns) == ["anomaly_score", "is_anomaly"] + [f"contribution_{c}" for c in FEATURES]
    assert list(frame.index) == list(X.index)


def test_columns_are_matched_by_name_not_position(calibrated):
    X = normal_rows(30, 13)
    reordered = X[["flow", "temp", "pressure"]].assign(extra=1.0)
    np.testing.assert_array_equal(calibrated.score_samples(reordered), calibrated.score_samples(X))


def test_numpy_input_uses_positional_columns(calibrated):
    X = normal_rows(30, 14)
    np.testing.assert_allclose(calibrated.score_samples(X.to_numpy()), calibrated.score_samples(X))


def test_save_load_round_trip_is_exact(calibrated, tmp_path):
    X = normal_rows(300, 15)
    path = calibrated.save(tmp_path / "detector.keras")
    assert path.is_file()
    loaded = AnomalyDetector.load(path)
    assert loaded.get_params() == calibrated.get_params()
    assert loaded.threshold_ == calibrated.threshold_
    assert loaded.threshold_record_ == calibrated.threshold_record_
    assert list(loaded.feature_names_in_) == FEATURES
    np.testing.assert_array_equal(loaded.score_samples(X), calibrated.score_samples(X))
    np.testing.assert_array_equal(loaded.predict(X), calibrated.predict(X))
    # the fitted training scores (and their quantiles) come back too, bit for bit
    assert loaded.training_scores_.dtype == np.float64
    np.testing.assert_array_equal(loaded.training_scores_, calibrated.training_scores_)
    assert loaded.training_score_quantiles_ == calibrated.training_score_quantiles_
    # a loaded detector can be saved again
    AnomalyDetector.load(loaded.save(tmp_path / "again.keras"))


def test_sliced_inference_equals_keras_predict(calibrated, tmp_path):
    """The compiled forward pass used for scoring gives predict's numbers whatever the slicing
    (a last slice shorter than the others included), and a detector that has scored still
    saves and loads (the cached graph is not part of the model)."""
    from anomaly_models.preprocessing import frame_to_inputs

    X = normal_rows(1000, 16)
    network = calibrated.network_
    inputs = frame_to_inputs(X, network.preprocessing_model)
    expected = network.predict(inputs, batch_size=256, verbose=0)
    whole = network.contributions(inputs)
    sliced = network.contributions(inputs, slice_rows=300)  # 300, 300, 300, 100
    assert whole.shape == sliced.shape == (1000, 3) and whole.dtype == np.float64
    # float32 arithmetic, blocked differently for different batch sizes: equal to ~1e-6
    np.testing.assert_allclose(whole, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sliced, whole, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(calibrated.feature_scores(X), whole)
    loaded = AnomalyDetector.load(calibrated.save(tmp_path / "scored.keras"))
    np.testing.assert_array_equal(loaded.feature_scores(X), calibrated.feature_scores(X))


def test_same_seed_same_model():
    X = normal_rows(300, 16)
    kwargs = {"hidden_dims": [8, 2], "epochs": 2, "batch_size": 64, "seed": 7}
    a = AnomalyDetector(**kwargs).fit(X).score_samples(X)
    b = AnomalyDetector(**kwargs).fit(X).score_samples(X)
    np.testing.assert_array_equal(a, b)


def test_feature_kind_fits_scores_and_round_trips(tmp_path):
    X = normal_rows(400, 17)
    det = AnomalyDetector(kind="feature", hidden_dims=[8, 4], epochs=5, batch_size=64, seed=0).fit(X)
    det.calibrate(normal_rows(200, 18))
    corrupted = X.iloc[:50].copy()
    corrupted["temp"] += 30.0
    assert det.predict(corrupted).mean() > 0.9
    assert (det.feature_scores(corrupted).argmax(axis=1) == 0).mean() > 0.9
    loaded = AnomalyDetector.load(det.save(tmp_path / "feature.keras"))
    np.testing.assert_array_equal(loaded.score_samples(X), det.score_samples(X))


# ------------------------------------------------------------------------------ bad input
def test_wrong_feature_count(calibrated):
    with pytest.raises(ValueError, match=r"X has 2 features, but this detector was fitted with 3"):
        calibrated.score_samples(np.zeros((4, 2)))


def test_missing_column_is_named(calibrated):
    with pytest.raises(ValueError, match=r"missing feature column\(s\) \['flow'\]"):
        calibrated.score_samples(normal_rows(5, 0).drop(columns="flow"))


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_inf_is_rejected_naming_the_column(calibrated, bad):
    X = normal_rows(5, 0)
    X.loc[2, "pressure"] = bad
    with pytest.raises(ValueError, match=r"2 infinite values|1 infinite values") as err:
        calibrated.score_samples(X)
    assert "column(s): pressure (1 rows)" in str(err.value)
    assert "NaN is allowed and imputed with the training median" in str(err.value)
    with pytest.raises(ValueError, match=r"pressure \(1 rows\)"):
        AnomalyDetector(epochs=1).fit(X)


def test_nan_is_imputed_with_the_training_median():
    """A missing value scores as the median of the fitted rows' column (the preprocessing
    model's imputation; no held-out rows here, so the median is over all of them), at scoring
    and at fit."""
    train = normal_rows(300, 0)
    gappy = train.copy()
    gappy.iloc[::7, 0] = np.nan  # fitting with gaps works too
    det = AnomalyDetector(epochs=2, batch_size=64, validation_fraction=0.0, seed=0).fit(gappy)
    assert np.isfinite(det.training_scores_).all() and np.isfinite(det.history_["loss"]).all()
    det.calibrate(normal_rows(200, 1), method="quantile", q=0.9)
    X = normal_rows(6, 3)
    X.loc[[1, 4], "pressure"] = np.nan
    X.loc[4, "temp"] = np.nan
    filled = X.fillna({c: float(np.nanmedian(gappy[c].astype("float32"))) for c in FEATURES})
    np.testing.assert_allclose(det.score_samples(X), det.score_samples(filled), rtol=1e-5)
    np.testing.assert_array_equal(det.predict(X), det.predict(filled))


def test_non_numeric_column_is_named(calibrated):
    X = normal_rows(5, 0).astype({"temp": str})
    with pytest.raises(ValueError, match=r"non-numeric column\(s\) \['temp'\]"):
        calibrated.score_samples(X)


@pytest.mark.parametrize(
    "empty", [pd.DataFrame(columns=FEATURES, dtype=float), np.zeros((0, 3))], ids=["frame", "array"]
)
def test_empty_input(calibrated, empty):
    with pytest.raises(ValueError, match="X is empty"):
        calibrated.score_samples(empty)
    with pytest.raises(ValueError, match="X is empty"):
        AnomalyDetector().fit(empty)


def test_one_dimensional_input_is_rejected():
    with pytest.raises(ValueError, match=r"must be 2-D .* shape \(5,\)"):
        AnomalyDetector().fit(np.zeros(5))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "forest"}, "kind='forest'"),
        ({"hidden_dims": []}, r"hidden_dims=\[\]"),
        ({"hidden_dims": [8, -1]}, "entry 1 is -1"),
        ({"epochs": 0}, "epochs=0"),
        ({"batch_size": 1.5}, "batch_size=1.5"),
        ({"validation_fraction": 0.9}, "validation_fraction=0.9"),
        ({"reconstruction_weight": 2.0}, "reconstruction_weight=2.0"),
        ({"kind": "feature", "reconstruction_weight": 0, "distribution_weight": 0}, "cannot both be 0"),
        ({"scaling": "minmax"}, "scaling='minmax'"),
        ({"seed": -1}, "seed=-1"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    # scikit-learn's rule: __init__ stores the arguments as given, fit checks them (same messages)
    detector = AnomalyDetector(**kwargs)
    assert all(getattr(detector, k) is v for k, v in kwargs.items())
    with pytest.raises(ValueError, match=match):
        detector.fit(normal_rows(20, 0))
    with pytest.raises(ValueError, match=match):
        detector.resolve_params()
    assert not detector.is_fitted


def test_scikit_learn_clone_get_params_and_set_params(fitted):
    from sklearn.base import clone

    params = fitted.get_params(deep=True)
    assert params == fitted.get_params(deep=False)
    assert params["hidden_dims"] == [16, 8, 2] and params["epochs"] == 25 and params["seed"] == 3
    copy = clone(fitted)
    assert copy.get_params() == params and not copy.is_fitted  # clone keeps arguments, drops fit
    assert copy.set_params(epochs=4, learning_rate=1e-2) is copy
    assert (copy.epochs, copy.learning_rate) == (4, 1e-2) and fitted.epochs == 25
    with pytest.raises(ValueError, match=r"Invalid parameter 'epoch' for estimator AnomalyDetector"):
        copy.set_params(epoch=3)
    # set_params stores as given; fit checks (the same message as the constructor's)
    copy.set_params(epochs=0)
    with pytest.raises(ValueError, match="epochs=0"):
        copy.fit(normal_rows(20, 0))


def test_use_before_fit_and_before_calibrate():
    det = AnomalyDetector()
    for call in (det.score_samples, det.feature_scores, det.predict):
        with pytest.raises(NotFittedError, match="not fitted; call fit"):
            call(np.zeros((2, 3)))
    with pytest.raises(NotFittedError, match="cannot calibrate"):
        det.calibrate(np.zeros((2, 3)))


def test_predict_before_calibrate(fitted, tmp_path):
    fresh = AnomalyDetector(hidden_dims=[4, 2], epochs=1, batch_size=32).fit(normal_rows(64, 0))
    with pytest.raises(NotFittedError, match="no threshold yet; call calibrate"):
        fresh.predict(normal_rows(5, 1))
    with pytest.raises(ValueError, match="y_val has 3 labels but X_val has 5 rows"):
        fresh.calibrate(normal_rows(5, 1), y_val=[0, 1, 0])
    with pytest.raises(ValueError, match=r"must end in '.keras'"):
        fresh.save(tmp_path / "model.h5")


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no detector file"):
        AnomalyDetector.load(tmp_path / "absent.keras")
