"""The drift reference the register stage writes (:mod:`flows.steps.reference`): a bounded,
reproducible sample of the training split's feature columns, with its description."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from flows.config import Params
from flows.steps.reference import (
    REFERENCE_ROWS,
    REFERENCE_SEED,
    read_drift_reference,
    reference_metadata,
    restamp_reference,
    sample_parquet,
    write_drift_reference,
)


def _params(**data) -> Params:
    return Params.model_validate({"data": {"source": "unused.csv", "label_column": "y", **data}})


def _split(root, frame: pd.DataFrame, meta: dict | None = None):
    processed = root / "data" / "processed"
    processed.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(processed / "train.parquet", index=False, row_group_size=7_000)
    if meta is not None:
        (processed / "split.json").write_text(json.dumps(meta))
    return processed / "train.parquet"


def test_a_large_split_gives_a_bounded_reproducible_sample_of_its_feature_columns(tmp_path):
    n = 50_000
    rng = np.random.default_rng(1)
    train = pd.DataFrame(
        {
            "i": np.arange(n, dtype="int64"),
            "x": rng.normal(size=n),
            "t": pd.date_range("2024-01-01", periods=n, freq="min"),
            "y": (rng.uniform(size=n) < 0.05).astype("int64"),  # labelled anomalies: kept
        }
    )
    split = _split(tmp_path, train, {"feature_columns": ["i", "x"], "snapshot_sha256": "abc"})

    path = write_drift_reference(_params(timestamp_column="t"), tmp_path)

    assert path == tmp_path / "data" / "interim" / "drift_reference.parquet"
    frame, meta = read_drift_reference(path)
    assert list(frame.columns) == ["i", "x"] and len(frame) == REFERENCE_ROWS
    # the rows are the split's own rows (whole rows, in its order), drawn as sample_parquet does
    assert frame["i"].is_unique and frame["i"].is_monotonic_increasing
    np.testing.assert_array_equal(frame["x"], train["x"].to_numpy()[frame["i"]])
    expected = sample_parquet(
        split, ["i", "x"], REFERENCE_ROWS, np.random.default_rng(REFERENCE_SEED)
    )
    pd.testing.assert_frame_equal(frame, expected)
    # drawn from the whole split, anomalies included (about 5 % of the rows)
    assert frame["i"].max() > 45_000
    assert 0.03 < train["y"].to_numpy()[frame["i"]].mean() < 0.07
    assert meta == {
        "format": 1,
        "source": "data/processed/train.parquet",
        "snapshot_sha256": "abc",
        "training_rows": n,
        "rows": REFERENCE_ROWS,
        "seed": REFERENCE_SEED,
        "max_rows": REFERENCE_ROWS,
        "features": ["i", "x"],
    }
    assert path.stat().st_size < 1_000_000  # bounded: 20,000 rows of 2 columns

    before = path.read_bytes()
    assert write_drift_reference(_params(timestamp_column="t"), tmp_path) == path
    assert path.read_bytes() == before  # the same split gives the same file


def test_a_small_split_is_taken_whole_and_without_split_json_the_numeric_columns(tmp_path):
    train = pd.DataFrame(
        {"a": [1.0, 2.0, 3.0], "b": [4, 5, 6], "name": ["p", "q", "r"], "y": [0, 1, 0]}
    )
    _split(tmp_path, train)

    frame, meta = read_drift_reference(write_drift_reference(_params(), tmp_path))

    pd.testing.assert_frame_equal(frame, train[["a", "b"]])
    assert (meta["features"], meta["training_rows"], meta["rows"]) == (["a", "b"], 3, 3)
    assert meta["snapshot_sha256"] is None


def test_without_a_training_split_no_reference_and_no_stale_one(tmp_path, caplog):
    _split(tmp_path, pd.DataFrame({"a": [1.0, 2.0], "y": [0, 0]}))
    stale = write_drift_reference(_params(), tmp_path)
    (tmp_path / "data" / "processed" / "train.parquet").unlink()

    assert write_drift_reference(_params(), tmp_path) is None

    assert not stale.exists()  # it described another split: not logged with this model
    assert "no training split" in caplog.text and "no drift reference" in caplog.text


def test_restamp_adds_to_the_metadata_and_keeps_the_rows(tmp_path):
    _split(tmp_path, pd.DataFrame({"a": [1.5, 2.5], "y": [0, 0]}))
    src = write_drift_reference(_params(), tmp_path)
    dst = tmp_path / "cache" / "1.parquet"

    restamp_reference(src, dst, registered_model={"name": "m", "version": 1, "run_id": "r"})

    frame, meta = read_drift_reference(dst)
    assert frame["a"].tolist() == [1.5, 2.5]
    assert meta["registered_model"] == {"name": "m", "version": 1, "run_id": "r"}
    assert reference_metadata(dst) == meta and "registered_model" not in reference_metadata(src)
    plain = tmp_path / "plain.parquet"
    pd.DataFrame({"a": [1.0]}).to_parquet(plain)
    with pytest.raises(ValueError, match="is not a drift reference"):
        restamp_reference(plain, dst)
