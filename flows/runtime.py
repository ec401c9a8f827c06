"""Prefect glue shared by the flows (training, scoring, the data-quality report, the CLI).

* :func:`local_run_settings`: settings for flows run from this process without a server;
* :func:`quiet_user_error_tracebacks`: errors in the user's data or settings are logged as their
  message, without an engine traceback;
* :func:`reason_reported_once`: while the CLI reports a refusal itself, Prefect's console lines
  do not repeat its message;
* :func:`with_task_retries`: a task retried (``params.retries.task_retries`` times, waiting
  ``task_delay_seconds``, doubled at each retry) only when its error is transient
  (:func:`flows.registry.is_transient`: the store unreachable, locked, timed out).

Nothing here runs at import time: the filter is installed and settings changed only when called.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
from collections.abc import Iterator
from typing import Any

from flows.config import RetryParams

__all__ = [
    "is_transient_chain",
    "local_run_settings",
    "quiet_user_error_tracebacks",
    "reason_reported_once",
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


#: the errors ``anomaly`` reports as one message (flows/cli.py); of them, those of our own
#: packages are refusals (bad data, settings, registry state), whose message says it all
REPORTED_ERRORS = (ValueError, RuntimeError, OSError)
_OUR_PACKAGES = ("flows.", "anomaly_models.")
#: Prefect's lines that only announce the exception: "Task run failed with exception: X('...')"
#: (task engine; "... - Retries are exhausted" after retries), "Encountered exception during
#: execution: X('...')" (flow engine, with the traceback)
_ANNOUNCED = re.compile(
    r"(?:Task run failed with exception|Encountered exception during execution): "
    r"(\w+)\(.*\)(?: - Retries are exhausted)?",
    re.DOTALL,
)
#: a final state whose message is the exception's: "Finished in state Failed('Task run
#: encountered an exception X: ...')" (task) or "... 'Flow run encountered an exception: X: ...'"
_FINISHED = re.compile(
    r"(Finished in state \w+\()(['\"])((?:Task|Flow) run encountered an exception:?) (\w+): "
    r".*\2(.*\))",
    re.DOTALL,
)


def _refusal_names() -> set[str]:
    """Class names of the loaded refusal types (REPORTED_ERRORS defined in our packages)."""
    names: set[str] = set()
    seen: set[type] = set()
    todo: list[type] = list(REPORTED_ERRORS)
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith(_OUR_PACKAGES):
            names.add(cls.__name__)
    return names


class _ReasonReportedOnce(logging.Filter):
    """On a console handler: Prefect's run lines do not repeat a refusal's message.

    The line that only announces the exception is dropped (with its traceback); a final state
    ``Failed('... encountered an exception ValidationFailed: <message>')`` is shown as
    ``Failed('... encountered an exception ValidationFailed')``. Any other exception (a bug)
    keeps every line. Records are not changed: a shortened copy goes to this handler only, so
    the API (a server's UI) and other handlers get Prefect's full lines.
    """

    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self.handler = handler

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "anomaly_shortened", False) or not record.name.startswith(
            ("prefect.task_runs", "prefect.flow_runs")
        ):
            return True
        try:
            text = record.getMessage()
        except Exception:  # a malformed record: let the handler report it as usual
            return True
        announced = _ANNOUNCED.fullmatch(text)
        if announced:
            return announced.group(1) not in _refusal_names()
        finished = _FINISHED.fullmatch(text)
        if not finished or finished.group(4) not in _refusal_names():
            return True
        head, quote, what, name, tail = finished.groups()
        short = logging.makeLogRecord(record.__dict__)
        short.msg, short.args = f"{head}{quote}{what} {name}{quote}{tail}", None
        short.anomaly_shortened = True
        self.handler.handle(short)
        return False


@contextlib.contextmanager
def reason_reported_once() -> Iterator[None]:
    """While the caller reports a refusal itself (``anomaly train`` prints its message once at
    the end), Prefect's console lines name the error type without repeating the message (see
    :class:`_ReasonReportedOnce`); its traceback is not shown. Bugs keep Prefect's full lines.

    Installed on Prefect's console handler(s) for the ``with`` block only; the API handler is
    untouched, so a Prefect server keeps the full messages.
    """
    importlib.import_module("prefect.main")  # configures Prefect's logging (its console handler)
    from prefect.logging.handlers import PrefectConsoleHandler

    installed = [
        (handler, _ReasonReportedOnce(handler))
        for handler in logging.getLogger().handlers
        if isinstance(handler, PrefectConsoleHandler)
    ]
    for handler, once in installed:
        handler.addFilter(once)
    try:
        yield
    finally:
        for handler, once in installed:
            handler.removeFilter(once)


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
