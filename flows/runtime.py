"""Prefect glue shared by the flows (training, scoring, the data-quality report, the CLI).

* :func:`local_run_settings`: settings for flows run from this process without a server;
* :func:`quiet_user_error_tracebacks`: errors in the user's data or settings are logged as their
  message, without an engine traceback;
* :func:`with_task_retries`: a task retried (``params.retries.task_retries`` times, waiting
  ``task_delay_seconds``, doubled at each retry) only when its error is transient
  (:func:`flows.registry.is_transient`: the store unreachable, locked, timed out).

Nothing here runs at import time: the filter is installed and settings changed only when called.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from flows.config import RetryParams

__all__ = [
    "is_transient_chain",
    "local_run_settings",
    "quiet_user_error_tracebacks",
    "retry_if_transient",
    "with_task_retries",
]


@contextlib.contextmanager
def local_run_settings() -> Iterator[None]:
    """Prefect settings for flows run from this process (the CLI, the benchmarks).

    Without a Prefect server (``PREFECT_API_URL`` unset) Prefect starts a temporary API that
    lives exactly as long as this process, so flow-run heartbeats (every 180 s by default,
    for a server to notice crashed runs) have no reader; yet stopping their thread makes every
    run wait for up to a second. They are switched off for such runs. Against a server
    (``anomaly serve``, or any ``PREFECT_API_URL``) nothing changes.
    """
    from prefect.settings import get_current_settings, temporary_settings

    if get_current_settings().api.url:
        yield
        return
    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        yield


class _NoTracebackForUserErrors(logging.Filter):
    """Drop the traceback Prefect logs for errors in the user's data or settings.

    Those errors (``ValueError`` and subclasses: DataError, ValidationFailed, ConfigError) carry
    a message that says what is wrong; a traceback from deep inside the engine only hides it.
    Bugs (any other exception) keep their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ValueError):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_user_error_tracebacks() -> None:
    """Install the filter on Prefect's run loggers (idempotent: at most one per logger)."""
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoTracebackForUserErrors) for f in logger.filters):
            logger.addFilter(_NoTracebackForUserErrors())


def is_transient_chain(exc: BaseException | None) -> bool:
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
    return isinstance(exc, BaseException) and is_transient_chain(exc)


def with_task_retries(task: Any, retries: RetryParams) -> Any:
    """``task`` retried ``retries.task_retries`` times on a transient error, waiting
    ``retries.task_delay_seconds`` before the first retry and twice as long before each next."""
    from prefect.tasks import exponential_backoff

    return task.with_options(
        retries=retries.task_retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=retries.task_delay_seconds),
        retry_condition_fn=retry_if_transient,
    )
