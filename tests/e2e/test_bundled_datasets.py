"""Issue 12, "your own data, first try": ``anomaly train`` with the default settings of
params.yaml trains and registers a model on small real data sets shipped inside the installed
packages (scikit-learn, river; see tests/e2e/bundled_data.py), given only ``data.source``,
``data.label_column``, ``registry.model_name`` and a few epochs.

The matrix covers data with and without labels, a text id column (left out of the features
without being named), integer-only columns, constant columns (digits' border pixels), column
names with spaces, parentheses and slashes, and 150 to 49,097 rows. Values of the validation or
test split outside the training range are warnings of the validation report, never a refusal
(before that change, wine without labels failed on ``column 'ash'``).

One project (one MLflow registry) for the module; each data set is its own registered model.
Each ``anomaly train`` is a subprocess talking to this session's Prefect API.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.e2e.bundled_data import DATASETS, ID, LABEL, Bundled, write_csv
from tests.e2e.project import BIN, REPO, cli_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

EPOCHS = 5


@pytest.fixture(scope="module")
def project(tmp_path_factory, prefect_api):
    """A project with the repository's own params.yaml (defaults untouched) and every data set
    written to data/raw/<name>.csv."""
    root = tmp_path_factory.mktemp("bundled")
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(REPO / name, root / name)
    for dataset in DATASETS:
        write_csv(dataset, root / "data" / "raw")
    return root


def _env(root):
    """The CLI's environment, on this session's Prefect API (no temporary API per run)."""
    from prefect.settings import PREFECT_API_URL

    env = cli_env(root)
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    return env


def _train(root, dataset: Bundled) -> subprocess.CompletedProcess:
    label = LABEL if dataset.labelled else "null"
    args = [
        str(BIN / "anomaly"),
        "train",
        "--set",
        f"data.source=data/raw/{dataset.name}.csv",
        "--set",
        f"data.label_column={label}",
        "--set",
        f"registry.model_name={dataset.name}",
        "--set",
        f"train.epochs={EPOCHS}",
    ]
    return subprocess.run(
        args, cwd=root, env=_env(root), capture_output=True, text=True, timeout=600
    )


def _bounds(values: pd.Series, margin: float) -> tuple[float, float]:
    """The training range widened as params.yaml documents (validate.range_margin)."""
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo
    pad = margin * span if span > 0 else margin * max(abs(hi), 1.0)
    return lo - pad, hi + pad


def _expected_warnings(root, features: list[str]) -> dict[str, set[str]]:
    """Per split: the feature columns with more rows outside the widened training range than
    validate.range_mostly allows, computed from the split files."""
    import yaml

    validate = yaml.safe_load((root / "params.yaml").read_text())["validate"]
    margin, mostly = validate["range_margin"], validate["range_mostly"]
    processed = root / "data" / "processed"
    train = pd.read_parquet(processed / "train.parquet")
    expected: dict[str, set[str]] = {}
    for split in ("train", "validation", "test"):
        frame = pd.read_parquet(processed / f"{split}.parquet")
        warned = set()
        for column in features:
            lo, hi = _bounds(train[column], margin)
            values = frame[column].to_numpy(dtype="float64")
            inside = np.count_nonzero((values >= lo) & (values <= hi))
            if inside / len(values) < mostly:
                warned.add(column)
        expected[split] = warned
    return expected


@pytest.mark.parametrize("dataset", DATASETS, ids=[d.name for d in DATASETS])
def test_default_settings_train_and_register(project, dataset: Bundled):
    root = project
    done = _train(root, dataset)
    assert done.returncode == 0, (
        f"anomaly train on {dataset.name} ({dataset.source}) exited {done.returncode}:\n"
        + done.stderr[-5000:]
    )
    assert f"registered {dataset.name} version 1" in done.stdout, done.stdout

    # registered, with an alias, in the project's registry
    client = mlflow.MlflowClient(
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        registry_uri=f"sqlite:///{root / 'mlflow.db'}",
    )
    versions = client.search_model_versions(f"name = '{dataset.name}'")
    assert [str(v.version) for v in versions] == ["1"]
    assert str(client.get_model_version_by_alias(dataset.name, "champion").version) == "1"

    # the features: every numeric column, never the label nor the text id
    split = json.loads((root / "data" / "processed" / "split.json").read_text())
    features = split["feature_columns"]
    assert split["metrics"]["rows"] == dataset.rows  # the whole file was read
    assert len(features) == dataset.features
    assert LABEL not in features
    if dataset.integers:  # integer columns reach the splits as integers
        train = pd.read_parquet(root / "data" / "processed" / "train.parquet", columns=features)
        assert all(pd.api.types.is_integer_dtype(t) for t in train.dtypes), train.dtypes
    if dataset.text_id:
        assert ID not in features
        raw = pd.read_csv(root / "data" / "raw" / f"{dataset.name}.csv", nrows=5)
        assert raw[ID].str.startswith("row-").all()
        assert features == [c for c in raw.columns if c not in (ID, LABEL)]

    # validation passed; values outside the training range are warnings, not failures
    report = json.loads((root / "data" / "interim" / "validation_report.json").read_text())
    assert report["success"] is True
    expected = _expected_warnings(root, features)
    for name, batch in report["batches"].items():
        assert batch["success"] is True and batch["n_failed"] == 0 and batch["failed"] == [], (
            name,
            batch["failed"],
        )
        assert set(batch["warning_rows"]) == expected[name], (name, batch["warnings"])
        assert batch["n_warnings"] == len(batch["warnings"]) == len(expected[name])
        for column in expected[name]:
            assert any(f"column {column!r}" in line for line in batch["warnings"]), (
                column,
                batch["warnings"],
            )
    assert report["n_warnings"] == sum(len(v) for v in expected.values())
    assert expected["train"] == set()
    if dataset.name == "wine":  # the data: out-of-range rows in validation and test
        assert report["batches"]["test"]["warning_rows"].get("ash") == 1

    # with labels: finite ranking metrics on the test split
    metrics = json.loads((root / "metrics.json").read_text())
    if dataset.labelled:
        for key in ("pr_auc", "roc_auc"):
            assert isinstance(metrics[key], float) and math.isfinite(metrics[key]), (key, metrics)
    else:
        assert "roc_auc" not in metrics and "pr_auc" not in metrics
