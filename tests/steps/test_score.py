"""The scoring step without Prefect or MLflow: chunked reading and scoring, the ledger, recovery.

A small real Keras detector and a real GX suite (built from its training rows); the scorer is the
detector's own ``score_frame``, so chunked output can be compared with scoring the whole frame.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.config import Params
from flows.steps import score as steps

FEATURES = ["a", "b", "c"]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    return pd.DataFrame(
        {
            "a": 10 + 2 * z + rng.normal(scale=0.3, size=n),
            "b": -z + rng.normal(scale=0.3, size=n),
            "c": rng.uniform(0, 5, size=n),
        }
    )


def _params(tmp_path, chunk_rows: int) -> Params:
    return Params.model_validate(
        {
            "data": {"source": "unused.csv", "label_column": None},
            "scoring": {
                "incoming_dir": str(tmp_path / "incoming"),
                "scored_dir": str(tmp_path / "scored"),
                "quarantine_dir": str(tmp_path / "quarantine"),
                "chunk_rows": chunk_rows,
                "passthrough_columns": ["site"],
            },
        }
    )


@pytest.fixture(scope="module")
def model():
    """(detector, suite, training frame): a tiny calibrated detector and its GX suite."""
    from anomaly_models import AnomalyDetector
    from flows.steps.validate import build_suite

    train = _frame(2000, seed=0)
    detector = AnomalyDetector(hidden_dims=[4, 2], epochs=2, batch_size=256, seed=0).fit(train)
    detector.calibrate(_frame(500, seed=1))
    suite = build_suite(train, FEATURES, Params.model_validate({"data": {"label_column": None}}))
    return detector, suite, train


def _scorer(detector) -> steps.BatchScorer:
    return steps.BatchScorer(
        predict=detector.score_frame,
        features=FEATURES,
        model=steps.ModelRef(name="unit", version=7, alias="champion", uri="models:/unit/7"),
    )


def _batch(n: int = 5000, seed: int = 2) -> pd.DataFrame:
    """Rows drawn from the training distribution's core (always inside the suite's ranges)."""
    df = _frame(n, seed)
    df["a"] = df["a"].clip(7, 13)
    df["b"] = df["b"].clip(-1.5, 1.5)
    df["site"] = [f"s{i % 3}" for i in range(n)]  # scoring.passthrough_columns: kept, not validated
    return df


@pytest.mark.slow
def test_parquet_batch_is_scored_in_chunks_and_matches_unchunked_scores(tmp_path, model):
    detector, suite, _ = model
    params = _params(tmp_path, chunk_rows=600)
    batch = _batch()
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    # row groups of 700 rows: chunks of 600 cross row-group boundaries
    pq.write_table(pa.Table.from_pandas(batch, preserve_index=False), incoming / "big.parquet",
                   row_group_size=700)

    result = steps.score_batch(incoming / "big.parquet", scorer=_scorer(detector), suite=suite,
                               params=params, root=tmp_path)

    assert result.status == "scored", result.reason
    assert result.rows == 5000
    assert result.chunks == 8  # 8 x 600 + 200: the short tail joins the last chunk
    out = pd.read_parquet(tmp_path / "scored" / "big.parquet")
    expected = detector.score_frame(batch[FEATURES])
    assert list(out.columns) == [*batch.columns, *expected.columns, *steps.MODEL_COLUMNS]
    pd.testing.assert_frame_equal(out[list(batch.columns)], batch)
    np.testing.assert_allclose(out["anomaly_score"], expected["anomaly_score"], rtol=1e-6)
    np.testing.assert_array_equal(out["is_anomaly"], expected["is_anomaly"])
    contributions = [c for c in expected.columns if c.startswith("contribution_")]
    np.testing.assert_allclose(out[contributions], expected[contributions], rtol=1e-5, atol=1e-9)
    assert result.flagged == int(expected["is_anomaly"].sum())
    assert set(out["model_version"]) == {7} and set(out["model_alias"]) == {"champion"}
    assert out["scored_at"].dt.tz is not None and out["scored_at"].nunique() == 1
    meta = pq.ParquetFile(tmp_path / "scored" / "big.parquet").metadata
    assert meta.num_row_groups == 8
    encodings = {meta.schema.column(i).name: meta.row_group(0).column(i).encodings
                 for i in range(meta.num_columns)}
    floats = ["a", "b", "c", "anomaly_score", *contributions]
    assert all("BYTE_STREAM_SPLIT" in encodings[c] for c in floats), encodings
    assert not any("BYTE_STREAM_SPLIT" in encodings[c] for c in ("is_anomaly", "site"))

    # the ledger holds it; the input moved to incoming/_done; no temporary file is left
    ledger = steps.Ledger(tmp_path / "scored").read()
    (entry,) = ledger["batches"].values()
    assert entry["rows"] == 5000 and entry["chunks"] == 8 and entry["model_version"] == 7
    assert entry["sha256"] == steps.file_sha256(incoming / "_done" / "big.parquet")
    assert not (incoming / "big.parquet").exists()
    assert not list((tmp_path / "scored").glob("*.tmp")) and ledger["in_progress"] == {}

    # the same content again, under another name: skipped (and archived), not scored twice
    pq.write_table(pa.Table.from_pandas(batch, preserve_index=False), incoming / "again.parquet",
                   row_group_size=700)
    again = steps.score_batch(incoming / "again.parquet", scorer=_scorer(detector), suite=suite,
                              params=params, root=tmp_path)
    assert again.status == "skipped" and "already scored" in again.reason
    assert (incoming / "_done" / "again.parquet").exists()
    assert sorted(p.name for p in (tmp_path / "scored").glob("*.parquet")) == ["big.parquet"]


@pytest.mark.slow
def test_csv_batch_in_chunks_matches_the_parquet_scores(tmp_path, model):
    detector, suite, _ = model
    params = _params(tmp_path, chunk_rows=1250)
    batch = _batch(seed=3)
    path = tmp_path / "day.csv"  # a path outside the incoming folder: scored, left in place
    batch.to_csv(path, index=False)

    result = steps.score_batch(path, scorer=_scorer(detector), suite=suite, params=params,
                               root=tmp_path)

    assert result.status == "scored" and result.chunks == 4, result.reason
    assert path.exists()
    out = pd.read_parquet(tmp_path / "scored" / "day.parquet")
    expected = detector.score_frame(batch[FEATURES])
    np.testing.assert_allclose(out["anomaly_score"], expected["anomaly_score"], rtol=1e-6)
    assert list(out["site"]) == list(batch["site"])


@pytest.mark.slow
def test_a_bad_chunk_quarantines_the_whole_batch_and_writes_nothing(tmp_path, model):
    detector, suite, _ = model
    params = _params(tmp_path, chunk_rows=1000)
    batch = _batch(3000, seed=4)
    batch.loc[2345, "b"] = np.nan  # in the third chunk
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    batch.to_parquet(incoming / "late.parquet", index=False)
    original = (incoming / "late.parquet").read_bytes()

    result = steps.score_batch(incoming / "late.parquet", scorer=_scorer(detector), suite=suite,
                               params=params, root=tmp_path)

    assert result.status == "quarantined"
    assert "'b'" in result.reason and "null" in result.reason
    assert (tmp_path / "quarantine" / "late.parquet").read_bytes() == original
    report = json.loads((tmp_path / "quarantine" / "late.parquet.report.json").read_text())
    assert report["rows"] == [2000, 2999] and report["stage"] == "validate"
    assert report["model"]["version"] == 7
    assert not list((tmp_path / "scored").glob("*.parquet"))
    assert not list((tmp_path / "scored").glob("*.tmp"))
    assert steps.Ledger(tmp_path / "scored").read()["batches"] == {}


@pytest.mark.slow
def test_gx_rejecting_the_first_chunk_after_the_batch_was_scored_writes_nothing(
    tmp_path, model, monkeypatch
):
    """The first chunk's GX validation runs in the background while the rest of the batch is
    scored and written. If GX rejects it when the quick check had passed it (they agree by
    design, so the quick check is forced to pass here: a fault that cannot be made for real),
    the batch is quarantined and the partly written file is deleted."""
    from flows.steps import validate

    detector, suite, _ = model
    monkeypatch.setattr(validate, "quick_check", lambda frame, suite: True)
    params = _params(tmp_path, chunk_rows=1000)
    batch = _batch(4000, seed=5)
    batch.loc[10:29, "a"] = 1e6  # 2 % of the first chunk far outside the training range
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    batch.to_parquet(incoming / "early.parquet", index=False)

    result = steps.score_batch(incoming / "early.parquet", scorer=_scorer(detector), suite=suite,
                               params=params, root=tmp_path)

    assert result.status == "quarantined", result.reason
    assert "column 'a'" in result.reason and "20 of 1000 rows outside" in result.reason
    report = json.loads((tmp_path / "quarantine" / "early.parquet.report.json").read_text())
    assert report["rows"] == [0, 999] and report["stage"] == "validate"
    assert not list((tmp_path / "scored").glob("*.parquet"))
    assert not list((tmp_path / "scored").glob("*.tmp"))
    assert steps.Ledger(tmp_path / "scored").read()["batches"] == {}


def test_rechunk_gives_full_chunks_and_merges_a_short_tail():
    def sizes(pieces, rows):
        tables = [pa.table({"x": np.arange(n)}) for n in pieces]
        return [t.num_rows for t in steps._rechunk(tables, rows)]

    assert sizes([700] * 7 + [100], 600) == [600] * 7 + [800]
    assert sizes([5000], 600) == [600] * 7 + [800]  # the 200-row tail joins the last chunk
    assert sizes([5000], 1000) == [1000] * 5
    assert sizes([700, 700, 100], 600) == [600, 600, 300]  # half a chunk stays apart
    assert sizes([700, 700, 50], 600) == [600, 850]
    assert sizes([300, 0, 400], 600) == [700]
    assert sizes([100], 600) == [100]
    assert sizes([600, 400], 600) == [600, 400]  # a tail of at least half a chunk stays apart
    # values stay in order across pieces
    tables = [pa.table({"x": np.arange(i * 10, i * 10 + 10)}) for i in range(7)]
    merged = pa.concat_tables(list(steps._rechunk(tables, 25)))
    assert merged.column("x").to_pylist() == list(range(70))


def test_recover_removes_a_dead_run_s_leftovers_but_not_a_live_claim(tmp_path):
    params = _params(tmp_path, chunk_rows=100)
    scored = tmp_path / "scored"
    scored.mkdir()
    ledger = steps.Ledger(scored)
    with ledger.locked() as txn:
        for sha in ("dead", "live"):
            txn.claim(sha, {"batch": f"{sha}.csv", "tmp": f"scored/{sha}.parquet.tmp"})
    (scored / "dead.parquet.tmp").write_bytes(b"half a file")
    (scored / "live.parquet.tmp").write_bytes(b"being written")
    (scored / "orphan.parquet.tmp").write_bytes(b"no claim at all")
    live = steps._Claim(scored / steps.LOCKS_DIR, "live")
    assert live.acquire()  # a run that is scoring "live" right now
    try:
        removed = steps.recover(params, tmp_path)
    finally:
        live.release(remove=True)
    assert sorted(removed) == ["scored/dead.parquet.tmp", "scored/orphan.parquet.tmp"]
    assert (scored / "live.parquet.tmp").exists()
    assert set(ledger.read()["in_progress"]) == {"live"}


def test_discover_batches_skips_hidden_underscore_and_other_files(tmp_path):
    for name in ("b.csv", "a.parquet", "c.csv.gz", ".upload.csv", "_x.csv", "notes.txt", "d.pq"):
        (tmp_path / name).write_text("x")
    (tmp_path / "_done").mkdir()
    found = [p.name for p in steps.discover_batches(tmp_path)]
    assert found == ["a.parquet", "b.csv", "c.csv.gz", "d.pq"]
    assert steps.batch_stem("c.csv.gz") == "c" and steps.batch_stem("a.parquet") == "a"
    assert steps.discover_batches(tmp_path / "absent") == []
