"""flows.steps preprocess / train / calibrate / evaluate, for real: Keras training on small
synthetic data in a temporary project (ingest -> preprocess -> train -> calibrate -> evaluate),
the files each step writes, the threshold against a hand computation, every threshold method,
and the errors (best_f1 without labels, lstm_autoencoder without a timestamp, missing inputs)."""

from __future__ import annotations

import csv
import json
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anomaly_models.detector import AnomalyDetector
from anomaly_models.thresholds import ThresholdResult, calibrate_threshold
from flows.config import ConfigError, Params, load_params
from flows.errors import DataError
from flows.steps.calibrate import CalibrateResult, calibrate
from flows.steps.detector_params import detector_from_params
from flows.steps.evaluate import CURVE_POINTS, DATA_FILES, PNG_FILES, EvaluateResult, evaluate
from flows.steps.ingest import IngestResult, ingest
from flows.steps.preprocess import PreprocessResult, preprocess
from flows.steps.train import TrainingDiverged, TrainResult, train

pytestmark = pytest.mark.slow

FEATURES = ["a", "b", "c", "d"]
N_ROWS = 1000
PARAMS_YAML = """\
data:
  source: data.csv
  label_column: y
model:
  kind: autoencoder
  hidden_dims: [8, 4]
train:
  epochs: 4
  batch_size: 64
  learning_rate: 0.005
threshold:
  method: quantile
  quantile:
    q: 0.99
  # pot needs >= 10 normal validation scores above the initial quantile: ~190 rows * 0.1 = 19
  pot:
    initial_quantile: 0.9
    target_false_alarm_rate: 0.01
evaluate:
  top_flagged_rows: 12
"""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def synthetic_frame(n: int = N_ROWS, seed: int = 0) -> pd.DataFrame:
    """4 Gaussian features; ~5 % of rows are obvious anomalies (+-8 sd on a and b), label y."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.05).astype("int64")
    X = rng.normal(size=(n, 4))
    X[:, 2] = 0.5 * X[:, 0] + 0.5 * X[:, 2]  # some structure for the autoencoder to learn
    shift = rng.choice([-1.0, 1.0], size=(int(y.sum()), 2)) * 8.0
    X[y == 1, :2] += shift
    frame = pd.DataFrame(X, columns=FEATURES)
    frame["y"] = y
    return frame


@dataclass
class Pipeline:
    root: Path
    params: Params
    ingest: IngestResult
    preprocess: PreprocessResult
    train: TrainResult
    calibrate: CalibrateResult
    evaluate: EvaluateResult


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    """One real run of the five steps, shared by the module (read-only for the tests)."""
    root = tmp_path_factory.mktemp("project")
    synthetic_frame().to_csv(root / "data.csv", index=False)
    (root / "params.yaml").write_text(PARAMS_YAML, encoding="utf-8")
    params = load_params(root / "params.yaml")
    return Pipeline(
        root=root,
        params=params,
        ingest=ingest(params, root),
        preprocess=preprocess(params, root),
        train=train(params, root),
        calibrate=calibrate(params, root),
        evaluate=evaluate(params, root),
    )


@pytest.fixture
def copy_project(pipeline, tmp_path):
    """``copy_project(*overrides)`` -> (root, params): a private copy of the pipeline's project
    (so a test can rerun a step without touching the shared one) and its params with overrides."""

    def _copy(*overrides: str) -> tuple[Path, Params]:
        root = tmp_path / "project"
        shutil.copytree(pipeline.root, root)
        return root, load_params(root / "params.yaml", overrides)

    return _copy


def read_csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def normal_validation(root: Path) -> pd.DataFrame:
    val = pd.read_parquet(root / "data/processed/validation.parquet")
    return val[val["y"] == 0][FEATURES]


# --------------------------------------------------------------------------- outputs
def test_every_step_writes_its_declared_outputs(pipeline):
    root = pipeline.root
    expected = [
        "models/preprocessing.keras",
        "models/preprocessing.json",
        "models/detector.keras",
        "models/training_history.json",
        "plots/loss.csv",
        "models/model.keras",
        "models/threshold.json",
        "metrics.json",
        *DATA_FILES,
        *PNG_FILES,
    ]
    for rel in expected:
        assert (root / rel).is_file(), rel
    for result in (pipeline.preprocess, pipeline.train, pipeline.calibrate, pipeline.evaluate):
        assert result.outputs and all(p.is_file() for p in result.outputs)
    # atomic writes leave no temporary files behind
    leftovers = [p for d in ("models", "plots") for p in (root / d).iterdir() if p.name[0] == "."]
    assert leftovers == []
    assert {p.name for p in (root / "models").iterdir()} == {
        "preprocessing.keras", "preprocessing.json", "detector.keras",
        "training_history.json", "model.keras", "threshold.json",
    }


def test_preprocess_profiles_the_normal_training_rows(pipeline):
    import keras

    train_df = pd.read_parquet(pipeline.root / "data/processed/train.parquet")
    normal = train_df[train_df["y"] == 0]
    assert pipeline.preprocess.metrics == {"n_rows": len(normal), "n_features": 4}
    meta = json.loads((pipeline.root / "models/preprocessing.json").read_text())
    assert meta["columns"] == FEATURES
    assert meta["scaling"] == "robust" and meta["tail_compression"] is True
    for col in meta["profile"]:  # robust scaling: centre = median, scale = IQR of normal rows
        values = normal[col["name"]].to_numpy("float32").astype("float64")
        q75, q25 = np.percentile(values, [75, 25])
        assert col["centre"] == pytest.approx(np.median(values), rel=1e-5, abs=1e-6)
        assert col["scale"] == pytest.approx(q75 - q25, rel=1e-5)
    model = keras.models.load_model(pipeline.root / "models/preprocessing.keras", safe_mode=True)
    assert list(model.input.keys()) == FEATURES


def test_train_records_history_and_one_loss_row_per_epoch(pipeline):
    metrics = pipeline.train.metrics
    assert {"fit_seconds", "epochs_run", "final_loss", "final_val_loss"} <= set(metrics)
    assert 1 <= metrics["epochs_run"] <= 4 and metrics["fit_seconds"] > 0
    header, rows = read_csv_rows(pipeline.root / "plots/loss.csv")
    assert header == ["epoch", "loss", "val_loss"]
    assert len(rows) == metrics["epochs_run"]
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))
    assert float(rows[-1][1]) == pytest.approx(metrics["final_loss"])
    assert float(rows[-1][2]) == pytest.approx(metrics["final_val_loss"])
    history = json.loads((pipeline.root / "models/training_history.json").read_text())
    assert history["epochs_run"] == metrics["epochs_run"]
    assert len(history["history"]["loss"]) == len(history["history"]["val_loss"]) == len(rows)
    detector = AnomalyDetector.load(pipeline.root / "models/detector.keras")
    assert detector.is_fitted and not detector.is_calibrated  # uncalibrated until calibrate
    assert detector.get_params()["hidden_dims"] == [8, 4]


# --------------------------------------------------------------------------- calibration
def test_fewer_than_two_normal_training_rows_is_a_clear_error(copy_project):
    root, params = copy_project()
    split = root / "data/processed/train.parquet"
    frame = pd.read_parquet(split)
    one_normal = pd.concat([frame[frame["y"] == 0].head(1), frame[frame["y"] == 1]])
    one_normal.to_parquet(split, index=False)
    before = (root / "models/detector.keras").read_bytes()
    with pytest.raises(DataError, match=r"train\.parquet has 1 normal row\(s\); training needs at least 2"):
        train(params, root)
    assert (root / "models/detector.keras").read_bytes() == before  # nothing replaced


def test_a_diverged_training_writes_nothing(copy_project, monkeypatch):
    # A NaN loss cannot be produced on demand with sane data (robust scaling, asinh, Adam): the
    # real fit runs, then its history is given a NaN epoch, as a diverging fit would record.
    root, params = copy_project("train.learning_rate=0.5")
    real_fit = AnomalyDetector.fit

    def diverging_fit(self, *args, **kwargs):
        fitted = real_fit(self, *args, **kwargs)
        self.history_["loss"][-1] = float("nan")
        return fitted

    monkeypatch.setattr(AnomalyDetector, "fit", diverging_fit)
    before = {name: (root / name).read_bytes()
              for name in ("models/detector.keras", "models/training_history.json", "plots/loss.csv")}
    epochs = len(json.loads((root / "models/training_history.json").read_text())["history"]["loss"])
    with pytest.raises(TrainingDiverged, match=r"training diverged: loss is nan at epoch \d+; "
                       r"lower train\.learning_rate \(now 0\.5\)"):
        train(params, root)
    assert {name: (root / name).read_bytes() for name in before} == before
    assert epochs >= 1


def test_threshold_is_the_quantile_of_normal_validation_scores(pipeline):
    model = AnomalyDetector.load(pipeline.root / "models/model.keras")
    scores = model.score_samples(normal_validation(pipeline.root))
    assert model.threshold_ == pytest.approx(np.quantile(scores, 0.99), rel=1e-6)
    assert pipeline.calibrate.metrics["threshold"] == pytest.approx(model.threshold_)
    assert pipeline.calibrate.metrics["false_alarm_rate"] == pytest.approx(
        np.mean(scores > model.threshold_)
    )


def test_threshold_json_round_trips(pipeline):
    data = json.loads((pipeline.root / "models/threshold.json").read_text())
    model = AnomalyDetector.load(pipeline.root / "models/model.keras")
    assert ThresholdResult.from_dict(data) == model.threshold_record_
    assert data["method"] == "quantile" and data["params"] == {"q": 0.99}
    assert data["expected_false_alarm_rate"] == data["false_alarm_rate"]
    assert data["nominal_false_alarm_rate"] == pytest.approx(0.01)
    assert data["labels_used"] is True
    assert data["n_calibration"] == data["n_validation_normal"] == len(normal_validation(pipeline.root))


@pytest.mark.parametrize(
    ("method", "expected_params"),
    [
        ("quantile", {"q": 0.95}),
        ("mean_std", {"k": 2.5}),
        ("median_mad", {"k": 2.5}),
        ("iqr", {"k": 2.0}),
        ("pot", {"target_false_alarm_rate": 0.01, "initial_quantile": 0.9}),
        ("best_f1", {}),
    ],
)
def test_every_threshold_method_calibrates(copy_project, method, expected_params):
    root, params = copy_project(
        f"threshold.method={method}", "threshold.quantile.q=0.95", "threshold.mean_std.k=2.5",
        "threshold.median_mad.k=2.5", "threshold.iqr.k=2.0",
    )
    result = calibrate(params, root)
    data = json.loads((root / "models/threshold.json").read_text())
    assert data["method"] == method
    for key, value in expected_params.items():
        assert data["params"][key] == pytest.approx(value)
    model = AnomalyDetector.load(root / "models/model.keras")
    assert model.threshold_ == pytest.approx(data["threshold"]) == pytest.approx(result.threshold)
    assert np.isfinite(model.threshold_)
    # the same threshold as the library computes from the saved model's validation scores
    val = pd.read_parquet(root / "data/processed/validation.parquet")
    scores = model.score_samples(val[FEATURES])
    by_hand = calibrate_threshold(scores, method, labels=val["y"].to_numpy(), **expected_params)
    assert by_hand.threshold == pytest.approx(model.threshold_, rel=1e-6)


def test_best_f1_without_labels_names_threshold_method(copy_project):
    root, params = copy_project("threshold.method=best_f1", "data.label_column=null")
    before = (root / "models/model.keras").read_bytes()
    with pytest.raises(ConfigError, match=r"threshold\.method") as err:
        calibrate(params, root)
    assert "best_f1" in str(err.value) and "data.label_column" in str(err.value)
    assert "threshold.method" in err.value.keys
    assert (root / "models/model.keras").read_bytes() == before  # nothing replaced


def test_pot_with_too_few_tail_scores_names_threshold_method(copy_project):
    root, params = copy_project("threshold.method=pot", "threshold.pot.initial_quantile=0.99")
    with pytest.raises(ConfigError, match=r"threshold\.method: pot cannot calibrate"):
        calibrate(params, root)


# --------------------------------------------------------------------------- evaluation
def test_metrics_json_keys_and_ranges(pipeline):
    metrics = json.loads((pipeline.root / "metrics.json").read_text())
    required = {"roc_auc", "pr_auc", "precision", "recall", "f1", "threshold"}
    assert required <= set(metrics)
    assert {"n_test", "anomaly_rate", "flagged_rate"} <= set(metrics)
    for key in ("roc_auc", "pr_auc", "precision", "recall", "f1", "anomaly_rate", "flagged_rate"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["roc_auc"] > 0.9  # the anomalies are 8 standard deviations away
    assert metrics["pr_auc"] > 0.5
    assert metrics["threshold"] == pytest.approx(pipeline.calibrate.threshold)
    test = pd.read_parquet(pipeline.root / "data/processed/test.parquet")
    assert metrics["n_test"] == len(test)
    assert metrics["anomaly_rate"] == pytest.approx(test["y"].mean())
    # precision / recall / f1 at the threshold, recomputed from the saved model
    model = AnomalyDetector.load(pipeline.root / "models/model.keras")
    flagged = model.predict(test[FEATURES]).astype(bool)
    y = test["y"].to_numpy() == 1
    tp = int((flagged & y).sum())
    assert metrics["precision"] == pytest.approx(tp / max(flagged.sum(), 1))
    assert metrics["recall"] == pytest.approx(tp / y.sum())
    assert metrics["flagged_rate"] == pytest.approx(flagged.mean())
    assert pipeline.evaluate.metrics == metrics and pipeline.evaluate.has_labels


def test_plots_are_valid_pngs(pipeline):
    paths = pipeline.evaluate.plot_paths
    assert [p.relative_to(pipeline.root).as_posix() for p in paths] == list(PNG_FILES)
    for path in paths:
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE, path
        width, height = struct.unpack(">II", data[16:24])  # IHDR
        assert data[12:16] == b"IHDR" and width > 100 and height > 100, path
        assert len(data) > 5000, path


def test_curve_and_score_files_for_dvc_plots(pipeline):
    n_test = pipeline.evaluate.metrics["n_test"]
    header, rows = read_csv_rows(pipeline.root / "plots/roc.csv")
    assert header == ["fpr", "tpr"] and 2 <= len(rows) <= CURVE_POINTS
    fpr, tpr = np.array(rows, dtype=float).T
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    header, rows = read_csv_rows(pipeline.root / "plots/pr.csv")
    assert header == ["recall", "precision"] and 2 <= len(rows) <= CURVE_POINTS
    recall, precision = np.array(rows, dtype=float).T
    assert np.all(np.diff(recall) >= 0) and recall[-1] == 1.0
    assert np.all((precision >= 0) & (precision <= 1))
    header, rows = read_csv_rows(pipeline.root / "plots/scores.csv")
    assert header == ["score", "label"] and len(rows) == n_test
    assert {r[1] for r in rows} == {"0", "1"}


def test_evaluate_without_labels_writes_reduced_metrics(copy_project):
    root, params = copy_project("data.label_column=null")
    result = evaluate(params, root)
    metrics = json.loads((root / "metrics.json").read_text())
    assert set(metrics) == {"threshold", "n_test", "flagged_rate"}
    assert metrics == result.metrics
    assert not result.has_labels and "no labels" in result.note
    assert 0.0 <= metrics["flagged_rate"] <= 1.0
    # every declared out still exists (DVC), but only informative plots are returned
    assert all((root / rel).is_file() for rel in (*DATA_FILES, *PNG_FILES))
    assert [p.name for p in result.plot_paths] == ["score_histogram.png", "top_contributions.png"]
    header, rows = read_csv_rows(root / "plots/roc.csv")
    assert header == ["fpr", "tpr"] and rows == []
    header, rows = read_csv_rows(root / "plots/scores.csv")
    assert header == ["score"] and len(rows) == metrics["n_test"]


# --------------------------------------------------------------------------- errors
def test_lstm_autoencoder_needs_a_timestamp_column(copy_project):
    # a table without data.timestamp_column is no series: the sequence kind says what is missing
    root, params = copy_project("model.kind=lstm_autoencoder")
    before = (root / "models/detector.keras").read_bytes()
    for step in (preprocess, train):
        with pytest.raises(ConfigError, match=r"data\.timestamp_column: model\.kind lstm_autoencoder"):
            step(params, root)
    with pytest.raises(ConfigError) as err:
        detector_from_params(params)
    assert err.value.keys == ["data.timestamp_column"]
    assert (root / "models/detector.keras").read_bytes() == before


@pytest.mark.parametrize(
    ("step", "missing"),
    [(train, "preprocess"), (calibrate, "train"), (evaluate, "calibrate")],
)
def test_missing_input_names_the_step_to_run(copy_project, step, missing):
    root, params = copy_project()
    shutil.rmtree(root / "models")
    with pytest.raises(FileNotFoundError, match=f"anomaly stage {missing}"):
        step(params, root)


def test_steps_need_the_split(tmp_path):
    params = Params.model_validate({"data": {"source": "x.csv", "label_column": "y"}})
    with pytest.raises(FileNotFoundError, match="anomaly stage ingest"):
        preprocess(params, tmp_path)
