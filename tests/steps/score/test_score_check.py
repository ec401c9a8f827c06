"""Per-chunk validation: GX of the first chunk in the background while the batch is scored,
its verdict collected before the output is renamed; a scored file fed back in; the order of
failure lines."""

from __future__ import annotations

import importlib
import json
import threading

import numpy as np
import pandas as pd
import pytest

from flows.steps.score import Ledger, RunState, failure_rank, score_batch

FEATURES = ["a", "b", "c"]
check_module = importlib.import_module("flows.steps.score.check")


def _recording(state: RunState, calls: list, hold: threading.Event | None = None) -> None:
    """Wrap the run's GX validator: record (thread, GX batch name, tmp file there, verdict);
    with ``hold``, GX waits (up to 20 s) for the event before it validates."""
    real = state.validator.validate

    def validate(df, suite, batch_name, *args, **kwargs):
        waited = hold.wait(timeout=20) if hold is not None else None
        report = real(df, suite, batch_name, *args, **kwargs)
        calls.append({"thread": threading.current_thread().name, "batch": batch_name,
                      "rows": len(df), "waited": waited, "success": report.success})
        return report

    state.validator.validate = validate


@pytest.mark.slow
def test_gx_rejecting_the_first_chunk_after_the_batch_was_scored_writes_nothing(
    tmp_path, model, monkeypatch, make_options, make_scorer, make_batch
):
    """The first chunk's GX validation runs in the background while the rest of the batch is
    scored and written. If GX rejects it when the quick check had passed it (they agree by
    design, so the quick check is forced to pass here: a fault that cannot be made for real),
    the batch is quarantined and the partly written file is deleted.

    GX is held until the scoring thread has scored the third chunk, so the test proves the
    overlap: run in the scoring thread, GX would wait for itself and time out."""
    detector, suite, _ = model
    monkeypatch.setattr(check_module, "quick_check", lambda frame, suite: True)
    options = make_options(tmp_path, 1000)
    batch = make_batch(4000, seed=5)
    batch.loc[10:29, "a"] = np.nan  # 2 % of the first chunk null: the contract allows none
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    batch.to_parquet(incoming / "early.parquet", index=False)
    state, gx_calls, predicted, partial = RunState.start(options.dirs), [], [], []
    third_chunk_scored = threading.Event()
    _recording(state, gx_calls, hold=third_chunk_scored)
    scorer = make_scorer(detector)

    def predict(x):
        predicted.append(len(x))
        partial.append((tmp_path / "scored" / "early.parquet.tmp").exists())
        out = detector.score_frame(x)
        if len(predicted) == 3:
            third_chunk_scored.set()
        return out

    scorer.predict = predict

    result = score_batch(incoming / "early.parquet", scorer=scorer, suite=suite,
                         options=options, state=state)

    assert result.status == "quarantined", result.reason
    assert "column 'a': must not be null: 20 of 1000 rows are null" in result.reason
    report = json.loads((tmp_path / "quarantine" / "early.parquet.report.json").read_text())
    assert report["rows"] == [0, 999] and report["stage"] == "validate"
    assert not list((tmp_path / "scored").glob("*.parquet"))
    assert not list((tmp_path / "scored").glob("*.tmp"))
    assert Ledger(tmp_path / "scored").read()["batches"] == {}
    # GX judged the first chunk only, in its own thread, after the third chunk was scored; the
    # scored chunks were being written meanwhile (the .tmp file existed) and were deleted
    assert gx_calls == [{"thread": "gx-validation_0", "batch": "early.parquet rows 0-999",
                         "rows": 1000, "waited": True, "success": False}]
    assert predicted[:3] == [1000, 1000, 1000]
    assert partial[:3] == [False, True, True]


@pytest.mark.slow
def test_a_passing_first_chunk_is_validated_by_gx_in_the_background_and_stored(
    tmp_path, model, make_options, make_scorer, make_batch
):
    """The quick check passes every chunk of a good batch; GX still validates the first one,
    in the background, and its result is stored in the project's GX context under the batch's
    name and row range. The output is what scoring the whole frame at once gives."""
    detector, suite, _ = model
    options = make_options(tmp_path, 1000)
    batch = make_batch(3000, seed=6)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    batch.to_parquet(incoming / "good.parquet", index=False)
    state, gx_calls = RunState.start(options.dirs), []
    _recording(state, gx_calls)

    result = score_batch(incoming / "good.parquet", scorer=make_scorer(detector), suite=suite,
                         options=options, state=state)

    assert result.status == "scored" and result.chunks == 3, result.reason
    assert gx_calls == [{"thread": "gx-validation_0", "batch": "good.parquet rows 0-999",
                         "rows": 1000, "waited": None, "success": True}]
    out = pd.read_parquet(tmp_path / "scored" / "good.parquet")
    expected = detector.score_frame(batch[FEATURES])
    np.testing.assert_allclose(out["anomaly_score"], expected["anomaly_score"], rtol=1e-6)
    np.testing.assert_array_equal(out["is_anomaly"], expected["is_anomaly"])
    # GX's stored result of that validation: successful, every expectation of the suite evaluated
    stored = [p for p in (tmp_path / "gx").rglob("*.json")
              if "validations" in p.parts and "good.parquet_rows_0-999" in p.parts]
    assert len(stored) == 1, sorted(str(p) for p in (tmp_path / "gx").rglob("*.json"))
    gx_result = json.loads(stored[0].read_text())
    assert gx_result["success"] is True
    assert gx_result["statistics"]["evaluated_expectations"] == len(suite.expectations)
    assert gx_result["statistics"]["unsuccessful_expectations"] == 0
    assert gx_result["meta"]["run_id"]["run_name"] == "good.parquet_rows_0-999"


@pytest.mark.slow
def test_a_scored_file_fed_back_in_is_quarantined(
    tmp_path, model, make_options, make_scorer, make_batch
):
    """An output of scoring dropped into the incoming folder (other bytes than its input, so the
    ledger does not know it) already has the columns scoring adds: quarantined, not scored."""
    detector, suite, _ = model
    options = make_options(tmp_path, 1000)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    make_batch(800, seed=9).to_parquet(incoming / "once.parquet", index=False)
    assert score_batch(incoming / "once.parquet", scorer=make_scorer(detector), suite=suite,
                       options=options).status == "scored"
    (incoming / "twice.parquet").write_bytes((tmp_path / "scored" / "once.parquet").read_bytes())

    result = score_batch(incoming / "twice.parquet", scorer=make_scorer(detector), suite=suite,
                         options=options)

    assert result.status == "quarantined"
    assert result.reason.startswith("the batch already has column(s) ['anomaly_score', "
                                    "'is_anomaly', 'contribution_a'")
    assert result.reason.endswith("that scoring adds (is it an already scored file?)")
    ledger = Ledger(tmp_path / "scored").read()
    assert [e["batch"] for e in ledger["batches"].values()] == ["once.parquet"]
    assert [e["batch"] for e in ledger["quarantined"]] == ["twice.parquet"]
    assert sorted(p.name for p in (tmp_path / "scored").glob("*.parquet")) == ["once.parquet"]


def test_severity_puts_structure_and_types_before_ranges():
    lines = ["column 'a': 3 of 10 rows outside [0, 1]", "column 'b': must not be null: 1 row",
             "table: columns differ", "column 'c': must be numeric", "column 'd': missing"]
    assert sorted(lines, key=failure_rank) == [lines[2], lines[4], lines[3], lines[1], lines[0]]


@pytest.mark.slow
def test_rows_far_outside_the_training_range_are_scored_marked_and_flagged(
    tmp_path, model, make_options, make_scorer, make_batch
):
    """Extreme values are what a detector exists to flag: 30 of 3,000 rows (1 %, ten times
    validate.range_mostly's 0.1 %) with one feature 100x outside the training range are scored,
    marked ``out_of_range`` and flagged; the batch is not quarantined, and the ledger carries
    the warning."""
    detector, suite, train = model
    options = make_options(tmp_path, 1000)
    batch = make_batch(3000, seed=4)
    far = list(range(5, 3000, 100))
    batch.loc[far, "a"] = train["a"].max() * 100  # in the first chunk and in later ones
    batch.loc[far[:3], "b"] = train["b"].min() * 100  # two features outside on these
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    batch.to_parquet(incoming / "burst.parquet", index=False)

    result = score_batch(incoming / "burst.parquet", scorer=make_scorer(detector), suite=suite,
                         options=options)

    assert result.status == "scored", result.reason
    out = pd.read_parquet(tmp_path / "scored" / "burst.parquet")
    expected = np.zeros(3000, dtype="int64")
    expected[far] = 1
    expected[far[:3]] = 2
    np.testing.assert_array_equal(out["out_of_range"], expected)
    assert out.loc[far, "is_anomaly"].all()
    assert result.out_of_range_rows == 30 and "30 out of the training range" in result.line()
    (entry,) = Ledger(tmp_path / "scored").read()["batches"].values()
    assert entry["out_of_range_rows"] == 30 and entry["out_of_range"] == {"a": 30, "b": 3}
    (warning,) = [w for w in entry["warnings"] if w.startswith("rows 0-999: column 'a'")]
    assert "10 of 1000 rows outside" in warning
    assert not (tmp_path / "quarantine").exists() or not any((tmp_path / "quarantine").iterdir())


@pytest.mark.slow
def test_a_nan_the_contract_allows_is_imputed_not_rejected(
    tmp_path, model, make_options, make_scorer, make_batch
):
    """With validate.max_null_fraction > 0 a batch with a few NaN passes GX and is scored: each
    NaN as the training median (the model's own imputation); beyond the fraction it is
    quarantined."""
    from flows.config import Params
    from flows.expectations import build_suite

    detector, _, train = model
    allowing = build_suite(train, ["a", "b", "c"], Params.model_validate(
        {"data": {"label_column": None}, "validate": {"max_null_fraction": 0.01}}))
    options = make_options(tmp_path, 1000)
    batch = make_batch(2000, seed=6)
    gaps = [3, 500, 1500]
    batch.loc[gaps, "b"] = np.nan
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    batch.to_parquet(incoming / "gaps.parquet", index=False)
    result = score_batch(incoming / "gaps.parquet", scorer=make_scorer(detector),
                         suite=allowing, options=options)
    assert result.status == "scored", result.reason
    out = pd.read_parquet(tmp_path / "scored" / "gaps.parquet")
    median = detector.network_.preprocessing_model.get_layer("impute_median").fill_values[1]
    assert median == pytest.approx(float(np.median(train["b"])), abs=0.05)  # train rows' median
    filled = batch[["a", "b", "c"]].fillna({"b": float(median)})
    np.testing.assert_allclose(out["anomaly_score"], detector.score_samples(filled), rtol=1e-5)
    assert out["b"].isna().sum() == 3  # the input columns are kept as they came

    too_many = make_batch(1000, seed=7)
    too_many.loc[: 19, "b"] = np.nan  # 2 % > 1 %
    too_many.to_parquet(incoming / "holes.parquet", index=False)
    rejected = score_batch(incoming / "holes.parquet", scorer=make_scorer(detector),
                           suite=allowing, options=options)
    assert rejected.status == "quarantined"
    assert "column 'b': must not be null: 20 of 1000 rows are null" in rejected.reason
