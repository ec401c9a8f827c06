"""The drift reference travels with the model: a version trained and registered by the real
training flow, a day of batches scored by it, then another ingest replaces the working copy's
training split; the report still measures drift against the training data of the version that
scored the day (its reference, fetched from the registry), number for number."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from flows.steps.score import Ledger
from tests.e2e.project import make_project, sensor_frame

# e2e: real services and trainings; the global limit of pyproject.toml is too short for them
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

FEATURES = ["temp", "pressure", "flow", "vibration"]


def test_drift_is_measured_against_the_champions_reference_after_another_training(
    tmp_path, prefect_api
):
    from flows.config import load_params
    from flows.data_quality import data_quality_flow
    from flows.scoring import scoring_flow
    from flows.stages import run_stage
    from flows.steps.report import compute_drift, entry_day
    from flows.training import training_flow

    root = make_project(tmp_path / "project")
    params = load_params(root / "params.yaml")
    assert training_flow(params=params, root=str(root))["register"].version == 1
    split = root / "data" / "processed" / "train.parquet"
    original = pd.read_parquet(split)
    assert (
        json.loads((root / "data/processed/split.json").read_text())["feature_columns"] == FEATURES
    )

    # a day of batches scored by version 1 (the champion): one like its training data, one not
    incoming = root / "data" / "incoming"
    incoming.mkdir(parents=True)
    high = original[original["vibration"] > original["vibration"].quantile(0.7)]
    original[FEATURES].sample(300, replace=True, random_state=1).to_csv(
        incoming / "good.csv", index=False
    )
    high[FEATURES].sample(300, replace=True, random_state=2).to_parquet(
        incoming / "drifted.parquet", index=False
    )
    summary = scoring_flow(params=params, root=str(root))
    assert sorted((b.batch, b.status) for b in summary.batches) == [
        ("drifted.parquet", "scored"),
        ("good.csv", "scored"),
    ]
    ledger = Ledger(root / "data" / "scored").read()
    entries = {e["batch"]: e for e in ledger["batches"].values()}
    assert {e["model_version"] for e in entries.values()} == {1}
    days = {entry_day(e["scored_at"]) for e in entries.values()}
    if len(days) != 1:  # the run straddled midnight UTC
        pytest.skip(f"the batches were scored on two UTC days {sorted(days)}; rerun the test")

    # another training's ingest replaces the working copy's split with other data
    other = sensor_frame(n=900, seed=7)
    other["temp"] += 15.0
    other["vibration"] *= 3.0
    other.to_csv(root / "data" / "raw" / "other.csv", index=False)
    run_stage("ingest", load_params(root / "params.yaml", ["data.source=data/raw/other.csv"]), root)
    replaced = pd.read_parquet(split)
    assert len(replaced) != len(original)
    (root / "data" / "interim" / "drift_reference.parquet").unlink()  # the working copy's: unused

    report = data_quality_flow(date=days.pop().isoformat(), params=params, root=str(root))

    drift = report.drift
    assert drift.available, drift.note
    assert drift.note is None
    assert (drift.reference_version, drift.reference) == (1, "data/interim/references/1.parquet")
    assert drift.training_split == "data/processed/train.parquet"
    assert drift.training_rows == drift.training_sample == len(original)  # under 20,000: whole
    # the numbers: drift.py's own functions on the original training split and the day's rows
    outputs = {name: pd.read_parquet(root / e["output"]) for name, e in entries.items()}
    day = pd.concat(outputs.values(), ignore_index=True)
    assert drift.day_sample == len(day) == 600
    expected = compute_drift(original, day, FEATURES)
    assert [f.feature for f in drift.features] == FEATURES
    for got, want in zip(drift.features, expected, strict=True):
        assert got.psi == pytest.approx(want.psi, rel=1e-9, abs=1e-12), got.feature
        assert got.ks_statistic == pytest.approx(want.ks_statistic), got.feature
        assert got.ks_pvalue == pytest.approx(want.ks_pvalue), got.feature
        assert (got.train_rows, got.day_rows) == (want.train_rows, want.day_rows)
        assert got.train_mean == pytest.approx(want.train_mean) and got.edges == pytest.approx(
            want.edges
        )
    assert (
        drift.drifted == [f.feature for f in expected if f.drifted] and "vibration" in drift.drifted
    )
    # per batch: each against its version's reference, the same numbers
    for b in report.batches:
        own = compute_drift(original, outputs[b.batch], FEATURES)
        assert b.max_psi == pytest.approx(max(f.psi for f in own)), b.batch
        assert b.drifted_features == [f.feature for f in own if f.drifted], b.batch
    # the replaced split would have given other numbers (temp moved by 15)
    against_replaced = {f.feature: f.psi for f in compute_drift(replaced, day, FEATURES)}
    assert against_replaced["temp"] > 1.0 > drift.features[0].psi

    page = report.html.read_text()
    assert "of the training split of model version 1 (its drift reference" in page
    assert json.loads(report.json_path.read_text())["drift"]["reference_version"] == 1
