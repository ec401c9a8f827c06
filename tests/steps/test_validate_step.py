"""flows.steps.validate: the validate step over the three splits (suite, report, Data Docs) and
its readable failure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.config import Params
from flows.errors import DataError
from flows.expectations import load_suite
from flows.steps.ingest import ingest
from flows.steps.validate import ValidationFailed, validate


@pytest.fixture
def project(tmp_path, make_frame) -> tuple[Params, Path]:
    """An ingested project whose splits all pass the suite (every row is there twice)."""
    df = pd.concat([make_frame(300, seed=1).drop(columns=["note"])] * 2, ignore_index=True)
    df.to_csv(tmp_path / "data.csv", index=False)
    params = Params.model_validate({"data": {"source": "data.csv", "label_column": "y"}})
    ingest(params, tmp_path)
    return params, tmp_path


def test_validate_step_writes_suite_report_and_docs(project, tmp_path_factory, monkeypatch) -> None:
    params, root = project
    elsewhere = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(elsewhere)
    result = validate(params, root)
    assert list(elsewhere.iterdir()) == []  # everything went under the project root
    assert result.success
    assert result.suite_path == root / "data" / "interim" / "expectation_suite.json"
    assert result.report_path == root / "data" / "interim" / "validation_report.json"
    assert set(result.reports) == {"train", "validation", "test"}
    report = json.loads(result.report_path.read_text())
    assert report["success"] is True
    assert report["suite"] == "data/interim/expectation_suite.json"
    assert report["data_docs_index"] == "gx/uncommitted/data_docs/local_site/index.html"
    assert (root / report["data_docs_index"]).is_file()
    assert result.metrics["n_expectations"] == len(load_suite(result.suite_path).expectations)
    assert result.metrics["test_failed_expectations"] == 0


def test_validate_step_fails_readably(project) -> None:
    params, root = project
    test_path = root / "data" / "processed" / "test.parquet"
    df = pd.read_parquet(test_path)
    df["a"] = df["a"].astype(float)
    df.loc[1, "a"] = np.inf
    df.to_parquet(test_path, index=False)
    with pytest.raises(ValidationFailed) as info:
        validate(params, root)
    message = str(info.value)
    assert "batch 'test'" in message
    assert "column 'a': values must be finite: 1 of" in message
    assert "Data Docs: " in message and "index.html" in message
    assert "batch 'train'" not in message and "batch 'validation'" not in message
    assert message.endswith(f"Report: {root / 'data' / 'interim' / 'validation_report.json'}")
    assert isinstance(info.value, DataError)
    assert not info.value.reports["test"].success and info.value.reports["train"].success
    report = json.loads((root / "data" / "interim" / "validation_report.json").read_text())
    assert report["success"] is False and report["batches"]["test"]["n_failed"] >= 1


def test_validate_step_needs_the_split(tmp_path) -> None:
    params = Params.model_validate({"data": {"source": "x.csv", "label_column": "y"}})
    with pytest.raises(DataError, match=r"train split not found: .*run the ingest step first"):
        validate(params, tmp_path)


def test_values_outside_the_training_range_warn_once_and_do_not_refuse(project, caplog) -> None:
    """One ordinary extreme value in a small split is 1 of ~120 rows, far over the 0.1 % of
    validate.range_mostly: a warning in the report, the metrics and the log, not a refusal."""
    params, root = project
    path = root / "data" / "processed" / "validation.parquet"
    df = pd.read_parquet(path)
    df.loc[[2, 7], "b"] = [1e4, -1e4]  # b lies in [10, 20] in training
    df.to_parquet(path, index=False)
    with caplog.at_level("WARNING", logger="flows.steps.validate"):
        result = validate(params, root)
    assert result.success
    assert result.reports["validation"].warning_rows == {"b": 2}
    assert result.metrics["validation_warnings"] == 1 and result.metrics["train_warnings"] == 0
    report = json.loads(result.report_path.read_text())
    assert report["success"] is True and report["n_warnings"] == 1
    (line,) = report["batches"]["validation"]["warnings"]
    assert line.startswith("column 'b': values between [") and f"2 of {len(df)} rows" in line
    records = [r for r in caplog.records if r.name == "flows.steps.validate"]
    assert len(records) == 1 and line in records[0].getMessage()
