"""Which Prefect task runner scores the batches of a run (``scoring.executor``).

    local      None: the batches are scored one after the other in the flow's process
    processes  prefect.task_runners.ProcessPoolTaskRunner(max_workers=scoring.workers)
    dask       prefect_dask.DaskTaskRunner: the existing cluster at scoring.dask_address, or a
               distributed.LocalCluster of scoring.workers processes (1 thread each, bound to
               127.0.0.1) started for the run and closed after it

The task code is the same for all of them (:func:`flows.scoring_worker.score_group`): one task
scores a group of up to ``scoring.batches_per_task`` batches (:func:`batch_groups`). On
``processes`` and ``dask`` a Parquet batch of more than ``scoring.rows_per_task`` rows is scored
in parts instead, one task per row range (:func:`batch_spans`).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from flows.config.sections import ScoringParams

__all__ = [
    "batch_groups", "batch_spans", "describe_executor", "task_runner", "tf_threads_per_worker",
    "workers_report_here",
]

_T = TypeVar("_T")

#: groups per worker at least, on processes and dask: a slow group does not leave a worker idle
GROUPS_PER_WORKER = 2


def batch_groups(batches: Sequence[_T], scoring: ScoringParams) -> list[list[_T]]:
    """The run's batches in consecutive groups, one Prefect task each, in their order.

    ``local``: groups of ``scoring.batches_per_task``. ``processes`` and ``dask``: smaller
    when needed so that each of ``scoring.workers`` gets at least :data:`GROUPS_PER_WORKER`
    groups (e.g. 40 batches, 2 workers, 16 per task: groups of 10)."""
    size = scoring.batches_per_task
    if scoring.executor != "local" and batches:
        size = min(size, max(1, math.ceil(len(batches) / (GROUPS_PER_WORKER * scoring.workers))))
    return [list(batches[i:i + size]) for i in range(0, len(batches), size)]


def batch_spans(
    path: Path, scoring: ScoringParams, *, sequence: bool
) -> list[tuple[int, int]] | None:
    """The row ranges a batch is scored in, one task each, or None (in one piece, within a
    group): ``processes`` and ``dask`` split a Parquet batch of more than
    ``scoring.rows_per_task`` rows into parts of about that size, at least
    :data:`GROUPS_PER_WORKER` per worker (:func:`flows.steps.score.part_spans`). Never
    ``local`` (one process gains nothing) nor a sequence model (a point's score needs the
    points before it)."""
    if scoring.executor == "local" or sequence:
        return None
    from flows.steps.score import part_spans

    return part_spans(path, scoring.rows_per_task, min_parts=GROUPS_PER_WORKER * scoring.workers)


def tf_threads_per_worker(scoring: ScoringParams) -> int | None:
    """TensorFlow threads per worker: the machine's cores shared by the workers the run starts
    on it; None for the flow's own process (``local``: every core) and for an existing Dask
    cluster (each worker uses its own ``--nthreads``)."""
    if scoring.executor == "local" or (scoring.executor == "dask" and scoring.dask_address):
        return None
    return max(1, (os.cpu_count() or 1) // scoring.workers)


def task_runner(scoring: ScoringParams) -> Any:
    """The task runner of ``scoring.executor`` (None for ``local``)."""
    if scoring.executor == "local":
        return None
    if scoring.executor == "processes":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=scoring.workers)
    from prefect_dask import DaskTaskRunner

    if scoring.dask_address:
        return DaskTaskRunner(address=scoring.dask_address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": scoring.workers, "threads_per_worker": 1,
                        "processes": True, "host": "127.0.0.1", "dashboard_address": None},
    )


def _workers_on_this_machine(scoring: ScoringParams) -> bool:
    if scoring.executor != "dask" or not scoring.dask_address:
        return True
    host = urlsplit(scoring.dask_address).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


@contextlib.contextmanager
def workers_report_here(scoring: ScoringParams) -> Iterator[None]:
    """Around the submission of a run's tasks: workers on this machine report their task runs
    to the flow's own Prefect API.

    Without a Prefect server (``PREFECT_API_URL`` unset) the flow talks to a temporary API that
    Prefect runs in a subprocess on 127.0.0.1. A worker process knows nothing of it and would
    start a temporary API of its own (seconds of CPU each, its task runs recorded where nobody
    looks). Tasks carry the settings of the process that submits them, so pointing ``api.url``
    at the flow's API here sends the workers there. Only for workers on this machine
    (``processes``, a LocalCluster the run starts, a ``dask_address`` on the loopback): the
    temporary API listens on 127.0.0.1 only; a cluster of other machines needs a Prefect
    server (docs/SCALING.md)."""
    from prefect.settings import get_current_settings, temporary_settings

    if (scoring.executor == "local" or get_current_settings().api.url
            or not _workers_on_this_machine(scoring)):
        yield
        return
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        url = str(client.api_url).rstrip("/")
    with temporary_settings(updates={"api.url": url}):
        yield


def describe_executor(scoring: ScoringParams) -> str:
    """One phrase for the log: where this run's batches are scored."""
    if scoring.executor == "local":
        return "in this process"
    if scoring.executor == "processes":
        return f"in {scoring.workers} worker processes"
    if scoring.dask_address:
        return f"on the Dask cluster at {scoring.dask_address}"
    return f"on a local Dask cluster of {scoring.workers} worker processes"
