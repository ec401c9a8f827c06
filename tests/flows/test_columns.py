"""flows.columns: which columns are features, the label and timestamp checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flows.columns import (
    check_label,
    check_timestamp,
    feature_columns,
    normal_rows,
    require_timestamp_column,
)
from flows.config import Params
from flows.errors import ConfigError, DataError


def params(**data) -> Params:
    return Params.model_validate({"data": {"source": "x.csv", "label_column": "y", **data}})


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "a": rng.normal(size=10),
            "b": rng.uniform(size=10),
            "c": rng.integers(0, 9, 10),
            "note": [f"row-{i}" for i in range(10)],
            "y": [0] * 8 + [1] * 2,
        }
    )


def test_feature_columns_are_the_numeric_ones_without_label_and_timestamp(frame) -> None:
    assert feature_columns(frame, params()) == ["a", "b", "c"]
    frame["flag"] = frame["a"] > 0  # booleans are not numeric features
    assert feature_columns(frame, params()) == ["a", "b", "c"]
    assert feature_columns(frame, params(label_column=None)) == ["a", "b", "c", "y"]
    assert feature_columns(frame, params(timestamp_column="c")) == ["a", "b"]


def test_configured_feature_columns_keep_their_order_and_must_be_numeric(frame) -> None:
    assert feature_columns(frame, params(feature_columns=["c", "a"])) == ["c", "a"]
    with pytest.raises(DataError, match=r"'note' in the data is not numeric.*'row-0'"):
        feature_columns(frame, params(feature_columns=["a", "note"]))
    with pytest.raises(DataError, match=r"\['zz'\] \(data.feature_columns\) not found"):
        feature_columns(frame, params(feature_columns=["a", "zz"]))


def test_a_numeric_column_with_some_text_is_an_error_not_dropped(frame) -> None:
    frame["b"] = frame["b"].astype(object)
    frame.loc[3, "b"] = "n/a"
    with pytest.raises(DataError, match=r"'b' in day1.csv is not numeric: 1 of 10 .*'n/a'"):
        feature_columns(frame, params(), source="day1.csv")


def test_no_numeric_column_lists_what_is_there() -> None:
    df = pd.DataFrame({"t": ["x", "y"], "y": [0, 1]})
    with pytest.raises(DataError, match=r"no numeric feature columns.*columns present: t, y"):
        feature_columns(df, params())


def test_normal_rows(frame) -> None:
    assert normal_rows(frame, "y").index.tolist() == list(range(8))
    assert len(normal_rows(frame, None)) == len(normal_rows(frame, "absent")) == 10


def test_check_label_accepts_0_1_bool_and_text_and_names_other_values() -> None:
    assert check_label(pd.DataFrame({"y": [True, False]}), "y", "s").tolist() == [1, 0]
    assert check_label(pd.DataFrame({"y": ["0", "1"]}), "y", "s").tolist() == [0, 1]
    assert check_label(pd.DataFrame({"y": [0.0, 1.0]}), "y", "s").dtype == "int64"
    with pytest.raises(DataError, match=r"2 row\(s\) hold other values: 2.0, 'NaN'"):
        check_label(pd.DataFrame({"y": [0, 2, np.nan]}), "y", "s")
    with pytest.raises(DataError, match=r"label column 'z' .* not found in s"):
        check_label(pd.DataFrame({"y": [0]}), "z", "s")


def test_check_timestamp_parses_text_and_refuses_gaps_and_words() -> None:
    parsed = check_timestamp(pd.DataFrame({"t": ["2026-01-01", "2026-01-02"]}), "t", "s")
    assert parsed.dt.day.tolist() == [1, 2]
    with pytest.raises(DataError, match="1 missing value"):
        check_timestamp(pd.DataFrame({"t": [1.0, np.nan]}), "t", "s")
    with pytest.raises(DataError, match="holds values that are not times"):
        check_timestamp(pd.DataFrame({"t": ["monday", "later"]}), "t", "s")


def test_sequence_kinds_need_a_timestamp_column() -> None:
    seq = Params.model_validate(
        {"data": {"source": "x.csv"}, "model": {"kind": "lstm_autoencoder"}}
    )
    with pytest.raises(ConfigError, match="data.timestamp_column: model.kind lstm_autoencoder"):
        require_timestamp_column(seq)
    assert require_timestamp_column(params(timestamp_column="t")) == "t"
