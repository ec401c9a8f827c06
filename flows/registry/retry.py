"""How registry calls fail: :class:`RegistryError`, which errors are transient, the one retry helper.

Calls that can fail for a reason that passes (a locked SQLite file, a tracking server that is
briefly away, a rate limit) are tried ``retries.attempts`` times in all, waiting
``retries.delay_seconds`` before the second try and twice as long before each next one
(``params.yaml``'s ``retries:`` section); then :class:`RegistryError`. Errors that retrying cannot
fix (a bad name, a missing version) fail at the first try.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from mlflow.exceptions import MlflowException

if TYPE_CHECKING:
    from flows.config import RetryParams

__all__ = ["RegistryError", "is_transient", "with_retry"]

_log = logging.getLogger(__name__)

_TRANSIENT_CODES = {
    "TEMPORARILY_UNAVAILABLE",
    "REQUEST_LIMIT_EXCEEDED",
    "DEADLINE_EXCEEDED",
    "ABORTED",
    "SERVICE_UNDER_MAINTENANCE",
}
_TRANSIENT_TEXT = (
    "database is locked",
    "database table is locked",
    "temporarily unavailable",
    "connection refused",
    "connection reset",
    "connection aborted",
    "connectionerror",
    "max retries exceeded",
    "timed out",
    "read timeout",
)

T = TypeVar("T")


class RegistryError(RuntimeError):
    """A registry operation failed; the message says what and how to fix it."""


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: a locked SQLite database, a connection or timeout error,
    an MLflow ``TEMPORARILY_UNAVAILABLE`` (or rate-limit) error."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"OperationalError", "RequestException", "ConnectTimeout", "ReadTimeout"}:
        return True
    if isinstance(exc, MlflowException):
        if exc.error_code in _TRANSIENT_CODES:
            return True
        text = str(exc).lower()
        return any(t in text for t in _TRANSIENT_TEXT)
    return False


def _refusal(what: str, exc: MlflowException) -> str | None:
    """The one sentence for a tracking server that refused the client (basic-auth), else None."""
    if exc.error_code not in ("UNAUTHENTICATED", "CUSTOMER_UNAUTHORIZED", "PERMISSION_DENIED"):
        return None
    import mlflow

    from flows.registry.connection import safe_uri

    server = safe_uri(mlflow.get_tracking_uri())
    if exc.error_code == "PERMISSION_DENIED":
        user = os.environ.get("MLFLOW_TRACKING_USERNAME", "")
        return (
            f"the MLflow server at {server} refused {what} (HTTP 403, permission denied for "
            f"user {user!r}): ask its admin for EDIT on the experiment and the registered model"
        )
    return (
        f"the MLflow server at {server} refused {what} (HTTP 401, not authenticated): set "
        "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to an account of that server"
    )


def with_retry(
    retries: RetryParams, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """``fn(*args, **kwargs)``, retried on transient errors with exponential backoff.

    Args:
        retries: ``attempts`` (tries in all, at least 1) and ``delay_seconds`` (the wait before
            the second try, in seconds; doubled before each next one).
        what: the operation, for messages ("registering a new version of model 'x'").

    Raises:
        RegistryError: a transient error on every attempt, or a non-transient MLflow error (its
            message kept). Other non-transient errors propagate unchanged.
    """
    attempts = max(1, int(retries.attempts))
    for attempt in range(1, attempts + 1):
        try:
            return fn(*args, **kwargs)
        except RegistryError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                if isinstance(exc, MlflowException):
                    raise RegistryError(
                        _refusal(what, exc) or f"{what} failed: {exc.message}"
                    ) from exc
                raise
            if attempt == attempts:
                raise RegistryError(
                    f"{what} failed after {attempts} attempts with a transient error; is the "
                    f"MLflow store reachable and not locked by another process? Last error: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            delay = float(retries.delay_seconds) * 2 ** (attempt - 1)
            _log.warning(
                "%s: attempt %d/%d failed (%s: %s); retrying in %.1f s",
                what,
                attempt,
                attempts,
                type(exc).__name__,
                exc,
                delay,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
