"""The scoring ledger ``<scored_dir>/_ledger.json`` (what was scored, keyed by the sha256 of the
batch file's bytes) and the ``flock`` locks it and the GX stores are held with.

Every change happens under an exclusive ``flock`` of ``_ledger.lock`` and is written through a
temporary file, fsynced and renamed (:func:`flows.io.atomic_write_text`), so readers never see a
half-written ledger and read it without locking.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flows.io import atomic_write_text, jsonable
from flows.layout import LEDGER_FILE, LEDGER_LOCK_FILE

__all__ = ["LEDGER_FORMAT", "Ledger", "LedgerTxn", "exclusive_lock", "iso_time", "now"]

LEDGER_FORMAT = 1


def now() -> datetime:
    """The current time, UTC (the ledger's and the scored files' clock)."""
    return datetime.now(tz=UTC)


def iso_time(ts: datetime | None = None) -> str:
    """``ts`` (default: now) as ISO 8601 to the second, with its UTC offset."""
    return (ts or now()).isoformat(timespec="seconds")


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


class LedgerTxn:
    """The ledger's content while its lock is held; mutators mark it for saving."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.changed = False

    @property
    def batches(self) -> dict[str, dict[str, Any]]:
        return self.data["batches"]

    @property
    def in_progress(self) -> dict[str, dict[str, Any]]:
        return self.data["in_progress"]

    def get(self, sha: str) -> dict[str, Any] | None:
        return self.batches.get(sha)

    def record(self, sha: str, entry: dict[str, Any]) -> None:
        self.batches[sha] = entry
        self.changed = True

    def claim(self, sha: str, claim: dict[str, Any]) -> None:
        self.in_progress[sha] = claim
        self.changed = True

    def release(self, sha: str) -> None:
        if self.in_progress.pop(sha, None) is not None:
            self.changed = True

    def add_quarantine(self, entry: dict[str, Any]) -> None:
        self.data["quarantined"].append(entry)
        self.changed = True

    def keep_stream(self, tail: dict[str, Any]) -> None:
        """Keep ``tail`` (a :meth:`~flows.steps.score.series.StreamContext.to_dict`) as the
        stream's context unless the kept one ends later (a backfill does not replace it)."""
        kept = self.data.get("stream")
        if not kept or tail["last_t"] > float(kept.get("last_t", float("-inf"))):
            self.data["stream"] = tail
            self.changed = True


class Ledger:
    """``<scored_dir>/_ledger.json``: what was scored, keyed by the sha256 of the batch file.

    Format::

        {"format": 1,
         "batches":     {"<sha256>": {"batch", "sha256", "rows", "flagged", "rate", "model_name",
                                      "model_version", "model_alias", "model_uri", "output",
                                      "source", "archived", "scored_at", "chunks", "seconds"}},
         "in_progress": {"<sha256>": {"batch", "output", "tmp", "pid", "host", "started"}},
         "quarantined": [{"batch", "sha256", "reason", "quarantined_to", "report", "at", ...}],
         "stream":      {"batch", "last_timestamp", "columns", "values", ...}}   (sequence models)

    ``stream`` holds the last ``context_rows`` points of the newest scored batch of a time series:
    the context of the next batch (:mod:`flows.steps.score.series`). Entries of sequence batches
    also have ``context_from`` (the batch they continued, or null) and ``notes``.
    """

    def __init__(self, scored_dir: str | Path) -> None:
        self.dir = Path(scored_dir)
        self.path = self.dir / LEDGER_FILE
        self.lock_path = self.dir / LEDGER_LOCK_FILE

    @staticmethod
    def _empty() -> dict[str, Any]:
        return {"format": LEDGER_FORMAT, "batches": {}, "in_progress": {}, "quarantined": []}

    def read(self) -> dict[str, Any]:
        """The ledger as a dict (without locking: the file is only ever replaced whole)."""
        if not self.path.is_file():
            return self._empty()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RuntimeError(
                f"the scoring ledger {self.path} is unreadable ({exc}); scoring stops rather than "
                "risk scoring batches twice. Restore it (or delete it to score every batch in "
                "the incoming folder again)"
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("batches"), dict):
            raise RuntimeError(f"the scoring ledger {self.path} is not a ledger (no 'batches')")
        base = self._empty()
        base.update(data)
        return base

    def scored(self) -> dict[str, dict[str, Any]]:
        """``{sha256: entry}`` of every scored batch."""
        return dict(self.read()["batches"])

    @contextlib.contextmanager
    def locked(self) -> Iterator[LedgerTxn]:
        """Hold the ledger lock; changes made through the transaction are saved on exit."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self.lock_path):
            txn = LedgerTxn(self.read())
            yield txn
            if txn.changed:
                text = json.dumps(jsonable(txn.data), indent=2, allow_nan=False) + "\n"
                atomic_write_text(self.path, text)
