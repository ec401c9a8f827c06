"""The ledger's database: its tables, one engine per URL and process, and what differs between
SQLite and PostgreSQL (how a transaction is serialised, how a batch is claimed).

SQLite (the default, ``<scored_dir>/_ledger.db``) runs in WAL mode: readers never block the one
writer, and every write transaction starts with ``BEGIN IMMEDIATE``, so two processes never
interleave their read-check-write steps. It is for one machine (WAL needs shared memory; do not
put the file on a network share). PostgreSQL (``scoring.ledger_url``) serialises the same
transactions with a transaction-level advisory lock, and claims a batch with a session-level
advisory lock held on a connection of its own: the server releases it when that connection
drops, which is what happens when a worker dies, even by SIGKILL, on any machine.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

__all__ = [
    "SUPPORTED_DIALECTS",
    "AdvisoryClaim",
    "batches_table",
    "begin_serialised",
    "check_ledger_url",
    "claims_table",
    "engine_for",
    "is_postgresql",
    "metadata",
    "quarantined_table",
    "safe_url",
    "state_table",
]

SUPPORTED_DIALECTS = ("sqlite", "postgresql")

metadata = MetaData()
# One row per scored batch, keyed by the sha256 of the file's bytes; ``entry`` is the JSON
# object the ledger has always kept (batch, rows, flagged, model, output, scored_at, ...).
batches_table = Table(
    "anomaly_ledger_batches",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("batch", Text, nullable=False),
    Column("output", Text),
    Column("scored_at", String(40)),
    Column("entry", Text, nullable=False),
)
# One row per batch being scored right now (or by a run that died: recover() drops those).
claims_table = Table(
    "anomaly_ledger_claims",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("output", Text),
    Column("entry", Text, nullable=False),
)
quarantined_table = Table(
    "anomaly_ledger_quarantined",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sha256", String(64), index=True),
    Column("at", String(40)),
    Column("entry", Text, nullable=False),
)
# Single values: "format", "stream" (a sequence model's context), "imported_json".
state_table = Table(
    "anomaly_ledger_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# The advisory-lock key (two int4: "anomaly ledger") that serialises ledger transactions on
# PostgreSQL; batch claims use the one-bigint key space, which never overlaps with it.
_PG_LEDGER_LOCK = (0x616E6F6D, 0x6C656467)

_engines: dict[tuple[str, int], Engine] = {}
_engines_lock = threading.Lock()


def safe_url(url: str) -> str:
    """``url`` with any password masked (for messages and logs)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def check_ledger_url(url: str) -> str:
    """``url`` when SQLAlchemy parses it and names SQLite or PostgreSQL.

    Raises:
        ValueError: a sentence saying what is wrong (the config names the key).
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError(
            f"not a database URL ({exc}); e.g. postgresql+psycopg://user@host:5432/anomaly "
            "or sqlite:////abs/path/ledger.db"
        ) from None
    if parsed.get_backend_name() not in SUPPORTED_DIALECTS:
        raise ValueError(
            f"the ledger runs on SQLite or PostgreSQL, got {parsed.get_backend_name()!r} "
            f"in {safe_url(url)}"
        )
    return url


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _sqlite_engine(url: str) -> Engine:
    # pysqlite's own transaction handling is switched off so that BEGIN IMMEDIATE (taken in
    # the "begin" event) is the only one: the write lock is then held from the first read.
    engine = create_engine(url, connect_args={"timeout": 120})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at every WAL checkpoint
        cursor.execute("PRAGMA busy_timeout=120000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def engine_for(url: str) -> Engine:
    """One engine (connection pool) per URL and process: a worker process that forked from
    another gets its own, never the parent's connections."""
    key = (url, os.getpid())
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            try:
                if make_url(url).get_backend_name() == "sqlite":
                    engine = _sqlite_engine(url)
                else:
                    engine = create_engine(url, pool_pre_ping=True)
            except (ArgumentError, NoSuchModuleError) as exc:
                raise RuntimeError(f"cannot open the scoring ledger {safe_url(url)}: {exc}") from exc
            _engines[key] = engine
    return engine


def begin_serialised(conn: Connection) -> None:
    """Make the transaction just begun on ``conn`` the only writer until it ends (SQLite's
    BEGIN IMMEDIATE already did; PostgreSQL takes the ledger's transaction advisory lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"),
                     {"a": _PG_LEDGER_LOCK[0], "b": _PG_LEDGER_LOCK[1]})


def _batch_key(sha: str) -> int:
    """The signed 64-bit advisory-lock key of a batch: 8 bytes of a hash of its whole hash."""
    return int.from_bytes(hashlib.blake2b(sha.encode(), digest_size=8).digest(), "big",
                          signed=True)


class AdvisoryClaim:
    """The PostgreSQL twin of :class:`~flows.steps.score.batches.Claim`: a session-level
    ``pg_try_advisory_lock`` on a connection held for as long as the batch is being scored.
    The server frees it when the connection ends, also when the process holding it is killed."""

    def __init__(self, engine: Engine, sha: str) -> None:
        self.engine = engine
        self.key = _batch_key(sha)
        self._conn: Connection | None = None

    def acquire(self) -> bool:
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
                       .scalar())
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def release(self, *, remove: bool = False) -> None:  # noqa: ARG002 (nothing on disk)
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        finally:
            self._conn.close()  # returned to the pool: a closed session would free it anyway
            self._conn = None
