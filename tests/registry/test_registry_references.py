"""The drift reference registered with each version (flows.registry.references): downloaded once
from the version's run, cached per version and run, and a sentence instead when there is none;
against a REAL MLflow SQLite registry in tmp_path."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.registry import (
    DRIFT_REFERENCE_ARTIFACT,
    ReferenceUnavailable,
    VersionNotFound,
    fetch_reference,
    fetch_references,
    get_version,
    reference_cache_path,
)
from flows.steps.reference import read_drift_reference, write_reference_file
from flows.steps.report import BatchRow, drift_of_day

pytestmark = pytest.mark.slow


def _reference_file(folder: Path, frame: pd.DataFrame) -> Path:
    """A drift reference named as the register stage names it (logged as
    reports/drift_reference.parquet)."""
    meta = {
        "format": 1,
        "source": "data/processed/train.parquet",
        "training_rows": len(frame),
        "rows": len(frame),
        "seed": 0,
        "max_rows": 20_000,
        "features": list(frame.columns),
    }
    return write_reference_file(frame, meta, folder / "drift_reference.parquet")


def test_get_version_reads_one_version_or_says_it_is_not_there(tiny_registry, make_registry_params):
    params = make_registry_params()
    root = tiny_registry.root
    reg = tiny_registry.register(params, {"pr_auc": 0.5})

    info = get_version(params.registry, params.retries, root, 1)

    assert (info.name, info.version, info.run_id) == ("tiny-detector", 1, reg.run_id)
    assert set(info.aliases) == {"champion", "challenger"}
    with pytest.raises(
        VersionNotFound,
        match=r"model 'tiny-detector' has no version 4 in "
        r"sqlite:///.*mlflow\.db \(registered versions: 1\)",
    ):
        get_version(params.registry, params.retries, root, 4)


def test_fetch_reference_caches_and_downloads_again_for_another_run(
    tiny_registry, make_registry_params, tmp_path
):
    params = make_registry_params()
    root = tiny_registry.root
    first = pd.DataFrame({"a": np.arange(5.0), "b": np.arange(5) * 2})
    second = pd.DataFrame({"a": np.arange(7.0) + 100, "b": np.arange(7)})
    reg1 = tiny_registry.register(
        params, {"pr_auc": 0.5}, artifacts=[_reference_file(tmp_path / "one", first)]
    )
    reg2 = tiny_registry.register(
        params, {"pr_auc": 0.4}, artifacts=[_reference_file(tmp_path / "two", second)]
    )
    listed = {a.path for a in tiny_registry.client().list_artifacts(reg1.run_id, "reports")}
    assert DRIFT_REFERENCE_ARTIFACT in listed
    info = get_version(params.registry, params.retries, root, 1)

    path = fetch_reference(params, root, info)

    assert (
        path == reference_cache_path(params, root, 1) == root / "data/interim/references/1.parquet"
    )
    frame, meta = read_drift_reference(path)
    pd.testing.assert_frame_equal(frame, first)
    assert meta["registered_model"] == {
        "name": "tiny-detector",
        "version": 1,
        "run_id": reg1.run_id,
        "artifact": DRIFT_REFERENCE_ARTIFACT,
    }
    assert [p.name for p in path.parent.iterdir()] == ["1.parquet"]  # no download folder left

    # cached: with the run's artifacts gone from the store, the same file comes back
    run1_store = [d for d in (root / "mlartifacts").rglob(reg1.run_id) if d.is_dir()]
    assert len(run1_store) == 1
    shutil.rmtree(run1_store[0])
    before = path.stat().st_mtime_ns
    assert fetch_reference(params, root, info) == path and path.stat().st_mtime_ns == before

    # version 1 now belongs to another run (a re-created registry): downloaded again, from it
    moved = dataclasses.replace(info, run_id=reg2.run_id)
    again = fetch_reference(params, root, moved)
    frame, meta = read_drift_reference(again)
    assert again == path
    pd.testing.assert_frame_equal(frame, second)
    assert meta["registered_model"]["run_id"] == reg2.run_id
    # and a version whose run lost the file: the cache of another run is not taken for it
    with pytest.raises(ReferenceUnavailable, match="registered before references were logged"):
        fetch_reference(params, root, info)


def test_a_version_without_a_reference_gives_a_clear_note(
    tiny_registry, make_registry_params, tmp_path
):
    """A version registered before references were logged: fetch_references says so, the
    report's drift carries the sentence, nothing is cached and nothing else is read."""
    params = make_registry_params()
    root = tiny_registry.root
    reg = tiny_registry.register(params, {"pr_auc": 0.5}, artifacts=[])

    found = fetch_references(params, root, [1, 1, 9])

    no_reference = (
        f"model version 1 has no drift reference (registered before references were "
        f"logged: reports/drift_reference.parquet is not among the artifacts of run "
        f"{reg.run_id})"
    )
    assert found[1] == no_reference
    assert found[9].startswith("model 'tiny-detector' has no version 9 in sqlite:///")
    assert sorted(found) == [1, 9]
    assert not reference_cache_path(params, root, 1).exists()

    (root / "scored").mkdir()
    pd.DataFrame({"a": [0.1, 0.2], "b": [1.0, 2.0], "c": [3.0, 4.0]}).to_parquet(
        root / "scored" / "b.parquet"
    )
    batch = BatchRow(
        "b.csv",
        "scored",
        "2026-05-02T01:00:00+00:00",
        rows=2,
        model_version=1,
        output="scored/b.parquet",
    )
    drift = drift_of_day(root, [batch], found)
    assert not drift.available and drift.reference_version == 1
    assert drift.note == f"{no_reference}: drift not measured"


def test_an_unreachable_registry_is_named_as_such(mlflow_home, make_registry_params, monkeypatch):
    params = make_registry_params(retries={"attempts": 1, "delay_seconds": 0})
    (mlflow_home / "mlflow.db").unlink()

    gone = fetch_references(params, mlflow_home, [2, 3])

    assert set(gone) == {2, 3} and gone[2] == gone[3]
    assert gone[2].startswith("the registry is unreachable (no MLflow database at ")
    assert not (mlflow_home / "mlflow.db").exists()  # nothing created
    assert fetch_references(params, mlflow_home, []) == {}

    # a tracking server that does not answer (a closed port): a transient error every time
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    server = make_registry_params(
        retries={"attempts": 1, "delay_seconds": 0}, tracking_uri="http://127.0.0.1:9"
    )
    down = fetch_references(server, mlflow_home, [1, 2])
    assert down[1] == down[2] and down[1].startswith("the registry is unreachable (")
