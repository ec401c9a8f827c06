"""`anomaly serve` against a real `prefect server start`: a scheduled run scores a dropped batch.

Everything is a real process: the Prefect server (its database in the temporary project), the
training run (`anomaly train`, registered in the project's MLflow SQLite registry) and
`anomaly serve`, whose runner starts each scheduled flow run as a subprocess of its own. Every
process started here, and each of their descendants, is stopped at the end and checked gone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from flows.steps.score import Ledger
from tests.e2e.project import BIN, cli_env, make_project
from tests.e2e.services import (
    Processes,
    free_port,
    http_post,
    prefect_healthy,
    start_prefect_server,
    wait_for,
)

# e2e: real services and trainings; the global limit of pyproject.toml is too short for them
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

FEATURES = ["temp", "pressure", "flow", "vibration"]


def test_a_scheduled_run_scores_a_dropped_batch(tmp_path: Path, processes: Processes) -> None:
    root = make_project(tmp_path / "project")
    logs = tmp_path / "logs"
    logs.mkdir()
    server_log, serve_log = logs / "server.log", logs / "serve.log"
    api, env = start_prefect_server(processes, cli_env(root), server_log, root)
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
    deployments = wait_for(
        "the three deployments on the server",
        lambda: len(d := http_post(f"{api}/deployments/filter", {})) == 3 and d,
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
    wait_for("a scheduled run to score the batch", scored_file.is_file, 240, [serve_log, server_log])
    processes.remember_descendants()

    scored = pd.read_parquet(scored_file)
    assert len(scored) == 300
    pd.testing.assert_frame_equal(scored[FEATURES], batch, check_dtype=False)
    assert set(scored["model_version"]) == {1}
    assert (root / "data" / "incoming" / "_done" / "batch-001.csv").is_file()

    def completed_scoring_runs() -> list[dict]:
        scoring_id = next(d["id"] for d in deployments if d["name"] == "scoring")
        runs = http_post(
            f"{api}/flow_runs/filter",
            {"flow_runs": {"deployment_id": {"any_": [scoring_id]},
                           "state": {"type": {"any_": ["COMPLETED"]}}}},
        )
        return [r for r in runs if r["auto_scheduled"]]

    runs = wait_for("the scheduled scoring run's Completed state", completed_scoring_runs, 60,
                     [serve_log])
    assert all(r["parameters"]["root"] == str(root) for r in runs)
    ledger = Ledger(root / "data" / "scored").read()
    assert [e["batch"] for e in ledger["batches"].values()] == ["batch-001.csv"]

    survivors = processes.stop_all()
    assert not survivors, survivors
    assert not prefect_healthy(api)  # the server is down


@pytest.mark.parametrize(
    ("command", "api_url", "message"),
    [
        ("serve", None, "PREFECT_API_URL is not set"),
        ("serve", "http://127.0.0.1:{port}/api", "no Prefect server answers at PREFECT_API_URL"),
        ("deploy", "http://127.0.0.1:{port}/api", "no Prefect server answers at PREFECT_API_URL"),
        ("worker", None, "PREFECT_API_URL is not set"),
    ],
)
def test_serve_deploy_and_worker_without_a_server_say_how_to_start_one(
    tmp_path: Path, command, api_url, message
) -> None:
    root = make_project(tmp_path / "project")
    env = cli_env(root)
    if api_url:
        env["PREFECT_API_URL"] = api_url.format(port=free_port())
    result = subprocess.run(
        [str(BIN / "anomaly"), command], env=env, cwd=root, capture_output=True, text=True,
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
    assert scoring.work_pool_name is None and not scoring.job_variables  # prefect.serve runs them

    (on_pool,) = build_deployments(params, root, work_pool="team-pool")
    assert on_pool.work_pool_name == "team-pool"
    assert on_pool.job_variables == {
        "working_dir": str(root.resolve()), "env": {"ANOMALY_PROJECT_ROOT": str(root.resolve())},
    }
    assert on_pool.entrypoint == "flows.scoring.scoring_flow"  # imported from the worker's venv


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, *sys.argv[1:]]))
