"""flows.registry.inputs: the input example and signature a version is logged with, and batches
cast to the signature (prepare_input)."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from pandas.testing import assert_frame_equal

from flows import registry
from flows.registry import load_champion_pyfunc, log_and_register
from flows.registry.inputs import model_metadata, prepare_example

pytestmark = pytest.mark.slow  # the tiny model trains once per session


def test_unlabelled_first_version_becomes_champion_integer_signature(
    tiny_registry, make_registry_params
):
    root, tiny_model = tiny_registry.root, tiny_registry.model
    params = make_registry_params(metric="roc_auc")
    ints = tiny_model.batch.round().astype("int64")
    reg = log_and_register(
        params.registry,
        params.retries,
        root,
        model_path=tiny_model.path,
        metric=params.evaluate.metric,
        metrics={},
        params_flat={},
        input_example=ints.head(5),  # integer data (like Shuttle): the signature says long
    )
    assert reg.promoted and reg.metric_value is None
    assert reg.aliases == ("challenger", "champion")

    model, _ = load_champion_pyfunc(params.registry, params.retries, root, params.scoring.alias)
    schema = model.metadata.get_input_schema()
    assert [s.type.name for s in schema.inputs] == ["long"] * 3
    expected = tiny_model.detector.score_frame(ints)
    assert_frame_equal(model.predict(ints), expected, check_exact=True)  # as is
    whole_floats = ints.astype("float64")  # e.g. a CSV column read as float
    with pytest.raises(MlflowException, match="Can not safely convert float64 to int64"):
        model.predict(whole_floats)
    assert_frame_equal(
        model.predict(registry.prepare_input(model, whole_floats)), expected, check_exact=True
    )
    fractional = whole_floats.assign(a=whole_floats["a"] + 0.5)
    assert registry.prepare_input(model, fractional)["a"].dtype == "float64"  # left alone
    # the run logged no params and no metrics: nothing to log is no error
    run = mlflow.get_run(reg.run_id)
    assert run.data.params == {} and run.data.metrics == {}


def test_prepare_example_takes_the_feature_columns_typed_like_training(tiny_model):
    frame = tiny_model.validation.head(3).assign(
        note="x", b=lambda d: d["b"].round().astype("int32")
    )[["note", "c", "b", "a"]]
    example = prepare_example(tiny_model.detector, frame)
    assert list(example.columns) == ["a", "b", "c"]
    assert list(example.dtypes) == ["float64", "int64", "float64"]
    assert example.index.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (pd.DataFrame(columns=["a", "b", "c"]), "non-empty DataFrame"),
        (
            pd.DataFrame({"a": [1.0], "b": [2.0]}),
            r"lacks the detector's feature column\(s\) \['c'\]",
        ),
    ],
    ids=["empty", "missing column"],
)
def test_prepare_example_errors_name_the_problem(tiny_model, frame, match):
    with pytest.raises(ValueError, match=match):
        prepare_example(tiny_model.detector, frame)


def test_model_metadata_of_a_tabular_detector(tiny_model):
    assert model_metadata(tiny_model.detector, "ts") == {
        "anomaly_kind": "ensemble",
        "context_rows": 0,
    }
