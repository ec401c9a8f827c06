"""flows.executors: how a run's batches are split into tasks, and the threads per worker."""

from __future__ import annotations

import pytest

from flows.config.sections import ScoringParams
from flows.executors import batch_groups, batch_spans, describe_executor, tf_threads_per_worker

pytestmark = pytest.mark.timeout(30)


def test_local_groups_are_consecutive_runs_of_batches_per_task_in_order():
    names = [f"b{i:02d}" for i in range(10)]
    groups = batch_groups(names, ScoringParams(batches_per_task=4))
    assert groups == [names[0:4], names[4:8], names[8:10]]
    assert batch_groups(names, ScoringParams(batches_per_task=1)) == [[n] for n in names]
    assert batch_groups([], ScoringParams()) == []


@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_workers_get_at_least_two_groups_each_when_there_are_batches_enough(executor):
    names = list(range(40))
    groups = batch_groups(names, ScoringParams(executor=executor, workers=2,
                                               batches_per_task=16))
    assert [len(g) for g in groups] == [10, 10, 10, 10]  # ceil(40 / (2 x 2))
    assert [n for g in groups for n in g] == names
    # fewer batches than 2 x workers: one batch per task
    assert batch_groups(names[:3], ScoringParams(executor=executor, workers=2)) == [
        [0], [1], [2]]
    # many batches: batches_per_task caps the group
    assert {len(g) for g in batch_groups(list(range(400)),
                                        ScoringParams(executor=executor, workers=2))} == {16}


def test_batches_per_task_and_gx_every_batch_are_checked():
    with pytest.raises(ValueError, match="batches_per_task"):
        ScoringParams(batches_per_task=0)
    with pytest.raises(ValueError, match="gx_every_batch"):
        ScoringParams(gx_every_batch="sometimes")


def test_tf_threads_share_the_cores_among_the_workers_the_run_starts(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert tf_threads_per_worker(ScoringParams()) is None  # local: every core
    assert tf_threads_per_worker(ScoringParams(executor="processes", workers=4)) == 2
    assert tf_threads_per_worker(ScoringParams(executor="dask", workers=16)) == 1
    existing = ScoringParams(executor="dask", dask_address="tcp://127.0.0.1:8786")
    assert tf_threads_per_worker(existing) is None  # the cluster's workers size themselves
    assert describe_executor(existing) == "on the Dask cluster at tcp://127.0.0.1:8786"


def test_large_parquet_batches_are_split_on_processes_and_dask_only(tmp_path):
    import pandas as pd

    path = tmp_path / "big.parquet"
    pd.DataFrame({"x": range(3000)}).to_parquet(path, index=False)
    dask = ScoringParams(executor="dask", workers=3, rows_per_task=1000)

    assert batch_spans(path, dask, sequence=False) == [
        (0, 500), (500, 1000), (1000, 1500), (1500, 2000), (2000, 2500), (2500, 3000)]  # 2 x 3
    assert batch_spans(path, ScoringParams(executor="processes", workers=1, rows_per_task=1000),
                       sequence=False) == [(0, 1000), (1000, 2000), (2000, 3000)]
    assert batch_spans(path, ScoringParams(rows_per_task=1000), sequence=False) is None  # local
    assert batch_spans(path, dask, sequence=True) is None  # a time series: one piece, in order
    assert batch_spans(path, ScoringParams(executor="dask", rows_per_task=3000),
                       sequence=False) is None
    with pytest.raises(ValueError, match="rows_per_task"):
        ScoringParams(rows_per_task=10)


def _api_seen_by_the_task():
    import os as _os

    from prefect.settings import get_current_settings

    return _os.getpid(), get_current_settings().api.url


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_worker_processes_report_to_the_flow_s_temporary_api_not_one_of_their_own():
    import os

    from prefect import flow, task
    from prefect.client.orchestration import get_client
    from prefect.settings import temporary_settings

    from flows.executors import task_runner, workers_report_here

    seen = task(_api_seen_by_the_task)
    scoring = ScoringParams(executor="processes", workers=1)

    @flow
    def on_workers():
        return seen.submit().result()

    @flow
    def run():
        with get_client(sync_client=True) as client:
            own = str(client.api_url).rstrip("/")
        with workers_report_here(scoring):
            return own, on_workers.with_options(task_runner=task_runner(scoring))()

    with temporary_settings(updates={"api.url": None}):  # Prefect's temporary API
        own, (pid, url) = run()

    assert pid != os.getpid()
    assert own.startswith("http://127.0.0.1:") and url == own


def test_only_workers_on_this_machine_are_sent_to_the_temporary_api():
    from flows.executors import _workers_on_this_machine

    assert _workers_on_this_machine(ScoringParams(executor="processes"))
    assert _workers_on_this_machine(ScoringParams(executor="dask"))
    assert _workers_on_this_machine(ScoringParams(executor="dask",
                                                  dask_address="tcp://127.0.0.1:8786"))
    assert not _workers_on_this_machine(ScoringParams(executor="dask",
                                                      dask_address="tcp://10.0.0.5:8786"))
