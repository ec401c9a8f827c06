"""flows.registry.package: what is packaged with a registered version (the models-from-code pyfunc,
its code, requirements and input example; the run's other artifacts) against a REAL MLflow SQLite
registry in tmp_path."""

from __future__ import annotations

import json
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from pandas.testing import assert_frame_equal

from flows import registry
from flows.registry import (
    PYFUNC_MODEL_FILE,
    SUITE_ARTIFACT,
    RegistryError,
    pip_requirements,
    resolve_alias,
)
from flows.registry.package import DETECTOR_ARTIFACT

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_first_version_is_champion_and_pyfunc_scores_like_the_detector(
    tiny_registry, make_registry_params
):
    from anomaly_models.detector import AnomalyDetector

    root, tiny_model = tiny_registry.root, tiny_registry.model
    params = make_registry_params()
    started = time.perf_counter()
    reg = tiny_registry.register(params, {"pr_auc": 0.5, "roc_auc": 0.7})
    print(f"log+register: {time.perf_counter() - started:.2f} s")

    assert reg.version == 1
    assert reg.aliases == ("challenger", "champion")
    assert reg.promoted and "no 'champion' yet" in reg.reason
    assert reg.model_uri == "models:/tiny-detector/1"
    assert tiny_registry.aliases() == {"champion": 1, "challenger": 1}

    info = resolve_alias(params.registry, params.retries, root, params.scoring.alias)
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

    # signature, input example, metadata, models-from-code (nothing pickled)
    model_info = mlflow.models.get_model_info("models:/tiny-detector/1")
    assert [c.name for c in model_info.signature.inputs] == ["a", "b", "c"]
    assert [c.type.name for c in model_info.signature.inputs] == ["double"] * 3
    assert "anomaly_score" in model_info.signature.outputs.input_names()
    assert model_info.saved_input_example_info is not None
    assert model_info.metadata == {"anomaly_kind": "ensemble", "context_rows": 0}
    local = Path(mlflow.artifacts.download_artifacts("models:/tiny-detector/1"))
    example = Model.load(local).load_input_example(str(local))
    assert_frame_equal(example, tiny_model.validation.head(5).astype("float64"), check_exact=True)
    # the model's code is this checkout's, byte for byte
    assert (local / "pyfunc_model.py").read_bytes() == PYFUNC_MODEL_FILE.read_bytes()
    assert (local / "code" / "anomaly_models" / "detector.py").read_bytes() == (
        REPO / "anomaly_models" / "detector.py"
    ).read_bytes()
    assert not list(local.rglob("*.pkl"))
    requirements = (local / "requirements.txt").read_text().split()
    assert any(r.startswith("keras==") for r in requirements)
    assert any(r.startswith("mlflow==") for r in requirements)
    assert set(pip_requirements()) <= set(requirements)

    # everything inside the project root: nothing in the current folder (no ./mlruns)
    assert list(Path.cwd().iterdir()) == []
    artifact_root = root / "mlartifacts"
    detectors = [p for p in _files_under(artifact_root) if p.name == "model.keras"]
    assert detectors and all(p.read_bytes() == tiny_model.path.read_bytes() for p in detectors)
    assert_frame_equal(
        AnomalyDetector.load(detectors[0]).score_frame(tiny_model.batch), expected, check_exact=True
    )
    # the registry is the project's own database file
    assert tiny_registry.client().get_registered_model("tiny-detector").name == "tiny-detector"


def test_pyfunc_model_states_the_package_constants():
    """pyfunc_model.py runs where only the model's code is, so it repeats two names: keep equal."""
    from flows.registry import pyfunc_model

    assert pyfunc_model.DETECTOR_ARTIFACT == DETECTOR_ARTIFACT
    assert pyfunc_model.CONTEXT_ROWS_PARAM == registry.CONTEXT_ROWS_PARAM


def test_artifacts_are_logged_where_scoring_finds_them(
    tiny_registry, make_registry_params, tmp_path
):
    params = make_registry_params()
    files = tmp_path / "files"
    site = files / "local_site"
    site.mkdir(parents=True)
    (site / "index.html").write_text("<html>docs</html>")
    (files / "expectation_suite.json").write_text(json.dumps({"name": "suite", "n": 1}))
    (files / "roc.png").write_bytes(b"\x89PNG\r\n\x1a\nroc")
    absent = files / "absent.json"
    reg = tiny_registry.register(
        params,
        {"pr_auc": 0.5},
        artifacts=[site, files / "expectation_suite.json", files / "roc.png", absent],
    )
    root = tiny_registry.root
    suite = registry.download_artifact(
        params.registry, params.retries, root, reg.run_id, SUITE_ARTIFACT, root / "dl"
    )
    assert json.loads(suite.read_text()) == {"name": "suite", "n": 1}
    png = registry.download_artifact(
        params.registry, params.retries, root, reg.run_id, "plots/roc.png", root / "dl"
    )
    assert png.read_bytes() == b"\x89PNG\r\n\x1a\nroc"
    docs = registry.download_artifact(
        params.registry, params.retries, root, reg.run_id, "data_docs/index.html", root / "dl"
    )
    assert docs.read_text() == "<html>docs</html>"
    listed = {a.path for a in tiny_registry.client().list_artifacts(reg.run_id)}
    assert listed == {"data_docs", "plots", "reports"}  # the model is MLflow's logged model
    reports = {a.path for a in tiny_registry.client().list_artifacts(reg.run_id, "reports")}
    assert reports == {SUITE_ARTIFACT}  # the absent file: skipped


def test_version_without_suite_artifact_fails_scoring_with_a_clear_message(
    tiny_registry, make_registry_params
):
    """A version registered without the pipeline's files (no expectation suite among its
    artifacts): fetching its suite for scoring fails with a RegistryError naming the artifact and
    the run, and leaves no half-written cache behind."""
    from flows.registry import fetch_suite, suite_cache_path

    params = make_registry_params()
    root = tiny_registry.root
    reg = tiny_registry.register(params, {"pr_auc": 0.5}, artifacts=[])
    info = resolve_alias(params.registry, params.retries, root, "champion")
    assert info.run_id == reg.run_id
    with pytest.raises(RegistryError) as err:
        fetch_suite(params, root, info)
    assert str(err.value) == (
        f"models:/tiny-detector/1 has no expectation suite (reports/expectation_suite.json is not "
        f"among the artifacts of run {reg.run_id}), so scoring cannot validate batches against "
        "it; register versions with the pipeline (`anomaly train`), or move the alias to one "
        "that was"
    )
    cache = suite_cache_path(params, root, info.version)
    assert not cache.exists()
    assert not cache.parent.exists() or not any(cache.parent.iterdir())  # nothing half-written
