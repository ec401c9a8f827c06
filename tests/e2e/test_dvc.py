"""`dvc repro` in a temporary git repository runs the same steps and registers the same model."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.project import BIN, REPO, cli_env, make_project

# e2e: real services and trainings; the global limit of pyproject.toml is too short for them
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


def run(root, *args, timeout=900):
    done = subprocess.run(list(args), cwd=root, env=cli_env(root), capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def registered_versions(root) -> list[int]:
    with sqlite3.connect(root / "mlflow.db") as db:
        return sorted(int(v) for (v,) in db.execute("select version from model_versions"))


#: what a team commits besides the code: the lock file and the outputs kept out of DVC's cache
TEAM_COMMITS = ("dvc.lock", "metrics.json", "plots")

STAGES = ("ingest", "validate", "preprocess", "train", "calibrate", "evaluate", "register")
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]


def stages_run(out: str) -> set[str]:
    return {stage for stage in STAGES if f"Running stage '{stage}'" in out}


@dataclass(frozen=True)
class Reproduced:
    """A git + DVC repository after its first ``dvc repro``, committed, and that run's output."""

    root: Path
    output: str


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory) -> Reproduced:
    root = make_project(tmp_path_factory.mktemp("dvcrepo") / "repo")
    (root / ".gitignore").write_text("/.prefect/\n/mlflow.db\n/mlartifacts/\n/gx/\n/.cache/\n")
    run(root, "git", "init", "-q")
    run(root, str(BIN / "dvc"), "init", "-q")
    run(root, str(BIN / "dvc"), "config", "core.analytics", "false")
    run(root, *GIT, "add", "-A")
    run(root, *GIT, "commit", "-qm", "project")
    output = run(root, str(BIN / "dvc"), "repro")
    run(root, *GIT, "add", "-A")
    run(root, *GIT, "commit", "-qm", "reproduced")
    return Reproduced(root, output)


@pytest.fixture
def repo(reproduced, tmp_path) -> Path:
    """A copy of the reproduced repository of its own (registry included): each test changes
    it without changing what another test sees, whatever the order."""
    copy = tmp_path / "repo"
    shutil.copytree(reproduced.root, copy, symlinks=True)
    return copy


def test_repro_runs_every_stage_then_nothing(reproduced, repo):
    assert stages_run(reproduced.output) == set(STAGES)
    assert registered_versions(repo) == [1]
    registration = json.loads((repo / "models/registration.json").read_text())
    assert "champion" in registration["aliases"] and registration["version"] == 1
    metrics = json.loads((repo / "metrics.json").read_text())
    assert metrics["roc_auc"] > 0.95

    second = run(repo, str(BIN / "dvc"), "repro")
    assert "Running stage" not in second
    assert registered_versions(repo) == [1]  # a no-op registers nothing

    shown = run(repo, str(BIN / "dvc"), "metrics", "show")
    assert "roc_auc" in shown and "pr_auc" in shown


def test_changing_one_parameter_reruns_only_the_stages_that_read_it(repo):
    text = (repo / "params.yaml").read_text()
    assert "    q: 0.99" in text
    (repo / "params.yaml").write_text(text.replace("    q: 0.99", "    q: 0.98"))
    out = run(repo, str(BIN / "dvc"), "repro")
    assert stages_run(out) == {"calibrate", "evaluate", "register"}
    assert registered_versions(repo) == [1, 2]
    threshold = json.loads((repo / "models/threshold.json").read_text())
    assert threshold["params"]["q"] == 0.98


def test_exp_run_with_a_set_parameter(repo):
    out = run(repo, str(BIN / "dvc"), "exp", "run", "-S", "train.epochs=2")
    assert stages_run(out) == {"train", "calibrate", "evaluate", "register"}
    history = json.loads((repo / "models/training_history.json").read_text())
    assert history["epochs_run"] == 2 and len(history["history"]["loss"]) == 2


def test_a_pushed_pipeline_is_pulled_into_another_checkout_with_nothing_to_rerun(repo, tmp_path):
    """The team path of docs/SERVICES.md, under the project's own .gitignore: `dvc remote add
    -d team`, `dvc push`, commit dvc.lock with the uncached metrics and plots; another clone
    `dvc pull`s and finds nothing to run; the pulled model scores like the pushed one."""
    import numpy as np
    import pandas as pd

    from anomaly_models import AnomalyDetector

    remote = tmp_path / "team-remote"
    dvc = str(BIN / "dvc")
    shutil.copy(REPO / ".gitignore", repo / ".gitignore")
    run(repo, "git", "rm", "-r", "-q", "--cached", ".")
    run(repo, dvc, "remote", "add", "-d", "team", str(remote))
    pushed = run(repo, dvc, "push")
    assert "pushed" in pushed and any(remote.rglob("*"))
    run(repo, *GIT, "add", "-A")
    run(repo, *GIT, "add", "-f", *TEAM_COMMITS)  # what docs/SERVICES.md says to commit
    run(repo, *GIT, "commit", "-qm", "team remote, pipeline state")

    other = tmp_path / "other"
    run(tmp_path, "git", "clone", "-q", str(repo), str(other))
    assert not (other / "models").exists()  # the cached outputs are not in git
    run(other, dvc, "pull")
    assert "up to date" in run(other, dvc, "status")
    assert "Running stage" not in run(other, dvc, "repro")
    assert not (other / "mlflow.db").exists()  # the no-op needed no registry

    rows = pd.read_parquet(other / "data" / "processed" / "test.parquet")
    rows = rows[["temp", "pressure", "flow", "vibration"]]
    pulled = AnomalyDetector.load(other / "models" / "model.keras")
    pushed = AnomalyDetector.load(repo / "models" / "model.keras")
    assert pulled.threshold_ == pushed.threshold_
    np.testing.assert_array_equal(pulled.score_samples(rows), pushed.score_samples(rows))
