"""Scoring one batch exactly once (:func:`score_batch`), and cleaning up after runs that died
(:func:`recover`).

**Exactly once.** A batch is claimed with :meth:`Ledger.claim_lock`: a non-blocking ``flock`` on
``_locks/<sha256>.lock`` next to a SQLite ledger, a session advisory lock on a PostgreSQL one
(either is released when its process dies, even by SIGKILL). Then the ledger is checked in one
serialised ledger transaction: a batch whose content hash is recorded is skipped (and its input
archived). The output is written to ``<stem>.parquet.tmp`` and renamed with ``os.replace``, so
``<stem>.parquet`` is always complete; only then is the ledger entry written, and only then is
the input moved to ``_done/``. A run that dies at any point leaves at most a ``.tmp`` file and an
``in_progress`` claim in the ledger; :func:`recover` (run at the start of every scoring run)
deletes both once the claim's lock is free, and the batch, still in ``incoming``, is scored again
- the rerun overwrites any output that already carries the batch's hash (written into the Parquet
metadata as ``anomaly.batch_sha256``). Two concurrent runs on the same folder never score a batch
twice: the second one sees the claim (``being scored by another run``) or the ledger entry
(``already scored``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.io import display_path, file_sha256, move_file, unlink_quietly
from flows.layout import TMP_SUFFIX, ScoringDirs
from flows.steps.score.batches import free_path, output_name
from flows.steps.score.ledger import Ledger, LedgerTxn, iso_time, now
from flows.steps.score.loop import score_to_file
from flows.steps.score.options import ScoringOptions
from flows.steps.score.parts import BatchPart, PartResult, combine_stats, merge_parts
from flows.steps.score.quarantine import quarantine
from flows.steps.score.results import BatchRejected, BatchResult
from flows.steps.score.scorer import BatchScorer, ModelRef
from flows.steps.score.series import SeriesCursor, StreamContext
from flows.steps.score.state import RunState

if TYPE_CHECKING:
    import great_expectations as gx

__all__ = ["PartsScorer", "recover", "score_batch", "score_batch_in_parts"]

_log = logging.getLogger(__package__)  # "flows.steps.score", as before the package split

#: The temporary names of :func:`flows.io.atomic_save` (ledger, reports, quarantined copies):
#: written only under the ledger lock, so any found while :func:`recover` holds it are leftovers.
_ATOMIC_LEFTOVERS = ".*.tmp-*"


class _Results:
    """Makes the :class:`BatchResult` of one batch: its name, source, model version, duration."""

    def __init__(self, path: Path, dirs: ScoringDirs, model_version: int) -> None:
        self.started = time.perf_counter()
        self.base = {"batch": path.name, "source": display_path(dirs.root, path) or str(path)}
        self.model_version = model_version

    def seconds(self) -> float:
        return round(time.perf_counter() - self.started, 3)

    def __call__(self, status: str, **kw: Any) -> BatchResult:
        kw.setdefault("model_version", self.model_version)
        return BatchResult(status=status, seconds=self.seconds(), **self.base, **kw)


@dataclass
class _Job:
    """A batch claimed in the ledger: where its output goes, and its series cursor."""

    path: Path
    sha: str
    size: int
    output: Path
    tmp: Path
    cursor: SeriesCursor | None


def score_batch(
    path: str | Path,
    *,
    scorer: BatchScorer,
    suite: gx.ExpectationSuite,
    options: ScoringOptions,
    suite_path: str | Path | None = None,
    state: RunState | None = None,
    gx_first: bool = True,
) -> BatchResult:
    """Score one batch file exactly once (see the module docstring for the protocol).

    ``suite_path``: where ``suite`` was read from (named in quarantine reports). ``state``: what
    the run keeps between batches (:meth:`RunState.start` of its own when None). ``gx_first``:
    GX validates and records the first chunk even when the quick check passes it (False: only
    a chunk the quick check does not pass goes to GX; ``scoring.gx_every_batch``).

    Returns a :class:`BatchResult` with status ``scored``, ``quarantined`` (bad data: the file and
    its report are in the quarantine folder) or ``skipped`` (already in the ledger, being scored
    by another run, or gone). Raises only for failures that are not the data's fault (disk full,
    a bug, GX failing); the batch then stays where it was for the next run.
    """

    def produce(job: _Job, scored_at: datetime) -> dict[str, Any]:
        run_state = state or RunState.start(options.dirs)
        with run_state.collector.frozen():
            return score_to_file(
                job.path, tmp=job.tmp, output=job.output, sha=job.sha, scorer=scorer,
                suite=suite, options=options, scored_at=scored_at, state=run_state,
                cursor=job.cursor, gx_first=gx_first,
            )

    return _score_once(path, model=scorer.model, scorer=scorer, options=options,
                       suite_path=suite_path, produce=produce)


#: Scores the parts of a claimed batch (on workers) and returns their results in row order
PartsScorer = Callable[[list[BatchPart]], list[PartResult]]


def score_batch_in_parts(
    path: str | Path,
    *,
    spans: list[tuple[int, int]],
    model: ModelRef,
    options: ScoringOptions,
    score_parts: PartsScorer,
    suite_path: str | Path | None = None,
) -> BatchResult:
    """Score one large Parquet batch exactly once, in parts (:mod:`flows.steps.score.parts`):
    claimed here, its row ranges ``spans`` scored by ``score_parts`` (e.g. on Dask workers),
    their files merged into the batch's scored file, the batch recorded here. A rejected part
    quarantines the batch; a part that fails raises (the batch stays for the next run), as in
    :func:`score_batch`, whose result this returns. Not for sequence models (their points need
    the points before them)."""

    def produce(job: _Job, scored_at: datetime) -> dict[str, Any]:
        parts = [
            BatchPart(source=job.path, sha=job.sha, index=i, count=len(spans), start=start,
                      stop=stop, tmp=options.dirs.partial_output(f"{job.output.name}.part-{i:04d}"),
                      scored_at=scored_at)
            for i, (start, stop) in enumerate(spans)
        ]
        try:
            results = score_parts(parts)
            rejected = [r.rejection for r in results if r.rejection is not None]
            if rejected:
                raise rejected[0]
            stats = combine_stats([r.stats for r in results if r.stats is not None])
            merging = merge_parts(parts, tmp=job.tmp, output=job.output, batch=job.path.name,
                                  model_uri=model.uri)
            stats["timings"]["write"] = round(stats["timings"].get("write", 0.0) + merging, 4)
            stats["parts"] = len(parts)
            return stats
        finally:
            for part in parts:
                unlink_quietly(part.tmp)

    return _score_once(path, model=model, scorer=None, options=options, suite_path=suite_path,
                       produce=produce)


def _score_once(
    path: str | Path,
    *,
    model: ModelRef,
    scorer: BatchScorer | None,
    options: ScoringOptions,
    suite_path: str | Path | None,
    produce: Callable[[_Job, datetime], dict[str, Any]],
) -> BatchResult:
    """The exactly-once protocol around ``produce`` (which writes ``job.output`` and returns
    the batch's counts, or raises :class:`BatchRejected`)."""
    path = Path(path).expanduser().resolve()
    dirs = options.dirs
    result = _Results(path, dirs, model.version)
    try:
        sha, size = file_sha256(path), path.stat().st_size
    except FileNotFoundError:
        return result("skipped", reason="gone: moved away by another run or a person")
    except IsADirectoryError:
        return result("skipped", reason="a folder, not a batch file")

    ledger = Ledger.of(dirs)
    claim = ledger.claim_lock(sha)
    if not claim.acquire():
        return result("skipped", sha256=sha, reason="being scored by another run right now")
    settled = False  # the batch's fate is in the ledger: the claim's lock file can go
    try:
        job = _claim_in_ledger(ledger, path, sha, size, scorer, options, result)
        if isinstance(job, BatchResult):  # already scored, or gone
            settled = True
            return job
        scored_at = now()
        try:
            stats = produce(job, scored_at)
        except BatchRejected as rejection:
            unlink_quietly(job.tmp)
            quarantined = _record_quarantined(
                ledger, job, rejection, model, dirs, suite_path, result)
            settled = True
            return quarantined
        except BaseException:
            unlink_quietly(job.tmp)
            with contextlib.suppress(Exception), ledger.locked() as txn:
                txn.release(sha)
            settled = True
            raise
        scored = _record_scored(ledger, job, stats, model, dirs, scored_at, result)
        settled = True
        return scored
    finally:
        claim.release(remove=settled)


def _claim_in_ledger(
    ledger: Ledger,
    path: Path, sha: str, size: int, scorer: BatchScorer | None, options: ScoringOptions,
    result: _Results,
) -> _Job | BatchResult:
    """Under the ledger lock: a skipped result for a batch already scored (its input archived)
    or gone; else the batch's claim recorded ``in_progress`` with its output's name."""
    dirs = options.dirs
    with ledger.locked() as txn:
        entry = txn.get(sha)
        if entry is not None:
            if dirs.in_incoming(path) and path.exists():
                move_file(path, free_path(dirs.done, path.name, sha))
            same = "" if entry.get("batch") == path.name else (
                f" (same content as {entry.get('batch')})"
            )
            return result(
                "skipped",
                sha256=sha,
                rows=entry.get("rows"),
                flagged=entry.get("flagged"),
                output=entry.get("output"),
                model_version=entry.get("model_version"),
                reason=f"already scored{same} at {entry.get('scored_at')} by version "
                f"{entry.get('model_version')}",
            )
        if not path.exists():
            return result("skipped", sha256=sha, reason="gone: processed by another run")
        stale = txn.claimed(sha)
        if stale is not None:  # we hold the claim: its previous owner is dead
            unlink_quietly(dirs.root / stale["tmp"] if stale.get("tmp") else None)
        name = output_name(txn, dirs, path.name, sha)
        job = _Job(path, sha, size, output=dirs.scored / name, tmp=dirs.partial_output(name),
                   cursor=_cursor(txn, path, scorer, options))
        txn.claim(sha, {
            "batch": path.name,
            "output": display_path(dirs.root, job.output),
            "tmp": display_path(dirs.root, job.tmp),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": iso_time(),
        })
    return job


def _cursor(
    txn: LedgerTxn, path: Path, scorer: BatchScorer | None, options: ScoringOptions
) -> SeriesCursor | None:
    """For a sequence model: the cursor that continues the stream kept in the ledger (None
    without a scorer: a batch scored in parts, never by a sequence model)."""
    if scorer is None or not scorer.is_sequence:
        return None
    kept = txn.stream()
    return SeriesCursor(
        features=scorer.features,
        timestamp_column=scorer.timestamp_column,
        context_rows=scorer.context_rows,
        start=StreamContext.from_dict(kept) if kept else None,
        batch=path.name,
        max_gap_steps=options.max_gap_steps,
    )


def _record_quarantined(
    ledger: Ledger,
    job: _Job,
    rejection: BatchRejected,
    model: ModelRef,
    dirs: ScoringDirs,
    suite_path: str | Path | None,
    result: _Results,
) -> BatchResult:
    """Quarantine the batch (report + file) and record it in the ledger, releasing the claim."""
    path, sha = job.path, job.sha
    with ledger.locked() as txn:
        dest, report_path = quarantine(
            path, sha=sha, size=job.size, rejection=rejection, dirs=dirs, model=model,
            suite_path=Path(suite_path) if suite_path else None,
        )
        txn.release(sha)
        txn.add_quarantine({
            "batch": path.name,
            "sha256": sha,
            "reason": rejection.reason,
            "stage": rejection.stage,
            "quarantined_to": display_path(dirs.root, dest),
            "report": display_path(dirs.root, report_path),
            "model_version": model.version,
            "at": iso_time(),
        })
    _log.info("quarantined %s: %s", path.name, rejection.reason)
    return result(
        "quarantined",
        sha256=sha,
        reason=rejection.reason,
        quarantined_to=display_path(dirs.root, dest),
        report=display_path(dirs.root, report_path),
    )


def _record_scored(
    ledger: Ledger,
    job: _Job,
    stats: dict[str, Any],
    model: ModelRef,
    dirs: ScoringDirs,
    scored_at: datetime,
    result: _Results,
) -> BatchResult:
    """Record the scored batch in the ledger (and the stream's new context), release the claim,
    then archive the input to ``_done/`` when it came from the incoming folder."""
    path, sha, cursor = job.path, job.sha, job.cursor
    archived = free_path(dirs.done, path.name, sha) if dirs.in_incoming(path) else None
    tail = cursor.finish() if cursor is not None else None
    notes = list(cursor.notes) if cursor is not None else []
    if stats.get("parts"):
        notes.append(f"scored in {stats['parts']} parts")
    series = {} if cursor is None else {
        "context_from": cursor.start.batch if cursor.continues else None, "notes": notes,
    }
    with ledger.locked() as txn:
        if tail is not None:  # the newest point of the stream so far: the next batch's context
            txn.keep_stream(tail.to_dict())
        txn.record(sha, {
            "batch": path.name,
            "sha256": sha,
            "rows": stats["rows"],
            "flagged": stats["flagged"],
            "rate": stats["flagged"] / stats["rows"] if stats["rows"] else 0.0,
            "model_name": model.name,
            "model_version": model.version,
            "model_alias": model.alias,
            "model_uri": model.uri,
            "output": display_path(dirs.root, job.output),
            "source": display_path(dirs.root, path),
            "archived": display_path(dirs.root, archived),
            "scored_at": scored_at.isoformat(timespec="seconds"),
            "chunks": stats["chunks"],
            "out_of_range_rows": stats["out_of_range_rows"],
            "out_of_range": stats["out_of_range"],
            "warnings": stats["warnings"],
            "parts": stats.get("parts", 1),
            "seconds": result.seconds(),
            "scored_by": {"host": socket.gethostname(), "pid": os.getpid()},
            **series,
        })
        txn.release(sha)
    if archived is not None:
        move_file(path, archived)
    return result(
        "scored",
        sha256=sha,
        rows=stats["rows"],
        flagged=stats["flagged"],
        output=display_path(dirs.root, job.output),
        chunks=stats["chunks"],
        timings=stats["timings"],
        notes=notes,
        out_of_range_rows=stats["out_of_range_rows"],
        warnings=stats["warnings"],
    )


def recover(dirs: ScoringDirs) -> list[str]:
    """Clean up after runs that died: drop their ``in_progress`` claims (when the claim's lock is
    free, i.e. the owner is gone) and delete their ``*.tmp`` files in the scored and quarantine
    folders. Safe while other runs are scoring: their claims are locked and left alone.
    Returns the files removed (relative to the root when inside it)."""
    if not dirs.scored.is_dir():
        return []
    removed: list[str] = []
    ledger = Ledger.of(dirs)
    with ledger.locked() as txn:
        live: set[Path] = set()
        for sha, claimed in txn.claims().items():
            tmp = dirs.root / claimed["tmp"] if claimed.get("tmp") else None
            lock = ledger.claim_lock(sha)
            if not lock.acquire():
                if tmp is not None:
                    live.add(tmp.resolve())
                continue
            try:
                if tmp is not None and tmp.exists():
                    tmp.unlink()
                    removed.append(display_path(dirs.root, tmp) or str(tmp))
                txn.release(sha)
            finally:
                lock.release(remove=True)
        for folder in (dirs.scored, dirs.quarantine):
            if not folder.is_dir():
                continue
            for tmp in [*folder.glob(f"*{TMP_SUFFIX}"), *folder.glob(_ATOMIC_LEFTOVERS)]:
                if tmp.resolve() not in live and tmp.is_file():
                    unlink_quietly(tmp)
                    removed.append(display_path(dirs.root, tmp) or str(tmp))
    if removed:
        _log.warning("removed leftovers of an interrupted scoring run: %s", ", ".join(removed))
    return removed
