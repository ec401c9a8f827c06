"""What is packaged with a registered version: the pyfunc model and the run's other artifacts.

The registered model is one **pyfunc** per version, logged with MLflow's *models-from-code*
(:mod:`flows.registry.pyfunc_model`; nothing pickled): the ``.keras`` detector is its artifact, the
``anomaly_models`` package travels in ``code_paths``, the pip requirements are explicit. Its
``predict(DataFrame)`` returns ``anomaly_score``, ``is_anomaly`` and ``contribution_<feature>``.

Next to the model, the run holds the files the pipeline produced (:func:`log_artifacts`)::

    plots/        every *.png (evaluation plots)
    reports/      other files: metrics.json, threshold.json, snapshot.json,
                  expectation_suite.json (:data:`SUITE_ARTIFACT`, what scoring validates with),
                  drift_reference.parquet (:data:`DRIFT_REFERENCE_ARTIFACT`, a sample of the
                  training split the data-quality report measures drift against), ...
    data_docs/    the GX Data Docs site (a folder named local_site); other folders under their name
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow

from flows.registry.connection import connect_existing
from flows.registry.inputs import model_metadata, model_signature, prepare_example
from flows.registry.retry import RegistryError, is_transient, with_retry

if TYPE_CHECKING:
    import pandas as pd

    from flows.config import RegistryParams, RetryParams

__all__ = [
    "DRIFT_REFERENCE_ARTIFACT",
    "PYFUNC_MODEL_FILE",
    "SUITE_ARTIFACT",
    "download_artifact",
    "log_artifacts",
    "log_pyfunc_model",
    "pip_requirements",
    "run_has_artifact",
]

_log = logging.getLogger(__name__)

MODEL_ARTIFACT_NAME = "model"
PYFUNC_MODEL_FILE = Path(__file__).resolve().with_name("pyfunc_model.py")
DETECTOR_ARTIFACT = "detector"  # the key flows/registry/pyfunc_model.py reads (it states it too)
# where log_artifacts puts the files it is given (see artifact_dir)
PLOTS_ARTIFACT_DIR = "plots"
REPORTS_ARTIFACT_DIR = "reports"
DATA_DOCS_ARTIFACT_DIR = "data_docs"
SUITE_ARTIFACT = f"{REPORTS_ARTIFACT_DIR}/expectation_suite.json"
#: flows.layout's Layout.drift_reference, as log_artifacts files it (a test checks they agree)
DRIFT_REFERENCE_ARTIFACT = f"{REPORTS_ARTIFACT_DIR}/drift_reference.parquet"


# ---------------------------------------------------------------------------- the pyfunc
def pip_requirements() -> list[str]:
    """Exact pins of what loading and running the pyfunc needs (explicit, so MLflow skips its
    slow requirement inference): mlflow, keras, the TensorFlow backend, numpy, pandas."""
    reqs = []
    backend = next(
        (d for d in ("tensorflow-cpu", "tensorflow") if _dist_version(d) is not None), None
    )
    for dist in ("mlflow", "keras", backend, "numpy", "pandas"):
        if dist is None:
            continue
        version = _dist_version(dist)
        reqs.append(f"{dist}=={version}" if version else dist)
    return reqs


def _dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _package_dir(package: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RegistryError(f"cannot find the {package!r} package to ship with the model")
    return str(Path(next(iter(spec.submodule_search_locations))).resolve())


def log_pyfunc_model(
    model_path: str | Path,
    input_example: pd.DataFrame,
    *,
    name: str = MODEL_ARTIFACT_NAME,
    detector: Any = None,
    timestamp_column: str | None = None,
) -> Any:
    """Log the ``.keras`` detector as a models-from-code pyfunc in the active run.

    ``signature`` = ``infer_signature(example, detector.score_frame(example))``; ``code_paths`` =
    the absolute folder of ``anomaly_models`` (so the custom Keras layers import wherever the model
    is loaded; relative code paths would resolve against the current folder); ``metadata`` =
    :func:`~flows.registry.inputs.model_metadata`. Returns MLflow's ``ModelInfo``.

    Sequence detectors: the input example must hold at least ``window`` consecutive points (the
    value columns, no timestamp), and the signature declares the param ``context_rows`` (int,
    default 0; see :mod:`flows.registry.pyfunc_model`). Tabular detectors' signatures have no params.
    """
    from anomaly_models.detector import AnomalyDetector

    model_path = Path(model_path).resolve()
    if detector is None:
        detector = AnomalyDetector.load(model_path)
    example = prepare_example(detector, input_example)
    signature = model_signature(detector, example)
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(PYFUNC_MODEL_FILE),
        artifacts={DETECTOR_ARTIFACT: str(model_path)},
        signature=signature,
        input_example=example,
        pip_requirements=pip_requirements(),
        code_paths=[_package_dir("anomaly_models")],
        metadata=model_metadata(detector, timestamp_column),
    )


# ------------------------------------------------------------------------ other artifacts
def artifact_dir(path: Path) -> str:
    """The run folder ``path`` is logged under (see the module docstring)."""
    if path.is_dir():
        return DATA_DOCS_ARTIFACT_DIR if path.name == "local_site" else path.name
    if path.suffix.lower() == ".png":
        return PLOTS_ARTIFACT_DIR
    return REPORTS_ARTIFACT_DIR


def log_artifacts(paths: Iterable[Path]) -> list[str]:
    """Log files and folders in the active run (a missing one is skipped with a warning);
    returns their run paths (``plots/roc.png``, ``data_docs/``)."""
    logged = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            _log.warning("artifact %s does not exist; not logged", path)
            continue
        where = artifact_dir(path)
        if path.is_dir():
            mlflow.log_artifacts(str(path), artifact_path=where)
            logged.append(f"{where}/")
        else:
            mlflow.log_artifact(str(path), artifact_path=where)
            logged.append(f"{where}/{path.name}")
    return logged


def run_has_artifact(
    registry: RegistryParams,
    retries: RetryParams,
    root: str | Path,
    run_id: str,
    artifact_path: str,
) -> bool:
    """Whether run ``run_id`` lists the file ``artifact_path`` (e.g. :data:`SUITE_ARTIFACT`)."""
    connect_existing(registry, root)
    parent = artifact_path.rpartition("/")[0] or None

    def _listed() -> bool:
        listing = mlflow.MlflowClient().list_artifacts(run_id, parent)
        return any(a.path == artifact_path and not a.is_dir for a in listing)

    return with_retry(retries, f"listing the artifacts of run {run_id}", _listed)


def download_artifact(
    registry: RegistryParams,
    retries: RetryParams,
    root: str | Path,
    run_id: str,
    artifact_path: str,
    dst_dir: str | Path,
) -> Path:
    """Download one artifact of a run (e.g. :data:`SUITE_ARTIFACT` of a version's run) into
    ``dst_dir``; returns the local path.

    Raises:
        RegistryError: the run has no such artifact (or the store is unreachable).
    """
    connect_existing(registry, root)
    dst = Path(dst_dir)
    dst.mkdir(parents=True, exist_ok=True)

    def _download() -> Path:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=artifact_path, dst_path=str(dst)
            )
        except OSError as exc:
            if is_transient(exc):
                raise
            raise RegistryError(f"run {run_id} has no artifact {artifact_path!r}: {exc}") from exc
        return Path(local)

    return with_retry(retries, f"downloading {artifact_path!r} of run {run_id}", _download)
