"""Where the registry is: tracking and registry URIs, the experiment, the MLflow client.

Embedded default: MLflow on SQLite (``sqlite:///<root>/mlflow.db``) with the experiment's artifact
store inside the project (``<root>/<registry.artifact_dir>``), created with an explicit
``artifact_location`` so that nothing lands in ``./mlruns`` of whatever folder a command runs in.
``MLFLOW_TRACKING_URI`` (and ``MLFLOW_REGISTRY_URI``), when set, win over ``params.yaml``, so the
same code talks to a tracking server with no change.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from flows.io import resolve
from flows.registry.retry import RegistryError, with_retry

if TYPE_CHECKING:
    from flows.config import RegistryParams, RetryParams

__all__ = [
    "artifact_location",
    "configure",
    "configure_mlflow",
    "connect",
    "connect_existing",
    "safe_uri",
    "tracking_uri",
]

# MLflow's set_tracking_uri / set_registry_uri also write MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI
# into os.environ (for subprocesses). A value that *we* put there must not later pass for the
# user's choice, or every project root after the first in one process would reuse the first
# store: remember every value we set and ignore the variable while it holds one of them (not
# only the last: code that saves and restores os.environ around a run may put back an earlier
# one). This mirrors os.environ, which is process-wide itself; it is no cache.
_OWN_ENV: dict[str, set[str]] = {}


def _user_env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    if not value or value in _OWN_ENV.get(name, ()):
        return None
    return value


def _set_global_uri(name: str, setter: Callable[[str], None], uri: str) -> None:
    before = os.environ.get(name)
    setter(uri)
    if before != uri and os.environ.get(name) == uri:
        _OWN_ENV.setdefault(name, set()).add(uri)


def safe_uri(uri: str) -> str:
    """The URI without credentials (``http://user:pw@host`` -> ``http://***@host``)."""
    return re.sub(r"//[^/@]+@", "//***@", uri)


def tracking_uri(registry: RegistryParams, root: str | Path) -> str:
    """The tracking URI: ``$MLFLOW_TRACKING_URI``; else ``registry.tracking_uri`` (a relative
    SQLite path or a bare path is taken relative to ``root``); else ``sqlite:///<root>/mlflow.db``.
    """
    env = _user_env("MLFLOW_TRACKING_URI")
    if env:
        return env
    root = Path(root).resolve()
    configured = registry.tracking_uri
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


def artifact_location(
    registry: RegistryParams, root: str | Path, uri: str | None = None
) -> str | None:
    """Artifact root for a new experiment: ``<root>/<registry.artifact_dir>`` as a file URI when
    the tracking store is local (or ``artifact_dir`` itself when it is a URI such as ``s3://...``);
    None for a tracking server, which then decides (e.g. its proxied artifact store)."""
    directory = registry.artifact_dir
    if "://" in directory:
        return directory
    uri = uri if uri is not None else tracking_uri(registry, root)
    if not _is_local_store(uri):
        return None
    return resolve(Path(root).resolve(), directory).resolve().as_uri()


def connect(registry: RegistryParams, root: str | Path) -> MlflowClient:
    """A client of the configured store; MLflow's global tracking and registry URIs point there
    too (for ``mlflow.start_run``, ``mlflow.pyfunc.load_model`` and the other fluent calls)."""
    uri = tracking_uri(registry, root)
    registry_uri = _registry_uri(uri)
    _set_global_uri("MLFLOW_TRACKING_URI", mlflow.set_tracking_uri, uri)
    _set_global_uri("MLFLOW_REGISTRY_URI", mlflow.set_registry_uri, registry_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=registry_uri)


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    db = uri[len("sqlite:///") :].split("?", 1)[0]
    return None if not db or db.startswith(":memory:") else Path(db)


def connect_existing(registry: RegistryParams, root: str | Path) -> MlflowClient:
    """Like :func:`connect` for read-only commands: a missing SQLite file is an error here, not
    something to create (MLflow would create it, and even its missing parent folders).

    Raises:
        RegistryError: no database file at the SQLite URI (nothing registered yet).
    """
    tracking = tracking_uri(registry, root)
    for uri in {tracking, _registry_uri(tracking)}:  # before MlflowClient(), which creates it
        db = _sqlite_path(uri)
        if db is not None and not db.is_file():
            raise RegistryError(
                f"no MLflow database at {db} (MLFLOW_TRACKING_URI or registry.tracking_uri): "
                f"nothing is registered there yet; train and register a model first "
                "(`anomaly train`, or `dvc repro`)"
            )
    return connect(registry, root)


def _ensure_experiment(client: MlflowClient, registry: RegistryParams, root: Path) -> str:
    name = registry.experiment_name
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = artifact_location(registry, root, client.tracking_uri)
        try:
            return client.create_experiment(name, artifact_location=location)
        except MlflowException as exc:  # created meanwhile by a concurrent run
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise exc from None
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def configure(
    registry: RegistryParams, retries: RetryParams, root: str | Path
) -> tuple[MlflowClient, str]:
    """:func:`configure_mlflow`, also returning the experiment id."""
    root = Path(root).resolve()
    client = connect(registry, root)
    experiment_id = with_retry(
        retries,
        f"opening experiment {registry.experiment_name!r} at {safe_uri(client.tracking_uri)}",
        _ensure_experiment,
        client,
        registry,
        root,
    )
    mlflow.set_experiment(experiment_id=experiment_id)
    return client, experiment_id


def configure_mlflow(
    registry: RegistryParams, retries: RetryParams, root: str | Path
) -> MlflowClient:
    """Point MLflow (tracking and registry) at the configured store, create the experiment when
    missing (with its explicit artifact location) and make it the active one.

    Raises:
        RegistryError: the store cannot be reached after the retries.
    """
    return configure(registry, retries, root)[0]
