"""The Prefect scoring flow: new batches -> validated -> scored by the model behind an alias.

    resolve models:/NAME@<scoring.alias>  (now, once, at the start of every run: a promotion
        made with `anomaly promote` or in the MLflow UI takes effect at the next run)
    -> recover what an interrupted run left behind
    -> score the batches in groups of up to scoring.batches_per_task, one task per group, each
       batch exactly once on its own (flows/scoring_worker.py; flows/steps/score/: ledger,
       quarantine, chunked Parquet output) on the task runner of scoring.executor
       (flows/executors.py): in this process, in worker processes or on a Dask cluster. Each
       worker loads that version's pyfunc and GX suite once, for all the batches it scores
    -> log per-batch counts to one MLflow run and a Prefect table artifact

Registry calls run as tasks retried with exponential backoff when the error is transient (the
store unreachable or locked; :func:`flows.registry.is_transient`); an error that retrying cannot
fix (no such alias: the message says how to promote one) fails at once. The registry is reached
before any batch is touched, so a run that fails there leaves ``scoring.incoming_dir`` as it was.

A quarantined batch does not fail the run: the other batches are scored, the flow returns a
``Completed`` state whose message lists the quarantined batches, and its result is the
:class:`~flows.steps.score.ScoringSummary` (``anomaly score`` then exits with code 3). A batch
that fails for another reason (not the data's fault) stays in the incoming folder and fails the
run after the other batches are done.

Retries: ``retries.task_retries`` task retries (default 2, on top of the registry client's own
``retries.attempts``) waiting ``retries.task_delay_seconds`` (default 2 s, doubled at each retry).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from flows.config import Params, load_params, project_root
from flows.executors import (
    batch_groups,
    batch_spans,
    describe_executor,
    task_runner,
    tf_threads_per_worker,
    workers_report_here,
)
from flows.io import display_path
from flows.runtime import quiet_user_error_tracebacks, with_task_retries
from flows.scoring_worker import (
    ScoringJob,
    failed_result,
    loaded,
    score_batch_part,
    score_group,
)
from flows.steps import score as steps

if TYPE_CHECKING:
    from flows.registry import VersionInfo

__all__ = ["ScoringFailed", "load_model", "log_summary", "resolve_model", "scoring_flow"]

_log = logging.getLogger(__name__)

ARTIFACT_KEY = "scoring-summary"


class ScoringFailed(RuntimeError):
    """Batches failed for reasons other than their data (they stay in the incoming folder)."""


# ------------------------------------------------------------------------------ tasks
@task(name="resolve-model", cache_policy=NO_CACHE)
def resolve_model(params: Params, root: Path) -> VersionInfo:
    """The version behind ``scoring.alias``, read from the registry now."""
    from flows.registry import resolve_alias

    return resolve_alias(params.registry, params.retries, root, params.scoring.alias)


@task(name="load-model", cache_policy=NO_CACHE)
def load_model(job: ScoringJob) -> None:
    """Load the version's pyfunc and GX suite into this process (``local``: before any batch
    is touched, so a registry that fails here leaves the incoming folder as it was)."""
    loaded(job)


@task(name="score-part", cache_policy=NO_CACHE)
def _score_part(part: steps.BatchPart, job: ScoringJob) -> steps.PartResult:
    """One row range of a large batch the flow claimed (the same code on every worker)."""
    return score_batch_part(part, job)


@task(name="score-group", cache_policy=NO_CACHE)
def _score_group(paths: list[Path], job: ScoringJob) -> list[steps.BatchResult]:
    """A group of batches, on whichever worker the run's task runner picks (the same code for
    all), each scored exactly once on its own."""
    return score_group(paths, job)


def _group_name(paths: list[Path]) -> str:
    return f"score {paths[0].name}" + (f" (+{len(paths) - 1} more)" if len(paths) > 1 else "")


def _is_sequence_model(info: VersionInfo) -> bool:
    """True when the version scores time series (its MLmodel metadata has ``context_rows``):
    its batches are then scored one after the other, in time order, on any executor."""
    from mlflow.models import get_model_info

    meta = get_model_info(info.model_uri).metadata or {}
    return int(meta.get("context_rows") or 0) > 0


@flow(name="score-batches", validate_parameters=False)
def _score_groups(
    groups: list[list[Path]],
    job: ScoringJob,
    in_order: bool,
    split: dict[Path, list[tuple[int, int]]] | None = None,
) -> list[steps.BatchResult]:
    """The run's groups of batches as tasks on the task runner this subflow was given
    (processes or Dask): all at once, or one after the other for a time series
    (``in_order``). Then each batch of ``split`` (path -> row ranges), claimed here, its parts
    scored as tasks on the workers, recorded here."""
    results: list[steps.BatchResult] = []
    if in_order:
        for paths in groups:
            future = _score_group.with_options(task_run_name=_group_name(paths)).submit(paths, job)
            future.wait()
            results += _group_results(future.state, paths, job)
        return results
    futures = [_score_group.with_options(task_run_name=_group_name(p)).submit(p, job)
               for p in groups]
    for path, spans in (split or {}).items():  # queued behind the groups on the workers
        results.append(_score_in_parts(path, spans, job))
    for paths, future in zip(groups, futures, strict=True):
        future.wait()
        results += _group_results(future.state, paths, job)
    return results


class PartFailed(RuntimeError):
    """A part of a batch scored in parts failed for a reason other than its data."""


def _score_in_parts(path: Path, spans: list[tuple[int, int]], job: ScoringJob) -> steps.BatchResult:
    """One large batch, exactly once: claimed and recorded in this process, its row ranges
    scored as ``score-part`` tasks on the run's task runner."""
    from flows.registry import suite_cache_path
    from flows.registry.scorer import model_ref

    def on_workers(parts: list[steps.BatchPart]) -> list[steps.PartResult]:
        futures = [
            _score_part.with_options(
                task_run_name=f"score {path.name} rows {p.start:,}-{p.stop - 1:,}"
            ).submit(p, job)
            for p in parts
        ]
        for future in futures:  # every part ends before the parts' files are cleaned up
            future.wait()
        for part, future in zip(parts, futures, strict=True):
            if not future.state.is_completed():
                raise PartFailed(
                    f"part {part.index + 1} of {part.count} (rows {part.start:,}-"
                    f"{part.stop - 1:,}) failed: {future.state.result(raise_on_failure=False)}"
                )
        return [future.state.result() for future in futures]

    params, root, info = job.params, job.root, job.info
    try:
        return steps.score_batch_in_parts(
            path, spans=spans, model=model_ref(info),
            options=steps.ScoringOptions.from_params(params, root), score_parts=on_workers,
            suite_path=suite_cache_path(params, root, info.version),
        )
    except Exception as exc:  # not the data's fault: the batch waits for the next run
        _log.error("scoring %s in parts failed: %s", path.name, exc, exc_info=True)
        return failed_result(path, job, exc)


@task(name="log-to-mlflow", cache_policy=NO_CACHE)
def log_summary(params: Params, root: Path, summary: steps.ScoringSummary) -> str:
    """One MLflow run in the pipeline's experiment, tagged with the model version: metrics
    ``<batch>/rows``, ``<batch>/flagged``, ``<batch>/rate``, ``<batch>/out_of_range_rows`` per
    scored batch, totals, and the
    summary as ``scoring/summary.json``. Returns the run id."""
    from datetime import UTC, datetime

    import mlflow

    from flows.registry import configure_mlflow, metric_key

    configure_mlflow(params.registry, params.retries, root)
    metrics: dict[str, float] = {
        "batches_scored": len(summary.scored),
        "batches_quarantined": len(summary.quarantined),
        "batches_skipped": len(summary.skipped),
        "rows_scored": summary.rows_scored,
        "flagged": summary.flagged,
        "out_of_range_rows": sum(b.out_of_range_rows for b in summary.scored),
    }
    if summary.rows_scored:
        metrics["rate"] = summary.flagged / summary.rows_scored
    for b in summary.scored:
        key = metric_key(b.batch)
        metrics[f"{key}/rows"] = b.rows or 0
        metrics[f"{key}/flagged"] = b.flagged or 0
        metrics[f"{key}/rate"] = b.rate or 0.0
        metrics[f"{key}/out_of_range_rows"] = b.out_of_range_rows
    tags = {
        "pipeline.step": "score",
        "model.name": summary.model_name,
        "model.version": str(summary.model_version),
        "model.alias": summary.model_alias or "",
        "model.uri": summary.model_uri or "",
        "scoring.quarantined": ",".join(b.batch for b in summary.quarantined)[:5000],
    }
    name = f"score-{datetime.now(tz=UTC).strftime('%Y%m%d-%H%M%S')}"
    nested = mlflow.active_run() is not None
    with mlflow.start_run(run_name=name, nested=nested, tags=tags) as run:
        mlflow.log_metrics(metrics)
        mlflow.log_dict(summary.to_dict(), "scoring/summary.json")
    return run.info.run_id


# ------------------------------------------------------------------------------ the flow
def _group_results(state: Any, paths: list[Path], job: ScoringJob) -> list[steps.BatchResult]:
    """The group's results; ``failed`` ones (the batches stay in place) when its task failed
    as a whole (a worker lost, the model not loadable there)."""
    if state.is_completed():
        return state.result()
    exc = state.result(raise_on_failure=False)
    return [failed_result(path, job, exc) for path in paths]


def _plan(
    batches: list[Path], settings: Params, info: VersionInfo, *, parallel: bool
) -> tuple[bool, dict[Path, list[tuple[int, int]]], list[list[Path]]]:
    """(in time order?, the batches scored in parts with their row ranges, the groups of the
    others): parts and parallel groups only on a task runner (processes, dask)."""
    in_order = parallel and _is_sequence_model(info)
    split = {} if not parallel else {
        path: spans for path in batches
        if (spans := batch_spans(path, settings.scoring, sequence=in_order))
    }
    return in_order, split, batch_groups([b for b in batches if b not in split], settings.scoring)


def _log_to_mlflow(
    settings: Params, project: Path, summary: steps.ScoringSummary, logger: Any
) -> str | None:
    """The MLflow run id of the scoring run, or None (logged as an error) when MLflow failed
    after the retries: the batches are scored and in the ledger, so the run is not undone."""
    log_task = with_task_retries(log_summary, settings.retries)
    log_state = log_task(settings, project, summary, return_state=True)
    if log_state.is_completed():
        return log_state.result()
    logger.error(
        "could not log the scoring run to MLflow: %s", log_state.result(raise_on_failure=False)
    )
    return None


@flow(name="scoring", log_prints=True, validate_parameters=False)
def scoring_flow(
    paths: list[str] | None = None,
    params: Params | None = None,
    root: str | None = None,
    params_file: str | None = None,
    overrides: Sequence[str] = (),
) -> Any:
    """Score ``paths`` (files or folders), or every new batch in ``scoring.incoming_dir``.

    Args:
        paths: batch files (or folders of them) to score; default: the incoming folder. Relative
            paths are relative to the current folder.
        params: loaded settings (else read from ``params_file`` with ``overrides``).
        root: project root (default: ``ANOMALY_PROJECT_ROOT`` or the current folder).

    Returns:
        The :class:`~flows.steps.score.ScoringSummary` (the flow run's state is ``Completed``
        with a message that names any quarantined batch).

    Raises:
        RegistryError: no model behind the alias (the message says how to promote one), or the
            registry unreachable after the retries; nothing in the incoming folder was touched.
        DataError: a given path does not exist or is not a CSV / Parquet file.
        ScoringFailed: a batch failed for a reason other than its data.
    """
    quiet_user_error_tracebacks()
    logger = get_run_logger()
    started = time.perf_counter()
    project = (Path(root) if root else project_root()).resolve()
    settings = params if params is not None else load_params(params_file, overrides)
    explicit = steps.expand_paths(paths) if paths else None  # bad paths fail before any work
    options = steps.ScoringOptions.from_params(settings, project)  # what the step takes
    dirs = options.dirs

    info = with_task_retries(resolve_model, settings.retries)(settings, project)
    logger.info(
        "scoring with %s version %d (alias %r, resolved now)", info.name, info.version, info.alias
    )
    job = ScoringJob(params=settings, root=project, info=info,
                     tf_threads=tf_threads_per_worker(settings.scoring))
    summary = steps.ScoringSummary(
        model_name=info.name,
        model_version=info.version,
        model_alias=info.alias,
        model_uri=info.model_uri,
        started_at=steps.iso_time(),
        incoming_dir=display_path(project, dirs.incoming),
    )
    summary.recovered = steps.recover(dirs)
    batches = explicit if explicit is not None else steps.discover_batches(dirs.incoming)
    if not batches:
        logger.info("no new batches in %s", dirs.incoming)
    runner = task_runner(settings.scoring) if batches else None
    in_order, split, groups = _plan(batches, settings, info, parallel=runner is not None)
    if runner is None:  # local: in this process, one after the other (in order for a series)
        if batches:
            with_task_retries(load_model, settings.retries)(job)
        results = []
        for paths in groups:
            state = _score_group.with_options(task_run_name=_group_name(paths))(
                paths, job, return_state=True)
            results += _group_results(state, paths, job)
    else:
        logger.info(
            "scoring %d batch(es) in %d task(s)%s %s", len(batches) - len(split), len(groups),
            "".join(f", {p.name} in {len(s)} parts" for p, s in split.items()),
            describe_executor(settings.scoring))
        with workers_report_here(settings.scoring):
            done = _score_groups.with_options(task_runner=runner)(groups, job, in_order, split)
        # the results in the batches' order (the split ones were scored after the groups)
        order = {display_path(project, p) or str(p): i for i, p in enumerate(batches)}
        results = sorted(done, key=lambda r: order.get(r.source, len(order)))
    for result in results:
        (logger.warning if result.status in ("quarantined", "failed") else logger.info)(
            result.line()
        )
        summary.batches.append(result)
    summary.seconds = round(time.perf_counter() - started, 3)

    if summary.scored or summary.quarantined:
        summary.mlflow_run_id = _log_to_mlflow(settings, project, summary, logger)
    create_table_artifact(
        key=ARTIFACT_KEY,
        table=summary.table()
        or [{"batch": "-", "status": "no new batches", "rows": 0, "flagged": 0}],
        description=f"Scoring run: {summary.headline()}",
    )
    logger.info(summary.headline())

    if summary.failed:
        raise ScoringFailed(
            f"{len(summary.failed)} batch(es) failed (left in place for the next run): "
            + "; ".join(f"{b.batch}: {b.reason}" for b in summary.failed)
            + f". {summary.headline()}"
        )
    if summary.quarantined:
        logger.warning(summary.quarantine_message())
    return Completed(message=summary.state_message(), data=summary)
