"""score_batch end to end without Prefect or MLflow (chunked scoring, the ledger, archiving,
duplicates), and recover after a dead run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.io import file_sha256
from flows.steps.score import MODEL_COLUMNS, Ledger, recover, score_batch

FEATURES = ["a", "b", "c"]


@pytest.mark.slow
def test_parquet_batch_is_scored_in_chunks_and_matches_unchunked_scores(
    tmp_path, model, make_options, make_scorer, make_batch
):
    detector, suite, _ = model
    options = make_options(tmp_path, 600)
    batch = make_batch()
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    # row groups of 700 rows: chunks of 600 cross row-group boundaries
    pq.write_table(pa.Table.from_pandas(batch, preserve_index=False), incoming / "big.parquet",
                   row_group_size=700)

    result = score_batch(incoming / "big.parquet", scorer=make_scorer(detector), suite=suite,
                         options=options)

    assert result.status == "scored", result.reason
    assert result.rows == 5000
    assert result.chunks == 8  # 8 x 600 + 200: the short tail joins the last chunk
    out = pd.read_parquet(tmp_path / "scored" / "big.parquet")
    expected = detector.score_frame(batch[FEATURES])
    assert list(out.columns) == [*batch.columns, *expected.columns, "out_of_range",
                                 *MODEL_COLUMNS]
    ranges = [e.configuration.kwargs for e in suite.expectations if e.meta["check"] == "range"]
    outside = sum(
        ((batch[kw["column"]] < kw["min_value"]) | (batch[kw["column"]] > kw["max_value"]))
        .astype("int64") for kw in ranges
    )
    np.testing.assert_array_equal(out["out_of_range"], outside)
    assert out["out_of_range"].dtype == "int64"
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
    ledger = Ledger(tmp_path / "scored").read()
    (entry,) = ledger["batches"].values()
    assert entry["rows"] == 5000 and entry["chunks"] == 8 and entry["model_version"] == 7
    assert entry["out_of_range_rows"] == result.out_of_range_rows == int((outside > 0).sum())
    assert entry["sha256"] == file_sha256(incoming / "_done" / "big.parquet")
    assert not (incoming / "big.parquet").exists()
    assert not list((tmp_path / "scored").glob("*.tmp")) and ledger["in_progress"] == {}

    # the same content again, under another name: skipped (and archived), not scored twice
    pq.write_table(pa.Table.from_pandas(batch, preserve_index=False), incoming / "again.parquet",
                   row_group_size=700)
    again = score_batch(incoming / "again.parquet", scorer=make_scorer(detector), suite=suite,
                        options=options)
    assert again.status == "skipped" and "already scored" in again.reason
    assert (incoming / "_done" / "again.parquet").exists()
    assert sorted(p.name for p in (tmp_path / "scored").glob("*.parquet")) == ["big.parquet"]


@pytest.mark.slow
def test_an_already_scored_file_fed_in_again_is_skipped_and_changes_nothing(
    tmp_path, model, make_options, make_scorer, make_batch
):
    """The same bytes again - under the same name in the incoming folder, under another name,
    or given by path from elsewhere - are skipped through the ledger: no second output, the
    ledger file untouched (not even rewritten), the output file untouched."""
    detector, suite, _ = model
    options = make_options(tmp_path, 1000)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    make_batch(1500, seed=8).to_csv(incoming / "day.csv", index=False)
    content = (incoming / "day.csv").read_bytes()
    sha = file_sha256(incoming / "day.csv")
    first = score_batch(incoming / "day.csv", scorer=make_scorer(detector), suite=suite,
                        options=options)
    assert first.status == "scored", first.reason
    ledger = Ledger(tmp_path / "scored")
    ledger_before = ledger.read()
    output = tmp_path / "scored" / "day.parquet"
    output_mtime = output.stat().st_mtime_ns
    outside = tmp_path / "elsewhere" / "copy-of-day.csv"
    outside.parent.mkdir()
    outside.write_bytes(content)

    (incoming / "day.csv").write_bytes(content)  # same name, same content
    (incoming / "day-again.csv").write_bytes(content)  # another name
    results = [score_batch(p, scorer=make_scorer(detector), suite=suite, options=options)
               for p in (incoming / "day.csv", incoming / "day-again.csv", outside)]

    assert [r.status for r in results] == ["skipped"] * 3, [r.reason for r in results]
    assert results[0].reason.startswith("already scored at ") and "same content" not in (
        results[0].reason)
    assert all("(same content as day.csv)" in r.reason for r in results[1:])
    assert all(r.reason.endswith("by version 7") for r in results)
    assert {r.sha256 for r in results} == {sha}
    assert {(r.rows, r.flagged, r.output) for r in results} == {
        (1500, first.flagged, "scored/day.parquet")}
    # inputs from the incoming folder are archived (a free name for the second "day.csv");
    # the file given from elsewhere is left where it was
    assert sorted(p.name for p in (incoming / "_done").iterdir()) == sorted(
        ["day.csv", f"day.{sha[:12]}.csv", "day-again.csv"])
    assert all(p.read_bytes() == content for p in (incoming / "_done").iterdir())
    assert not list(incoming.glob("*.csv")) and outside.read_bytes() == content
    # no second output, nothing rewritten
    assert sorted(p.name for p in (tmp_path / "scored").iterdir()
                  if p.is_file() and not p.name.startswith("_ledger.db")) == [
        "_gx.lock", "day.parquet"]
    assert output.stat().st_mtime_ns == output_mtime
    assert ledger.read() == ledger_before
    assert not list((tmp_path / "scored" / "_locks").iterdir())  # every claim was released


def test_recover_removes_a_dead_run_s_leftovers_but_not_a_live_claim(tmp_path, make_dirs):
    dirs = make_dirs(tmp_path)
    scored = tmp_path / "scored"
    scored.mkdir()
    ledger = Ledger(scored)
    with ledger.locked() as txn:
        for sha in ("dead", "live"):
            txn.claim(sha, {"batch": f"{sha}.csv", "tmp": f"scored/{sha}.parquet.tmp"})
    (scored / "dead.parquet.tmp").write_bytes(b"half a file")
    (scored / "live.parquet.tmp").write_bytes(b"being written")
    (scored / "orphan.parquet.tmp").write_bytes(b"no claim at all")
    live = ledger.claim_lock("live")
    assert live.acquire()  # a run that is scoring "live" right now
    try:
        removed = recover(dirs)
    finally:
        live.release(remove=True)
    assert sorted(removed) == ["scored/dead.parquet.tmp", "scored/orphan.parquet.tmp"]
    assert (scored / "live.parquet.tmp").exists()
    assert set(ledger.read()["in_progress"]) == {"live"}


def test_recover_removes_leftovers_of_atomic_writes_killed_under_the_ledger_lock(
    tmp_path, make_dirs
):
    """Quarantine reports and quarantined copies are written through temporary names
    (flows.io.atomic_save) in a ledger transaction: a run killed then leaves one."""
    dirs = make_dirs(tmp_path)
    (tmp_path / "scored").mkdir()
    (tmp_path / "quarantine").mkdir()
    (tmp_path / "scored" / ".old.tmp-123-abcdef12.json").write_text("{")
    (tmp_path / "quarantine" / ".bad.tmp-123-abcdef12.csv").write_text("a,b")
    (tmp_path / "quarantine" / "bad.csv").write_text("a,b")  # a quarantined batch: kept
    removed = recover(dirs)
    assert sorted(removed) == ["quarantine/.bad.tmp-123-abcdef12.csv",
                               "scored/.old.tmp-123-abcdef12.json"]
    assert [p.name for p in (tmp_path / "quarantine").iterdir()] == ["bad.csv"]
    assert recover(dirs) == []
