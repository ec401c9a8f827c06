"""The one task code every scoring executor runs, and what a worker process keeps between batches.

A worker is the flow's own process (``scoring.executor: local``), a process of Prefect's
``ProcessPoolTaskRunner`` (``processes``) or a Dask worker (``dask``). It receives a
:class:`ScoringJob`: the settings, the project root and the model *version* the run resolved
(never the Keras object). The first batch of a version a worker scores loads that version's
pyfunc, fetches its GX suite (cached on disk per version) and starts a GX state; the batches
after it reuse them (:func:`loaded`). Before TensorFlow runs its first op in a worker, its
thread pools are sized (:func:`limit_tf_threads`) so that workers sharing a machine do not
oversubscribe its cores.

A task hands a worker a group of batches (:func:`score_group`); every batch is still validated
against the version's suite and recorded in the ledger by :func:`flows.steps.score.score_batch`,
exactly once, whichever worker scores it. A large Parquet batch is claimed and recorded by the
flow and its row ranges scored by the workers (:func:`score_batch_part`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.io import display_path
from flows.steps import score as steps

if TYPE_CHECKING:
    import great_expectations as gx

    from flows.config import Params
    from flows.registry import VersionInfo

__all__ = [
    "ScoringJob", "failed_result", "limit_tf_threads", "loaded", "score_batch_part", "score_group",
    "score_one", "worker_tf_threads",
]

_log = logging.getLogger(__name__)

#: versions a long-lived worker keeps loaded (a promotion brings a new one; the oldest goes)
KEPT_VERSIONS = 2


@dataclass(frozen=True)
class ScoringJob:
    """What a worker needs to score batches of one run (picklable, small).

    Attributes:
        params: the run's settings.
        root: the project root (the same path on every worker: a shared checkout).
        info: the model version the run resolved from ``scoring.alias`` once, at its start.
        tf_threads: TensorFlow intra-/inter-op threads per worker process; None: the Dask
            worker's own thread count, or TensorFlow's default outside Dask.
    """

    params: Params
    root: Path
    info: VersionInfo
    tf_threads: int | None = None


@dataclass
class _Loaded:
    """A version as one worker process holds it."""

    scorer: steps.BatchScorer
    suite: gx.ExpectationSuite
    suite_path: Path
    state: steps.RunState
    options: steps.ScoringOptions
    # one batch at a time per process: GX's validator and the run state are not thread-safe
    busy: threading.Lock = field(default_factory=threading.Lock)


_loaded: OrderedDict[tuple[Any, ...], _Loaded] = OrderedDict()
_loading = threading.Lock()
_tf_threads_set: list[int] = []


def worker_tf_threads(job: ScoringJob) -> int | None:
    """The TensorFlow thread count for this worker process: the job's, else the Dask worker's
    ``nthreads``, else None (TensorFlow's default: every core)."""
    if job.tf_threads is not None:
        return job.tf_threads
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return None


def limit_tf_threads(threads: int | None) -> None:
    """Size TensorFlow's intra- and inter-op pools once per process, before its first op (later
    it cannot be changed: then this logs why and leaves them)."""
    if threads is None or _tf_threads_set:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as exc:  # TensorFlow already initialised in this process
        _log.info("TensorFlow threads left as they are in process %d: %s", os.getpid(), exc)
    _tf_threads_set.append(threads)


def _key(job: ScoringJob) -> tuple[Any, ...]:
    # all the settings (the registry's location among them: two registries may both have a
    # "version 3") and the run id of the version
    return (str(job.root), job.params.model_dump_json(), job.info.model_uri, job.info.run_id,
            os.getpid())


def loaded(job: ScoringJob) -> _Loaded:
    """The job's version as this process holds it, loaded on first use (with the registry
    client's retries), kept for :data:`KEPT_VERSIONS` versions."""
    key = _key(job)
    with _loading:
        hit = _loaded.get(key)
        if hit is not None:
            _loaded.move_to_end(key)
            return hit
        limit_tf_threads(worker_tf_threads(job))
        hit = _load(job)
        _loaded[key] = hit
        while len(_loaded) > KEPT_VERSIONS:
            _loaded.popitem(last=False)
        return hit


def _load(job: ScoringJob) -> _Loaded:
    import mlflow

    from flows.expectations import load_suite
    from flows.registry import configure_mlflow, fetch_suite
    from flows.registry.retry import with_retry
    from flows.registry.scorer import pyfunc_scorer

    params, root, info = job.params, job.root, job.info
    configure_mlflow(params.registry, params.retries, root)
    model = with_retry(params.retries, f"loading {info.model_uri}", mlflow.pyfunc.load_model,
                       info.model_uri)
    suite_path = fetch_suite(params, root, info)
    suite = load_suite(suite_path)
    options = steps.ScoringOptions.from_params(params, root)
    _log.info("process %d loaded %s", os.getpid(), info.model_uri)
    return _Loaded(scorer=pyfunc_scorer(model, info, suite), suite=suite, suite_path=suite_path,
                   state=steps.RunState.start(options.dirs), options=options)


def score_one(path: str | Path, job: ScoringJob, *, gx_first: bool = True) -> steps.BatchResult:
    """Score one batch file exactly once with the job's version (loaded once per process).
    ``gx_first``: see :func:`flows.steps.score.score_batch`."""
    held = loaded(job)
    with held.busy:
        return steps.score_batch(path, scorer=held.scorer, suite=held.suite,
                                 options=held.options, suite_path=held.suite_path,
                                 state=held.state, gx_first=gx_first)


def score_batch_part(part: steps.BatchPart, job: ScoringJob) -> steps.PartResult:
    """Score one part of a large batch that the flow claimed and split
    (:func:`flows.steps.score.score_batch_in_parts`): its rows only, into the part's own file.
    GX validates the first chunk of the first part, as it would the batch's first chunk."""
    held = loaded(job)
    with held.busy:
        return steps.score_part(part, scorer=held.scorer, suite=held.suite,
                                options=held.options, state=held.state, gx_first=part.index == 0)


def failed_result(path: Path, job: ScoringJob, exc: BaseException | str) -> steps.BatchResult:
    """A ``failed`` result: the batch stays where it is for the next run."""
    reason = f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(exc)
    return steps.BatchResult(
        batch=path.name, source=display_path(job.root, path) or str(path), status="failed",
        reason=reason, model_version=job.info.version,
    )


def score_group(paths: list[Path], job: ScoringJob) -> list[steps.BatchResult]:
    """Score a group of batches one after the other, each exactly once on its own (claim,
    validation, output, ledger entry), in one task. A batch that fails for a reason other than
    its data is a ``failed`` result; the next batches are still scored.

    With ``scoring.gx_every_batch`` off, GX validates the first chunk only of the group's first
    batch that gets that far (scored or quarantined); the others go to GX when the quick check
    does not pass them."""
    every = job.params.scoring.gx_every_batch
    results: list[steps.BatchResult] = []
    gx_done = False
    for path in paths:
        try:
            result = score_one(path, job, gx_first=every or not gx_done)
        except Exception as exc:  # not the data's fault: this batch waits for the next run
            _log.error("scoring %s failed: %s", path.name, exc, exc_info=True)
            result = failed_result(path, job, exc)
        gx_done = gx_done or result.status in ("scored", "quarantined")
        results.append(result)
    return results
