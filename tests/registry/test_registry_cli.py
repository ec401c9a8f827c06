"""The registry through the real `anomaly` command (a subprocess, as a user runs it) on a real
MLflow SQLite registry in tmp_path: `anomaly stage register` (what `dvc repro` runs),
`anomaly models --json` and `anomaly promote`; the registry's state is checked after each.

Here rather than in tests/e2e because it needs this folder's fixtures (the tiny model)."""

from __future__ import annotations

import json
import subprocess

import pytest

from flows.config import load_params
from flows.registry import list_versions
from tests.e2e.project import BIN, cli_env, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

NAME = "anomaly-detector"  # params.yaml's registry.model_name


def anomaly(root, *args, timeout=300):
    return subprocess.run(
        [str(BIN / "anomaly"), *args],
        cwd=root,
        env=cli_env(root),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_stage_register_models_json_and_promote(tiny_registry, step_inputs):
    root = tiny_registry.root
    make_project(root)  # params.yaml and dvc.yaml of the repository
    step_inputs(root, tiny_registry.model)

    staged = anomaly(root, "stage", "register")
    assert staged.returncode == 0, staged.stderr[-3000:]
    assert staged.stdout.startswith("stage register: done")
    record = json.loads((root / "models" / "registration.json").read_text())
    assert (record["model_name"], record["version"], record["promoted"]) == (NAME, 1, True)
    assert tiny_registry.aliases(NAME) == {"champion": 1, "challenger": 1}

    # a second version that the manual policy leaves as challenger
    manual = load_params(root / "params.yaml", ["registry.promotion=manual"])
    second = tiny_registry.register(manual, {"pr_auc": 0.95, "roc_auc": 0.97})
    assert second.version == 2 and not second.promoted
    assert tiny_registry.aliases(NAME) == {"champion": 1, "challenger": 2}

    listing = anomaly(root, "models", "--json")
    assert listing.returncode == 0, listing.stderr[-3000:]
    rows = json.loads(listing.stdout)
    assert rows == list_versions(manual.registry, manual.retries, root)
    client = tiny_registry.client()
    assert [r["version"] for r in rows] == [1, 2]
    assert [r["aliases"] for r in rows] == [["champion"], ["challenger"]]
    for row in rows:
        mv = client.get_model_version(NAME, str(row["version"]))
        assert row["run_id"] == mv.run_id and row["status"] == "READY"
        assert row["metrics"] == client.get_run(mv.run_id).data.metrics
        assert row["decision"] == mv.tags["promotion.decision"]
        assert row["reason"] == mv.tags["promotion.reason"]
    assert (rows[0]["pr_auc"], rows[0]["roc_auc"], rows[0]["f1"]) == (0.8, 0.9, 0.7)
    assert rows[0]["threshold"] == pytest.approx(tiny_registry.model.detector.threshold_)
    assert (rows[1]["pr_auc"], rows[1]["f1"], rows[1]["threshold"]) == (0.95, None, None)
    assert [r["decision"] for r in rows] == ["champion", "challenger"]

    promoted = anomaly(root, "promote", "2")
    assert promoted.returncode == 0, promoted.stderr[-3000:]
    assert promoted.stdout == f"alias 'champion' of model '{NAME}' now points at version 2\n"
    assert tiny_registry.aliases(NAME) == {"champion": 2, "challenger": 2}
    note = client.get_model_version(NAME, "2").tags["promotion.champion"]
    assert note.startswith("set by `anomaly promote` at ") and note.endswith("(was version 1)")

    shadow = anomaly(root, "promote", "1", "--alias", "shadow")
    assert shadow.returncode == 0, shadow.stderr[-3000:]
    assert tiny_registry.aliases(NAME) == {"champion": 2, "challenger": 2, "shadow": 1}

    missing = anomaly(root, "promote", "7")
    assert missing.returncode == 1
    assert missing.stderr == (
        f"anomaly promote: RegistryError: model '{NAME}' has no version 7; "
        "registered versions: 1, 2\n"
    )
    assert tiny_registry.aliases(NAME) == {"champion": 2, "challenger": 2, "shadow": 1}


def test_models_and_promote_in_a_fresh_clone_create_nothing(tmp_path):
    root = make_project(tmp_path / "clone")
    for args in (["models", "--json"], ["promote", "1"]):
        done = anomaly(root, *args, timeout=180)
        assert done.returncode == 1, done.stderr[-3000:]
        assert done.stdout == ""
        assert done.stderr.startswith(
            f"anomaly {args[0]}: RegistryError: no MLflow database at {root / 'mlflow.db'}"
        )
        assert "train and register a model first" in done.stderr
        assert "Traceback" not in done.stderr
    assert not (root / "mlflow.db").exists() and not (root / "mlartifacts").exists()
