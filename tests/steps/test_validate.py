"""flows.steps.validate: the GX suite from the training split, readable failures, Data Docs,
the suite's JSON round trip, and the validate step over the three splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.config import ConfigError, Params
from flows.steps.ingest import DataError, ingest
from flows.steps.validate import (
    ValidationFailed,
    ValidationReport,
    build_suite,
    load_suite,
    save_suite,
    validate,
    validate_frame,
)

FEATURES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 300
    return pd.DataFrame(
        {
            "a": rng.normal(0.0, 1.0, n),
            "b": rng.uniform(10.0, 20.0, n),
            "c": rng.integers(0, 100, n),
            "y": (rng.random(n) < 0.1).astype("int64"),
        }
    )


@pytest.fixture(scope="module")
def params() -> Params:
    return Params.model_validate({"data": {"source": "x.csv", "label_column": "y"}})


@pytest.fixture(scope="module")
def suite(train, params):
    return build_suite(train, FEATURES, params)


@pytest.fixture(scope="module")
def gx_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("project") / "gx"


@pytest.fixture
def batch(train) -> pd.DataFrame:
    """A clean batch: rows of the training data itself (always inside the ranges)."""
    return train.sample(100, random_state=0).reset_index(drop=True)


def check(df, suite, gx_dir, name="batch") -> ValidationReport:
    return validate_frame(df, suite, gx_dir, name)


# --------------------------------------------------------------------------- the suite
def test_suite_content(suite, train) -> None:
    kinds = [(e.expectation_type, getattr(e, "column", None)) for e in suite.expectations]
    assert ("expect_table_columns_to_match_set", None) in kinds
    assert ("expect_table_row_count_to_be_between", None) in kinds
    for col in FEATURES:
        assert ("expect_column_values_to_be_in_type_list", col) in kinds
        assert ("expect_column_values_to_not_be_null", col) in kinds
        assert kinds.count(("expect_column_values_to_be_between", col)) == 2  # finite + range
    assert not any(col == "y" for _, col in kinds)  # the label is not a model input
    assert suite.meta["label_column"] == "y" and suite.meta["feature_columns"] == FEATURES
    ranges = {
        e.column: (e.min_value, e.max_value)
        for e in suite.expectations
        if e.meta.get("check") == "range"
    }
    lo, hi = train["b"].min(), train["b"].max()
    assert ranges["b"] == pytest.approx((lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)))


def test_user_expectations_are_added(train) -> None:
    params = Params.model_validate(
        {
            "data": {"source": "x.csv", "label_column": "y"},
            "validate": {
                "expectations": [
                    {
                        "type": "expect_column_mean_to_be_between",
                        "kwargs": {"column": "b", "min_value": 14, "max_value": 16},
                    }
                ]
            },
        }
    )
    suite = build_suite(train, FEATURES, params)
    assert suite.expectations[-1].expectation_type == "expect_column_mean_to_be_between"
    assert suite.expectations[-1].meta["check"] == "user"


def test_a_failing_user_expectation_is_reported(train, batch, gx_dir) -> None:
    params = Params.model_validate(
        {
            "data": {"source": "x.csv", "label_column": "y"},
            "validate": {
                "expectations": [
                    {
                        "type": "expect_column_values_to_be_between",
                        "kwargs": {"column": "b", "max_value": 12},
                    }
                ]
            },
        }
    )
    report = check(batch, build_suite(train, FEATURES, params), gx_dir)
    assert not report.success
    assert any(line.startswith("column 'b': values between [None, 12]:") for line in report.failed)


def test_unknown_user_expectation_names_the_key(train) -> None:
    params = Params.model_validate(
        {
            "data": {"source": "x.csv", "label_column": "y"},
            "validate": {"expectations": [{"type": "expect_everything_to_be_fine"}]},
        }
    )
    with pytest.raises(
        ConfigError,
        match=r"validate.expectations\[0\].type: unknown .*expect_everything_to_be_fine",
    ):
        build_suite(train, FEATURES, params)


def test_bad_user_expectation_arguments_name_the_key(train) -> None:
    params = Params.model_validate(
        {
            "data": {"source": "x.csv", "label_column": "y"},
            "validate": {
                "expectations": [
                    {"type": "expect_column_values_to_be_between", "kwargs": {"colum": "a"}}
                ]
            },
        }
    )
    with pytest.raises(ConfigError, match=r"validate.expectations\[0\].kwargs: "):
        build_suite(train, FEATURES, params)


# --------------------------------------------------------------------------- validation
def test_clean_batch_passes(batch, suite, gx_dir) -> None:
    report = check(batch, suite, gx_dir, "clean")
    assert report.success and report.failed == [] and report.n_failed == 0
    assert report.n_expectations == len(suite.expectations)
    json.dumps(report.raw, allow_nan=False)  # strict JSON
    assert "all" in report.summary() and "passed" in report.summary()


def test_label_column_is_optional_in_a_batch(batch, suite, gx_dir) -> None:
    assert check(batch.drop(columns=["y"]), suite, gx_dir).success


def test_data_docs_inside_the_context_dir(batch, suite, gx_dir) -> None:
    report = check(batch, suite, gx_dir, "docs")
    assert report.data_docs_index is not None and report.data_docs_index.name == "index.html"
    assert report.data_docs_index.is_file()
    assert report.data_docs_index.is_relative_to(gx_dir)
    assert report.data_docs_page is not None and report.data_docs_page.is_file()
    assert report.data_docs_page.is_relative_to(gx_dir)


def test_without_docs_a_pass_builds_no_page_and_a_failure_does(batch, suite, tmp_path) -> None:
    gx_dir = tmp_path / "gx"
    passed = validate_frame(batch, suite, gx_dir, "quiet-pass", build_docs=False)
    assert passed.success
    assert not list(gx_dir.rglob("*quiet-pass*.html"))  # no Data Docs rebuild for a pass
    bad = batch.copy()
    bad.loc[5, "b"] = 1000.0
    failed = validate_frame(bad, suite, gx_dir, "quiet-fail", build_docs=False)
    assert not failed.success and failed.failed
    assert failed.data_docs_page is not None and failed.data_docs_page.is_file()
    assert "quiet-fail" in str(failed.data_docs_page)  # pages are named after the run


def _stored_runs(gx_dir: Path) -> list[str]:
    """Run names of the validation results stored in the GX context at ``gx_dir``."""
    from flows.steps.validate import gx_context

    keys = gx_context(gx_dir).validation_results_store.list_keys()
    return sorted(k.run_id.run_name for k in keys)


def test_without_docs_each_call_is_stored_and_a_removed_gx_folder_is_recreated(
    batch, suite, tmp_path
) -> None:
    import shutil

    gx_dir = tmp_path / "gx"
    for name in ("first", "second"):
        assert validate_frame(batch, suite, gx_dir, name, build_docs=False).success
    assert _stored_runs(gx_dir) == ["first", "second"]
    # the definition looked up by the first call is kept for the next ones; a context whose
    # folder was deleted meanwhile (a person cleaning up under a long-lived `anomaly serve`)
    # is set up again rather than failing every later batch
    shutil.rmtree(gx_dir)
    bad = batch.copy()
    bad.loc[5, "b"] = 1000.0
    failed = validate_frame(bad, suite, gx_dir, "after-removal", build_docs=False)
    assert not failed.success and failed.failed[0].startswith("column 'b': values between [")
    assert _stored_runs(gx_dir) == ["after-removal"]
    assert failed.data_docs_page is not None and failed.data_docs_page.is_file()


def test_result_format_sets_how_much_gx_records(batch, suite, tmp_path) -> None:
    bad = batch.copy()
    bad.loc[5, "b"] = 1000.0
    recorded = {}
    for fmt in ("BASIC", "SUMMARY"):
        report = validate_frame(bad, suite, tmp_path / "gx", fmt, build_docs=False,
                                result_format=fmt)
        (failure,) = [r for r in report.raw["results"] if not r["success"]]
        recorded[fmt] = failure["result"]
        assert report.failed == [report.failed[0]] and "1 of 100 rows outside" in report.failed[0]
    assert recorded["BASIC"]["partial_unexpected_list"] == [1000.0]
    assert "partial_unexpected_index_list" not in recorded["BASIC"]
    assert recorded["SUMMARY"]["partial_unexpected_index_list"] == [5]
    assert recorded["SUMMARY"]["partial_unexpected_counts"] == [{"value": 1000.0, "count": 1}]
    with pytest.raises(ValueError, match=r"result_format must be one of .* got 'FULL'"):
        validate_frame(batch, suite, tmp_path / "gx", "x", result_format="FULL")


def test_out_of_range_value(batch, suite, gx_dir) -> None:
    batch.loc[5, "b"] = 1000.0
    report = check(batch, suite, gx_dir)
    assert not report.success
    (line,) = report.failed
    assert line.startswith("column 'b': values between [")
    assert "1 of 100 rows outside" in line and "examples: 1000" in line


def test_a_rare_extreme_value_is_tolerated_by_range_mostly(train, suite, gx_dir) -> None:
    big = pd.concat([train] * 7, ignore_index=True)  # 2100 rows: 1 outlier < 0.1 %
    big.loc[3, "b"] = 1000.0
    assert check(big, suite, gx_dir).success


def test_missing_column(batch, suite, gx_dir) -> None:
    report = check(batch.drop(columns=["b"]), suite, gx_dir)
    assert not report.success
    assert any("missing column(s) ['b']" in line for line in report.failed)
    assert any(line.startswith("column 'b': missing from the data") for line in report.failed)


def test_extra_column(batch, suite, gx_dir) -> None:
    report = check(batch.assign(extra=1.0), suite, gx_dir)
    assert not report.success
    assert report.failed == [
        "table columns: unexpected column(s) ['extra'] (expected exactly: a, b, c)"
    ]


def test_nan_value(batch, suite, gx_dir) -> None:
    batch.loc[3, "a"] = np.nan
    report = check(batch, suite, gx_dir)
    assert not report.success
    assert report.failed == ["column 'a': must not be null: 1 of 100 rows are null"]


def test_nan_allowed_up_to_max_null_fraction(train, batch, gx_dir) -> None:
    params = Params.model_validate(
        {"data": {"source": "x", "label_column": "y"}, "validate": {"max_null_fraction": 0.05}}
    )
    batch.loc[3, "a"] = np.nan
    assert check(batch, build_suite(train, FEATURES, params), gx_dir).success


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_value(batch, suite, gx_dir, value) -> None:
    big = pd.concat([batch] * 20, ignore_index=True)  # 2000 rows: range_mostly alone would pass
    big.loc[7, "a"] = value
    report = check(big, suite, gx_dir)
    assert not report.success
    assert any(
        line.startswith("column 'a': values must be finite: 1 of 2000 rows are infinite")
        for line in report.failed
    )
    json.dumps(report.raw, allow_nan=False)


def test_string_column(batch, suite, gx_dir) -> None:
    batch["c"] = batch["c"].astype(str)
    batch.loc[0, "c"] = "abc"
    report = check(batch, suite, gx_dir)
    assert not report.success
    (line,) = report.failed
    assert line.startswith("column 'c': must be numeric: observed dtype") and "'abc'" in line


def test_object_column_is_checked_value_by_value(batch, suite, gx_dir) -> None:
    batch["c"] = batch["c"].astype(object)  # Python ints: numbers, so fine
    assert check(batch, suite, gx_dir).success
    batch.loc[0, "c"] = "abc"
    (line,) = check(batch, suite, gx_dir).failed
    assert line == "column 'c': must be numeric: 1 of 100 rows hold non-numbers (examples: 'abc')"


def test_empty_batch(batch, suite, gx_dir) -> None:
    report = check(batch.iloc[:0], suite, gx_dir)
    assert not report.success
    assert "table: row count must be >= 1: observed 0" in report.failed


def test_other_numeric_dtypes_pass(batch, suite, gx_dir) -> None:
    batch["c"] = batch["c"].astype("Int64")
    batch["a"] = batch["a"].astype("float32")
    assert check(batch, suite, gx_dir).success


# --------------------------------------------------------------------------- suite JSON
def test_suite_json_round_trip_gives_the_same_outcome(tmp_path, batch, suite, gx_dir) -> None:
    path = save_suite(suite, tmp_path / "suite.json")
    first_bytes = path.read_bytes()
    loaded = load_suite(path)
    assert save_suite(loaded, tmp_path / "again.json").read_bytes() == first_bytes
    assert "Infinity" not in first_bytes.decode()

    bad = batch.copy()
    bad.loc[2, "b"] = -500.0
    bad.loc[4, "a"] = np.nan
    original, reloaded = check(bad, suite, gx_dir), check(bad, loaded, gx_dir)
    assert not original.success
    assert (original.success, original.failed) == (reloaded.success, reloaded.failed)
    assert check(batch, loaded, gx_dir).success


def test_load_suite_errors(tmp_path) -> None:
    with pytest.raises(DataError, match=r"expectation suite not found: .*nope\.json"):
        load_suite(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match=r"cannot read expectation suite .*bad\.json"):
        load_suite(tmp_path / "bad.json")


# --------------------------------------------------------------------------- the step
@pytest.fixture
def project(tmp_path, train) -> tuple[Params, Path]:
    df = pd.concat([train] * 2, ignore_index=True)
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
    assert isinstance(info.value, DataError)
    assert not info.value.reports["test"].success and info.value.reports["train"].success
    report = json.loads((root / "data" / "interim" / "validation_report.json").read_text())
    assert report["success"] is False and report["batches"]["test"]["n_failed"] >= 1


def test_validate_step_needs_the_split(tmp_path, params) -> None:
    with pytest.raises(DataError, match=r"train split not found: .*run the ingest step first"):
        validate(params, tmp_path)


# ------------------------------------------------------------------------------ quick_check
def _variants(batch: pd.DataFrame, suite) -> dict[str, pd.DataFrame]:
    """Batches that pass or fail each kind of expectation of the suite, and edge cases."""
    (lo, hi), *_ = [
        (e.configuration.kwargs["min_value"], e.configuration.kwargs["max_value"])
        for e in suite.expectations
        if e.meta.get("check") == "range" and e.configuration.kwargs["column"] == "a"
    ]
    v = {"clean": batch, "no label": batch.drop(columns=["y"])}
    v["one far value (within range_mostly? no: 1 of 100)"] = batch.assign(a=[*batch["a"][:-1], 1e6])
    v["nan"] = batch.assign(b=[np.nan, *batch["b"][1:]])
    v["inf"] = batch.assign(c=[np.inf, *batch["c"][1:].astype(float)])
    v["-inf"] = batch.assign(a=[-np.inf, *batch["a"][1:]])
    v["missing column"] = batch.drop(columns=["b"])
    v["extra column"] = batch.assign(z=1.0)
    v["int column as float32"] = batch.astype({"c": "float32"})
    v["inf in a float32 column"] = batch.astype({"a": "float32"}).assign(
        a=np.array([np.inf, *batch["a"][1:]], dtype="float32"))
    v["values exactly at the range bounds"] = batch.assign(a=[lo, hi, *batch["a"][2:]])
    v["empty"] = batch.iloc[:0]
    v["string column"] = batch.astype({"a": str})
    big = pd.concat([batch] * 20, ignore_index=True)  # 2,000 rows: mostly=0.999 allows 2
    v["2 far values in 2000 (within mostly)"] = big.assign(a=[1e6, 1e6, *big["a"][2:]])
    v["3 far values in 2000 (beyond mostly)"] = big.assign(a=[1e6] * 3 + list(big["a"][3:]))
    v["3 far integers in 2000 (beyond mostly)"] = big.assign(c=[10**6] * 3 + list(big["c"][3:]))
    v["2 far integers in 2000 (within mostly)"] = big.assign(c=[-(10**6)] * 2 + list(big["c"][2:]))
    v["a column of NaN only"] = batch.assign(b=np.nan)
    return v


def test_quick_check_agrees_with_great_expectations(batch, suite, gx_dir) -> None:
    from flows.steps.validate import quick_check

    for name, frame in _variants(batch, suite).items():
        verdict = quick_check(frame, suite)
        gx_ok = validate_frame(frame, suite, gx_dir, batch_name=f"quick {name}", build_docs=False).success
        if verdict is not None:  # None = leave it to GX
            assert verdict == gx_ok, (name, verdict, gx_ok)
        if gx_ok is False:  # never a pass that GX would refuse
            assert verdict is not True, name
    assert quick_check(batch, suite) is True
    assert quick_check(batch.astype({"a": str}), suite) is None  # strings: GX decides


def test_quick_check_leaves_user_expectations_to_gx(train, batch) -> None:
    from flows.steps.validate import quick_check

    params = Params.model_validate(
        {
            "data": {"source": "x.csv", "label_column": "y"},
            "validate": {"expectations": [{"type": "expect_column_mean_to_be_between",
                                           "kwargs": {"column": "a", "min_value": -1, "max_value": 1}}]},
        }
    )
    assert quick_check(batch, build_suite(train, FEATURES, params)) is None
