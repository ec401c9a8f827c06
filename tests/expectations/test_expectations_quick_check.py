"""flows.expectations.quick_check: the numpy pre-check agrees with Great Expectations on every
case it decides, never passes a frame GX refuses, and leaves what it cannot judge to GX."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flows.expectations import Validator, build_suite, quick_check


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


#: (variant, the quick check's verdict, whether GX passes it (no critical failure), the columns
#: with a failed warning): None = left to GX. Values outside the training range are warnings
#: (beyond range_mostly), never failures.
CASES = [
    ("clean", True, True, []),
    ("no label", True, True, []),
    ("one far value (within range_mostly? no: 1 of 100)", True, True, ["a"]),
    ("nan", False, False, []),
    ("inf", False, False, []),
    ("-inf", False, False, []),
    ("missing column", False, False, []),
    ("extra column", False, False, []),
    ("int column as float32", True, True, []),
    ("inf in a float32 column", False, False, []),
    ("values exactly at the range bounds", True, True, []),
    ("empty", False, False, []),
    ("string column", None, False, []),  # strings: GX decides
    ("2 far values in 2000 (within mostly)", True, True, []),
    ("3 far values in 2000 (beyond mostly)", True, True, ["a"]),
    ("3 far integers in 2000 (beyond mostly)", True, True, ["c"]),
    ("2 far integers in 2000 (within mostly)", True, True, []),
    ("a column of NaN only", False, False, []),
]


@pytest.fixture(scope="module")
def validator(tmp_path_factory) -> Validator:
    """One Validator for all cases: GX's definition is looked up once."""
    return Validator(tmp_path_factory.mktemp("quick") / "gx")


def test_every_variant_has_a_case(batch, suite) -> None:
    assert [name for name, *_ in CASES] == list(_variants(batch, suite))


@pytest.mark.parametrize(
    ("name", "verdict", "gx_passes", "warned"), CASES, ids=[c[0] for c in CASES]
)
def test_quick_check_agrees_with_great_expectations(
    batch, suite, validator, name, verdict, gx_passes, warned
) -> None:
    frame = _variants(batch, suite)[name]
    report = validator.validate(frame, suite, f"quick {name}", build_docs=False)
    gx_ok = report.success
    assert gx_ok is gx_passes, name
    assert sorted(report.warning_rows) == warned, (name, report.warnings)
    assert all("values between" in line for line in report.warnings), report.warnings
    assert quick_check(frame, suite) is verdict, name
    if verdict is not None:  # every case states whether a verdict is expected; None = GX's
        assert verdict is gx_ok, (name, verdict, gx_ok)
    if gx_ok is False:  # never a pass that GX would refuse
        assert verdict is not True, name


def test_quick_check_passes_a_clean_batch_and_leaves_strings_to_gx(batch, suite) -> None:
    assert quick_check(batch, suite) is True
    assert quick_check(batch.astype({"a": str}), suite) is None  # strings: GX decides


def test_quick_check_leaves_user_expectations_to_gx(train, features, batch, make_params) -> None:
    params = make_params(
        expectations=[{"type": "expect_column_mean_to_be_between",
                       "kwargs": {"column": "a", "min_value": -1, "max_value": 1}}]
    )
    assert quick_check(batch, build_suite(train, features, params)) is None
