"""flows.registry and the register step against a REAL MLflow SQLite registry in tmp_path.

No mocks, except one monkeypatched transient failure for the retry tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pandas.testing import assert_frame_equal

from flows import registry
from flows.registry import (
    RegistryError,
    list_versions,
    load_champion_pyfunc,
    log_and_register,
    promote,
    resolve_alias,
    tracking_uri,
)
from flows.steps.register import StepInputError, register

pytestmark = pytest.mark.slow


def _register(params, root, tiny_model, metrics, **kwargs):
    return log_and_register(
        params,
        root,
        model_path=tiny_model.path,
        metrics=metrics,
        params_flat=params.flat(),
        artifacts=kwargs.pop("artifacts", []),
        tags=kwargs.pop("tags", {"data.source": "test", "git.commit": "unknown"}),
        input_example=tiny_model.validation.head(5),
    )


def _aliases(root: Path, name: str) -> dict[str, int]:
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    return {a: int(v) for a, v in client.get_registered_model(name).aliases.items()}


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- tracking URI
def test_tracking_uri_precedence(mlflow_home, make_registry_params, monkeypatch):
    root = mlflow_home
    params = make_registry_params()
    assert tracking_uri(params, root) == f"sqlite:///{root.resolve() / 'mlflow.db'}"
    relative = make_registry_params(tracking_uri="sqlite:///state/reg.db")
    assert tracking_uri(relative, root) == f"sqlite:///{root.resolve() / 'state' / 'reg.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/x.db")
    assert tracking_uri(params, root) == "sqlite:////elsewhere/x.db"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")

    # MLflow's set_tracking_uri writes MLFLOW_TRACKING_URI into os.environ; the URI we set for
    # one root must not stick to the next root of the same process.
    registry.configure_mlflow(params, root)
    assert os.environ["MLFLOW_TRACKING_URI"] == f"sqlite:///{root.resolve() / 'mlflow.db'}"
    other = root / "other"
    assert tracking_uri(params, other) == f"sqlite:///{other.resolve() / 'mlflow.db'}"
    experiment = mlflow.get_experiment_by_name(params.registry.experiment_name)
    assert experiment.artifact_location == (root / "mlartifacts").resolve().as_uri()


# ----------------------------------------------------------------- package and first version
def test_first_version_is_champion_and_pyfunc_scores_like_the_detector(
    mlflow_home, make_registry_params, tiny_model
):
    root = mlflow_home
    params = make_registry_params()
    started = time.perf_counter()
    reg = _register(params, root, tiny_model, {"pr_auc": 0.5, "roc_auc": 0.7})
    print(f"log+register: {time.perf_counter() - started:.2f} s")

    assert reg.version == 1
    assert reg.aliases == ("challenger", "champion")
    assert reg.promoted and "no 'champion' yet" in reg.reason
    assert reg.model_uri == "models:/tiny-detector/1"
    assert _aliases(root, "tiny-detector") == {"champion": 1, "challenger": 1}

    info = resolve_alias(params, root)
    assert (info.version, info.alias, info.run_id) == (1, "champion", reg.run_id)
    assert info.tags["promotion.decision"] == "champion"
    assert info.tags["data.source"] == "test"

    model = mlflow.pyfunc.load_model("models:/tiny-detector@champion")
    got = model.predict(tiny_model.batch)
    expected = tiny_model.detector.score_frame(tiny_model.batch)
    assert list(got.columns) == [
        "anomaly_score",
        "is_anomaly",
        "contribution_a",
        "contribution_b",
        "contribution_c",
    ]
    assert_frame_equal(got, expected, check_exact=True)
    assert got["is_anomaly"].dtype == "int64" and got["is_anomaly"].iloc[:4].all()

    # the signature says double: int64 (a CSV of whole numbers) needs prepare_input; a missing
    # column is named
    ints = tiny_model.batch.round().astype("int64")
    with pytest.raises(MlflowException, match="Can not safely convert int64 to float64"):
        model.predict(ints)
    prepared = registry.prepare_input(model, ints.assign(note="x"))
    assert list(prepared.dtypes[["a", "b", "c"]]) == ["float64"] * 3
    assert_frame_equal(
        model.predict(prepared), tiny_model.detector.score_frame(ints), check_exact=True
    )
    with pytest.raises(MlflowException, match=r"missing inputs.*'c'"):
        model.predict(tiny_model.batch[["a", "b"]])

    # signature, input example, models-from-code (nothing pickled)
    model_info = mlflow.models.get_model_info("models:/tiny-detector/1")
    assert [c.name for c in model_info.signature.inputs] == ["a", "b", "c"]
    assert [c.type.name for c in model_info.signature.inputs] == ["double"] * 3
    assert "anomaly_score" in model_info.signature.outputs.input_names()
    assert model_info.saved_input_example_info is not None
    local = Path(mlflow.artifacts.download_artifacts("models:/tiny-detector/1"))
    assert (local / "input_example.json").is_file()
    assert (local / "pyfunc_model.py").is_file()
    assert (local / "code" / "anomaly_models" / "detector.py").is_file()
    assert not list(local.rglob("*.pkl"))
    requirements = (local / "requirements.txt").read_text().split()
    assert any(r.startswith("keras==") for r in requirements)
    assert any(r.startswith("mlflow==") for r in requirements)

    # everything inside the project root: nothing in the current folder (no ./mlruns)
    assert list(Path.cwd().iterdir()) == []
    artifact_root = root / "mlartifacts"
    assert any(p.name == "model.keras" for p in _files_under(artifact_root))
    assert (root / "mlflow.db").is_file()


def test_resolve_alias_errors_say_how_to_fix(mlflow_home, make_registry_params, tiny_model):
    root = mlflow_home
    params = make_registry_params(promotion="manual")
    fresh = root / "fresh-clone"
    with pytest.raises(RegistryError, match=r"no MLflow database at .*anomaly train"):
        resolve_alias(params, fresh)
    assert not (fresh / "mlflow.db").exists()  # a read-only command creates no database
    reg = _register(params, root, tiny_model, {"pr_auc": 0.5})
    other = make_registry_params(model_name="other-model")
    with pytest.raises(RegistryError, match=r"no registered model 'other-model'.*anomaly train"):
        list_versions(other, root)
    with pytest.raises(RegistryError, match="expectation_suite.json"):
        registry.download_artifact(params, root, reg.run_id, registry.SUITE_ARTIFACT, root / "dl")
    with pytest.raises(RegistryError) as err:
        resolve_alias(params, root)
    message = str(err.value)
    assert "no version of model 'tiny-detector' has alias 'champion'" in message
    assert "`anomaly promote VERSION`" in message and "MLflow UI" in message
    assert "registered versions: 1" in message
    with pytest.raises(RegistryError, match="has alias 'shadow'"):
        load_champion_pyfunc(params, root, alias="shadow")


# --------------------------------------------------------------------------- promotion gate
def test_promotion_gate_worse_stays_challenger_better_becomes_champion(
    mlflow_home, make_registry_params, tiny_model
):
    root = mlflow_home
    params = make_registry_params(promotion="auto")
    first = _register(params, root, tiny_model, {"pr_auc": 0.60, "roc_auc": 0.80, "f1": 0.5})
    assert first.promoted

    worse = _register(params, root, tiny_model, {"pr_auc": 0.55, "roc_auc": 0.90})
    assert worse.version == 2 and not worse.promoted
    assert worse.aliases == ("challenger",)
    assert worse.champion_version == 1 and worse.previous_champion == 1
    assert "does not beat champion version 1" in worse.reason
    assert "`anomaly promote 2`" in worse.reason
    assert _aliases(root, "tiny-detector") == {"champion": 1, "challenger": 2}

    better = _register(params, root, tiny_model, {"pr_auc": 0.70})
    assert better.version == 3 and better.promoted
    assert better.aliases == ("challenger", "champion")
    assert "beats champion version 1" in better.reason
    assert resolve_alias(params, root).version == 3

    # the margin: +0.01 is not "more than 0.05"
    margin = make_registry_params(promotion="auto", promotion_margin=0.05)
    close = _register(margin, root, tiny_model, {"pr_auc": 0.71})
    assert not close.promoted and "margin 0.05" in close.reason

    # no metric (unlabelled data) with a champion: never promoted automatically
    unlabelled = _register(params, root, tiny_model, {})
    assert not unlabelled.promoted and "has no pr_auc" in unlabelled.reason
    assert _aliases(root, "tiny-detector") == {"champion": 3, "challenger": 5}

    rows = list_versions(params, root)
    assert [r["version"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["aliases"] for r in rows] == [[], [], ["champion"], [], ["challenger"]]
    assert [r["pr_auc"] for r in rows] == [0.60, 0.55, 0.70, 0.71, None]
    assert rows[0]["f1"] == 0.5 and rows[0]["roc_auc"] == 0.80
    assert [r["decision"] for r in rows] == [
        "champion",
        "challenger",
        "champion",
        "challenger",
        "challenger",
    ]
    assert all(r["status"] == "READY" and r["created"] for r in rows)


def test_unlabelled_first_version_becomes_champion_integer_signature(
    mlflow_home, make_registry_params, tiny_model
):
    root = mlflow_home
    params = make_registry_params(metric="roc_auc")
    ints = tiny_model.batch.round().astype("int64")
    reg = log_and_register(
        params,
        root,
        model_path=tiny_model.path,
        metrics={},
        params_flat={},
        input_example=ints.head(5),  # integer data (like Shuttle): the signature says long
    )
    assert reg.promoted and reg.metric_value is None
    assert reg.aliases == ("challenger", "champion")

    model, _ = load_champion_pyfunc(params, root)
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


def test_manual_policy_never_moves_champion_and_promote(
    mlflow_home, make_registry_params, tiny_model
):
    root = mlflow_home
    params = make_registry_params(promotion="manual")
    first = _register(params, root, tiny_model, {"pr_auc": 0.5})
    assert not first.promoted and first.aliases == ("challenger",)
    assert "manual" in first.reason and "`anomaly promote 1`" in first.reason

    done = promote(params, root, 1)
    assert (done.version, done.alias, done.previous_version) == (1, "champion", None)
    second = _register(params, root, tiny_model, {"pr_auc": 0.99})
    assert not second.promoted
    assert _aliases(root, "tiny-detector") == {"champion": 1, "challenger": 2}

    moved = promote(params, root, "2")
    assert moved.previous_version == 1
    model, info = load_champion_pyfunc(params, root)
    assert info.version == 2 and info.model_uri == "models:/tiny-detector/2"
    assert len(model.predict(tiny_model.batch)) == len(tiny_model.batch)

    with pytest.raises(RegistryError, match=r"has no version 99; registered versions: 1, 2"):
        promote(params, root, 99)
    with pytest.raises(RegistryError, match="must be a number"):
        promote(params, root, "two")
    assert _aliases(root, "tiny-detector")["champion"] == 2


# ------------------------------------------------------------------------------- retries
def _transient() -> MlflowException:
    return MlflowException(
        "(sqlite3.OperationalError) database is locked", error_code="TEMPORARILY_UNAVAILABLE"
    )


def test_registering_retries_transient_failures(
    mlflow_home, make_registry_params, tiny_model, monkeypatch
):
    root = mlflow_home
    params = make_registry_params()
    monkeypatch.setattr(registry, "RETRY_BASE_DELAY_S", 0.01)
    real = mlflow.register_model
    calls = []

    def flaky(*args, **kwargs):  # fails twice, then works
        calls.append(1)
        if len(calls) <= 2:
            raise _transient()
        return real(*args, **kwargs)

    monkeypatch.setattr(mlflow, "register_model", flaky)
    reg = _register(params, root, tiny_model, {"pr_auc": 0.5})
    assert reg.version == 1 and reg.promoted
    assert len(calls) == 3
    assert [r["version"] for r in list_versions(params, root)] == [1]

    def late(*args, **kwargs):  # creates the version, then fails: the retry must not duplicate it
        calls.append(1)
        real(*args, **kwargs)
        raise _transient()

    calls.clear()
    monkeypatch.setattr(mlflow, "register_model", late)
    reg = _register(params, root, tiny_model, {"pr_auc": 0.4})
    assert reg.version == 2 and not reg.promoted
    assert len(calls) == 1  # attempt 2 found the version of this run that attempt 1 created
    assert [r["version"] for r in list_versions(params, root)] == [1, 2]

    def always(*args, **kwargs):
        calls.append(1)
        raise _transient()

    calls.clear()
    monkeypatch.setattr(mlflow, "register_model", always)
    with pytest.raises(RegistryError, match="after 3 attempts.*database is locked"):
        _register(params, root, tiny_model, {"pr_auc": 0.9})
    assert len(calls) == 3
    assert [r["version"] for r in list_versions(params, root)] == [1, 2]
    failed = mlflow.search_runs(filter_string="attributes.status = 'FAILED'")
    assert len(failed) == 1

    def broken(*args, **kwargs):
        calls.append(1)
        raise MlflowException("bad name", error_code="INVALID_PARAMETER_VALUE")

    calls.clear()
    monkeypatch.setattr(mlflow, "register_model", broken)
    with pytest.raises(RegistryError, match="bad name"):
        _register(params, root, tiny_model, {"pr_auc": 0.9})
    assert len(calls) == 1  # not transient: no retry


def test_is_transient():
    assert registry.is_transient(_transient())
    assert registry.is_transient(ConnectionError("refused"))
    assert registry.is_transient(MlflowException("API request failed: Max retries exceeded"))
    assert not registry.is_transient(MlflowException("nope", error_code="RESOURCE_DOES_NOT_EXIST"))
    assert not registry.is_transient(FileNotFoundError("x"))


# -------------------------------------------------------------------------- fresh process
def test_champion_loads_in_a_fresh_process(mlflow_home, make_registry_params, tiny_model, tmp_path):
    root = mlflow_home
    params = make_registry_params()
    _register(params, root, tiny_model, {"pr_auc": 0.5})
    model, info = load_champion_pyfunc(params, root)
    in_process = model.predict(tiny_model.batch)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    tiny_model.batch.to_parquet(exchange / "batch.parquet")
    script = textwrap.dedent(
        """
        import json, sys, time
        started = time.perf_counter()
        import mlflow, pandas as pd
        model = mlflow.pyfunc.load_model("models:/tiny-detector@champion")
        loaded = time.perf_counter() - started
        import anomaly_models
        out = model.predict(pd.read_parquet(sys.argv[1]))
        out.to_parquet(sys.argv[2])
        print(json.dumps({"load_s": loaded, "anomaly_models": anomaly_models.__file__}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_") and k != "PYTHONPATH"}
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{root.resolve() / 'mlflow.db'}",
        MLFLOW_DISABLE_TELEMETRY="true",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(exchange / "batch.parquet"),
            str(exchange / "out.parquet"),
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"fresh process: {wall:.1f} s wall, load_model {report['load_s']:.1f} s")
    fresh = pd.read_parquet(exchange / "out.parquet")
    assert_frame_equal(fresh, in_process, check_exact=True)
    # anomaly_models came from the model's own code_paths copy, not from this checkout
    assert "/code/anomaly_models/" in report["anomaly_models"]
    assert list(elsewhere.iterdir()) == []  # no ./mlruns or anything else in its cwd


# ------------------------------------------------------------------------- register step
def _write_project(root: Path, tiny_model) -> None:
    (root / "models").mkdir(parents=True)
    (root / "models" / "model.keras").write_bytes(tiny_model.path.read_bytes())
    (root / "models" / "threshold.json").write_text(
        json.dumps(
            {
                "method": "quantile",
                "threshold": tiny_model.detector.threshold_,
                "false_alarm_rate": 0.05,
            }
        )
    )
    (root / "metrics.json").write_text(json.dumps({"roc_auc": 0.9, "pr_auc": 0.8, "f1": 0.7}))
    interim = root / "data" / "interim"
    interim.mkdir(parents=True)
    (interim / "snapshot.json").write_text(json.dumps({"sha256": "abc123", "source": "x.csv"}))
    (interim / "expectation_suite.json").write_text(json.dumps({"name": "suite"}))
    (interim / "validation_report.json").write_text(json.dumps({"success": True}))
    processed = root / "data" / "processed"
    processed.mkdir(parents=True)
    tiny_model.validation.assign(y=0).to_parquet(processed / "validation.parquet")
    (processed / "split.json").write_text(json.dumps({"feature_columns": ["a", "b", "c"]}))
    (root / "plots").mkdir()
    (root / "plots" / "roc.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    site = root / "gx" / "uncommitted" / "data_docs" / "local_site"
    site.mkdir(parents=True)
    (site / "index.html").write_text("<html></html>")


def test_register_step(mlflow_home, make_registry_params, tiny_model):
    root = mlflow_home
    params = make_registry_params()
    with pytest.raises(StepInputError, match="run the calibrate stage first"):
        register(params, root)

    _write_project(root, tiny_model)
    result = register(params, root)
    record = json.loads((root / "models" / "registration.json").read_text())
    assert record["version"] == 1 and record["promoted"] is True
    assert record["aliases"] == ["challenger", "champion"]
    assert record["run_id"] == result.run_id and record["reason"]

    run = MlflowClient().get_run(result.run_id)
    assert run.data.tags["data.snapshot_sha256"] == "abc123"
    assert run.data.tags["git.commit"] == "unknown"  # tmp_path is not a git repository
    assert run.data.metrics["pr_auc"] == 0.8
    assert run.data.metrics["expected_false_alarm_rate"] == 0.05
    assert run.data.params["registry.model_name"] == "tiny-detector"
    listed = {a.path for a in MlflowClient().list_artifacts(result.run_id)}
    assert {"plots", "reports", "data_docs"} <= listed
    suite = registry.download_artifact(
        params, root, result.run_id, registry.SUITE_ARTIFACT, root / "dl"
    )
    assert json.loads(suite.read_text()) == {"name": "suite"}
    assert list(Path.cwd().iterdir()) == []
