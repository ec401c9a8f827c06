"""The training flow with the sequence detector, end to end: real Prefect, GX, Keras, MLflow.

A 3-channel series (noisy sines, 2,000 points at 1-minute timestamps, rows shuffled in the file)
with a labelled shape anomaly in the test split trains through ``training_flow``; the registered
pyfunc scores a series with and without ``context_rows``; bad series fail ``anomaly train`` with
their message on stderr and no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest

from flows.steps.score import Ledger
from tests.e2e.project import BIN, cli_env, make_project, sine_series

# e2e: real services and trainings; the global limit of pyproject.toml is too short for them
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

CHANNELS = ["s0", "s1", "s2"]
N_POINTS = 2000
ANOMALY = (1800, 1830)  # inside the test split (the newest 20 %: points 1600-1999)
SEQUENCE = [
    "data.timestamp_column=timestamp",
    "model.kind=lstm_autoencoder",
    "model.window=16",
    "train.epochs=3",
    "train.batch_size=64",
    "train.learning_rate=0.003",  # 3 epochs: faster than the kind's default 1e-3 needs
]


def series(n: int = N_POINTS, seed: int = 0, anomaly: tuple[int, int] | None = ANOMALY) -> pd.DataFrame:
    """The e2e series: noisy sines with a shape anomaly in the test split (label ``anomaly``)."""
    return sine_series(n, seed, anomaly)


@pytest.fixture(scope="module")
def sequence_project(tmp_path_factory, prefect_api):
    from flows.config import load_params
    from flows.training import training_flow

    data = series().sample(frac=1.0, random_state=0)  # unsorted rows: ingest sorts them
    root = make_project(tmp_path_factory.mktemp("sequence"), data=data)
    params = load_params(root / "params.yaml", SEQUENCE)
    results = training_flow(params=params, root=str(root))
    return root, params, results


def test_flow_registers_a_sequence_model_with_per_point_metrics_and_plots(sequence_project):
    root, params, results = sequence_project
    assert list(results) == ["ingest", "validate", "preprocess", "train", "calibrate", "evaluate",
                             "register"]
    assert results["ingest"].metrics["sorted_by_ingest"] == 1
    registration = results["register"].registration
    assert registration.version == 1 and set(registration.aliases) == {"champion", "challenger"}

    metrics = json.loads((root / "metrics.json").read_text())
    assert {"roc_auc", "pr_auc", "precision", "recall", "f1", "threshold"} <= set(metrics)
    assert metrics["n_test"] == 400 and metrics["n_anomalies"] == ANOMALY[1] - ANOMALY[0]
    assert metrics["roc_auc"] > 0.8  # a frozen channel and a square wave, after 3 epochs

    for rel in ("plots/series_flagged.png", "plots/reconstruction_error.png",
                "plots/score_histogram.png", "plots/roc_curve.png"):
        assert (root / rel).read_bytes().startswith(b"\x89PNG"), rel
    suite = json.loads((root / "data/interim/expectation_suite.json").read_text())
    assert any(e["type"] == "expect_column_values_to_be_increasing" for e in suite["expectations"])


def test_registered_pyfunc_scores_a_series_with_and_without_context(sequence_project):
    import mlflow

    root, params, results = sequence_project
    # set_tracking_uri also writes os.environ: restore both, or later tests inherit this store
    previous = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    try:
        model = mlflow.pyfunc.load_model(f"models:/{params.registry.model_name}@champion")
    finally:
        mlflow.set_tracking_uri(previous[0])
        if previous[1] is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous[1]

    meta = model.metadata.metadata
    assert meta["anomaly_kind"] == "lstm_autoencoder" and meta["timestamp_column"] == "timestamp"
    context = meta["context_rows"]
    assert context >= 15  # window - 1 (+ half the smoothing)
    params_schema = model.metadata.get_params_schema()
    assert [(p.name, p.default) for p in params_schema.params] == [("context_rows", 0)]
    assert [c.name for c in model.metadata.get_input_schema().inputs] == CHANNELS

    validation = pd.read_parquet(root / "data/processed/validation.parquet")
    test = pd.read_parquet(root / "data/processed/test.parquet")
    alone = model.predict(test[CHANNELS])
    assert len(alone) == len(test) and {"anomaly_score", "is_anomaly"} <= set(alone.columns)

    # a stream: the last `context_rows` validation points, then the test batch
    batch = pd.concat([validation.iloc[-context:], test], ignore_index=True)
    streamed = model.predict(batch, params={"context_rows": context})
    assert len(streamed) == len(test)

    from anomaly_models import AnomalyDetector

    detector = AnomalyDetector.load(root / "models/model.keras")
    whole = pd.concat([validation, test], ignore_index=True)[CHANNELS]
    expected = detector.score_frame(whole).iloc[len(validation):]
    np.testing.assert_allclose(streamed["anomaly_score"], expected["anomaly_score"], rtol=1e-5)
    # without context only the first points differ (a series start), the rest is the same
    np.testing.assert_allclose(alone["anomaly_score"].iloc[context:],
                               expected["anomaly_score"].iloc[context:], rtol=1e-5)
    assert streamed["is_anomaly"].iloc[ANOMALY[0] - 1600 : ANOMALY[1] - 1600].any()


def _bad_projects(tmp_path):
    good = series()
    duplicated = good.copy()
    duplicated.loc[101, "timestamp"] = duplicated.loc[100, "timestamp"]
    with_nan = good.copy()
    with_nan.loc[[500, 501], "s1"] = np.nan
    cases = {
        "duplicated": (duplicated, [], 1, ["duplicated timestamp", "2024-01-01 01:40:00"]),
        "nan": (with_nan, [], 1, ["value column(s) ['s1']", "NaN", "2024-01-01 08:20:00"]),
        "gap": (good.drop(index=range(700, 720)), [], 1,
                ["1 gap(s)", "2024-01-01 11:39:00 and 2024-01-01 12:00:00", "data.on_gap"]),
        "short": (good.iloc[:60], [], 1, ["has 12 points, fewer than model.window=16"]),
        "no timestamp column": (good, ["data.timestamp_column=null"], 2,
                                ["data.timestamp_column", "lstm_autoencoder"]),
    }
    for name, (frame, extra, code, needles) in cases.items():
        root = make_project(tmp_path / name.replace(" ", "_"), data=frame)
        yield name, root, extra, code, needles


def test_bad_series_fail_anomaly_train_with_their_message(prefect_api, tmp_path):
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()  # the test session's Prefect API: no server start per run
    running = []
    for name, root, extra, code, needles in _bad_projects(tmp_path):
        env = cli_env(root)
        if api:
            env["PREFECT_API_URL"] = api
        args = [str(BIN / "anomaly"), "train"]
        for setting in [*SEQUENCE, *extra]:
            args += ["--set", setting]
        process = subprocess.Popen(args, cwd=root, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        running.append((name, root, code, needles, process))
    for name, root, code, needles, process in running:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == code, f"{name}: {stderr[-2000:]}"
        for needle in needles:
            assert needle in stderr, f"{name}: {needle!r} not in {stderr[-2000:]}"
        assert "Traceback" not in stderr, f"{name}: {stderr[-2000:]}"
        assert not (root / "models").exists(), name  # nothing trained, nothing registered


def test_scoring_flow_continues_a_series_across_batches(sequence_project, tmp_path):
    """Two consecutive batches of new points, scored by the scoring flow with the registered
    champion: one output row per point, and the second batch (continued from the first with
    the context kept in the ledger) scores like the same points of one long series."""
    from anomaly_models import AnomalyDetector
    from flows.config import load_params
    from flows.scoring import scoring_flow

    root, _, _ = sequence_project
    future = series(n=N_POINTS + 600, seed=7, anomaly=None).iloc[N_POINTS:]  # later minutes
    future = future.drop(columns="anomaly").reset_index(drop=True)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    future.iloc[:300].to_csv(incoming / "2024-01-02T09.csv", index=False)
    future.iloc[300:].to_parquet(incoming / "2024-01-02T14.parquet", index=False)
    params = load_params(root / "params.yaml", [
        *SEQUENCE,
        f"scoring.incoming_dir={incoming}",
        f"scoring.scored_dir={tmp_path / 'scored'}",
        f"scoring.quarantine_dir={tmp_path / 'quarantine'}",
        "scoring.chunk_rows=120",  # chunks inside each batch continue each other too
    ])

    summary = scoring_flow(params=params, root=str(root))

    assert [(b.batch, b.status) for b in summary.batches] == [
        ("2024-01-02T09.csv", "scored"), ("2024-01-02T14.parquet", "scored")]
    first = pd.read_parquet(tmp_path / "scored" / "2024-01-02T09.parquet")
    second = pd.read_parquet(tmp_path / "scored" / "2024-01-02T14.parquet")
    assert len(first) == 300 and len(second) == 300  # one row per input point
    assert list(second["timestamp"]) == list(future["timestamp"].iloc[300:])
    detector = AnomalyDetector.load(root / "models/model.keras")
    expected = detector.score_samples(future[CHANNELS])
    np.testing.assert_allclose(second["anomaly_score"], expected[300:], rtol=1e-5)
    ledger = Ledger(tmp_path / "scored").read()
    entries = {e["batch"]: e for e in ledger["batches"].values()}
    assert entries["2024-01-02T14.parquet"]["context_from"] == "2024-01-02T09.csv"
    assert ledger["stream"]["batch"] == "2024-01-02T14.parquet"
    kept_until = pd.Timestamp(ledger["stream"]["last_timestamp"])  # naive times read as UTC
    assert kept_until.tz_localize(None) == future["timestamp"].iloc[-1]

    # a batch whose rows are out of time order is quarantined, naming the rows
    late = series(n=N_POINTS + 700, seed=8, anomaly=None).iloc[N_POINTS + 600:].drop(columns="anomaly")
    late.iloc[[0, 2, 1, *range(3, len(late))]].to_csv(incoming / "2024-01-02T19.csv", index=False)
    summary = scoring_flow(params=params, root=str(root))
    (result,) = summary.batches
    assert result.status == "quarantined"
    assert "'timestamp': must be strictly increasing" in result.reason and "at rows 2" in result.reason
