"""`anomaly deploy` and `anomaly worker` against a real `prefect server start`: the deployments
go onto the process work pool of ``schedules.work_pool`` (created by deploy), and a run started
with `prefect deployment run scoring/scoring` completes on a real `prefect worker start`
subprocess and scores a dropped batch. Every process started here, and each descendant, is
stopped at the end and checked gone.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from flows.steps.score import Ledger
from tests.e2e.project import BIN, cli_env, make_project
from tests.e2e.services import Processes, http_get, http_post, start_prefect_server, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

FEATURES = ["temp", "pressure", "flow", "vibration"]


def _run(args: list[str], env: dict, root: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=root, capture_output=True, text=True, timeout=timeout)


def _ours(api: str) -> dict[str, dict]:
    """The deployments on the server by name."""
    return {d["name"]: d for d in http_post(f"{api}/deployments/filter", {})}


def test_a_deployment_run_completes_on_a_worker_of_the_pool(tmp_path: Path, processes: Processes) -> None:
    root = make_project(tmp_path / "project")
    logs = tmp_path / "logs"
    logs.mkdir()
    server_log, worker_log = logs / "server.log", logs / "worker.log"
    api, env = start_prefect_server(processes, cli_env(root), server_log, root)

    train = _run([str(BIN / "anomaly"), "train"], env, root)
    assert train.returncode == 0, train.stderr[-4000:]

    deployed = _run([str(BIN / "anomaly"), "deploy", "--set", "schedules.retrain_cron=0 3 * * 0"],
                    env, root, timeout=300)
    assert deployed.returncode == 0, deployed.stderr[-4000:]
    assert "3 deployment(s) on work pool 'anomaly' (created)" in deployed.stdout
    pool = http_post(f"{api}/work_pools/filter", {})
    assert [(p["name"], p["type"]) for p in pool] == [("anomaly", "process")]
    deployments = _ours(api)
    assert sorted(deployments) == ["data-quality-report", "retrain", "scoring"]
    assert {d["work_pool_name"] for d in deployments.values()} == {"anomaly"}
    schedules = {name: d["schedules"][0]["schedule"] for name, d in deployments.items()}
    assert schedules["scoring"]["interval"] == 15 * 60.0
    assert schedules["data-quality-report"]["cron"] == "0 2 * * *"
    assert schedules["retrain"]["cron"] == "0 3 * * 0"
    scoring = deployments["scoring"]
    assert scoring["parameters"] == {
        "root": str(root), "params_file": str(root / "params.yaml"),
        "overrides": ["schedules.retrain_cron=0 3 * * 0"],
    }
    assert scoring["job_variables"]["working_dir"] == str(root)

    # deploy again without the retrain cron: updated in place, retrain deleted, pool kept
    again = _run([str(BIN / "anomaly"), "deploy"], env, root, timeout=300)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "2 deployment(s) on work pool 'anomaly' (existing)" in again.stdout
    assert "deleted training/retrain" in again.stdout
    assert sorted(_ours(api)) == ["data-quality-report", "scoring"]
    assert _ours(api)["scoring"]["id"] == scoring["id"]

    train_rows = pd.read_parquet(root / "data" / "processed" / "train.parquet")[FEATURES]
    batch = train_rows.sample(300, random_state=2).reset_index(drop=True)
    incoming = root / "data" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    batch.to_csv(incoming / ".batch-001.csv.partial", index=False)
    (incoming / ".batch-001.csv.partial").rename(incoming / "batch-001.csv")

    # the worker starts in another folder with no project root set: each run starts in the
    # project root of the deployment's job variables regardless
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    worker_env = {k: v for k, v in env.items() if k != "ANOMALY_PROJECT_ROOT"}
    processes.start(
        [str(BIN / "anomaly"), "worker", "--params", str(root / "params.yaml"), "--name", "w1"],
        worker_env, worker_log, elsewhere,
    )
    started = _run([str(BIN / "prefect"), "deployment", "run", "scoring/scoring"], env, root,
                   timeout=120)
    assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
    run_id = re.search(r"UUID: ([0-9a-f-]{36})", started.stdout).group(1)

    def finished() -> dict | None:
        run = json.loads(http_get(f"{api}/flow_runs/{run_id}"))
        return run if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

    run = wait_for("the scoring run on the worker", finished, 300, [worker_log, server_log])
    processes.remember_descendants()
    assert run["state_type"] == "COMPLETED", worker_log.read_text(errors="replace")[-4000:]
    assert run["work_pool_name"] == "anomaly"
    assert "w1" in worker_log.read_text(errors="replace")

    scored = pd.read_parquet(root / "data" / "scored" / "batch-001.parquet")
    pd.testing.assert_frame_equal(scored[FEATURES], batch, check_dtype=False)
    assert set(scored["model_version"]) == {1}
    ledger = Ledger(root / "data" / "scored").read()
    assert [e["batch"] for e in ledger["batches"].values()] == ["batch-001.csv"]

    survivors = processes.stop_all()
    assert not survivors, survivors


def test_deploy_refuses_a_pool_of_another_type(tmp_path: Path, processes: Processes) -> None:
    root = make_project(tmp_path / "project")
    api, env = start_prefect_server(processes, cli_env(root), tmp_path / "server.log", root)
    http_post(f"{api}/work_pools/", {"name": "k8s", "type": "kubernetes"})
    result = _run([str(BIN / "anomaly"), "deploy", "--set", "schedules.work_pool=k8s"], env, root,
                  timeout=300)
    assert result.returncode == 2
    assert "schedules.work_pool" in result.stderr
    assert "'k8s' on the Prefect server is of type 'kubernetes', not 'process'" in result.stderr
    assert "Traceback" not in result.stderr
    assert _ours(api) == {}  # nothing was deployed
