"""`anomaly serve` against a real `prefect server start`: a scheduled run scores a dropped batch.

Everything is a real process: the Prefect server (its database in the temporary project), the
training run (`anomaly train`, registered in the project's MLflow SQLite registry) and
`anomaly serve`, whose runner starts each scheduled flow run as a subprocess of its own. Every
process started here, and each of their descendants, is stopped at the end and checked gone.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psutil
import pytest

from flows.steps.score import Ledger
from tests.e2e.project import BIN, cli_env, make_project

# e2e: real services and trainings; the global limit of pyproject.toml is too short for them
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

FEATURES = ["temp", "pressure", "flow", "vibration"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - localhost
        return response.read()


def _post(url: str, body: dict) -> object:
    request = urllib.request.Request(  # noqa: S310 - localhost
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


class Processes:
    """Processes started by a test; :meth:`stop_all` ends them and every descendant."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []
        self.seen: dict[int, psutil.Process] = {}

    def start(self, args: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
        proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(proc)
        return proc

    def remember_descendants(self) -> None:
        """Note every live descendant (flow-run subprocesses start sessions of their own)."""
        for proc in self.started:
            try:
                parent = psutil.Process(proc.pid)
                for p in [parent, *parent.children(recursive=True)]:
                    self.seen.setdefault(p.pid, p)
            except psutil.NoSuchProcess:
                continue

    def stop_all(self) -> list[str]:
        """SIGINT (what Ctrl-C sends), then SIGTERM, then SIGKILL; returns any survivor."""
        self.remember_descendants()
        for sig, wait_s in ((signal.SIGINT, 15), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            alive = [p for p in self.seen.values() if p.is_running() and p.status() != "zombie"]
            if not alive:
                break
            for p in alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.send_signal(sig)
            psutil.wait_procs(alive, timeout=wait_s)
        for proc in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        return [
            f"{p.pid} {p.name()}" for p in self.seen.values()
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        ]


@pytest.fixture
def processes() -> Iterator[Processes]:
    procs = Processes()
    yield procs
    survivors = procs.stop_all()
    assert not survivors, f"processes still running after the test: {survivors}"


def _wait_for(what: str, check, timeout_s: float, logs: list[Path], every_s: float = 1.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in logs if p.exists())
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}\n{tails}")


def _healthy(api: str) -> bool:
    try:
        return _get(f"{api}/health") == b"true"
    except (urllib.error.URLError, OSError):
        return False


def test_a_scheduled_run_scores_a_dropped_batch(tmp_path: Path, processes: Processes) -> None:
    root = make_project(tmp_path / "project")
    logs = tmp_path / "logs"
    logs.mkdir()
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = cli_env(root) | {
        "PREFECT_API_URL": api,
        # the server's scheduler looks for due deployments every 2 s instead of 60 s, and the
        # served runner polls for due runs every 2 s instead of 10 s: the test waits seconds
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
    server_log, serve_log = logs / "server.log", logs / "serve.log"

    processes.start(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env, server_log, root,
    )
    _wait_for("the Prefect server's /health", lambda: _healthy(api), 180, [server_log])
    assert (root / ".prefect" / "prefect.db").is_file()  # the server's state is in the project

    train = subprocess.run(
        [str(BIN / "anomaly"), "train"], env=env, cwd=root, capture_output=True, text=True,
        timeout=600,
    )
    assert train.returncode == 0, train.stderr[-4000:]
    assert "registered anomaly-detector version 1" in train.stdout

    processes.start(
        [
            str(BIN / "anomaly"), "serve",
            "--set", "schedules.scoring_interval_minutes=0.05",  # every 3 s
            "--set", "schedules.retrain_cron=0 3 * * 0",
        ],
        env, serve_log, root,
    )
    deployments = _wait_for(
        "the three deployments on the server",
        lambda: len(d := _post(f"{api}/deployments/filter", {})) == 3 and d,
        120, [serve_log, server_log],
    )
    schedules = {d["name"]: d["schedules"][0]["schedule"] for d in deployments}
    assert schedules["scoring"]["interval"] == 3.0
    assert schedules["data-quality-report"]["cron"] == "0 2 * * *"
    assert schedules["retrain"]["cron"] == "0 3 * * 0"
    assert deployments[0]["parameters"]["root"] == str(root)

    train_rows = pd.read_parquet(root / "data" / "processed" / "train.parquet")[FEATURES]
    batch = train_rows.sample(300, random_state=1).reset_index(drop=True)
    incoming = root / "data" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    tmp = incoming / ".batch-001.csv.partial"  # dropped whole: written aside, then renamed
    batch.to_csv(tmp, index=False)
    tmp.rename(incoming / "batch-001.csv")

    scored_file = root / "data" / "scored" / "batch-001.parquet"
    _wait_for("a scheduled run to score the batch", scored_file.is_file, 240, [serve_log, server_log])
    processes.remember_descendants()

    scored = pd.read_parquet(scored_file)
    assert len(scored) == 300
    pd.testing.assert_frame_equal(scored[FEATURES], batch, check_dtype=False)
    assert set(scored["model_version"]) == {1}
    assert (root / "data" / "incoming" / "_done" / "batch-001.csv").is_file()

    def completed_scoring_runs() -> list[dict]:
        scoring_id = next(d["id"] for d in deployments if d["name"] == "scoring")
        runs = _post(
            f"{api}/flow_runs/filter",
            {"flow_runs": {"deployment_id": {"any_": [scoring_id]},
                           "state": {"type": {"any_": ["COMPLETED"]}}}},
        )
        return [r for r in runs if r["auto_scheduled"]]

    runs = _wait_for("the scheduled scoring run's Completed state", completed_scoring_runs, 60,
                     [serve_log])
    assert all(r["parameters"]["root"] == str(root) for r in runs)
    ledger = Ledger(root / "data" / "scored").read()
    assert [e["batch"] for e in ledger["batches"].values()] == ["batch-001.csv"]

    survivors = processes.stop_all()
    assert not survivors, survivors
    assert not _healthy(api)  # the server is down


@pytest.mark.parametrize(
    ("api_url", "message"),
    [
        (None, "PREFECT_API_URL is not set"),
        ("http://127.0.0.1:{port}/api", "no Prefect server answers at PREFECT_API_URL"),
    ],
)
def test_serve_without_a_server_says_how_to_start_one(tmp_path: Path, api_url, message) -> None:
    root = make_project(tmp_path / "project")
    env = cli_env(root)
    if api_url:
        env["PREFECT_API_URL"] = api_url.format(port=_free_port())
    result = subprocess.run(
        [str(BIN / "anomaly"), "serve"], env=env, cwd=root, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert "make prefect-server" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_deployments_follow_params(tmp_path: Path) -> None:
    from flows.config import load_params
    from flows.deployments import build_deployments

    root = make_project(tmp_path / "project")
    params = load_params(root / "params.yaml", ["schedules.report_cron=null"])
    (scoring,) = build_deployments(params, root, overrides=["train.epochs=2"])
    assert scoring.name == "scoring"
    assert scoring.schedules[0].schedule.interval.total_seconds() == 15 * 60
    assert scoring.parameters == {
        "root": str(root.resolve()),
        "params_file": str(root.resolve() / "params.yaml"),
        "overrides": ["train.epochs=2"],
    }
    assert scoring.concurrency_limit == 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, *sys.argv[1:]]))
