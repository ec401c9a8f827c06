"""flows.expectations.results: one readable line per failed expectation, and the report of a
batch (summary, strict-JSON raw result)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from flows.expectations import ValidationReport, build_suite


def test_report_summary_and_dict() -> None:
    failed = ValidationReport("b1", False, 7, ["column 'a': must not be null"], None, n_failed=1)
    assert failed.summary() == (
        "batch 'b1': 1 of 7 expectations failed\n  - column 'a': must not be null"
    )
    assert failed.to_dict() == {
        "batch_name": "b1",
        "success": False,
        "n_expectations": 7,
        "n_failed": 1,
        "failed": ["column 'a': must not be null"],
        "n_warnings": 0,
        "warnings": [],
        "warning_rows": {},
    }
    assert ValidationReport("b2", True, 7, [], None).summary() == (
        "batch 'b2': all 7 expectations passed"
    )
    warned = ValidationReport("b3", True, 7, [], None, warnings=["column 'a': far"],
                              warning_rows={"a": 2})
    assert warned.summary() == (
        "batch 'b3': no critical expectation failed of 7\n  1 warning(s), not refused:\n"
        "  - column 'a': far"
    )
    assert warned.to_dict()["warning_rows"] == {"a": 2} and warned.n_warnings == 1


def test_clean_batch_passes(batch, suite, check) -> None:
    report = check(batch, suite, "clean")
    assert report.success and report.failed == [] and report.n_failed == 0
    assert report.n_expectations == len(suite.expectations)
    json.dumps(report.raw, allow_nan=False)  # strict JSON
    assert report.summary() == f"batch 'clean': all {len(suite.expectations)} expectations passed"


def test_a_failing_user_expectation_is_reported(train, features, batch, make_params, check) -> None:
    params = make_params(
        expectations=[
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "b", "max_value": 12}}
        ]
    )
    report = check(batch, build_suite(train, features, params))
    assert not report.success
    assert any(line.startswith("column 'b': values between [None, 12]:") for line in report.failed)


def test_out_of_range_value_is_a_warning_not_a_failure(batch, suite, check) -> None:
    batch.loc[5, "b"] = 1000.0
    report = check(batch, suite)
    assert report.success and report.failed == [] and report.n_failed == 0
    (line,) = report.warnings
    assert line.startswith("column 'b': values between [")
    assert "1 of 100 rows outside" in line and "examples: 1000" in line
    assert report.warning_rows == {"b": 1}
    assert not report.raw["success"]  # GX's own verdict counts the warning as a failure


def test_a_declared_warning_is_not_a_failure(train, features, batch, make_params, check) -> None:
    params = make_params(
        expectations=[
            {"type": "expect_column_values_to_be_between", "severity": "warning",
             "kwargs": {"column": "b", "max_value": 12}}
        ]
    )
    report = check(batch, build_suite(train, features, params))
    assert report.success and report.failed == []
    assert [w.split(":")[0] for w in report.warnings] == ["column 'b'"]
    assert report.warning_rows["b"] == int((batch["b"] > 12).sum())


def test_missing_column(batch, suite, check) -> None:
    report = check(batch.drop(columns=["b"]), suite)
    assert not report.success
    assert any("missing column(s) ['b']" in line for line in report.failed)
    assert any(line.startswith("column 'b': missing from the data") for line in report.failed)


def test_extra_column(batch, suite, check) -> None:
    report = check(batch.assign(extra=1.0), suite)
    assert not report.success
    assert report.failed == [
        "table columns: unexpected column(s) ['extra'] (expected exactly: a, b, c)"
    ]


def test_nan_value(batch, suite, check) -> None:
    batch.loc[3, "a"] = np.nan
    report = check(batch, suite)
    assert not report.success
    assert report.failed == ["column 'a': must not be null: 1 of 100 rows are null"]


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_value(batch, suite, check, value) -> None:
    big = pd.concat([batch] * 20, ignore_index=True)  # 2000 rows: range_mostly alone would pass
    big.loc[7, "a"] = value
    report = check(big, suite)
    assert not report.success
    assert any(
        line.startswith("column 'a': values must be finite: 1 of 2000 rows are infinite")
        for line in report.failed
    )
    json.dumps(report.raw, allow_nan=False)


def test_string_column(batch, suite, check) -> None:
    batch["c"] = batch["c"].astype(str)
    batch.loc[0, "c"] = "abc"
    report = check(batch, suite)
    assert not report.success
    (line,) = report.failed
    assert line.startswith("column 'c': must be numeric: observed dtype") and "'abc'" in line


def test_object_column_is_checked_value_by_value(batch, suite, check) -> None:
    batch["c"] = batch["c"].astype(object)  # Python ints: numbers, so fine
    assert check(batch, suite).success
    batch.loc[0, "c"] = "abc"
    (line,) = check(batch, suite).failed
    assert line == "column 'c': must be numeric: 1 of 100 rows hold non-numbers (examples: 'abc')"


def test_empty_batch(batch, suite, check) -> None:
    report = check(batch.iloc[:0], suite)
    assert not report.success
    assert "table: row count must be >= 1: observed 0" in report.failed
