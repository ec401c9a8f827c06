"""flows.steps.ingest: sources, snapshot + hash, the split, and every bad-input error."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.columns import normal_rows
from flows.errors import DataError
from flows.steps.ingest import content_hash, ingest


def out_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- happy paths
def test_csv_source_snapshot_and_stratified_split(tmp_path, frame, make_params) -> None:
    frame.to_csv(tmp_path / "data.csv", index=False)
    result = ingest(make_params("data.csv"), tmp_path)

    # snapshot: the source as read, every column
    snap = pd.read_parquet(result.snapshot_path)
    assert result.snapshot_path == tmp_path / "data" / "interim" / "snapshot.parquet"
    pd.testing.assert_frame_equal(snap, pd.read_csv(tmp_path / "data.csv"))
    meta = json.loads(result.snapshot_meta_path.read_text())
    assert meta["rows"] == 200 and meta["source"] == "data.csv"
    assert meta["files"] == ["data.csv"]
    assert [c["name"] for c in meta["columns"]] == ["a", "b", "c", "note", "y"]
    assert {c["name"]: c["dtype"] for c in meta["columns"]}["c"] == "int64"
    assert meta["sha256"] == result.sha256 == content_hash(snap)

    # split: 60/20/20, stratified on y, label kept, text column left out
    parts = {k: pd.read_parquet(p) for k, p in result.split_paths.items()}
    assert {k: len(v) for k, v in parts.items()} == {"train": 120, "validation": 40, "test": 40}
    for part in parts.values():
        assert list(part.columns) == ["a", "b", "c", "y"]
        assert part["y"].mean() == pytest.approx(0.1)
    assert result.feature_columns == ["a", "b", "c"]
    assert result.split_paths["train"] == tmp_path / "data" / "processed" / "train.parquet"
    # train keeps its anomalies; detectors fit on normal_rows()
    assert parts["train"]["y"].sum() == 12
    assert len(normal_rows(parts["train"], "y")) == 108
    all_rows = pd.concat(parts.values())
    assert sorted(all_rows["a"]) == sorted(frame["a"])  # a partition: nothing lost or repeated

    m = result.metrics
    assert (m["rows"], m["n_features"], m["train_rows"], m["train_normal_rows"]) == (
        200,
        3,
        120,
        108,
    )
    assert m["anomaly_rate"] == m["train_anomaly_rate"] == m["test_anomaly_rate"] == 0.1
    assert m["stratified"] == 1
    split_meta = json.loads(result.split_meta_path.read_text())
    assert split_meta["feature_columns"] == ["a", "b", "c"]
    assert split_meta["snapshot_sha256"] == result.sha256
    # written atomically: no temporary files left behind
    assert not [p for p in out_files(tmp_path / "data") if ".tmp-" in p.name]


def test_split_follows_the_benchmark_protocol(tmp_path, frame, make_params) -> None:
    from sklearn.model_selection import train_test_split

    frame.to_csv(tmp_path / "data.csv", index=False)
    result = ingest(make_params("data.csv", **{"split.seed": 3}), tmp_path)
    df = pd.read_csv(tmp_path / "data.csv")[["a", "b", "c", "y"]]
    train, rest = train_test_split(df, test_size=0.4, stratify=df["y"], random_state=3)
    val, test = train_test_split(rest, test_size=0.5, stratify=rest["y"], random_state=3)
    for name, expected in [("train", train), ("validation", val), ("test", test)]:
        got = pd.read_parquet(result.split_paths[name])
        pd.testing.assert_frame_equal(got, expected.reset_index(drop=True))


def test_same_seed_same_split_other_seed_other_split(tmp_path, frame, make_params) -> None:
    frame.to_csv(tmp_path / "data.csv", index=False)
    r1 = ingest(make_params(tmp_path / "data.csv"), tmp_path / "one")
    r2 = ingest(make_params(tmp_path / "data.csv"), tmp_path / "two")
    r3 = ingest(make_params(tmp_path / "data.csv", **{"split.seed": 1}), tmp_path / "three")
    a, b, c = (pd.read_parquet(r.train_path) for r in (r1, r2, r3))
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_hash_is_stable_and_changes_with_one_value(tmp_path, frame, make_params) -> None:
    frame.to_csv(tmp_path / "data.csv", index=False)
    params = make_params(tmp_path / "data.csv")
    first = ingest(params, tmp_path / "one").sha256
    again = ingest(params, tmp_path / "two").sha256
    assert first == again and len(first) == 64

    changed = frame.copy()
    changed.loc[17, "b"] += 0.5
    changed.to_csv(tmp_path / "data.csv", index=False)
    assert ingest(params, tmp_path / "three").sha256 != first


def test_hash_comes_from_the_data_not_the_file_format(tmp_path, frame, make_params) -> None:
    frame.to_csv(tmp_path / "data.csv", index=False)
    pd.read_csv(tmp_path / "data.csv").to_parquet(tmp_path / "data.parquet", index=False)
    from_csv = ingest(make_params(tmp_path / "data.csv"), tmp_path / "one").sha256
    from_parquet = ingest(make_params(tmp_path / "data.parquet"), tmp_path / "two").sha256
    assert from_csv == from_parquet


def test_folder_of_csv_and_parquet_files_in_name_order(tmp_path, frame, make_params) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    frame.iloc[100:].to_parquet(folder / "2.parquet", index=False)
    frame.iloc[:50].to_csv(folder / "0.csv", index=False)
    with gzip.open(folder / "1.csv.gz", "wt") as fh:
        frame.iloc[50:100].to_csv(fh, index=False)
    (folder / "README.txt").write_text("not data")
    (folder / ".hidden.csv").write_text("x\n1\n")
    result = ingest(make_params("raw"), tmp_path)
    snap = pd.read_parquet(result.snapshot_path)
    assert len(snap) == 200
    np.testing.assert_allclose(snap["a"], frame["a"])
    assert json.loads(result.snapshot_meta_path.read_text())["files"] == [
        "raw/0.csv",
        "raw/1.csv.gz",
        "raw/2.parquet",
    ]


def test_folder_with_different_columns_names_the_file(tmp_path, frame, make_params) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    frame.iloc[:100].to_csv(folder / "a.csv", index=False)
    frame.iloc[100:].drop(columns=["b"]).assign(z=1).to_csv(folder / "b.csv", index=False)
    with pytest.raises(DataError, match=r"b\.csv: columns differ from those of a\.csv.*"):
        ingest(make_params("raw"), tmp_path)
    with pytest.raises(DataError, match=r"missing \['b'\], unexpected \['z'\]"):
        ingest(make_params("raw"), tmp_path)


def test_without_label_nothing_is_stratified(tmp_path, frame, make_params) -> None:
    frame.drop(columns=["y"]).to_csv(tmp_path / "data.csv", index=False)
    result = ingest(make_params("data.csv", **{"data.label_column": None}), tmp_path)
    assert result.label_column is None
    assert result.feature_columns == ["a", "b", "c"]
    assert "anomaly_rate" not in result.metrics and "stratified" not in result.metrics
    assert result.metrics["train_normal_rows"] == result.metrics["train_rows"] == 120


def test_configured_feature_columns(tmp_path, frame, make_params) -> None:
    frame.to_csv(tmp_path / "data.csv", index=False)
    result = ingest(make_params("data.csv", **{"data.feature_columns": ["c", "a"]}), tmp_path)
    assert result.feature_columns == ["c", "a"]
    assert list(pd.read_parquet(result.train_path).columns) == ["a", "c", "y"]


def test_timestamp_column_gives_a_contiguous_time_split(tmp_path, frame, make_params) -> None:
    frame["t"] = pd.date_range("2024-01-01", periods=200, freq="h").astype(str)
    frame.sample(frac=1.0, random_state=0).to_csv(tmp_path / "data.csv", index=False)
    result = ingest(make_params("data.csv", **{"data.timestamp_column": "t"}), tmp_path)
    parts = {k: pd.read_parquet(p) for k, p in result.split_paths.items()}
    assert {k: len(v) for k, v in parts.items()} == {"train": 120, "validation": 40, "test": 40}
    assert "t" not in result.feature_columns
    for part in parts.values():
        assert part["t"].is_monotonic_increasing
    assert parts["train"]["t"].max() < parts["validation"]["t"].min()
    assert parts["validation"]["t"].max() < parts["test"]["t"].min()


def test_boolean_and_float_labels_are_accepted(tmp_path, frame, make_params) -> None:
    frame.assign(y=frame["y"].astype(bool)).to_parquet(tmp_path / "b.parquet", index=False)
    frame.assign(y=frame["y"].astype(float)).to_csv(tmp_path / "f.csv", index=False)
    for source in ("b.parquet", "f.csv"):
        result = ingest(make_params(tmp_path / source), tmp_path / f"out-{source}")
        assert pd.read_parquet(result.train_path)["y"].dtype == "int64"


def test_shuttle_builtin_source(tmp_path, make_params) -> None:
    params = make_params("builtin:shuttle", **{"data.label_column": "anomaly"})
    result = ingest(params, tmp_path)
    m = result.metrics
    assert m["rows"] == 49_097 and m["n_features"] == 9
    assert result.feature_columns == [f"f{i}" for i in range(1, 10)]
    assert m["anomaly_rate"] == pytest.approx(0.0715, abs=5e-4)
    assert (m["train_rows"], m["validation_rows"], m["test_rows"]) == (29_458, 9_819, 9_820)
    for name in ("train", "validation", "test"):
        assert m[f"{name}_anomaly_rate"] == pytest.approx(0.0715, abs=1e-3)
    meta = json.loads(result.snapshot_meta_path.read_text())
    assert meta["files"] == ["river:datasets/shuttle.csv.gz"]


# --------------------------------------------------------------------------- bad input
def test_missing_file(tmp_path, make_params) -> None:
    with pytest.raises(DataError, match=r"data file not found: .*nope\.csv"):
        ingest(make_params("nope.csv"), tmp_path)


def test_empty_file_zero_bytes(tmp_path, make_params) -> None:
    (tmp_path / "data.csv").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty data file \(0 bytes\): .*data\.csv"):
        ingest(make_params("data.csv"), tmp_path)


def test_empty_file_header_only(tmp_path, make_params) -> None:
    (tmp_path / "data.csv").write_text("a,b,y\n")
    with pytest.raises(DataError, match=r"empty data file \(a header but 0 rows\): .*data\.csv"):
        ingest(make_params("data.csv"), tmp_path)


def test_empty_parquet_file(tmp_path, frame, make_params) -> None:
    frame.iloc[:0].to_parquet(tmp_path / "data.parquet", index=False)
    with pytest.raises(DataError, match=r"0 rows\): .*data\.parquet"):
        ingest(make_params("data.parquet"), tmp_path)


def test_corrupt_parquet_file(tmp_path, make_params) -> None:
    (tmp_path / "data.parquet").write_bytes(b"PAR1 this is not parquet at all")
    with pytest.raises(DataError, match=r"cannot read .*data\.parquet as Parquet: "):
        ingest(make_params("data.parquet"), tmp_path)


def test_corrupt_compressed_csv(tmp_path, make_params) -> None:
    (tmp_path / "data.csv.gz").write_bytes(b"\x1f\x8b\x08 truncated garbage")
    with pytest.raises(DataError, match=r"cannot read .*data\.csv\.gz as CSV: "):
        ingest(make_params("data.csv.gz"), tmp_path)


def test_unsupported_file_type(tmp_path, make_params) -> None:
    (tmp_path / "data.xlsx").write_bytes(b"x")
    with pytest.raises(DataError, match=r"unsupported file type: .*data\.xlsx"):
        ingest(make_params("data.xlsx"), tmp_path)


def test_folder_without_data_files(tmp_path, make_params) -> None:
    (tmp_path / "raw").mkdir()
    with pytest.raises(DataError, match=r"no CSV or Parquet files in folder .*raw"):
        ingest(make_params("raw"), tmp_path)


def test_no_numeric_feature_columns(tmp_path, make_params) -> None:
    pd.DataFrame({"name": ["x", "y", "z"] * 5, "y": [0] * 15}).to_csv(
        tmp_path / "data.csv", index=False
    )
    with pytest.raises(DataError, match=r"no numeric feature columns in .*data\.csv.*name"):
        ingest(make_params("data.csv"), tmp_path)


def test_configured_feature_column_not_numeric(tmp_path, frame, make_params) -> None:
    frame.to_csv(tmp_path / "data.csv", index=False)
    params = make_params("data.csv", **{"data.feature_columns": ["a", "note"]})
    with pytest.raises(
        DataError, match=r"feature column 'note' in .*data\.csv is not numeric .*e\.g\. 'row-0'"
    ):
        ingest(params, tmp_path)


def test_numeric_column_with_a_text_value_is_not_silently_dropped(
    tmp_path, frame, make_params
) -> None:
    frame["b"] = frame["b"].astype(object)
    frame.loc[7, "b"] = "oops"
    frame.to_csv(tmp_path / "data.csv", index=False)
    with pytest.raises(
        DataError, match=r"feature column 'b' in .*data\.csv is not numeric: 1 of 200 .*'oops'"
    ):
        ingest(make_params("data.csv"), tmp_path)


def test_configured_feature_column_absent(tmp_path, frame, make_params) -> None:
    frame.to_csv(tmp_path / "data.csv", index=False)
    params = make_params("data.csv", **{"data.feature_columns": ["a", "zz"]})
    with pytest.raises(DataError, match=r"feature column\(s\) \['zz'\] .*columns present: a, b"):
        ingest(params, tmp_path)


def test_all_nan_column(tmp_path, frame, make_params) -> None:
    frame["b"] = np.nan
    frame.to_csv(tmp_path / "data.csv", index=False)
    with pytest.raises(
        DataError, match=r"feature column 'b' in .*data\.csv has no values \(all NaN"
    ):
        ingest(make_params("data.csv"), tmp_path)


def test_label_column_absent_lists_the_columns(tmp_path, frame, make_params) -> None:
    frame.drop(columns=["y"]).to_csv(tmp_path / "data.csv", index=False)
    with pytest.raises(
        DataError,
        match=r"label column 'y' \(data.label_column\) not found in .*data\.csv; "
        r"columns present: a, b, c, note",
    ):
        ingest(make_params("data.csv"), tmp_path)


def test_label_values_other_than_0_1(tmp_path, frame, make_params) -> None:
    frame.loc[[3, 4], "y"] = 2
    frame.loc[5, "y"] = -1
    frame.to_csv(tmp_path / "data.csv", index=False)
    with pytest.raises(
        DataError, match=r"label column 'y' .*only 0 \(normal\) and 1 .*3 row\(s\) .*-1, 2"
    ):
        ingest(make_params("data.csv"), tmp_path)


def test_label_with_missing_values(tmp_path, frame, make_params) -> None:
    frame["y"] = frame["y"].astype(float)
    frame.loc[3, "y"] = np.nan
    frame.to_csv(tmp_path / "data.csv", index=False)
    with pytest.raises(DataError, match=r"label column 'y' .*1 row\(s\) hold other values: 'NaN'"):
        ingest(make_params("data.csv"), tmp_path)


def test_timestamp_column_absent(tmp_path, frame, make_params) -> None:
    frame.to_csv(tmp_path / "data.csv", index=False)
    params = make_params("data.csv", **{"data.timestamp_column": "when"})
    with pytest.raises(DataError, match=r"timestamp column 'when' .*not found"):
        ingest(params, tmp_path)


@pytest.mark.parametrize("n", [1, 2])
def test_too_few_rows_to_split(tmp_path, make_params, make_frame, n) -> None:
    make_frame(n, anomaly_rate=0.0).to_csv(tmp_path / "data.csv", index=False)
    with pytest.raises(
        DataError, match=rf"too few rows in .*data\.csv for a 60%/20%/20% .*{n} row"
    ):
        ingest(make_params("data.csv"), tmp_path)


def test_few_anomalies_fall_back_to_an_unstratified_split(
    tmp_path, make_params, make_frame
) -> None:
    df = make_frame(50, anomaly_rate=0.0)
    df.loc[0, "y"] = 1  # one anomaly cannot be stratified
    df.to_csv(tmp_path / "data.csv", index=False)
    result = ingest(make_params("data.csv"), tmp_path)
    assert result.metrics["stratified"] == 0
    assert sum(result.metrics[f"{k}_rows"] for k in ("train", "validation", "test")) == 50


def test_bad_input_leaves_previous_outputs_alone(tmp_path, frame, make_params) -> None:
    frame.to_csv(tmp_path / "data.csv", index=False)
    ingest(make_params("data.csv"), tmp_path)
    before = {p: p.read_bytes() for p in out_files(tmp_path / "data")}
    (tmp_path / "bad.csv").write_text("a,b,y\n1,2,7\n")
    with pytest.raises(DataError):
        ingest(make_params("bad.csv"), tmp_path)
    assert {p: p.read_bytes() for p in out_files(tmp_path / "data")} == before
