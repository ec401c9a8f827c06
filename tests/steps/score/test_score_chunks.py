"""Reading a batch in chunks: rechunking, CSV chunks (plain and compressed) scoring like
Parquet, and column types that change after the first chunk."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from flows.io import TABLE_FORMATS
from flows.steps.score import Ledger, rechunk, score_batch

FEATURES = ["a", "b", "c"]


def test_rechunk_gives_full_chunks_and_merges_a_short_tail():
    def sizes(pieces, rows):
        tables = [pa.table({"x": np.arange(n)}) for n in pieces]
        return [t.num_rows for t in rechunk(tables, rows)]

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
    merged = pa.concat_tables(list(rechunk(tables, 25)))
    assert merged.column("x").to_pylist() == list(range(70))


@pytest.mark.slow
def test_csv_batch_in_chunks_matches_the_parquet_scores(
    tmp_path, model, make_options, make_scorer, make_batch
):
    detector, suite, _ = model
    options = make_options(tmp_path, 1250)
    batch = make_batch(seed=3)
    path = tmp_path / "day.csv"  # a path outside the incoming folder: scored, left in place
    batch.to_csv(path, index=False)

    result = score_batch(path, scorer=make_scorer(detector), suite=suite, options=options)

    assert result.status == "scored" and result.chunks == 4, result.reason
    assert path.exists()
    out = pd.read_parquet(tmp_path / "scored" / "day.parquet")
    expected = detector.score_frame(batch[FEATURES])
    np.testing.assert_allclose(out["anomaly_score"], expected["anomaly_score"], rtol=1e-6)
    assert list(out["site"]) == list(batch["site"])


@pytest.mark.slow
def test_compressed_csv_batches_score_like_the_plain_csv(
    tmp_path, model, make_options, make_scorer, make_batch
):
    """Every CSV ending of flows.io.TABLE_FORMATS is discovered and scored; .zst needs the
    optional zstandard package (without it the batch is quarantined, naming the package)."""
    detector, suite, _ = model
    options = make_options(tmp_path, 1000)
    batch = make_batch(2500, seed=11)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    endings = [e for e in TABLE_FORMATS["csv"] if e != ".csv.zst"]
    assert {".csv", ".csv.bz2", ".csv.xz"} <= set(endings)
    for ending in endings:
        batch.to_csv(incoming / f"day{ending}", index=False)  # pandas compresses by the ending

    from flows.steps.score import discover_batches

    found = discover_batches(incoming)
    assert sorted(p.name for p in found) == sorted(f"day{e}" for e in endings)
    results = {p.name: score_batch(p, scorer=make_scorer(detector), suite=suite, options=options)
               for p in found}

    assert {n: r.status for n, r in results.items()} == dict.fromkeys(results, "scored"), {
        n: r.reason for n, r in results.items()}
    outputs = {n: pd.read_parquet(tmp_path / "scored" / r.output.split("/")[-1])
               for n, r in results.items()}
    plain = outputs["day.csv"]
    assert len(plain) == 2500 and results["day.csv"].chunks == 3  # 1000 + 1000 + 500
    for name, out in outputs.items():  # same rows, columns, types and scores as the plain CSV
        pd.testing.assert_frame_equal(out.drop(columns="scored_at"),
                                      plain.drop(columns="scored_at"), obj=name)
        assert results[name].flagged == results["day.csv"].flagged
        assert results[name].chunks == 3
    entries = Ledger(tmp_path / "scored").read()["batches"].values()
    assert sorted(e["batch"] for e in entries) == sorted(results)
    assert {e["rows"] for e in entries} == {2500}


@pytest.mark.slow
def test_a_zst_batch_needs_the_zstandard_package(
    tmp_path, model, make_options, make_scorer, make_batch
):
    detector, suite, _ = model
    options = make_options(tmp_path, 1000)
    batch = make_batch(1200, seed=12)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    path = incoming / "day.csv.zst"
    if importlib.util.find_spec("zstandard") is not None:
        batch.to_csv(path, index=False)
    else:  # cannot be written without the package: the reader fails at the codec anyway
        path.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(64))

    result = score_batch(path, scorer=make_scorer(detector), suite=suite, options=options)

    if importlib.util.find_spec("zstandard") is not None:
        assert result.status == "scored" and result.rows == 1200, result.reason
    else:
        assert result.status == "quarantined"
        assert result.reason == (
            "cannot read day.csv.zst as CSV: .csv.zst files need the optional package "
            "'zstandard', which is not installed (pip install zstandard)"
        )
        assert (tmp_path / "quarantine" / "day.csv.zst").is_file()
        assert Ledger(tmp_path / "scored").read()["quarantined"][0]["reason"] == result.reason


def _text_in_feature(df: pd.DataFrame) -> pd.DataFrame:
    df = df.astype({"a": object})
    df.loc[2100, "a"] = "twelve"  # third chunk: the first two read as numbers
    return df


def _text_in_merged_tail(df: pd.DataFrame) -> pd.DataFrame:
    df = df.astype({"a": object})
    df.loc[3150, "a"] = "twelve"  # in the 300-row tail that joins the third chunk
    return df


def _text_in_passthrough(df: pd.DataFrame) -> pd.DataFrame:
    df["site"] = pd.Series(np.arange(len(df)), dtype=object)
    df.loc[1500, "site"] = "plant-7"  # numbers in the first chunk, text in the second
    return df


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rows", "change", "pattern", "stage", "rejected_rows"),
    [
        (3000, _text_in_feature,
         r"^failed validation: column 'a': must be numeric: observed dtype '\w+' "
         r"\(e\.g\. 'twelve'\)", "validate", [2000, 2999]),
        (3300, _text_in_merged_tail,
         r"^column types change between rows near row 2,000: .*Field a has incompatible types: "
         r"double vs \w*string", "read", None),
        (3000, _text_in_passthrough,
         r"^column types change from row 1,000 on: 'site' \(int64 before, \w*string here\); "
         r"make them consistent or send the batch as Parquet \(.*'plant-7'", "read", None),
    ],
    ids=["feature column", "feature column in the merged tail", "passthrough column"],
)
def test_column_types_that_change_after_the_first_chunk_quarantine_the_batch(
    tmp_path, model, make_options, make_scorer, make_batch, rows, change, pattern, stage,
    rejected_rows,
):
    """A CSV's types are inferred per chunk: a column that reads as numbers in the first chunks
    and as text later quarantines the whole batch, naming the column; the chunks scored before
    (already written to the .tmp file) leave nothing behind."""
    detector, suite, _ = model
    options = make_options(tmp_path, 1000)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    change(make_batch(rows, seed=4)).to_csv(incoming / "mixed.csv", index=False)
    original = (incoming / "mixed.csv").read_bytes()

    result = score_batch(incoming / "mixed.csv", scorer=make_scorer(detector), suite=suite,
                         options=options)

    assert result.status == "quarantined"
    assert pd.Series([result.reason]).str.contains(pattern, regex=True).all(), result.reason
    assert (tmp_path / "quarantine" / "mixed.csv").read_bytes() == original
    report = json.loads((tmp_path / "quarantine" / "mixed.csv.report.json").read_text())
    assert report["reason"] == result.reason and report["stage"] == stage
    assert report["rows"] == rejected_rows
    ledger = Ledger(tmp_path / "scored").read()
    assert ledger["batches"] == {} and ledger["in_progress"] == {}
    (entry,) = ledger["quarantined"]
    assert entry["batch"] == "mixed.csv" and entry["reason"] == result.reason
    assert entry["stage"] == stage and entry["quarantined_to"] == "quarantine/mixed.csv"
    assert entry["report"] == "quarantine/mixed.csv.report.json"
    scored = tmp_path / "scored"
    assert not list(scored.glob("*.parquet")) and not list(scored.glob("*.tmp"))
    assert not (incoming / "mixed.csv").exists()
