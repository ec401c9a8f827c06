"""flows.services: the `mlflow server` command of `anomaly mlflow-server` (no server started:
tests/e2e/test_mlflow_server.py runs it)."""

from __future__ import annotations

import configparser
import stat

import pytest

from flows.errors import DataError
from flows.services import mlflow_server

pytestmark = pytest.mark.timeout(30)


def _option(argv, name):
    return argv[argv.index(name) + 1]


def test_the_server_binds_the_loopback_and_keeps_its_state_in_the_project(tmp_path):
    server = mlflow_server(tmp_path, port=5123, environ={})

    argv = server.argv
    assert argv[1] == "server" and _option(argv, "--host") == "127.0.0.1"
    assert _option(argv, "--port") == "5123"
    assert _option(argv, "--backend-store-uri") == f"sqlite:///{tmp_path / '.mlflow-server' / 'mlflow.db'}"
    assert _option(argv, "--artifacts-destination") == str(tmp_path / ".mlflow-server" / "artifacts")
    assert (tmp_path / ".mlflow-server" / "artifacts").is_dir()
    assert "--app-name" not in argv
    pg = "postgresql+psycopg://mlflow@db:5432/mlflow"
    assert _option(mlflow_server(tmp_path, backend_store_uri=pg, environ={}).argv,
                   "--backend-store-uri") == pg


def test_basic_auth_needs_the_admin_password_from_the_environment_the_first_time(tmp_path):
    with pytest.raises(DataError, match="MLFLOW_AUTH_ADMIN_PASSWORD"):
        mlflow_server(tmp_path, auth=True, environ={})

    server = mlflow_server(tmp_path, auth=True, environ={"MLFLOW_AUTH_ADMIN_PASSWORD": "s3cret"})

    assert _option(server.argv, "--app-name") == "basic-auth"
    ini = configparser.ConfigParser()
    ini.read(server.env["MLFLOW_AUTH_CONFIG_PATH"])
    assert ini["mlflow"]["database_uri"] == (
        f"sqlite:///{tmp_path / '.mlflow-server' / 'basic_auth.db'}")
    assert "s3cret" not in (tmp_path / ".mlflow-server" / "basic_auth.ini").read_text()
    key = tmp_path / ".mlflow-server" / "secret_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert server.env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == key.read_text()
    again = mlflow_server(tmp_path, auth=True, environ={"MLFLOW_AUTH_ADMIN_PASSWORD": "s3cret"})
    assert again.env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == key.read_text()  # kept
    assert mlflow_server(tmp_path, auth=True, environ={
        "MLFLOW_AUTH_ADMIN_PASSWORD": "x", "MLFLOW_FLASK_SERVER_SECRET_KEY": "mine",
    }).env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == "mine"
