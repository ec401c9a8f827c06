"""The scored file: its columns, a later chunk cast to the first one's schema, its metadata."""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pytest

from flows.steps.score import BatchRejected, ModelRef, ScoredFileWriter, output_sha
from flows.steps.score.output import conform, score_columns


def test_score_columns_add_scores_and_constant_model_columns():
    table = pa.table({"a": [1.0, 2.0]})
    scores = pd.DataFrame({"anomaly_score": [0.1, 0.9], "is_anomaly": [False, True]})
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    out = score_columns(table, scores, ModelRef("m", 3, alias=None), at)
    assert out.column_names == ["a", "anomaly_score", "is_anomaly", "model_name",
                                "model_version", "model_alias", "scored_at"]
    assert out.column("is_anomaly").type == pa.int64()
    assert out.column("model_alias").to_pylist() == ["", ""]
    assert out.column("scored_at").to_pylist() == [at, at]


def test_conform_casts_what_it_can_and_names_what_it_cannot():
    schema = pa.schema([("a", pa.float64()), ("site", pa.int64())])
    assert conform(pa.table({"a": [1], "site": [2]}), schema, 10).schema == schema
    with pytest.raises(BatchRejected, match=r"^column types change from row 1,000 on: 'site' "
                       r"\(int64 before, string here\)") as caught:
        conform(pa.table({"a": [1.0], "site": ["x"]}), schema, 1000)
    assert caught.value.stage == "read"


def test_the_writer_renames_only_on_commit_and_records_the_batch_hash(tmp_path):
    tmp, output = tmp_path / "o.parquet.tmp", tmp_path / "o.parquet"
    w = ScoredFileWriter(tmp, output, sha="f" * 64, batch="o.csv", model_uri="models:/m/1")
    with closing(w):
        w.write(pa.table({"a": [1.0, 2.0]}), 0)
        w.write(pa.table({"a": [3]}), 2)  # int64 here: cast to the file's float64
        assert not output.exists()
        w.commit()
    assert pd.read_parquet(output)["a"].tolist() == [1.0, 2.0, 3.0]
    assert output_sha(output) == "f" * 64 and not tmp.exists()
    assert output_sha(tmp_path / "absent.parquet") is None
    w = ScoredFileWriter(tmp, tmp_path / "p.parquet", sha="e" * 64, batch="p.csv", model_uri=None)
    with closing(w):
        w.write(pa.table({"a": [1.0]}), 0)  # left without commit (a rejected batch)
    assert not (tmp_path / "p.parquet").exists() and tmp.exists()
