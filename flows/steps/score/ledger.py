"""The scoring ledger: what was scored, keyed by the sha256 of the batch file's bytes, in a
database (SQLAlchemy): ``<scored_dir>/_ledger.db`` (SQLite, WAL) by default, or the PostgreSQL
database named by ``scoring.ledger_url`` when workers on several machines share one ledger.

Every change happens in one serialised transaction (:meth:`Ledger.locked`): SQLite's
``BEGIN IMMEDIATE``, PostgreSQL's transaction advisory lock (:mod:`.ledger_db`). Readers never
wait for it and see only committed states. A batch being scored is claimed with a lock its
owner's death frees (:meth:`Ledger.claim_lock`): an ``flock`` next to a SQLite ledger, a
session advisory lock on PostgreSQL.

A ``_ledger.json`` written by earlier versions is imported once, the first time the ledger is
opened, and renamed ``_ledger.json.imported`` (kept: nothing is deleted).

Also here: the ``flock`` helper the GX stores are held with, and the ledger's clock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from flows.io import jsonable
from flows.layout import LEDGER_DB_FILE, LEDGER_FILE, LEDGER_IMPORTED_SUFFIX, LOCKS_DIR
from flows.steps.score.ledger_db import (
    AdvisoryClaim,
    batches_table,
    begin_serialised,
    claims_table,
    engine_for,
    is_postgresql,
    metadata,
    quarantined_table,
    safe_url,
    state_table,
)

__all__ = [
    "LEDGER_FORMAT",
    "Claim",
    "Ledger",
    "LedgerTxn",
    "LedgerUnavailable",
    "exclusive_lock",
    "iso_time",
    "now",
    "sqlite_url",
]

#: 1: the JSON file; 2: the database.
LEDGER_FORMAT = 2

_log = logging.getLogger(__package__)


class LedgerUnavailable(RuntimeError):
    """The ledger's database cannot be reached or read: scoring stops rather than risk scoring
    a batch twice (the batch stays in the incoming folder)."""


def now() -> datetime:
    """The current time, UTC (the ledger's and the scored files' clock)."""
    return datetime.now(tz=UTC)


def iso_time(ts: datetime | None = None) -> str:
    """``ts`` (default: now) as ISO 8601 to the second, with its UTC offset."""
    return (ts or now()).isoformat(timespec="seconds")


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of the SQLite file ``path`` (absolute)."""
    return f"sqlite:///{Path(path).resolve()}"


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Blocking exclusive ``flock`` on ``path`` (created when missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class Claim:
    """Non-blocking exclusive ``flock`` on ``<scored_dir>/_locks/<sha256>.lock``: held by the
    process scoring that batch, released by the kernel if the process dies (even by SIGKILL).
    The claim of a SQLite ledger (one machine)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self, *, remove: bool = False) -> None:
        if self._fd is None:
            return
        if remove:  # safe: whoever opens it next re-checks the ledger in a ledger transaction
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        os.close(self._fd)
        self._fd = None


def _dump(entry: dict[str, Any]) -> str:
    return json.dumps(jsonable(entry), allow_nan=False)


class LedgerTxn:
    """One serialised ledger transaction (committed when the ``with`` block ends, rolled back
    when it raises)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, sha: str) -> dict[str, Any] | None:
        """The entry of the scored batch with hash ``sha``, or None."""
        value = self.conn.execute(
            select(batches_table.c.entry).where(batches_table.c.sha256 == sha)
        ).scalar()
        return None if value is None else json.loads(value)

    def claimed(self, sha: str) -> dict[str, Any] | None:
        """The ``in_progress`` claim of ``sha`` (its owner may be dead), or None."""
        value = self.conn.execute(
            select(claims_table.c.entry).where(claims_table.c.sha256 == sha)
        ).scalar()
        return None if value is None else json.loads(value)

    def claims(self) -> dict[str, dict[str, Any]]:
        """Every ``in_progress`` claim, ``{sha256: claim}``."""
        rows = self.conn.execute(select(claims_table.c.sha256, claims_table.c.entry))
        return {sha: json.loads(entry) for sha, entry in rows}

    def taken_outputs(self, sha: str) -> set[str]:
        """The output file names of every other batch, scored or being scored."""
        names: set[str] = set()
        for table in (batches_table, claims_table):
            rows = self.conn.execute(
                select(table.c.output).where(table.c.sha256 != sha, table.c.output.is_not(None))
            )
            names.update(Path(output).name for (output,) in rows)
        return names

    def record(self, sha: str, entry: dict[str, Any]) -> None:
        self.conn.execute(delete(batches_table).where(batches_table.c.sha256 == sha))
        self.conn.execute(insert(batches_table).values(
            sha256=sha, batch=str(entry.get("batch", "")), output=entry.get("output"),
            scored_at=entry.get("scored_at"), entry=_dump(entry),
        ))

    def claim(self, sha: str, claim: dict[str, Any]) -> None:
        self.release(sha)
        self.conn.execute(insert(claims_table).values(
            sha256=sha, output=claim.get("output"), entry=_dump(claim)))

    def release(self, sha: str) -> None:
        self.conn.execute(delete(claims_table).where(claims_table.c.sha256 == sha))

    def add_quarantine(self, entry: dict[str, Any]) -> None:
        self.conn.execute(insert(quarantined_table).values(
            sha256=entry.get("sha256"), at=entry.get("at"), entry=_dump(entry)))

    def _state(self, key: str) -> Any:
        value = self.conn.execute(
            select(state_table.c.value).where(state_table.c.key == key)
        ).scalar()
        return None if value is None else json.loads(value)

    def _set_state(self, key: str, value: Any) -> None:
        self.conn.execute(delete(state_table).where(state_table.c.key == key))
        self.conn.execute(insert(state_table).values(key=key, value=_dump(value)))

    def stream(self) -> dict[str, Any] | None:
        """The kept context of a sequence model's stream (:meth:`keep_stream`), or None."""
        return self._state("stream")

    def keep_stream(self, tail: dict[str, Any]) -> None:
        """Keep ``tail`` (a :meth:`~flows.steps.score.series.StreamContext.to_dict`) as the
        stream's context unless the kept one ends later (a backfill does not replace it)."""
        kept = self.stream()
        if not kept or tail["last_t"] > float(kept.get("last_t", float("-inf"))):
            self._set_state("stream", tail)

    def import_json(self, data: dict[str, Any], source: str) -> int:
        """Copy a JSON ledger's content in (its entries win over none: the database is new to
        them); returns the number of scored batches imported."""
        for sha, entry in (data.get("batches") or {}).items():
            self.record(sha, entry)
        for sha, claim in (data.get("in_progress") or {}).items():
            self.claim(sha, claim)  # recover() drops it once its owner is gone
        for entry in data.get("quarantined") or []:
            self.add_quarantine(entry)
        if data.get("stream"):
            self.keep_stream(data["stream"])
        self._set_state("imported_json", {"from": source, "at": iso_time(),
                                          "batches": len(data.get("batches") or {})})
        return len(data.get("batches") or {})


# (url, pid) of the ledgers whose schema and JSON import this process has seen to
_ready: set[tuple[str, int]] = set()
_ready_lock = threading.Lock()


class Ledger:
    """What was scored, quarantined and is being scored (:mod:`the module docstring
    <flows.steps.score.ledger>`).

    Args:
        scored_dir: the scored folder (``scoring.scored_dir``): home of the default SQLite file
            ``_ledger.db``, of the claim locks of a SQLite ledger, and of a ``_ledger.json`` to
            import.
        url: a SQLAlchemy URL (``scoring.ledger_url``), e.g.
            ``postgresql+psycopg://anomaly@db:5432/anomaly``; None: the SQLite file.

    :meth:`read` gives the content in the dict form the report reads::

        {"format": 2,
         "batches":     {"<sha256>": {"batch", "sha256", "rows", "flagged", "rate", "model_name",
                                      "model_version", "model_alias", "model_uri", "output",
                                      "source", "archived", "scored_at", "chunks", "seconds",
                                      "scored_by": {"host", "pid"}}},
         "in_progress": {"<sha256>": {"batch", "output", "tmp", "pid", "host", "started"}},
         "quarantined": [{"batch", "sha256", "reason", "quarantined_to", "report", "at", ...}],
         "stream":      {"batch", "last_timestamp", "columns", "values", ...}}   (sequence models)

    ``stream`` holds the last ``context_rows`` points of the newest scored batch of a time series:
    the context of the next batch (:mod:`flows.steps.score.series`). Entries of sequence batches
    also have ``context_from`` (the batch they continued, or null) and ``notes``.
    """

    def __init__(self, scored_dir: str | Path, url: str | None = None) -> None:
        self.dir = Path(scored_dir)
        self.sqlite_path = None if url else self.dir / LEDGER_DB_FILE
        self.url = url or sqlite_url(self.dir / LEDGER_DB_FILE)
        self.json_path = self.dir / LEDGER_FILE
        self.locks_dir = self.dir / LOCKS_DIR

    @classmethod
    def of(cls, dirs: Any) -> Ledger:
        """The ledger of a :class:`~flows.layout.ScoringDirs` (its scored folder and URL)."""
        return cls(dirs.scored, dirs.ledger_url)

    def describe(self) -> str:
        """Where the ledger is, password masked."""
        return str(self.sqlite_path) if self.sqlite_path else safe_url(self.url)

    # -------------------------------------------------------------- connections
    def _engine(self) -> Engine:
        if self.sqlite_path is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
        return engine_for(self.url)

    def _unavailable(self, exc: BaseException) -> LedgerUnavailable:
        detail = getattr(exc, "orig", None) or exc
        return LedgerUnavailable(
            f"the scoring ledger {self.describe()} cannot be reached ({type(detail).__name__}: "
            f"{str(detail).strip().splitlines()[0] if str(detail).strip() else ''}); scoring "
            "stops rather than risk scoring a batch twice - start the database or fix "
            "scoring.ledger_url, then run again"
        )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A serialised transaction (the schema made and a JSON ledger imported first)."""
        engine = self._engine()
        key = (self.url, os.getpid())
        try:
            with engine.begin() as conn:
                begin_serialised(conn)
                if key not in _ready:
                    self._prepare(conn)
                yield conn
        except OperationalError as exc:
            raise self._unavailable(exc) from exc
        with _ready_lock:
            _ready.add(key)

    def _prepare(self, conn: Connection) -> None:
        """Create the tables when missing, check the format, import a JSON ledger once."""
        metadata.create_all(conn, checkfirst=True)
        txn = LedgerTxn(conn)
        fmt = txn._state("format")
        if fmt is None:
            txn._set_state("format", LEDGER_FORMAT)
        elif int(fmt) > LEDGER_FORMAT:
            raise RuntimeError(
                f"the scoring ledger {self.describe()} has format {fmt}, newer than this "
                f"version's {LEDGER_FORMAT}: upgrade the pipeline before scoring with it"
            )
        if not self.json_path.is_file():
            return
        done = txn._state("imported_json")
        if done is not None:
            _log.warning("%s is still there, but a JSON ledger was already imported into %s "
                         "(%s): the file is ignored", self.json_path, self.describe(), done)
            return
        count = txn.import_json(_read_json_ledger(self.json_path), str(self.json_path))
        kept = self.json_path.with_name(self.json_path.name + LEDGER_IMPORTED_SUFFIX)
        os.replace(self.json_path, kept)
        _log.warning(
            "imported the JSON scoring ledger %s (%d scored batches) into %s; the file is kept "
            "as %s and no longer read", self.json_path, count, self.describe(), kept.name,
        )

    # -------------------------------------------------------------- the API
    @contextlib.contextmanager
    def locked(self) -> Iterator[LedgerTxn]:
        """One serialised transaction; its changes are committed on exit."""
        with self._transaction() as conn:
            yield LedgerTxn(conn)

    def read(self) -> dict[str, Any]:
        """The whole ledger as a dict (the format in the class docstring): one consistent
        snapshot. A SQLite ledger that was never written reads as empty (no file is made)."""
        empty = {"format": LEDGER_FORMAT, "batches": {}, "in_progress": {}, "quarantined": []}
        if self.sqlite_path is not None and not self.sqlite_path.exists() and (
            not self.json_path.is_file()
        ):
            return empty
        try:
            with self.locked() as txn:
                conn = txn.conn
                batches = {
                    sha: json.loads(entry) for sha, entry in conn.execute(
                        select(batches_table.c.sha256, batches_table.c.entry)
                        .order_by(batches_table.c.scored_at, batches_table.c.sha256))
                }
                quarantined = [json.loads(e) for (e,) in conn.execute(
                    select(quarantined_table.c.entry).order_by(quarantined_table.c.id))]
                data = {**empty, "batches": batches, "in_progress": txn.claims(),
                        "quarantined": quarantined}
                stream = txn.stream()
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from exc
        if stream is not None:
            data["stream"] = stream
        return data

    def scored(self) -> dict[str, dict[str, Any]]:
        """``{sha256: entry}`` of every scored batch."""
        return dict(self.read()["batches"])

    def claim_lock(self, sha: str) -> Claim | AdvisoryClaim:
        """The claim that marks ``sha`` as being scored by this process right now: an ``flock``
        for a SQLite ledger, a PostgreSQL advisory lock otherwise (both freed by the owner's
        death). Not acquired yet."""
        engine = self._engine()
        if is_postgresql(engine):
            return AdvisoryClaim(engine, sha)
        return Claim(self.locks_dir / f"{sha}.lock")


def _read_json_ledger(path: Path) -> dict[str, Any]:
    """The content of a ledger of format 1 (``_ledger.json``).

    Raises:
        RuntimeError: the file is unreadable or not a ledger (scoring stops rather than risk
            scoring a batch twice).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RuntimeError(
            f"the scoring ledger {path} is unreadable ({exc}); scoring stops rather than "
            "risk scoring batches twice. Restore it (or move it away to score every batch in "
            "the incoming folder again)"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("batches"), dict):
        raise RuntimeError(f"the scoring ledger {path} is not a ledger (no 'batches')")
    return data
