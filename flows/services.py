"""The command lines of a team's shared services: the MLflow tracking server
(``anomaly mlflow-server``, ``make mlflow-server``) and a Prefect worker of the work pool
(``anomaly worker``, ``make worker``; docs/SERVICES.md).

    mlflow server --host 127.0.0.1 --port 5000 --workers 2
                  --backend-store-uri sqlite:///<root>/.mlflow-server/mlflow.db   (or a URL)
                  --artifacts-destination <root>/.mlflow-server/artifacts         (proxied)
                  [--app-name basic-auth]

Clients (every ``anomaly`` command) then set ``MLFLOW_TRACKING_URI=http://host:port``: runs,
versions and artifacts go through the server, which writes the artifacts into its
``--artifacts-destination``; nothing lands in the client's folder. With ``auth`` the server
runs MLflow's basic-auth app: its user database is ``<root>/.mlflow-server/basic_auth.db``,
the admin's name and password come from ``MLFLOW_AUTH_ADMIN_USERNAME`` (default ``admin``)
and ``MLFLOW_AUTH_ADMIN_PASSWORD`` (required the first time, never in the repo), the Flask
secret from ``MLFLOW_FLASK_SERVER_SECRET_KEY`` (else one generated into
``.mlflow-server/secret_key``, mode 0600, kept across restarts). Clients authenticate with
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``. See docs/SERVICES.md.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from flows.errors import DataError

__all__ = ["SERVER_DIR", "MlflowServer", "mlflow_server", "prefect_worker"]

#: the server's state inside the project (git-ignored)
SERVER_DIR = ".mlflow-server"


@dataclass(frozen=True)
class MlflowServer:
    """A command line and its environment: ``os.execve(argv[0], argv, env)`` starts it."""

    argv: list[str]
    env: dict[str, str]
    state_dir: Path


def _auth_config(state: Path) -> Path:
    """The basic-auth app's ini file, written into the server's folder (its user database
    there too; MLflow's packaged default would put it in the current folder)."""
    ini = state / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{state / 'basic_auth.db'}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
        encoding="utf-8",
    )
    return ini


def _secret_key(state: Path) -> str:
    path = state / "secret_key"
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key)
    return key


def _venv_command(name: str) -> str:
    """The console script ``name`` of this interpreter's environment (else the one on PATH)."""
    return shutil.which(name, path=str(Path(sys.executable).parent)) or name


def mlflow_server(
    root: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    backend_store_uri: str | None = None,
    auth: bool = False,
    workers: int = 2,
    environ: dict[str, str] | None = None,
) -> MlflowServer:
    """The ``mlflow server`` command of the project at ``root`` (its folders created).

    Raises:
        DataError: ``auth`` without an admin password in the environment and no user database
            yet (MLflow would refuse to start; this says which variable to set).
    """
    env = dict(os.environ if environ is None else environ)
    root = Path(root).resolve()
    state = root / SERVER_DIR
    artifacts = state / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    backend = backend_store_uri or f"sqlite:///{state / 'mlflow.db'}"
    mlflow = _venv_command("mlflow")
    argv = [
        mlflow, "server", "--host", host, "--port", str(port), "--workers", str(workers),
        "--backend-store-uri", backend, "--artifacts-destination", str(artifacts),
    ]
    if auth:
        if not env.get("MLFLOW_AUTH_ADMIN_PASSWORD") and not (state / "basic_auth.db").exists():
            raise DataError(
                "the basic-auth server needs its admin password the first time: set "
                "MLFLOW_AUTH_ADMIN_PASSWORD in the environment (never in the repo)"
            )
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(_auth_config(state))
        env.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", _secret_key(state))
        argv += ["--app-name", "basic-auth"]
    return MlflowServer(argv=argv, env=env, state_dir=state)


def prefect_worker(pool: str, *, name: str | None = None, limit: int | None = None) -> list[str]:
    """``prefect worker start`` of a process worker polling ``pool`` (this environment's
    ``prefect``, so its flow runs import this checkout's ``flows``)."""
    argv = [_venv_command("prefect"), "worker", "start", "--pool", pool, "--type", "process"]
    if name:
        argv += ["--name", name]
    if limit is not None:
        argv += ["--limit", str(limit)]
    return argv
