"""Everything MLflow: tracking set-up, the pyfunc package, registration, aliases, the promotion gate.

Embedded default: MLflow on SQLite (``sqlite:///<root>/mlflow.db``) with the experiment's artifact
store inside the project (``<root>/<registry.artifact_dir>``), created with an explicit
``artifact_location`` so that nothing lands in ``./mlruns`` of whatever folder a command runs in.
``MLFLOW_TRACKING_URI`` (and ``MLFLOW_REGISTRY_URI``), when set, win over ``params.yaml``, so the
same code talks to a tracking server with no change.

The registered model is one **pyfunc** per version, logged with MLflow's *models-from-code*
(:mod:`flows.pyfunc_model`; nothing pickled): the ``.keras`` detector is its artifact, the
``anomaly_models`` package travels in ``code_paths``, the pip requirements are explicit. Its
``predict(DataFrame)`` returns ``anomaly_score``, ``is_anomaly`` and ``contribution_<feature>``.

Every training run registers a new version and gives it the alias ``challenger``; the **promotion
gate** (:func:`decide_promotion`) then moves ``champion`` to it when the policy is ``auto`` and
there is no champion yet, or when the new version beats the champion on ``evaluate.metric`` by more
than ``registry.promotion_margin``. A person promotes with ``anomaly promote VERSION`` or by moving
the alias in the MLflow UI; both are honoured because scoring resolves the alias at each run
(:func:`resolve_alias`, :func:`load_champion_pyfunc`).

Registry calls that can fail transiently (a locked SQLite file, a server that is briefly away) are
retried with exponential backoff (:data:`RETRY_ATTEMPTS` attempts); then :class:`RegistryError`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from flows.config import Params, resolve

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.pyfunc import PyFuncModel

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PYFUNC_MODEL_FILE",
    "RETRY_ATTEMPTS",
    "SUITE_ARTIFACT",
    "Promotion",
    "PromotionDecision",
    "Registration",
    "RegistryError",
    "VersionInfo",
    "artifact_location",
    "configure_mlflow",
    "decide_promotion",
    "download_artifact",
    "is_transient",
    "list_versions",
    "load_champion_pyfunc",
    "log_and_register",
    "log_pyfunc_model",
    "model_metadata",
    "pip_requirements",
    "prepare_input",
    "promote",
    "resolve_alias",
    "tracking_uri",
]

_log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_ARTIFACT_NAME = "model"
PYFUNC_MODEL_FILE = Path(__file__).resolve().with_name("pyfunc_model.py")
DETECTOR_ARTIFACT = "detector"  # the key flows/pyfunc_model.py reads from context.artifacts
# where log_and_register puts the files it is given (see _artifact_dir)
PLOTS_ARTIFACT_DIR = "plots"
REPORTS_ARTIFACT_DIR = "reports"
DATA_DOCS_ARTIFACT_DIR = "data_docs"
SUITE_ARTIFACT = f"{REPORTS_ARTIFACT_DIR}/expectation_suite.json"
HEADLINE_METRICS = ("roc_auc", "pr_auc", "f1", "threshold")

RETRY_ATTEMPTS = 3
RETRY_BASE_DELAY_S = 0.5  # then 1.0 s: backoff doubles at each attempt

_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_TRANSIENT_CODES = {
    "TEMPORARILY_UNAVAILABLE",
    "REQUEST_LIMIT_EXCEEDED",
    "DEADLINE_EXCEEDED",
    "ABORTED",
    "SERVICE_UNDER_MAINTENANCE",
}
_TRANSIENT_TEXT = (
    "database is locked",
    "database table is locked",
    "temporarily unavailable",
    "connection refused",
    "connection reset",
    "connection aborted",
    "connectionerror",
    "max retries exceeded",
    "timed out",
    "read timeout",
)

T = TypeVar("T")


class RegistryError(RuntimeError):
    """A registry operation failed; the message says what and how to fix it."""


# ------------------------------------------------------------------------------ connection
# MLflow's set_tracking_uri / set_registry_uri also write MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI
# into os.environ (for subprocesses). A value that *we* put there must not later pass for the
# user's choice, or every project root after the first in one process would reuse the first
# store: remember what we set and ignore the variable while it still holds exactly that.
_OWN_ENV: dict[str, str] = {}


def _user_env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    if not value or value == _OWN_ENV.get(name):
        return None
    return value


def _set_global_uri(name: str, setter: Callable[[str], None], uri: str) -> None:
    before = os.environ.get(name)
    setter(uri)
    if before != uri and os.environ.get(name) == uri:
        _OWN_ENV[name] = uri


def tracking_uri(params: Params, root: str | Path) -> str:
    """The tracking URI: ``$MLFLOW_TRACKING_URI``; else ``registry.tracking_uri`` (a relative
    SQLite path or a bare path is taken relative to ``root``); else ``sqlite:///<root>/mlflow.db``.
    """
    env = _user_env("MLFLOW_TRACKING_URI")
    if env:
        return env
    root = Path(root).resolve()
    configured = params.registry.tracking_uri
    if not configured:
        return f"sqlite:///{root / 'mlflow.db'}"
    if configured.startswith("sqlite:///"):
        db = configured[len("sqlite:///") :]
        if db and not db.startswith("/") and not db.startswith(":memory:"):
            return f"sqlite:///{(root / db).resolve()}"
        return configured
    if "://" not in configured and not configured.startswith(("databricks", "file:")):
        return resolve(root, configured).resolve().as_uri()
    return configured


def _registry_uri(tracking: str) -> str:
    return _user_env("MLFLOW_REGISTRY_URI") or tracking


def _is_local_store(uri: str) -> bool:
    if uri.startswith("databricks"):
        return False
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def artifact_location(params: Params, root: str | Path, uri: str | None = None) -> str | None:
    """Artifact root for a new experiment: ``<root>/<registry.artifact_dir>`` as a file URI when
    the tracking store is local (or ``artifact_dir`` itself when it is a URI such as ``s3://...``);
    None for a tracking server, which then decides (e.g. its proxied artifact store)."""
    directory = params.registry.artifact_dir
    if "://" in directory:
        return directory
    uri = uri if uri is not None else tracking_uri(params, root)
    if not _is_local_store(uri):
        return None
    return resolve(Path(root).resolve(), directory).resolve().as_uri()


def _connect(params: Params, root: str | Path) -> MlflowClient:
    uri = tracking_uri(params, root)
    registry = _registry_uri(uri)
    _set_global_uri("MLFLOW_TRACKING_URI", mlflow.set_tracking_uri, uri)
    _set_global_uri("MLFLOW_REGISTRY_URI", mlflow.set_registry_uri, registry)
    return MlflowClient(tracking_uri=uri, registry_uri=registry)


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    db = uri[len("sqlite:///") :].split("?", 1)[0]
    return None if not db or db.startswith(":memory:") else Path(db)


def _connect_existing(params: Params, root: str | Path) -> MlflowClient:
    """Like :func:`_connect` for read-only commands: a missing SQLite file is an error here, not
    something to create (MLflow would create it, and even its missing parent folders)."""
    tracking = tracking_uri(params, root)
    for uri in {tracking, _registry_uri(tracking)}:  # before MlflowClient(), which creates it
        db = _sqlite_path(uri)
        if db is not None and not db.is_file():
            raise RegistryError(
                f"no MLflow database at {db} (MLFLOW_TRACKING_URI or registry.tracking_uri): "
                f"nothing is registered there yet; train and register a model first "
                "(`anomaly train`, or `dvc repro`)"
            )
    return _connect(params, root)


def _ensure_experiment(client: MlflowClient, params: Params, root: Path) -> str:
    name = params.registry.experiment_name
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = artifact_location(params, root, client.tracking_uri)
        try:
            return client.create_experiment(name, artifact_location=location)
        except MlflowException as exc:  # created meanwhile by a concurrent run
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise exc from None
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def _configure(params: Params, root: str | Path) -> tuple[MlflowClient, str]:
    root = Path(root).resolve()
    client = _connect(params, root)
    experiment_id = _with_retry(
        f"opening experiment {params.registry.experiment_name!r} at {_safe_uri(client.tracking_uri)}",
        _ensure_experiment,
        client,
        params,
        root,
    )
    mlflow.set_experiment(experiment_id=experiment_id)
    return client, experiment_id


def configure_mlflow(params: Params, root: str | Path) -> MlflowClient:
    """Point MLflow (tracking and registry) at the configured store, create the experiment when
    missing (with its explicit artifact location) and make it the active one.

    Raises:
        RegistryError: the store cannot be reached after the retries.
    """
    return _configure(params, root)[0]


# -------------------------------------------------------------------------------- retries
def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: a locked SQLite database, a connection or timeout error,
    an MLflow ``TEMPORARILY_UNAVAILABLE`` (or rate-limit) error."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"OperationalError", "RequestException", "ConnectTimeout", "ReadTimeout"}:
        return True
    if isinstance(exc, MlflowException):
        if exc.error_code in _TRANSIENT_CODES:
            return True
        text = str(exc).lower()
        return any(t in text for t in _TRANSIENT_TEXT)
    return False


def _with_retry(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, retried on transient errors with exponential backoff."""
    attempts = max(1, int(RETRY_ATTEMPTS))
    for attempt in range(1, attempts + 1):
        try:
            return fn(*args, **kwargs)
        except RegistryError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                if isinstance(exc, MlflowException):
                    raise RegistryError(f"{what} failed: {exc.message}") from exc
                raise
            if attempt == attempts:
                raise RegistryError(
                    f"{what} failed after {attempts} attempts with a transient error; is the "
                    f"MLflow store reachable and not locked by another process? Last error: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            delay = RETRY_BASE_DELAY_S * 2 ** (attempt - 1)
            _log.warning(
                "%s: attempt %d/%d failed (%s: %s); retrying in %.1f s",
                what,
                attempt,
                attempts,
                type(exc).__name__,
                exc,
                delay,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _safe_uri(uri: str) -> str:
    """The URI without credentials (``http://user:pw@host`` -> ``http://***@host``)."""
    return re.sub(r"//[^/@]+@", "//***@", uri)


# --------------------------------------------------------------------------- data classes
@dataclass(frozen=True)
class VersionInfo:
    """One registered model version (what scoring needs to load and record it)."""

    name: str
    version: int
    run_id: str | None
    source: str
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "READY"
    created: str | None = None  # ISO 8601, UTC
    alias: str | None = None  # the alias it was resolved through, if any

    @property
    def model_uri(self) -> str:
        """``models:/NAME/VERSION``: pins this version even if the alias moves meanwhile."""
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["aliases"] = list(self.aliases)
        out["model_uri"] = self.model_uri
        return out


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    metric: str
    new_value: float | None
    champion_version: int | None
    champion_value: float | None


@dataclass(frozen=True)
class Registration:
    """What :func:`log_and_register` did."""

    run_id: str
    model_name: str
    version: int
    model_uri: str
    aliases: tuple[str, ...]
    promoted: bool
    reason: str
    champion_version: int | None = None  # after the gate
    previous_champion: int | None = None
    metric: str | None = None
    metric_value: float | None = None
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["aliases"] = list(self.aliases)
        return out


@dataclass(frozen=True)
class Promotion:
    """What :func:`promote` did."""

    model_name: str
    alias: str
    version: int
    previous_version: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _version_info(
    mv: ModelVersion, alias: str | None = None, aliases: Iterable[str] = ()
) -> VersionInfo:
    created = None
    if getattr(mv, "creation_timestamp", None):
        created = datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC).isoformat(
            timespec="seconds"
        )
    return VersionInfo(
        name=mv.name,
        version=int(mv.version),
        run_id=mv.run_id,
        source=mv.source,
        aliases=tuple(sorted(set(mv.aliases or ()) | set(aliases))),
        tags=dict(mv.tags or {}),
        status=str(mv.status),
        created=created,
        alias=alias,
    )


# ---------------------------------------------------------------------------- the package
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


def _prepare_example(detector: Any, input_example: pd.DataFrame) -> pd.DataFrame:
    """The detector's feature columns of ``input_example``, integers as int64 and floats as
    float64, so the signature says ``long`` / ``double`` like the data the model was trained on
    (batches of the same source then pass MLflow's schema check as they are)."""
    import pandas as pd

    if not isinstance(input_example, pd.DataFrame) or input_example.empty:
        raise ValueError("input_example must be a non-empty DataFrame (first validation rows)")
    features = [str(c) for c in detector.feature_names_in_]
    missing = [c for c in features if c not in input_example.columns]
    if missing:
        raise ValueError(
            f"input_example lacks the detector's feature column(s) {missing}; it has "
            f"{[str(c) for c in input_example.columns]}"
        )
    example = input_example[features].reset_index(drop=True)
    dtypes = {
        c: "int64"
        if pd.api.types.is_integer_dtype(example[c]) and not example[c].hasnans
        else "float64"
        for c in features
    }
    return example.astype(dtypes)


#: The MLflow param of a sequence model's ``predict``: how many first input rows are context.
CONTEXT_ROWS_PARAM = "context_rows"


def model_metadata(detector: Any, timestamp_column: str | None = None) -> dict[str, Any]:
    """The ``metadata`` of the MLmodel file: what a scoring process needs to know besides the
    signature. ``anomaly_kind`` (the detector's kind) and ``context_rows`` (0 for the tabular kinds;
    for a sequence detector its ``context_length``: keep that many last points of each batch and
    pass them first, with ``params={"context_rows": n}``, to score the next batch as one stream);
    sequence detectors add ``timestamp_column`` (what to sort a batch by; None if unknown) and
    ``window``."""
    metadata: dict[str, Any] = {
        "anomaly_kind": str(detector.kind),
        CONTEXT_ROWS_PARAM: int(detector.context_length) if detector.is_sequence else 0,
    }
    if detector.is_sequence:
        metadata["timestamp_column"] = timestamp_column
        metadata["window"] = int(detector.window)
    return metadata


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
    :func:`model_metadata`. Returns MLflow's ``ModelInfo``.

    Sequence detectors: the input example must hold at least ``window`` consecutive points (the
    value columns, no timestamp), and the signature declares the param ``context_rows`` (int,
    default 0; see :mod:`flows.pyfunc_model`). Tabular detectors' signatures have no params.
    """
    from mlflow.models import infer_signature

    from anomaly_models.detector import AnomalyDetector

    model_path = Path(model_path).resolve()
    if detector is None:
        detector = AnomalyDetector.load(model_path)
    example = _prepare_example(detector, input_example)
    signature_params = None
    if detector.is_sequence:
        if len(example) < detector.window:
            raise ValueError(
                f"input_example has {len(example)} rows, but a sequence detector scores windows "
                f"of window={detector.window} points: pass at least {detector.window} "
                "consecutive points of the series"
            )
        signature_params = {CONTEXT_ROWS_PARAM: 0}
    with warnings.catch_warnings():  # is_anomaly is an int column by design; MLflow hints at NaN
        warnings.filterwarnings("ignore", message=r".*integer column", category=UserWarning)
        signature = infer_signature(
            example, detector.score_frame(example), params=signature_params
        )
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


# ------------------------------------------------------------------------------- logging
def metric_key(name: str) -> str:
    """``name`` as an MLflow metric key (letters, digits, ``_-. /``; at most 200 characters)."""
    return re.sub(r"[^A-Za-z0-9_\-. /]+", "_", name)[:200]


def _numeric_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_numeric_metrics(value, prefix=f"{name}."))
        elif isinstance(value, (int, float)) and math.isfinite(float(value)):
            out[name] = float(value)
        elif hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
            try:
                number = float(value.item())
            except (TypeError, ValueError):
                continue
            if math.isfinite(number):
                out[name] = number
    return out


def _param_values(params_flat: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in params_flat.items():
        text = "null" if value is None else str(value)
        out[str(key)] = text if len(text) <= 6000 else text[:5997] + "..."
    return out


def _artifact_dir(path: Path) -> str:
    if path.is_dir():
        return DATA_DOCS_ARTIFACT_DIR if path.name == "local_site" else path.name
    if path.suffix.lower() == ".png":
        return PLOTS_ARTIFACT_DIR
    return REPORTS_ARTIFACT_DIR


def _log_artifacts(paths: Iterable[Path]) -> list[str]:
    logged = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            _log.warning("artifact %s does not exist; not logged", path)
            continue
        where = _artifact_dir(path)
        if path.is_dir():
            mlflow.log_artifacts(str(path), artifact_path=where)
            logged.append(f"{where}/")
        else:
            mlflow.log_artifact(str(path), artifact_path=where)
            logged.append(f"{where}/{path.name}")
    return logged


# ------------------------------------------------------------------------------ the gate
def _run_metric(client: MlflowClient, run_id: str | None, metric: str) -> float | None:
    if not run_id:
        return None
    try:
        value = client.get_run(run_id).data.metrics.get(metric)
    except MlflowException:
        return None
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def decide_promotion(
    *,
    policy: str,
    metric: str,
    margin: float,
    new_version: int,
    new_value: float | None,
    champion_version: int | None,
    champion_value: float | None,
) -> PromotionDecision:
    """The promotion gate, a pure function (higher metric = better for roc_auc, pr_auc, f1)."""
    how = (
        f"to promote it anyway run `anomaly promote {new_version}` or move the alias "
        f"'{CHAMPION}' to version {new_version} in the MLflow UI"
    )

    def decision(promote: bool, reason: str) -> PromotionDecision:
        return PromotionDecision(
            promote, reason, metric, new_value, champion_version, champion_value
        )

    shown = f"{new_value:.6g}" if new_value is not None else "n/a"
    if policy == "manual":
        current = (
            f"champion stays on version {champion_version}"
            if champion_version is not None
            else "there is no champion yet, so scoring has no model until one is promoted"
        )
        return decision(
            False,
            f"promotion policy is manual: version {new_version} is challenger ({metric}={shown}); "
            f"{current}; promote it with `anomaly promote {new_version}` or by moving the alias "
            f"'{CHAMPION}' in the MLflow UI",
        )
    if policy != "auto":
        raise ValueError(f"registry.promotion must be 'auto' or 'manual', got {policy!r}")
    if champion_version is None:
        return decision(
            True, f"no '{CHAMPION}' yet: version {new_version} becomes champion ({metric}={shown})"
        )
    if new_value is None:
        return decision(
            False,
            f"version {new_version} has no {metric} (no labels to evaluate on?), so it cannot be "
            f"compared with champion version {champion_version}: champion stays; {how}",
        )
    if champion_value is None:
        return decision(
            False,
            f"champion version {champion_version} has no {metric} to compare with "
            f"({metric}={shown} for version {new_version}): champion stays; {how}",
        )
    if new_value > champion_value + margin:
        return decision(
            True,
            f"{metric} {new_value:.6g} beats champion version {champion_version}'s "
            f"{champion_value:.6g} by more than the margin {margin:g}: version {new_version} "
            "becomes champion",
        )
    return decision(
        False,
        f"{metric} {new_value:.6g} does not beat champion version {champion_version}'s "
        f"{champion_value:.6g} by more than the margin {margin:g}: version {new_version} stays "
        f"challenger; {how}",
    )


def _register_version(
    client: MlflowClient, model_uri: str, name: str, run_id: str, tags: Mapping[str, str]
) -> ModelVersion:
    # Idempotent across retries: an earlier attempt may have created the version before failing.
    # One run registers one version, so a version of this run is the one we were creating.
    for mv in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"):
        return mv
    return mlflow.register_model(model_uri, name, tags=dict(tags))


def _aliases_of(client: MlflowClient, name: str) -> dict[str, int]:
    return {a: int(v) for a, v in client.get_registered_model(name).aliases.items()}


def log_and_register(
    params: Params,
    root: str | Path,
    *,
    model_path: str | Path,
    metrics: Mapping[str, Any],
    params_flat: Mapping[str, Any],
    artifacts: Sequence[str | Path] = (),
    tags: Mapping[str, Any] | None = None,
    input_example: pd.DataFrame,
) -> Registration:
    """One MLflow run: params, metrics, artifacts, tags and the pyfunc; a new registered version
    with alias ``challenger``; then the promotion gate on ``champion``.

    Args:
        model_path: the calibrated ``.keras`` detector.
        metrics: evaluation metrics (nested dicts are flattened with ``.``; non-numbers skipped);
            the gate compares ``metrics[params.evaluate.metric]``.
        params_flat: ``Params.flat()`` (or any flat dict) logged as run params.
        artifacts: files and folders to log: ``*.png`` under ``plots/``, folders under their name
            (a GX ``local_site`` under ``data_docs/``), other files under ``reports/``.
        tags: lineage tags (snapshot hash, git commit, data source), set on the run and the version.
        input_example: first rows of the validation split (the detector's feature columns are
            taken, as float64).

    Raises:
        FileNotFoundError: no model file. ValueError: the detector has no threshold, or the
        example lacks feature columns. RegistryError: registering failed (after retries).
    """
    from anomaly_models.detector import AnomalyDetector

    started = time.perf_counter()
    root = Path(root).resolve()
    model_path = Path(model_path).resolve()
    if not model_path.is_file():
        raise FileNotFoundError(f"no model file at {model_path}")
    detector = AnomalyDetector.load(model_path)
    if not detector.is_calibrated:
        raise ValueError(
            f"the detector in {model_path} has no threshold; run the calibrate stage first "
            "(`anomaly stage calibrate`)"
        )
    registry = params.registry
    name = registry.model_name
    metric = params.evaluate.metric
    clean_tags = {str(k): str(v) for k, v in (tags or {}).items() if v is not None}
    numeric = _numeric_metrics(metrics)

    client, experiment_id = _configure(params, root)
    run_name = f"register-{datetime.now(tz=UTC).strftime('%Y%m%d-%H%M%S')}"
    nested = mlflow.active_run() is not None  # e.g. inside a caller's parent run
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, nested=nested) as run:
        run_id = run.info.run_id
        if clean_tags:
            mlflow.set_tags(clean_tags)
        if params_flat:
            mlflow.log_params(_param_values(params_flat))
        if numeric:
            mlflow.log_metrics(numeric)
        _log_artifacts(Path(a) for a in artifacts)
        info = log_pyfunc_model(
            model_path,
            input_example,
            detector=detector,
            timestamp_column=params.data.timestamp_column,
        )

        mv = _with_retry(
            f"registering a new version of model {name!r}",
            _register_version,
            client,
            info.model_uri,
            name,
            run_id,
            clean_tags,
        )
        version = int(mv.version)
        before = _with_retry(f"reading the aliases of model {name!r}", _aliases_of, client, name)
        champion_before = before.get(CHAMPION)
        _with_retry(
            f"setting alias {CHALLENGER!r} on version {version}",
            client.set_registered_model_alias,
            name,
            CHALLENGER,
            str(version),
        )
        new_value = _run_metric(client, run_id, metric)
        champion_value = (
            _with_retry(
                f"reading the runs of champion version {champion_before}",
                _champion_metric,
                client,
                name,
                champion_before,
                metric,
            )
            if champion_before is not None
            else None
        )
        decision = decide_promotion(
            policy=registry.promotion,
            metric=metric,
            margin=float(registry.promotion_margin),
            new_version=version,
            new_value=new_value,
            champion_version=champion_before,
            champion_value=champion_value,
        )
        if decision.promote:
            _with_retry(
                f"setting alias {CHAMPION!r} on version {version}",
                client.set_registered_model_alias,
                name,
                CHAMPION,
                str(version),
            )
        version_tags = {
            "promotion.policy": registry.promotion,
            "promotion.decision": CHAMPION if decision.promote else CHALLENGER,
            "promotion.reason": decision.reason,
            "promotion.metric": metric,
            "promotion.metric_value": "none" if new_value is None else repr(new_value),
            "promotion.margin": repr(float(registry.promotion_margin)),
            "promotion.champion_before": "none"
            if champion_before is None
            else str(champion_before),
            "promotion.champion_before_value": (
                "none" if champion_value is None else repr(champion_value)
            ),
        }
        for key, value in version_tags.items():
            _with_retry(
                f"tagging version {version}",
                client.set_model_version_tag,
                name,
                str(version),
                key,
                value,
            )
        mlflow.set_tags(
            {
                "registry.model_name": name,
                "registry.version": str(version),
                "registry.promoted": str(decision.promote).lower(),
            }
        )
        after = _with_retry(f"reading the aliases of model {name!r}", _aliases_of, client, name)

    aliases = tuple(sorted(a for a, v in after.items() if v == version))
    registration = Registration(
        run_id=run_id,
        model_name=name,
        version=version,
        model_uri=f"models:/{name}/{version}",
        aliases=aliases,
        promoted=decision.promote,
        reason=decision.reason,
        champion_version=after.get(CHAMPION),
        previous_champion=champion_before,
        metric=metric,
        metric_value=new_value,
        seconds=round(time.perf_counter() - started, 3),
    )
    _log.info(
        "registered %s version %d (%s): %s", name, version, ", ".join(aliases), decision.reason
    )
    return registration


def _champion_metric(client: MlflowClient, name: str, version: int, metric: str) -> float | None:
    mv = client.get_model_version(name, str(version))
    return _run_metric(client, mv.run_id, metric)


# ------------------------------------------------------------------- aliases and versions
def _version_numbers(client: MlflowClient, name: str) -> list[int]:
    return sorted(int(mv.version) for mv in client.search_model_versions(f"name = '{name}'"))


def _describe_versions(numbers: Sequence[int]) -> str:
    return ", ".join(str(n) for n in numbers) if numbers else "none"


def _get_registered_model(client: MlflowClient, name: str, uri: str) -> Any:
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise RegistryError(
                f"no registered model {name!r} in {_safe_uri(uri)}; train and register one first "
                "(`anomaly train`, or `dvc repro`), or check registry.model_name and "
                "MLFLOW_TRACKING_URI"
            ) from None
        raise


def _resolve(client: MlflowClient, name: str, alias: str) -> VersionInfo:
    model = _get_registered_model(client, name, client.tracking_uri)
    aliases = {a: int(v) for a, v in model.aliases.items()}
    if alias not in aliases:
        numbers = _version_numbers(client, name)
        if not numbers:
            raise RegistryError(
                f"model {name!r} has no registered version yet; train one (`anomaly train`)"
            )
        raise RegistryError(
            f"no version of model {name!r} has alias {alias!r}; promote one with "
            f"`anomaly promote VERSION` (alias {alias!r}: `anomaly promote VERSION --alias {alias}`)"
            f" or in the MLflow UI; registered versions: {_describe_versions(numbers)}"
        )
    version = aliases[alias]
    mv = client.get_model_version(name, str(version))
    return _version_info(mv, alias=alias, aliases=[a for a, v in aliases.items() if v == version])


def resolve_alias(params: Params, root: str | Path, alias: str | None = None) -> VersionInfo:
    """The version behind ``alias`` (default ``scoring.alias``), read from the registry now.

    Raises:
        RegistryError: no such registered model, no version with that alias (the message says
            how to promote one and lists the versions), or the registry is unreachable.
    """
    alias = alias or params.scoring.alias
    client = _connect_existing(params, root)
    return _with_retry(
        f"resolving models:/{params.registry.model_name}@{alias}",
        _resolve,
        client,
        params.registry.model_name,
        alias,
    )


def prepare_input(model: PyFuncModel, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with numeric columns cast to the model signature's type where that loses nothing,
    ready for ``model.predict``.

    MLflow's schema enforcement refuses int64 -> double and float64 -> long ("Can not safely
    convert"), yet a CSV batch of whole numbers reads as int64 and one integer column with a gap
    reads as float64. Cast: integer / bool / float32 columns to float64 where the signature says
    ``double``; float columns holding only whole numbers (no NaN) to int64 where it says ``long``.
    Anything else is left for MLflow / the detector to reject with a message naming the column.
    """
    import numpy as np
    import pandas as pd

    schema = model.metadata.get_input_schema() if model.metadata is not None else None
    if schema is None or not schema.has_input_names():
        return frame
    cast: dict[str, str] = {}
    for spec in schema.inputs:
        column, kind = spec.name, getattr(spec.type, "name", None)
        if column not in frame.columns or not pd.api.types.is_numeric_dtype(frame[column]):
            continue
        series = frame[column]
        if kind == "double" and series.dtype != "float64":
            cast[column] = "float64"
        elif kind == "long" and series.dtype != "int64":
            if pd.api.types.is_integer_dtype(series) and not series.hasnans:
                cast[column] = "int64"
            elif pd.api.types.is_float_dtype(series):
                values = series.to_numpy(dtype="float64", na_value=np.nan)
                if np.isfinite(values).all() and (values == np.round(values)).all():
                    cast[column] = "int64"
    return frame.astype(cast) if cast else frame


def load_champion_pyfunc(
    params: Params, root: str | Path, alias: str | None = None
) -> tuple[PyFuncModel, VersionInfo]:
    """Resolve ``alias`` (default ``scoring.alias``) now and load that version's pyfunc.

    The model is loaded by its version URI (``models:/NAME/VERSION``), so the version returned
    is the one that scores even if the alias moves meanwhile.
    """
    info = resolve_alias(params, root, alias)
    model = _with_retry(f"loading {info.model_uri}", mlflow.pyfunc.load_model, info.model_uri)
    return model, info


def promote(
    params: Params, root: str | Path, version: int | str, alias: str = CHAMPION
) -> Promotion:
    """Point ``alias`` at ``version`` (what ``anomaly promote VERSION`` does).

    Raises:
        RegistryError: the version (or the registered model) does not exist, or a bad alias.
    """
    name = params.registry.model_name
    try:
        number = int(str(version).strip().lstrip("vV"))
    except ValueError:
        raise RegistryError(f"version must be a number such as 3, got {version!r}") from None
    if not _ALIAS.match(alias) or alias.lower() == "latest" or re.match(r"^[vV]\d+$", alias):
        raise RegistryError(
            f"bad alias {alias!r}: letters, digits, '_' and '-', starting with a letter or '_'; "
            "not 'latest' nor 'v<number>'"
        )
    client = _connect_existing(params, root)

    def _promote() -> Promotion:
        model = _get_registered_model(client, name, client.tracking_uri)
        previous = model.aliases.get(alias)
        try:
            client.get_model_version(name, str(number))
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            raise RegistryError(
                f"model {name!r} has no version {number}; registered versions: "
                f"{_describe_versions(_version_numbers(client, name))}"
            ) from None
        client.set_registered_model_alias(name, alias, str(number))
        client.set_model_version_tag(
            name,
            str(number),
            f"promotion.{alias}",
            f"set by `anomaly promote` at {datetime.now(tz=UTC).isoformat(timespec='seconds')}"
            + (f" (was version {previous})" if previous is not None else ""),
        )
        return Promotion(name, alias, number, int(previous) if previous is not None else None)

    return _with_retry(f"promoting version {number} of {name!r} to {alias!r}", _promote)


def list_versions(params: Params, root: str | Path) -> list[dict[str, Any]]:
    """Every registered version, oldest first: ``version``, ``aliases``, ``created`` (ISO, UTC),
    ``status``, ``run_id``, headline metrics ``roc_auc``, ``pr_auc``, ``f1``, ``threshold`` (None
    when absent), all run ``metrics``, the gate's ``decision`` and ``reason``.

    Raises:
        RegistryError: no such registered model, or the registry is unreachable.
    """
    name = params.registry.model_name
    client = _connect_existing(params, root)

    def _list() -> list[dict[str, Any]]:
        model = _get_registered_model(client, name, client.tracking_uri)
        by_version: dict[int, list[str]] = {}
        for a, v in model.aliases.items():
            by_version.setdefault(int(v), []).append(a)
        rows = []
        run_metrics: dict[str, dict[str, float]] = {}
        versions = sorted(
            client.search_model_versions(f"name = '{name}'"), key=lambda m: int(m.version)
        )
        for mv in versions:
            info = _version_info(mv, aliases=by_version.get(int(mv.version), ()))
            if mv.run_id and mv.run_id not in run_metrics:
                try:
                    run_metrics[mv.run_id] = dict(client.get_run(mv.run_id).data.metrics)
                except MlflowException:
                    run_metrics[mv.run_id] = {}
            metrics = run_metrics.get(mv.run_id or "", {})
            row: dict[str, Any] = {
                "version": info.version,
                "aliases": list(info.aliases),
                "created": info.created,
                "status": info.status,
                "run_id": info.run_id,
            }
            for key in HEADLINE_METRICS:
                row[key] = metrics.get(key)
            row["metrics"] = metrics
            row["decision"] = info.tags.get("promotion.decision")
            row["reason"] = info.tags.get("promotion.reason")
            rows.append(row)
        return rows

    return _with_retry(f"listing the versions of model {name!r}", _list)


def download_artifact(
    params: Params, root: str | Path, run_id: str, artifact_path: str, dst_dir: str | Path
) -> Path:
    """Download one artifact of a run (e.g. :data:`SUITE_ARTIFACT` of a version's run) into
    ``dst_dir``; returns the local path.

    Raises:
        RegistryError: the run has no such artifact (or the store is unreachable).
    """
    _connect_existing(params, root)
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

    return _with_retry(f"downloading {artifact_path!r} of run {run_id}", _download)
