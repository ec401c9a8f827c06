"""The Prefect scoring flow: new batches -> validated -> scored by the model behind an alias.

    resolve models:/NAME@<scoring.alias>  (now, at the start of every run: a promotion made with
        `anomaly promote` or in the MLflow UI takes effect at the next run)
    -> load that version's pyfunc and the GX suite registered with it
    -> recover what an interrupted run left behind
    -> score each batch (flows/steps/score.py: ledger, quarantine, chunked Parquet output)
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

Retries: ``ANOMALY_SCORING_RETRIES`` (default 2 task retries, on top of the registry client's own
3 attempts) and ``ANOMALY_SCORING_RETRY_DELAY_S`` (default 2 s, doubled at each retry).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed
from prefect.tasks import exponential_backoff

from flows.config import Params, load_params, project_root
from flows.steps import score as steps
from flows.training import quiet_user_error_tracebacks

if TYPE_CHECKING:
    from mlflow.pyfunc import PyFuncModel

    from flows.registry import VersionInfo

__all__ = [
    "ScoringFailed",
    "load_model",
    "log_summary",
    "resolve_model",
    "retry_if_transient",
    "scoring_flow",
    "scoring_suite",
]

_log = logging.getLogger(__name__)

DEFAULT_RETRIES = 2
DEFAULT_RETRY_DELAY_S = 2.0
ARTIFACT_KEY = "scoring-summary"


class ScoringFailed(RuntimeError):
    """Batches failed for reasons other than their data (they stay in the incoming folder)."""


# ------------------------------------------------------------------------------ retries
def _retries() -> int:
    return max(0, int(os.environ.get("ANOMALY_SCORING_RETRIES", DEFAULT_RETRIES)))


def _retry_delay() -> float:
    return max(0.0, float(os.environ.get("ANOMALY_SCORING_RETRY_DELAY_S", DEFAULT_RETRY_DELAY_S)))


def _is_transient(exc: BaseException | None) -> bool:
    """The error, or an error it was raised from, is worth retrying."""
    from flows.registry import is_transient

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if is_transient(exc):
            return True
        seen.add(id(exc))
        exc = exc.__cause__
    return False


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed task run only for a transient error."""
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            exc = state.result(raise_on_failure=False)
        except Exception as err:  # the result itself cannot be read: retry is harmless
            exc = err
    return isinstance(exc, BaseException) and _is_transient(exc)


def _with_retries(t: Any) -> Any:
    return t.with_options(
        retries=_retries(),
        retry_delay_seconds=exponential_backoff(backoff_factor=_retry_delay()),
        retry_condition_fn=retry_if_transient,
    )


# ------------------------------------------------------------------------------ tasks
@task(name="resolve-model", cache_policy=NO_CACHE)
def resolve_model(params: Params, root: Path) -> VersionInfo:
    """The version behind ``scoring.alias``, read from the registry now."""
    from flows.registry import resolve_alias

    return resolve_alias(params, root)


_MODELS: dict[tuple[str, str, str | None], PyFuncModel] = {}


@task(name="load-model", cache_policy=NO_CACHE)
def load_model(params: Params, root: Path, info: VersionInfo) -> PyFuncModel:
    """The pyfunc of exactly that version (``models:/NAME/VERSION``: pinned even if the alias
    moves meanwhile). The last one loaded is kept in memory for the next run of a long-lived
    process (``anomaly serve``)."""
    import mlflow

    from flows.registry import tracking_uri

    key = (tracking_uri(params, root), info.model_uri, info.run_id)
    if key not in _MODELS:
        model = mlflow.pyfunc.load_model(info.model_uri)
        _MODELS.clear()
        _MODELS[key] = model
    return _MODELS[key]


@task(name="fetch-suite", cache_policy=NO_CACHE)
def scoring_suite(params: Params, root: Path, info: VersionInfo) -> Path:
    """The GX suite registered with that version (downloaded once, cached per version)."""
    return steps.fetch_suite(params, root, info)


@task(name="score-batch", cache_policy=NO_CACHE)
def _score_batch(
    path: Path, scorer: steps.BatchScorer, suite: Any, suite_path: Path, params: Params, root: Path
) -> steps.BatchResult:
    return steps.score_batch(
        path, scorer=scorer, suite=suite, params=params, root=root, suite_path=suite_path
    )


@task(name="log-to-mlflow", cache_policy=NO_CACHE)
def log_summary(params: Params, root: Path, summary: steps.ScoringSummary) -> str:
    """One MLflow run in the pipeline's experiment, tagged with the model version: metrics
    ``<batch>/rows``, ``<batch>/flagged``, ``<batch>/rate`` per scored batch, totals, and the
    summary as ``scoring/summary.json``. Returns the run id."""
    from datetime import UTC, datetime

    import mlflow

    from flows.registry import configure_mlflow, metric_key

    configure_mlflow(params, root)
    metrics: dict[str, float] = {
        "batches_scored": len(summary.scored),
        "batches_quarantined": len(summary.quarantined),
        "batches_skipped": len(summary.skipped),
        "rows_scored": summary.rows_scored,
        "flagged": summary.flagged,
    }
    if summary.rows_scored:
        metrics["rate"] = summary.flagged / summary.rows_scored
    for b in summary.scored:
        key = metric_key(b.batch)
        metrics[f"{key}/rows"] = b.rows or 0
        metrics[f"{key}/flagged"] = b.flagged or 0
        metrics[f"{key}/rate"] = b.rate or 0.0
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
    dirs = steps.ScoringDirs.from_params(settings, project)

    info = _with_retries(resolve_model)(settings, project)
    logger.info(
        "scoring with %s version %d (alias %r, resolved now)", info.name, info.version, info.alias
    )
    model = _with_retries(load_model)(settings, project, info)
    suite_path = _with_retries(scoring_suite)(settings, project, info)

    from flows.steps.validate import load_suite

    suite = load_suite(suite_path)
    scorer = steps.BatchScorer.from_pyfunc(model, info, suite)
    summary = steps.ScoringSummary(
        model_name=info.name,
        model_version=info.version,
        model_alias=info.alias,
        model_uri=info.model_uri,
        started_at=steps.iso_time(),
        incoming_dir=steps.display_path(project, dirs.incoming),
    )
    summary.recovered = steps.recover(settings, project)
    batches = explicit if explicit is not None else steps.discover_batches(dirs.incoming)
    if not batches:
        logger.info("no new batches in %s", dirs.incoming)
    for path in batches:
        state = _score_batch.with_options(task_run_name=f"score {path.name}")(
            path, scorer, suite, suite_path, settings, project, return_state=True
        )
        if state.is_completed():
            result = state.result()
        else:
            exc = state.result(raise_on_failure=False)
            reason = f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(exc)
            result = steps.BatchResult(
                batch=path.name,
                source=steps.display_path(project, path) or str(path),
                status="failed",
                reason=reason,
                model_version=info.version,
            )
        (logger.warning if result.status in ("quarantined", "failed") else logger.info)(
            result.line()
        )
        summary.batches.append(result)
    summary.seconds = round(time.perf_counter() - started, 3)

    if summary.scored or summary.quarantined:
        log_state = _with_retries(log_summary)(settings, project, summary, return_state=True)
        if log_state.is_completed():
            summary.mlflow_run_id = log_state.result()
        else:  # the batches are scored and in the ledger: say so, do not undo the run
            logger.error(
                "could not log the scoring run to MLflow: %s",
                log_state.result(raise_on_failure=False),
            )
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
