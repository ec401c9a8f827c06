"""The scoring flow on each executor (``scoring.executor``): Prefect's ProcessPoolTaskRunner and
prefect-dask's DaskTaskRunner on a real ``distributed.LocalCluster`` passed by address. Their
outputs equal the ``local`` executor's, each batch has one output, a rerun does nothing, a bad
batch is quarantined as on ``local``. Then a real ``dask scheduler`` and two ``dask worker``
processes with the ledger on a real PostgreSQL server: a worker SIGKILLed inside a batch, the run
repeated, every batch scored exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pandas as pd
import pytest

from flows.steps.score import Ledger
from tests.e2e.project import BIN
from tests.e2e.services import free_port
from tests.e2e.test_scoring import (  # noqa: F401 (project: the module fixture)
    good_rows,
    project,
    score,
    scored_files,
    start_score,
    subprocess_env,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def dask_address():
    """A real Dask cluster: 2 worker processes of 1 thread, on 127.0.0.1."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def _folders(base):
    dirs = {name: base / name for name in ("incoming", "scored", "quarantine")}
    dirs["incoming"].mkdir(parents=True)
    return dirs


def _drop_batches(project, folders) -> dict[str, int]:  # noqa: F811 (the module fixture)
    """Four good batches (CSV and Parquet) and one without a feature column."""
    rows = {}
    for i in range(4):
        frame = good_rows(project, 700 + 50 * i, seed=60 + i)
        if i % 2:
            frame.to_parquet(folders["incoming"] / f"b{i}.parquet", index=False)
        else:
            frame.to_csv(folders["incoming"] / f"b{i}.csv", index=False)
        rows[f"b{i}"] = len(frame)
    good_rows(project, 100, seed=70).drop(columns=["flow"]).to_csv(
        folders["incoming"] / "broken.csv", index=False)
    return rows


@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_an_executor_scores_like_local_once_per_batch(project, tmp_path, executor,  # noqa: F811
                                                      request):
    local, other = _folders(tmp_path / "local"), _folders(tmp_path / executor)
    rows = _drop_batches(project, local)
    _drop_batches(project, other)
    extra = ["scoring.executor=processes", "scoring.workers=2"]
    if executor == "dask":
        extra = ["scoring.executor=dask",
                 f"scoring.dask_address={request.getfixturevalue('dask_address')}"]

    expected = score(project, local)
    got = score(project, other, *extra)

    assert sorted(b.batch for b in got.scored) == sorted(b.batch for b in expected.scored) == [
        "b0.csv", "b1.parquet", "b2.csv", "b3.parquet"]
    assert [b.batch for b in got.quarantined] == ["broken.csv"]
    assert got.quarantined[0].reason == expected.quarantined[0].reason
    assert scored_files(other) == scored_files(local) == [f"{s}.parquet" for s in sorted(rows)]
    for name in scored_files(local):
        a = pd.read_parquet(local["scored"] / name)
        b = pd.read_parquet(other["scored"] / name)
        assert len(b) == rows[name.removesuffix(".parquet")]
        assert list(b.columns) == list(a.columns)
        pd.testing.assert_series_equal(b["anomaly_score"], a["anomaly_score"], rtol=1e-6,
                                       atol=1e-6)
        assert (b["is_anomaly"] == a["is_anomaly"]).all()
    entries = Ledger(other["scored"]).read()["batches"].values()
    assert sorted(e["batch"] for e in entries) == ["b0.csv", "b1.parquet", "b2.csv", "b3.parquet"]
    # scored by worker processes, not by the flow's own
    assert os.getpid() not in {e["scored_by"]["pid"] for e in entries}
    assert sorted(p.name for p in other["quarantine"].glob("*.csv")) == ["broken.csv"]

    # the inputs were archived: a rerun finds nothing; the same files again are skipped
    assert not list(other["incoming"].glob("b*"))
    assert score(project, other, *extra).batches == []
    for p in sorted((other["incoming"] / "_done").iterdir()):
        (other["incoming"] / p.name).write_bytes(p.read_bytes())
    again = score(project, other, *extra)
    assert {b.status for b in again.batches} == {"skipped"}
    assert all(b.reason.startswith("already scored") for b in again.batches)
    assert len(Ledger(other["scored"]).read()["batches"]) == 4


def test_a_large_parquet_batch_is_scored_in_parts_on_the_workers_like_local(
    project, tmp_path, dask_address  # noqa: F811 (the module fixture)
):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    local, other = _folders(tmp_path / "local"), _folders(tmp_path / "dask")
    big = good_rows(project, 6000, seed=90)
    bad = good_rows(project, 6000, seed=91)
    bad.loc[5100, "flow"] = np.inf  # in the last of the parts
    for folders in (local, other):
        for name, frame in (("big", big), ("bad", bad)):
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False),
                           folders["incoming"] / f"{name}.parquet", row_group_size=500)
        good_rows(project, 300, seed=92).to_csv(folders["incoming"] / "small.csv", index=False)
    extra = ["scoring.executor=dask", f"scoring.dask_address={dask_address}",
             "scoring.rows_per_task=1000", "scoring.chunk_rows=400"]

    expected = score(project, local, "scoring.chunk_rows=400")
    got = score(project, other, *extra)

    assert [(b.batch, b.status) for b in got.batches] == [
        (b.batch, b.status) for b in expected.batches] == [
        ("bad.parquet", "quarantined"), ("big.parquet", "scored"), ("small.csv", "scored")]
    assert got.quarantined[0].reason == expected.quarantined[0].reason
    assert "flow" in got.quarantined[0].reason
    assert got.scored[0].notes == ["scored in 6 parts"] and expected.scored[0].notes == []
    for name in ("big.parquet", "small.parquet"):
        a = pd.read_parquet(local["scored"] / name).drop(columns="scored_at")
        b = pd.read_parquet(other["scored"] / name).drop(columns="scored_at")
        pd.testing.assert_frame_equal(b, a, rtol=1e-6, atol=1e-6)
    entries = {e["batch"]: e for e in Ledger(other["scored"]).read()["batches"].values()}
    assert (entries["big.parquet"]["parts"], entries["small.csv"]["parts"]) == (6, 1)
    assert entries["big.parquet"]["rows"] == 6000
    assert scored_files(other) == ["big.parquet", "small.parquet"]
    assert not list(other["scored"].rglob("*.tmp"))
    assert sorted(p.name for p in other["quarantine"].glob("*.parquet")) == ["bad.parquet"]
    # the inputs were archived: a rerun finds nothing
    assert score(project, other, *extra).batches == []


@pytest.fixture
def dask_processes(project):  # noqa: F811 (the module fixture)
    """A `dask scheduler` and two `dask worker` processes (no nanny: a killed worker stays
    dead) on 127.0.0.1; yields (address, the workers' Popen); everything stopped after."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = subprocess_env(project)
    started = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1",
                                 "--port", str(port), "--no-dashboard"],
                                env=env, cwd=project, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):
            started.append(subprocess.Popen(
                [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-nanny",
                 "--host", "127.0.0.1", "--no-dashboard", "--death-timeout", "60"],
                env=env, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address, started[1:]
    finally:
        for p in reversed(started):
            p.kill()
            p.wait(timeout=30)


def test_a_dask_worker_killed_mid_batch_then_a_rerun_scores_each_batch_once(
    project, tmp_path, dask_processes, postgres_url  # noqa: F811
):
    address, workers = dask_processes
    folders = _folders(tmp_path)
    rows = {}
    for i in range(6):
        frame = good_rows(project, 3000 + i, seed=80 + i)
        frame.to_parquet(folders["incoming"] / f"part-{i}.parquet", index=False)
        rows[f"part-{i}"] = len(frame)
    extra = ["scoring.executor=dask", f"scoring.dask_address={address}",
             f"scoring.ledger_url={postgres_url}", "scoring.chunk_rows=200"]
    ledger = Ledger(folders["scored"], postgres_url)

    run = start_score(project, folders, *extra)
    worker_pids = {w.pid for w in workers}
    victim = None
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline and run.poll() is None:
        claims = ledger.read()["in_progress"] if folders["scored"].exists() else {}
        owners = {c.get("pid") for c in claims.values()} & worker_pids
        if owners:  # a worker is inside a batch right now
            victim = next(w for w in workers if w.pid in owners)
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
        time.sleep(0.05)
    out, err = run.communicate(timeout=600)
    assert victim is not None, f"no worker was seen scoring: {out[-2000:]} {err[-3000:]}"

    # the rerun finishes whatever the first run left (Dask may already have rescheduled the
    # killed worker's batch on the other one)
    rerun = start_score(project, folders, *extra)
    out2, err2 = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err2[-3000:]
    state = ledger.read()
    assert sorted(e["batch"] for e in state["batches"].values()) == [
        f"{s}.parquet" for s in rows]
    assert state["in_progress"] == {}
    assert scored_files(folders) == [f"{s}.parquet" for s in rows]
    for stem, n in rows.items():
        assert len(pd.read_parquet(folders["scored"] / f"{stem}.parquet")) == n
    lines = [line for text in (out, out2) for line in text.splitlines()]
    for stem in rows:  # scored once over both runs
        assert sum(line.startswith("scored") and f" {stem}.parquet:" in line
                   for line in lines) == 1, lines
    assert not list(folders["scored"].rglob("*.tmp"))
    assert not list(folders["incoming"].glob("*.parquet"))
