"""`dvc repro` in a temporary git repository runs the same steps and registers the same model."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest

from tests.e2e.project import BIN, cli_env, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def run(root, *args, timeout=900):
    done = subprocess.run(list(args), cwd=root, env=cli_env(root), capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def registered_versions(root) -> list[int]:
    with sqlite3.connect(root / "mlflow.db") as db:
        return sorted(int(v) for (v,) in db.execute("select version from model_versions"))


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("dvcrepo"))
    (root / ".gitignore").write_text("/.prefect/\n/mlflow.db\n/mlartifacts/\n/gx/\n/.cache/\n")
    git_env = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    run(root, "git", "init", "-q")
    run(root, str(BIN / "dvc"), "init", "-q")
    run(root, str(BIN / "dvc"), "config", "core.analytics", "false")
    run(root, "git", *git_env, "add", "-A")
    run(root, "git", *git_env, "commit", "-qm", "project")
    return root


def test_repro_runs_every_stage_then_nothing(repo):
    first = run(repo, str(BIN / "dvc"), "repro")
    for stage in ("ingest", "validate", "preprocess", "train", "calibrate", "evaluate", "register"):
        assert f"Running stage '{stage}'" in first
    assert registered_versions(repo) == [1]
    registration = json.loads((repo / "models/registration.json").read_text())
    assert "champion" in registration["aliases"]
    metrics = json.loads((repo / "metrics.json").read_text())
    assert metrics["roc_auc"] > 0.95

    second = run(repo, str(BIN / "dvc"), "repro")
    assert "Running stage" not in second
    assert registered_versions(repo) == [1]  # a no-op registers nothing

    shown = run(repo, str(BIN / "dvc"), "metrics", "show")
    assert "roc_auc" in shown and "pr_auc" in shown


def test_changing_one_parameter_reruns_only_the_stages_that_read_it(repo):
    params = (repo / "params.yaml").read_text().replace("quantile: 0.99", "quantile: 0.98")
    (repo / "params.yaml").write_text(params)
    out = run(repo, str(BIN / "dvc"), "repro")
    ran = {s for s in ("ingest", "validate", "preprocess", "train", "calibrate", "evaluate", "register")
           if f"Running stage '{s}'" in out}
    assert ran == {"calibrate", "evaluate", "register"}
    assert registered_versions(repo) == [1, 2]


def test_exp_run_with_a_set_parameter(repo):
    run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@e.x", "add", "-A")
    run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@e.x", "commit", "-qm", "q=0.98")
    out = run(repo, str(BIN / "dvc"), "exp", "run", "-S", "train.epochs=2")
    assert "Running stage 'train'" in out and "Running stage 'ingest'" not in out
    history = json.loads((repo / "models/training_history.json").read_text())
    assert history["epochs_run"] == 2 and len(history["history"]["loss"]) == 2
