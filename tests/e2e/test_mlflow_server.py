"""The team's MLflow tracking server (`anomaly mlflow-server --auth`, what `make mlflow-server
MLFLOW_AUTH=1` runs): a real `mlflow server` subprocess with MLflow's basic-auth app on
127.0.0.1, every command of two client checkouts pointed at it with MLFLOW_TRACKING_URI. A
client without (or with wrong) credentials gets one clear sentence; with them two trainings at
once get two versions, the versions' artifacts are in the server's artifact folder and none in
the clients', and a promotion through one client moves the alias the other's next scoring run
uses. One server for all of it (a server start and a training cost minutes on 2 cores). Every
process started here is stopped at the end.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import urllib.error
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e.project import BIN, cli_env, make_project, sensor_frame
from tests.e2e.services import free_port, http_get, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

FEATURES = ["temp", "pressure", "flow", "vibration"]


def _start_server(processes, home: Path, *extra: str, env: dict | None = None) -> str:
    """`anomaly mlflow-server` with its state in ``home``; returns its URL once it answers."""
    port = free_port()
    log = home / "mlflow-server.log"
    server = processes.start(
        [str(BIN / "anomaly"), "mlflow-server", "--port", str(port), *extra],
        cli_env(home) | (env or {}), log, home)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if server.poll() is not None:
            pytest.fail(f"the MLflow server exited ({server.returncode}):\n"
                        f"{log.read_text(errors='replace')[-4000:]}")
        try:
            return http_get(f"{url}/health") == b"OK"
        except (urllib.error.URLError, OSError):
            return False

    wait_for("the MLflow server's /health", healthy, 180, [log])
    return url


def _anomaly(root: Path, env: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "anomaly"), *args], env=env, cwd=root, capture_output=True,
                          text=True, timeout=timeout)


def _versions(root: Path, env: dict) -> dict[int, list[str]]:
    listed = _anomaly(root, env, "models", "--json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    return {row["version"]: sorted(row["aliases"]) for row in json.loads(listed.stdout)}


def _score_one_batch(root: Path, env: dict, name: str) -> pd.DataFrame:
    incoming = root / "data" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    sensor_frame(300, seed=len(name))[FEATURES].to_csv(incoming / f"{name}.csv", index=False)
    scored = _anomaly(root, env, "score")
    assert scored.returncode == 0, scored.stderr[-3000:]
    return pd.read_parquet(root / "data" / "scored" / f"{name}.parquet")


def _no_registry_files(root: Path) -> None:
    for name in ("mlflow.db", "mlartifacts", "mlruns", ".mlflow-server"):
        assert not (root / name).exists(), f"{name} was written in the client's folder"


def test_two_checkouts_train_score_and_promote_through_one_authenticated_server(
    tmp_path, processes
):
    home = tmp_path / "server"
    home.mkdir()
    password = secrets.token_urlsafe(12)
    url = _start_server(processes, home, "--auth", env={"MLFLOW_AUTH_ADMIN_PASSWORD": password})
    assert (home / ".mlflow-server" / "basic_auth.db").is_file()  # its user store: inside
    clients = [make_project(tmp_path / name) for name in ("alice", "bob")]
    plain = cli_env(clients[0]) | {"MLFLOW_TRACKING_URI": url}

    # without credentials, or with a wrong password: one sentence, no traceback, no secret
    for name, creds in (("none", {}), ("wrong", {"MLFLOW_TRACKING_USERNAME": "admin",
                                                 "MLFLOW_TRACKING_PASSWORD": "not-it"})):
        refused = _anomaly(clients[0], plain | creds, "models")
        assert refused.returncode == 1, (name, refused.stdout, refused.stderr)
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert "MLFLOW_TRACKING_USERNAME" in lines[0] and url in lines[0], lines[0]
        assert password not in refused.stderr

    creds = {"MLFLOW_TRACKING_URI": url, "MLFLOW_TRACKING_USERNAME": "admin",
             "MLFLOW_TRACKING_PASSWORD": password}
    envs = [cli_env(root) | creds for root in clients]
    # two trainings at once against the one server
    runs = [subprocess.Popen([str(BIN / "anomaly"), "train"], env=env, cwd=root, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for root, env in zip(clients, envs, strict=True)]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (_, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err[-3000:]

    alice, bob = clients
    versions = _versions(alice, envs[0])
    assert sorted(versions) == [1, 2]
    assert versions == _versions(bob, envs[1])  # one registry
    champion = next(v for v, aliases in versions.items() if "champion" in aliases)
    assert "challenger" in versions[2]  # the newest version, whichever finished last
    # the artifacts live behind the server, in its artifact folder
    models = sorted((home / ".mlflow-server" / "artifacts").rglob("MLmodel"))
    assert len(models) >= 2, models
    for root in clients:
        _no_registry_files(root)

    out = _score_one_batch(alice, envs[0], "first")
    assert set(out["model_version"]) == {champion}
    other = 3 - champion
    promoted = _anomaly(bob, envs[1], "promote", str(other))
    assert promoted.returncode == 0, promoted.stderr[-3000:]
    out = _score_one_batch(alice, envs[0], "second")
    assert set(out["model_version"]) == {other}  # the alias moved by the other checkout
    assert "champion" in _versions(alice, envs[0])[other]
    _no_registry_files(alice)

    # the day's report reads each version's drift reference from the server, logs a run there
    today = datetime.now(UTC).date().isoformat()
    reported = _anomaly(alice, envs[0], "report", "--date", today)
    assert reported.returncode == 0, reported.stderr[-3000:]
    assert f"data-quality report {today}: 2 batches (2 passed" in reported.stdout, reported.stdout
    assert (alice / "data" / "reports" / today / "report.html").is_file()
    _no_registry_files(alice)
