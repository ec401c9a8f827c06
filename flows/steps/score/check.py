"""Checking each chunk before it is scored: its columns, then the model version's GX suite.

The first chunk of a batch goes through Great Expectations (its result is stored in the
project's GX context with the batch name and row range: the batch's Data Docs entry); with
``scoring.gx_every_batch: false`` only the first batch of each scoring task does, and the
others' first chunks are treated like later chunks (many small batches: GX's fixed cost per
call is most of a small batch's time). Later
chunks are checked by :func:`~flows.expectations.quick_check`, which is milliseconds instead of
GX's ~0.6 s, and go to GX only when it does not pass them, so a failing chunk is always judged and
reported by GX. Only critical expectations (the data contract) reject a chunk; the quick check
evaluates only those. The training-range warnings are GX's on the chunks it validates (their
lines go to the ledger), and :mod:`flows.steps.score.ranges` counts every row's features outside
the range in ``out_of_range``.

A first chunk that the quick check passes is validated by GX in a background thread
(:class:`ChunkChecker`) while the batch is scored (TensorFlow and pyarrow release the GIL); the
verdict is collected before the scored file is renamed into place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import pandas as pd

from flows.expectations import ValidationReport, Validator, quick_check
from flows.layout import ScoringDirs
from flows.steps.score.ledger import exclusive_lock
from flows.steps.score.output import MODEL_COLUMNS
from flows.steps.score.ranges import OUT_OF_RANGE
from flows.steps.score.results import BatchRejected
from flows.steps.score.scorer import SCORE_COLUMNS

if TYPE_CHECKING:
    import great_expectations as gx

__all__ = ["ChunkChecker", "check_not_scored", "failure_rank", "validate_chunk"]

_SEVERE = ("table", "missing", "must be numeric", "must not be null", "must be finite")


def failure_rank(line: str) -> int:
    """Rank of a failure line for the one-line reason: structure and types before ranges."""
    return next((i for i, word in enumerate(_SEVERE) if word in line), len(_SEVERE))


def check_not_scored(frame: pd.DataFrame) -> None:
    """Reject a batch that already has the columns scoring adds (a scored file fed back in)."""
    added = [*SCORE_COLUMNS, OUT_OF_RANGE, *MODEL_COLUMNS]
    taken = [c for c in frame.columns if c in added or c.startswith("contribution_")]
    if taken:
        raise BatchRejected(
            f"the batch already has column(s) {taken} that scoring adds (is it an "
            "already scored file?)",
            stage="validate",
        )


def _reason(report: ValidationReport, missing: list[str], unknown: list[str]) -> str:
    """The one-line reason of a chunk that GX failed."""
    if missing:
        reason = f"missing column(s) {missing} that the model needs"
        if unknown:
            reason += f"; the batch has column(s) the model does not know: {unknown} (renamed?)"
        return reason
    ordered = sorted(report.failed, key=failure_rank)  # stable: suite order within a rank
    shown = "; ".join(ordered[:3]) or "the expectation suite failed"
    more = len(ordered) - 3
    return f"failed validation: {shown}" + (f" (+{more} more)" if more > 0 else "")


def validate_chunk(
    frame: pd.DataFrame,
    suite: gx.ExpectationSuite,
    *,
    features: Sequence[str],
    dirs: ScoringDirs,
    validator: Validator,
    gx_name: str,
    rows: tuple[int, int],
    passthrough: Sequence[str] = (),
    first: bool = True,
    background: ThreadPoolExecutor | None = None,
) -> Future[ValidationReport] | ValidationReport | None:
    """Validate one chunk; raise :class:`BatchRejected` naming the problem when a *critical*
    expectation fails (failed warnings, such as values outside the training range, are in the
    returned report: the chunk is scored).

    ``features``: the model's columns (what the batch needs when the suite names none);
    ``validator``: the run's GX validator (``dirs.gx_lock`` is held around each call);
    ``gx_name``: the name GX stores the result under; ``rows``: the chunk's first and last row.

    With ``background``, a first chunk that the quick check passes is handed to GX in that
    executor, and the Future is returned: ``.result()`` raises :class:`BatchRejected` if GX
    disagrees. Returns GX's report when GX validated the chunk here, None when the quick check
    alone passed it.
    """
    meta = suite.meta or {}
    required = list(meta.get("columns") or [])
    label = meta.get("label_column")
    needed = required or list(features)
    known = {*needed, *passthrough} | ({label} if label else set())
    unknown = [c for c in frame.columns if c not in known]
    missing = [c for c in needed if c not in frame.columns]
    if unknown and not missing:  # extra columns: not something the model was trained with
        raise BatchRejected(
            f"the batch has column(s) the model does not know: {unknown} (the model takes "
            f"{needed}); to carry such columns through to the scored file, list them in "
            "scoring.passthrough_columns",
            stage="validate",
            problems=[f"unexpected column {c!r}" for c in unknown],
            rows=rows,
        )
    checked = (
        frame[[c for c in frame.columns if c in set(required) or c == label]] if required
        else frame
    )
    passes = not missing and quick_check(checked, suite) is True
    if passes and not first:
        return None

    def with_gx() -> ValidationReport:
        with exclusive_lock(dirs.gx_lock):  # GX's file stores: not multi-process safe
            report = validator.validate(
                checked, suite, gx_name, build_docs=False,
                # a chunk the quick check passed is GX-validated for the record (its Data Docs
                # entry): counts and example values are enough there; a failing chunk gets the
                # row positions too, for its quarantine report
                result_format="BASIC" if passes else "SUMMARY",
            )
        if report.success:
            return report
        raise BatchRejected(
            _reason(report, missing, unknown), stage="validate", problems=report.failed,
            report=report, rows=rows,
        )

    if passes and background is not None:
        return background.submit(with_gx)
    return with_gx()


class ChunkChecker:
    """:func:`validate_chunk` for the chunks of one batch, with the GX validation of the first
    chunk running in a thread of its own. Call :meth:`finish` before the scored file is renamed
    into place, and :meth:`close` in the end (it waits for that thread).

    ``gx_first=False``: the first chunk is treated like the later ones (GX only when the quick
    check does not pass it): for the batches after the first of a task when
    ``scoring.gx_every_batch`` is off."""

    def __init__(
        self,
        suite: gx.ExpectationSuite,
        *,
        features: Sequence[str],
        dirs: ScoringDirs,
        validator: Validator,
        batch: str,
        passthrough: Sequence[str] = (),
        gx_first: bool = True,
    ) -> None:
        self.suite = suite
        self.gx_first = gx_first
        self.features = list(features)
        self.dirs = dirs
        self.validator = validator
        self.batch = batch
        self.passthrough = tuple(passthrough)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gx-validation")
        self._pending: Future[ValidationReport] | None = None
        self._reports: list[ValidationReport] = []

    @property
    def warnings(self) -> list[str]:
        """The failed warnings of the chunks GX validated (the first chunk, and any chunk the
        quick check did not pass), each line once, prefixed by its rows when the batch was
        validated in several pieces."""
        lines: list[str] = []
        for report in self._reports:
            for line in report.warnings:
                text = line if report.batch_name == self.batch else (
                    f"{report.batch_name.removeprefix(self.batch).strip()}: {line}"
                )
                if text not in lines:
                    lines.append(text)
        return lines

    def check(self, frame: pd.DataFrame, rows: tuple[int, int], *, first: bool, last: bool) -> None:
        """Validate the chunk of rows ``rows`` (stored in GX as the batch's name when it is the
        whole batch, else ``<batch> rows <first>-<last>``)."""
        gx_name = self.batch if first and last else f"{self.batch} rows {rows[0]}-{rows[1]}"
        running = validate_chunk(
            frame, self.suite, features=self.features, dirs=self.dirs, validator=self.validator,
            gx_name=gx_name,
            rows=rows, passthrough=self.passthrough, first=first and self.gx_first,
            background=self._pool,
        )
        if isinstance(running, Future):  # only ever the first chunk
            self._pending = running
        elif running is not None:
            self._reports.append(running)

    def poll(self) -> None:
        """GX's verdict on the first chunk if it is in (raises :class:`BatchRejected`)."""
        if self._pending is not None and self._pending.done():
            self.finish()

    def finish(self) -> None:
        """Wait for GX's verdict on the first chunk (raises :class:`BatchRejected`)."""
        if self._pending is not None:
            running, self._pending = self._pending, None
            self._reports.append(running.result())

    def close(self) -> None:
        if self._pending is not None:  # a failure elsewhere: let GX end first
            with contextlib.suppress(Exception):
                self._pending.result()
            self._pending = None
        self._pool.shutdown(wait=True)
