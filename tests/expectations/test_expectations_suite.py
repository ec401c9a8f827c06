"""flows.expectations.suite: the suite built from the training split and params.validate, what
it tolerates, and its JSON round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flows.config import ConfigError
from flows.errors import DataError
from flows.expectations import build_suite, load_suite, model_inputs, save_suite


def test_suite_content(suite, train, features) -> None:
    kinds = [(e.expectation_type, getattr(e, "column", None)) for e in suite.expectations]
    assert ("expect_table_columns_to_match_set", None) in kinds
    assert ("expect_table_row_count_to_be_between", None) in kinds
    for col in features:
        assert ("expect_column_values_to_be_in_type_list", col) in kinds
        assert ("expect_column_values_to_not_be_null", col) in kinds
        assert kinds.count(("expect_column_values_to_be_between", col)) == 2  # finite + range
    assert not any(col == "y" for _, col in kinds)  # the label is not a model input
    assert suite.meta["label_column"] == "y" and suite.meta["feature_columns"] == features
    ranges = {
        e.column: (e.min_value, e.max_value)
        for e in suite.expectations
        if e.meta.get("check") == "range"
    }
    lo, hi = train["b"].min(), train["b"].max()
    assert ranges["b"] == pytest.approx((lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)))


def test_a_feature_column_missing_from_the_training_data(train, params) -> None:
    with pytest.raises(DataError, match=r"feature column\(s\) \['zz'\] not in the training data"):
        build_suite(train, ["a", "zz"], params)


def test_model_inputs_drop_the_label_only(batch, suite) -> None:
    assert list(model_inputs(batch, suite).columns) == ["a", "b", "c"]
    no_label = batch.drop(columns=["y"])
    assert model_inputs(no_label, suite) is no_label


def test_user_expectations_are_added(train, features, make_params) -> None:
    params = make_params(
        expectations=[
            {
                "type": "expect_column_mean_to_be_between",
                "kwargs": {"column": "b", "min_value": 14, "max_value": 16},
            }
        ]
    )
    suite = build_suite(train, features, params)
    assert suite.expectations[-1].expectation_type == "expect_column_mean_to_be_between"
    assert suite.expectations[-1].meta["check"] == "user"


def test_unknown_user_expectation_names_the_key(train, features, make_params) -> None:
    params = make_params(expectations=[{"type": "expect_everything_to_be_fine"}])
    with pytest.raises(
        ConfigError,
        match=r"validate.expectations\[0\].type: unknown .*expect_everything_to_be_fine",
    ):
        build_suite(train, features, params)


def test_bad_user_expectation_arguments_name_the_key(train, features, make_params) -> None:
    params = make_params(
        expectations=[{"type": "expect_column_values_to_be_between", "kwargs": {"colum": "a"}}]
    )
    with pytest.raises(ConfigError, match=r"validate.expectations\[0\].kwargs: "):
        build_suite(train, features, params)


# --------------------------------------------------------------------------- what it tolerates
def test_label_column_is_optional_in_a_batch(batch, suite, check) -> None:
    assert check(batch.drop(columns=["y"]), suite).success


def test_a_rare_extreme_value_is_below_the_warning_level_of_range_mostly(train, suite, check):
    big = pd.concat([train] * 7, ignore_index=True)  # 2100 rows: 1 outlier < 0.1 %
    big.loc[3, "b"] = 1000.0
    report = check(big, suite)
    assert report.success and report.warnings == []
    big.loc[4:6, "b"] = 1000.0  # 4 of 2100: beyond range_mostly, a warning, still no failure
    report = check(big, suite)
    assert report.success and report.warning_rows == {"b": 4}


def test_severities_follow_gx_and_the_contract(suite, train, features, make_params) -> None:
    from great_expectations.expectations.expectation_configuration import FailureSeverity

    from flows.config import SEVERITIES
    from flows.expectations import CHECK_SEVERITY, severity_of

    assert tuple(s.value for s in FailureSeverity) == SEVERITIES
    by_check = {}
    for e in suite.expectations:
        by_check.setdefault(e.meta["check"], set()).add(severity_of(e))
    assert by_check == {check: {CHECK_SEVERITY[check]} for check in by_check}
    assert by_check["range"] == {"warning"} and by_check["finite"] == {"critical"}
    declared = build_suite(train, features, make_params(expectations=[
        {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "a", "max_value": 9}},
        {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "b", "max_value": 9},
         "severity": "info"},
    ]))
    assert [severity_of(e) for e in declared.expectations[-2:]] == ["critical", "info"]


def test_a_suite_saved_before_severities_warns_about_ranges(suite, tmp_path) -> None:
    import json

    from flows.expectations import severity_of

    path = save_suite(suite, tmp_path / "suite.json")
    old = json.loads(path.read_text())
    for e in old["expectations"]:
        e.pop("severity")
    (tmp_path / "old.json").write_text(json.dumps(old))
    loaded = load_suite(tmp_path / "old.json")
    assert [severity_of(e) for e in loaded.expectations] == [
        severity_of(e) for e in suite.expectations
    ]


def test_nan_allowed_up_to_max_null_fraction(train, features, batch, make_params, check) -> None:
    params = make_params(max_null_fraction=0.05)
    batch.loc[3, "a"] = np.nan
    assert check(batch, build_suite(train, features, params)).success


def test_other_numeric_dtypes_pass(batch, suite, check) -> None:
    batch["c"] = batch["c"].astype("Int64")
    batch["a"] = batch["a"].astype("float32")
    assert check(batch, suite).success


# --------------------------------------------------------------------------- suite JSON
def test_suite_json_round_trip_gives_the_same_outcome(tmp_path, batch, suite, check) -> None:
    path = save_suite(suite, tmp_path / "suite.json")
    first_bytes = path.read_bytes()
    loaded = load_suite(path)
    assert save_suite(loaded, tmp_path / "again.json").read_bytes() == first_bytes
    assert "Infinity" not in first_bytes.decode()

    bad = batch.copy()
    bad.loc[2, "b"] = -500.0
    bad.loc[4, "a"] = np.nan
    original, reloaded = check(bad, suite), check(bad, loaded)
    assert not original.success
    assert (original.success, original.failed) == (reloaded.success, reloaded.failed)
    assert check(batch, loaded).success


def test_load_suite_errors(tmp_path) -> None:
    with pytest.raises(DataError, match=r"expectation suite not found: .*nope\.json"):
        load_suite(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match=r"cannot read expectation suite .*bad\.json"):
        load_suite(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(DataError, match=r"list\.json is not an expectation suite"):
        load_suite(tmp_path / "list.json")
