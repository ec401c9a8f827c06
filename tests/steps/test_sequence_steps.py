"""The pipeline steps with ``model.kind: lstm_autoencoder``: settings, ingest of a series (order,
duplicates, NaN, gaps, short splits), the GX suite of a series, and a real small run of
preprocess -> train -> calibrate -> evaluate (per-point threshold and metrics, the series plots),
plus the pyfunc's ``context_rows`` contract and the MLmodel metadata."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.config import ConfigError, Params, load_params
from flows.errors import DataError
from flows.steps.ingest import IngestResult, ingest
from tests.e2e.project import sine_series

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = ["s0", "s1", "s2"]
WINDOW = 8


def series_frame(n: int = 600, seed: int = 0, anomaly: tuple[int, int] | None = None) -> pd.DataFrame:
    """Three noisy sines at 1-minute timestamps ``t``; ``anomaly`` = (start, stop) points of a
    shape anomaly inside the normal range, label ``y``."""
    return sine_series(n, seed, anomaly, time_column="t", label_column="y")


def sequence_params(source: str = "data.csv", **dotted) -> Params:
    tree: dict = {
        "data": {"source": source, "label_column": "y", "timestamp_column": "t"},
        "model": {"kind": "lstm_autoencoder", "window": WINDOW, "lstm_units": 8, "latent_dim": 4},
        "train": {"epochs": 2, "batch_size": 64, "learning_rate": 0.005},
        "threshold": {"method": "quantile", "quantile": {"q": 0.99}},
    }
    for key, value in dotted.items():
        section, name = key.split(".", 1)
        tree.setdefault(section, {})[name] = value
    return Params.model_validate(tree)


def write_csv(root: Path, frame: pd.DataFrame, name: str = "data.csv") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / name, index=False)
    return root


# --------------------------------------------------------------------------- settings
def test_sequence_keys_have_defaults_and_are_checked(tmp_path) -> None:
    p = Params()
    assert (p.model.window, p.model.stride, p.model.point_aggregation) == (32, 1, None)
    assert (p.model.smoothing, p.model.lstm_units, p.model.latent_dim) == (None, 32, 16)
    assert (p.data.gap_factor, p.data.on_gap) == (3.0, "error")
    assert not p.model.is_sequence and sequence_params().model.is_sequence
    for text, pattern in [
        ("model:\n  window: 8\n  stride: 9\n", r"model\.stride \(9\) must be at most model\.window \(8\)"),
        ("model:\n  smoothing: -1\n", r"model\.smoothing: Input should be greater than or equal to 0"),
        ("model:\n  point_aggregation: median\n", r"model\.point_aggregation: Input should be 'mean'"),
        ("model:\n  window: 1\n", r"model\.window: Input should be greater than or equal to 2"),
        ("data:\n  on_gap: ignore\n", r"data\.on_gap: Input should be 'error' or 'warn'"),
        ("data:\n  gap_factor: 1\n", r"data\.gap_factor: Input should be greater than 1"),
    ]:
        path = tmp_path / "params.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=pattern):
            load_params(path)


def test_detector_from_params_builds_the_sequence_detector() -> None:
    from flows.steps.detector_params import detector_from_params

    params = sequence_params(**{"model.stride": 2, "model.smoothing": 0,
                                "model.point_aggregation": "max"})
    detector = detector_from_params(params)
    assert detector.is_sequence and detector.kind == "lstm_autoencoder"
    assert (detector.window, detector.stride, detector.smoothing) == (WINDOW, 2, 0)
    assert (detector.point_aggregation, detector.lstm_units, detector.latent_dim) == ("max", 8, 4)
    assert (detector.epochs, detector.batch_size, detector.learning_rate) == (2, 64, 0.005)
    assert detector.context_length == WINDOW - 1


def test_sequence_kind_without_timestamp_column_is_a_config_error(tmp_path) -> None:
    from flows.steps.detector_params import detector_from_params

    write_csv(tmp_path, series_frame(100))
    params = sequence_params(**{"data.timestamp_column": None})
    for call in (lambda: ingest(params, tmp_path), lambda: detector_from_params(params)):
        with pytest.raises(ConfigError, match=r"data\.timestamp_column: .*lstm_autoencoder") as err:
            call()
        assert err.value.keys == ["data.timestamp_column"]
    assert not (tmp_path / "data").exists()  # nothing written


# --------------------------------------------------------------------------- ingest
def test_unsorted_series_is_sorted_and_split_contiguously(tmp_path) -> None:
    frame = series_frame(300)
    write_csv(tmp_path, frame.sample(frac=1.0, random_state=0))
    result = ingest(sequence_params(), tmp_path)
    parts = {k: pd.read_parquet(p) for k, p in result.split_paths.items()}
    assert {k: len(v) for k, v in parts.items()} == {"train": 180, "validation": 60, "test": 60}
    joined = pd.concat(parts.values(), ignore_index=True)
    # the original order back: same timestamps and values, point for point
    pd.testing.assert_series_equal(joined["t"], frame["t"], check_names=False)
    np.testing.assert_allclose(joined[CHANNELS].to_numpy(), frame[CHANNELS].to_numpy())
    assert result.metrics["sorted_by_ingest"] == 1 and result.metrics["gaps"] == 0
    meta = json.loads(result.split_meta_path.read_text())
    assert meta["method"] == "time-ordered contiguous"
    assert meta["sequence"]["sorted_by_ingest"] is True and meta["sequence"]["gaps"] == []


def test_duplicated_timestamps_name_the_first_duplicates(tmp_path) -> None:
    frame = series_frame(300)
    frame.loc[41, "t"] = frame.loc[40, "t"]
    frame.loc[91, "t"] = frame.loc[90, "t"]
    write_csv(tmp_path, frame)
    with pytest.raises(DataError) as err:
        ingest(sequence_params(), tmp_path)
    text = str(err.value)
    assert "timestamp column 't'" in text and "2 duplicated timestamp(s) (4 rows)" in text
    assert "2024-01-01 00:40:00 at rows 40, 41" in text
    assert "2024-01-01 01:30:00 at rows 90, 91" in text


def test_duplicated_timestamps_are_still_fine_for_tabular_kinds(tmp_path) -> None:
    frame = series_frame(300)
    frame.loc[41, "t"] = frame.loc[40, "t"]
    write_csv(tmp_path, frame)
    result = ingest(sequence_params(**{"model.kind": "autoencoder"}), tmp_path)
    assert result.metrics["rows"] == 300 and "gaps" not in result.metrics


def test_nan_in_a_value_column_names_the_column_and_the_time(tmp_path) -> None:
    frame = series_frame(300)
    frame.loc[[57, 58], "s1"] = np.nan
    write_csv(tmp_path, frame)
    with pytest.raises(DataError) as err:
        ingest(sequence_params(), tmp_path)
    text = str(err.value)
    assert "value column(s) ['s1']" in text and "(s1: 2)" in text
    assert "first at 2024-01-01 00:57:00 (row 57)" in text and "fill them" in text


def test_a_gap_is_an_error_naming_its_position(tmp_path) -> None:
    frame = series_frame(300).drop(index=range(100, 110))  # 10 missing minutes
    write_csv(tmp_path, frame)
    with pytest.raises(DataError) as err:
        ingest(sequence_params(), tmp_path)
    text = str(err.value)
    assert "1 gap(s)" in text and "data.gap_factor=3" in text
    assert "between 2024-01-01 01:39:00 and 2024-01-01 01:50:00 (rows 99 and 100)" in text
    assert "data.on_gap: warn" in text


def test_a_gap_with_on_gap_warn_is_logged_recorded_and_scored_across(tmp_path, caplog) -> None:
    frame = series_frame(300).drop(index=range(100, 110))
    write_csv(tmp_path, frame)
    with caplog.at_level(logging.WARNING, logger="flows.steps.ingest"):
        result = ingest(sequence_params(**{"data.on_gap": "warn"}), tmp_path)
    assert "1 gap(s)" in caplog.text and "scoring across them" in caplog.text
    assert result.metrics["gaps"] == 1 and result.metrics["rows"] == 290
    gaps = json.loads(result.split_meta_path.read_text())["sequence"]["gaps"]
    assert gaps == [{"position": 100, "after": "2024-01-01 01:39:00",
                     "before": "2024-01-01 01:50:00", "step": "0 days 00:11:00", "rows": [99, 100]}]
    # a larger gap_factor accepts the same series without a gap
    other = ingest(sequence_params(str(tmp_path / "data.csv"), **{"data.gap_factor": 20.0}),
                   tmp_path / "other")
    assert other.metrics["gaps"] == 0


def test_numeric_timestamps_work_and_their_gaps_are_found(tmp_path) -> None:
    frame = series_frame(300)
    frame["t"] = np.arange(300) * 10
    write_csv(tmp_path, frame.drop(index=[200, 201, 202]))
    with pytest.raises(DataError, match=r"median step 10; first: 40 between 1990 and 2030 \(rows 199 and 200\)"):
        ingest(sequence_params(), tmp_path)


def test_a_split_shorter_than_the_window_names_window_split_and_length(tmp_path) -> None:
    write_csv(tmp_path, series_frame(60))
    with pytest.raises(DataError) as err:
        ingest(sequence_params(**{"model.window": 16}), tmp_path)
    text = str(err.value)
    assert "the validation split" in text and "has 12 points" in text
    assert "model.window=16" in text and "(splits: train 36, validation 12, test 12 points)" in text


# --------------------------------------------------------------------------- validate
@pytest.fixture(scope="module")
def series_suite(tmp_path_factory):
    from flows.expectations import build_suite

    params = sequence_params(**{"validate.max_null_fraction": 0.5})
    train = series_frame(200)
    return build_suite(train, CHANNELS, params), tmp_path_factory.mktemp("gx")


def test_series_suite_expects_time_order_and_no_null_values(series_suite) -> None:
    suite, _ = series_suite
    kinds = {(e.expectation_type, e.configuration.kwargs.get("column")): e for e in suite.expectations}
    order = kinds[("expect_column_values_to_be_increasing", "t")]
    assert order.configuration.kwargs["strictly"] is True
    assert ("expect_column_values_to_not_be_null", "t") in kinds
    for c in CHANNELS:  # max_null_fraction 0.5 does not apply to a series
        not_null = kinds[("expect_column_values_to_not_be_null", c)].configuration.kwargs
        assert not_null.get("mostly") in (None, 1.0)
    assert suite.meta["model_kind"] == "lstm_autoencoder" and suite.meta["max_null_fraction"] == 0.0


def test_series_with_nan_non_numbers_or_disorder_fails_validation(series_suite) -> None:
    from flows.expectations import quick_check, validate_frame

    suite, gx_dir = series_suite
    good = series_frame(100, seed=1)
    assert quick_check(good, suite) is True
    report = validate_frame(good, suite, gx_dir, "good", build_docs=False)
    assert report.success, report.summary()

    with_nan = good.copy()
    with_nan.loc[[3, 4], "s0"] = np.nan
    report = validate_frame(with_nan, suite, gx_dir, "nan", build_docs=False)
    assert not report.success
    assert any("column 's0': must not be null: 2 of 100 rows are null" in f for f in report.failed)

    text = good.astype({"s1": object})
    text.loc[5, "s1"] = "n/a"
    report = validate_frame(text, suite, gx_dir, "text", build_docs=False)
    assert not report.success
    assert any(f.startswith("column 's1': must be numeric") for f in report.failed), report.failed

    shuffled = good.iloc[[0, 2, 1, *range(3, 100)]].reset_index(drop=True)
    assert quick_check(shuffled, suite) is False
    report = validate_frame(shuffled, suite, gx_dir, "order", build_docs=False)
    assert not report.success
    assert any("column 't': must be strictly increasing" in f and "1 of 100 rows" in f
               for f in report.failed), report.failed


# --------------------------------------------------------------------------- the steps, for real
@dataclass
class SequenceRun:
    root: Path
    params: Params
    ingest: IngestResult
    results: dict


@pytest.fixture(scope="module")
def sequence_run(tmp_path_factory) -> SequenceRun:
    from flows.steps.calibrate import calibrate
    from flows.steps.evaluate import evaluate
    from flows.steps.preprocess import preprocess
    from flows.steps.train import train

    root = write_csv(tmp_path_factory.mktemp("series"), series_frame(900, anomaly=(800, 830)))
    params = sequence_params()
    result = ingest(params, root)
    results = {step.__name__: step(params, root) for step in (preprocess, train, calibrate, evaluate)}
    return SequenceRun(root, params, result, results)


def _split(run: SequenceRun, name: str) -> pd.DataFrame:
    return pd.read_parquet(run.ingest.split_paths[name])


@pytest.mark.slow
def test_train_fits_the_whole_train_series(sequence_run) -> None:
    metrics = sequence_run.results["train"].metrics
    assert metrics["n_rows"] == 540 and metrics["n_windows"] == 540 - WINDOW + 1
    assert metrics["train_anomalous_points"] == 0
    history = json.loads((sequence_run.root / "models/training_history.json").read_text())
    assert history["detector"]["kind"] == "lstm_autoencoder"
    assert history["detector"]["window"] == WINDOW
    assert history["rows"].startswith("the whole train series (540 points")
    pre = json.loads((sequence_run.root / "models/preprocessing.json").read_text())
    assert pre["kind"] == "lstm_autoencoder" and pre["rows"].startswith("normal train points")


@pytest.mark.slow
def test_calibrate_thresholds_per_point_validation_scores_after_train_context(sequence_run) -> None:
    from anomaly_models.detector import AnomalyDetector

    root = sequence_run.root
    detector = AnomalyDetector.load(root / "models/model.keras")
    train, validation = _split(sequence_run, "train"), _split(sequence_run, "validation")
    context = train[CHANNELS].iloc[-detector.context_length :]
    scores = detector.score_samples(validation[CHANNELS], context=context)
    assert scores.shape == (len(validation),)
    # the 0.99 quantile of the normal validation points' scores (numpy's default interpolation)
    assert detector.threshold_ == pytest.approx(np.quantile(scores, 0.99), rel=1e-6)
    record = json.loads((root / "models/threshold.json").read_text())
    assert record["n_calibration"] == len(validation) == record["n_validation"]
    assert record["context_points"] == detector.context_length
    assert record["labels_used"] is True


@pytest.mark.slow
def test_evaluate_scores_every_test_point_and_draws_the_series_plots(sequence_run) -> None:
    from anomaly_models.detector import AnomalyDetector
    from flows.steps.evaluate import SEQUENCE_PNG_FILES

    root, result = sequence_run.root, sequence_run.results["evaluate"]
    metrics = json.loads((root / "metrics.json").read_text())
    assert {"roc_auc", "pr_auc", "precision", "recall", "f1", "threshold"} <= set(metrics)
    test, validation = _split(sequence_run, "test"), _split(sequence_run, "validation")
    assert metrics["n_test"] == len(test) == 180 and metrics["n_anomalies"] == 30
    assert metrics["roc_auc"] > 0.7  # frozen / square-wave channels: even 2 epochs see them

    # the scores behind the metrics: the test series after the last validation points
    detector = AnomalyDetector.load(root / "models/model.keras")
    whole = pd.concat([validation, test], ignore_index=True)[CHANNELS]
    expected = detector.score_samples(whole)[len(validation) :]
    scores = pd.read_csv(root / "plots/scores.csv")
    np.testing.assert_allclose(scores["score"], expected, rtol=1e-5)
    from sklearn.metrics import roc_auc_score

    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(test["y"], expected), abs=1e-6)

    names = [p.relative_to(root).as_posix() for p in result.plot_paths]
    assert set(SEQUENCE_PNG_FILES) <= set(names)
    for rel in SEQUENCE_PNG_FILES:
        data = (root / rel).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 20_000  # a drawn figure


@pytest.mark.slow
def test_labelled_anomalies_in_the_train_series_are_kept_and_counted(tmp_path, caplog) -> None:
    from flows.steps.preprocess import preprocess
    from flows.steps.train import train

    write_csv(tmp_path, series_frame(300, anomaly=(50, 60)))
    params = sequence_params(**{"train.epochs": 1})
    ingest(params, tmp_path)
    preprocess(params, tmp_path)
    with caplog.at_level(logging.WARNING, logger="flows.steps.train"):
        metrics = train(params, tmp_path).metrics
    assert metrics["n_rows"] == 180 and metrics["train_anomalous_points"] == 10
    assert "10 labelled anomalous point(s)" in caplog.text
    pre = json.loads((tmp_path / "models/preprocessing.json").read_text())
    assert pre["metrics"]["n_rows"] == 170  # the scaling: normal points only


# --------------------------------------------------------------------------- plots helpers
def test_envelope_keeps_every_extreme_of_a_long_series() -> None:
    from flows.steps.evaluate import envelope

    values = np.zeros(100_000)
    values[[17, 54_321, 99_998]] = [5.0, -7.0, 9.0]
    keep = envelope(values.size, values, limit=1000)
    assert keep.size <= 1002 and np.all(np.diff(keep) > 0)
    assert {0, 17, 54_321, 99_998, 99_999} <= set(keep.tolist())
    assert envelope(10, np.arange(10.0)).tolist() == list(range(10))


# --------------------------------------------------------------------------- pyfunc contract
@pytest.mark.slow
def test_pyfunc_context_rows_and_model_metadata(sequence_run) -> None:
    from anomaly_models.detector import AnomalyDetector
    from flows.registry import log_pyfunc_model, model_metadata
    from flows.registry.pyfunc_model import AnomalyDetectorModel, context_rows

    root = sequence_run.root
    detector = AnomalyDetector.load(root / "models/model.keras")
    model = AnomalyDetectorModel()
    model.detector = detector
    validation, test = _split(sequence_run, "validation"), _split(sequence_run, "test")
    k = detector.context_length
    batch = pd.concat([validation.iloc[-k:], test], ignore_index=True)  # timestamp and label too
    out = model.predict(None, batch, params={"context_rows": k})
    assert len(out) == len(test) and out.index.tolist() == list(range(k, k + len(test)))
    whole = pd.concat([validation, test], ignore_index=True)[CHANNELS]
    expected = detector.score_frame(whole).iloc[len(validation) :]
    np.testing.assert_allclose(out["anomaly_score"], expected["anomaly_score"], rtol=1e-5)
    plain = model.predict(None, test[CHANNELS])  # no context: the series starts here
    assert len(plain) == len(test) and list(plain.columns) == list(expected.columns)

    assert context_rows(None, 10, sequence=True) == 0
    for value, pattern in [(-1, ">= 0"), (1.5, "integer"), (10, "at least one row"),
                           (True, "integer")]:
        with pytest.raises(ValueError, match=pattern):
            context_rows({"context_rows": value}, 10, sequence=True)
    with pytest.raises(ValueError, match="sequence models only"):
        context_rows({"context_rows": 2}, 10, sequence=False)

    assert model_metadata(detector, "t") == {
        "anomaly_kind": "lstm_autoencoder", "context_rows": k, "timestamp_column": "t",
        "window": WINDOW,
    }
    with pytest.raises(ValueError, match=rf"input_example has 5 rows.*window={WINDOW}"):
        log_pyfunc_model(root / "models/model.keras", test[CHANNELS].head(5), detector=detector)
