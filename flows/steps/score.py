"""Scoring step: new data batches -> validated with the model version's GX suite -> scored.

Plain functions, no Prefect (the flow in :mod:`flows.scoring` wires them; tests and benchmarks call
them directly). One batch is one CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``)
file. Files whose name starts with ``.`` or ``_`` are never picked up, so a producer can write
``.upload.csv`` and rename it when complete.

Layout (folders from ``params.scoring``; all inside the project by default)::

    data/incoming/<batch>.csv                 new batches (discovered in sorted name order)
    data/incoming/_done/<batch>.csv           inputs that were scored (or were duplicates of a
                                              scored batch): kept, never deleted
    data/scored/<stem>.parquet                input columns + anomaly_score, is_anomaly,
                                              contribution_<feature> + model_name, model_version,
                                              model_alias, scored_at (UTC)
    data/scored/_ledger.json                  the ledger: one entry per scored batch, keyed by the
                                              sha256 of the file's bytes
    data/scored/_ledger.lock, _gx.lock        fcntl.flock lock files (the ledger; GX's file stores)
    data/scored/_locks/<sha256>.lock          per-batch claim while a run scores that batch
    data/quarantine/<batch>.csv               a batch that could not be read or failed validation
    data/quarantine/<batch>.csv.report.json   why: a one-line reason, every failed expectation,
                                              the model version and suite it was checked against
    <data.snapshot_dir>/suites/<version>.json the GX suite of each model version (cached from the
                                              version's run artifact reports/expectation_suite.json)

**Exactly once.** A batch is claimed with a non-blocking ``flock`` on
``_locks/<sha256>.lock`` (released by the kernel when a process dies, even by SIGKILL), then the
ledger is checked under its own exclusive lock: a batch whose content hash is recorded is skipped
(and its input archived). The output is written to ``<stem>.parquet.tmp`` and renamed with
``os.replace``, so ``<stem>.parquet`` is always complete; only then is the ledger entry written,
and only then is the input moved to ``_done/``. A run that dies at any point leaves at most a
``.tmp`` file and an ``in_progress`` claim in the ledger; :func:`recover` (run at the start of every
scoring run) deletes both once the claim's lock is free, and the batch, still in ``incoming``, is
scored again - the rerun overwrites any output that already carries the batch's hash (written into
the Parquet metadata as ``anomaly.batch_sha256``). Two concurrent runs on the same folder never
score a batch twice: the second one sees the claim (``being scored by another run``) or the ledger
entry (``already scored``).

**Bad input** never stops the run nor loses data: a batch that cannot be read (missing, empty,
corrupt), lacks a feature column, or fails any expectation of the suite is moved to the quarantine
folder with its report (a file given by path from outside the incoming folder is *copied* there
and left where it was); the other batches go on. A column the model does not take is a problem too
(a renamed column, a file meant for another model), unless it is listed in
``scoring.passthrough_columns`` (ids, timestamps...): those are carried through to the output
unvalidated. The label column of training, when a batch has it, is dropped from validation and
kept.

**Chunks.** A batch is read ``scoring.chunk_rows`` rows at a time (Parquet with
``pyarrow.ParquetFile.iter_batches``, CSV with ``pandas.read_csv(chunksize=...)``); a last piece
shorter than half a chunk is merged into the one before, so no chunk is tiny. Each chunk is validated
(the first by GX, stored in the project's GX context with the batch name and row range; later ones
by :func:`~flows.steps.validate.quick_check`, which is milliseconds instead of GX's ~0.6 s, and by
GX whenever the quick check does not pass them) and scored, and written
with a ``pyarrow.parquet.ParquetWriter``, so a batch of any size scores in bounded memory. A batch
with a chunk that fails is quarantined whole; nothing of it is written. ``mostly`` expectations
(``validate.range_mostly``) therefore hold per chunk.

Output column types: Parquet inputs keep their Arrow types; CSV inputs have the model's numeric
feature columns cast like :func:`flows.registry.prepare_input` (whole numbers -> float64 where the
signature says double), so that every chunk of a CSV writes the same schema. A CSV whose other
columns change type between chunks in a way that cannot be cast is quarantined with that message.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flows.config import Params, resolve
from flows.steps.ingest import DataError, atomic_write_json, jsonable, parse_timestamps
from flows.steps.stream import SeriesCursor, SeriesOrderError, StreamContext

if TYPE_CHECKING:
    import great_expectations as gx
    from mlflow.pyfunc import PyFuncModel

    from flows.registry import VersionInfo
    from flows.steps.validate import ValidationReport

__all__ = [
    "DONE_DIR",
    "LEDGER_FILE",
    "MODEL_COLUMNS",
    "REPORT_SUFFIX",
    "BatchRejected",
    "BatchResult",
    "BatchScorer",
    "Ledger",
    "ModelRef",
    "ScoringDirs",
    "ScoringSummary",
    "batch_kind",
    "batch_stem",
    "discover_batches",
    "display_path",
    "expand_paths",
    "fetch_suite",
    "file_sha256",
    "iso_time",
    "iter_chunks",
    "recover",
    "run_scoring",
    "score_batch",
    "suite_cache_path",
]

_log = logging.getLogger(__name__)

LEDGER_FILE = "_ledger.json"
LEDGER_LOCK_FILE = "_ledger.lock"
GX_LOCK_FILE = "_gx.lock"
LOCKS_DIR = "_locks"
DONE_DIR = "_done"
SUITES_DIR = "suites"
TMP_SUFFIX = ".tmp"
REPORT_SUFFIX = ".report.json"
LEDGER_FORMAT = 1

SCORE_COLUMNS = ("anomaly_score", "is_anomaly")
MODEL_COLUMNS = ("model_name", "model_version", "model_alias", "scored_at")
#: Parquet key-value metadata of a scored file
META_SHA = b"anomaly.batch_sha256"
META_BATCH = b"anomaly.batch_name"
META_MODEL = b"anomaly.model_uri"

_CSV_SUFFIXES = (".csv.gz", ".csv")
_PARQUET_SUFFIXES = (".parquet", ".pq")

STATUSES = ("scored", "quarantined", "skipped", "failed")

#: A garbage collection after this many rows scored in the process. GX and pandas leave
#: reference cycles per chunk, and Python seldom runs a full collection by itself: without this,
#: a 10M-row batch peaked at 1.7 GB instead of 1.3 GB. The objects that existed before the batch
#: (TensorFlow's, the model's: about a million) are frozen while it is scored (:func:`_frozen_heap`),
#: so a collection only walks what the batch created: well under 0.1 s instead of ~0.6 s.
GC_EVERY_ROWS = 1_000_000
#: For sequence models a chunk holds at least this many times the model's context rows, so that
#: it can take the next chunk's first points as look-ahead (scoring.chunk_rows is raised to it).
SEQUENCE_CHUNK_FACTOR = 4
_rows_since_gc = 0


def _collect_garbage(rows: int) -> None:
    global _rows_since_gc
    _rows_since_gc += rows
    if _rows_since_gc >= GC_EVERY_ROWS:
        _rows_since_gc = 0
        gc.collect()
        pa.default_memory_pool().release_unused()


@contextlib.contextmanager
def _frozen_heap() -> Iterator[None]:
    """Move every object alive now to the collector's permanent generation for the duration
    (``gc.freeze``), so collections skip them; they are handed back afterwards (``gc.unfreeze``)
    and collected as usual from then on."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


# ============================================================================ small helpers
def _now() -> datetime:
    return datetime.now(tz=UTC)


def iso_time(ts: datetime | None = None) -> str:
    return (ts or _now()).isoformat(timespec="seconds")


def display_path(root: Path, path: Path | str | None) -> str | None:
    """``path`` relative to ``root`` when inside it (the ledger and reports stay portable)."""
    if path is None:
        return None
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def batch_kind(path: str | Path) -> str | None:
    """``"csv"``, ``"parquet"`` or None (not a batch file) from the file name."""
    name = Path(path).name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    return None


def batch_stem(name: str) -> str:
    """The batch name without its data suffix: ``day1.csv.gz`` -> ``day1``."""
    lower = name.lower()
    for suffix in (*_CSV_SUFFIXES, *_PARQUET_SUFFIXES):
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(name).stem or name


def _suffix(name: str) -> str:
    return name[len(batch_stem(name)) :]


def file_sha256(path: str | Path, block: int = 1 << 20) -> str:
    """SHA-256 of the file's bytes (the ledger key: the same content is the same batch)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            h.update(chunk)
    return h.hexdigest()


def discover_batches(directory: str | Path) -> list[Path]:
    """The batch files directly in ``directory`` (CSV / Parquet, not hidden, not ``_*``), sorted
    by name; ``[]`` when the folder does not exist."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and not p.name.startswith((".", "_")) and batch_kind(p) is not None
    )


def _unlink(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _move(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` (atomic on one file system; copy + rename + delete across)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy(src, dst)
        src.unlink()


def _copy(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` via ``dst.tmp`` + rename (a crash leaves no partial ``dst``)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + TMP_SUFFIX)
    try:
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    finally:
        _unlink(tmp)


def _free_path(directory: Path, name: str, sha: str) -> Path:
    """``directory/name``, or ``directory/<stem>.<sha12><suffix>`` when a file of that name is
    already there (which may only be the same content: same hash, same name)."""
    first = directory / name
    if not first.exists():
        return first
    return directory / f"{batch_stem(name)}.{sha[:12]}{_suffix(name)}"


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        _unlink(tmp)


# ============================================================================ folders
@dataclass(frozen=True)
class ScoringDirs:
    """The folders of ``params.scoring`` resolved against the project root."""

    root: Path
    incoming: Path
    scored: Path
    quarantine: Path

    @classmethod
    def from_params(cls, params: Params, root: str | Path) -> ScoringDirs:
        root = Path(root).resolve()
        s = params.scoring
        return cls(
            root=root,
            incoming=resolve(root, s.incoming_dir).resolve(),
            scored=resolve(root, s.scored_dir).resolve(),
            quarantine=resolve(root, s.quarantine_dir).resolve(),
        )

    @property
    def done(self) -> Path:
        return self.incoming / DONE_DIR

    @property
    def locks(self) -> Path:
        return self.scored / LOCKS_DIR

    @property
    def ledger(self) -> Path:
        return self.scored / LEDGER_FILE

    def in_incoming(self, path: Path) -> bool:
        """True for a file directly in the incoming folder (moved out when processed)."""
        return Path(path).resolve().parent == self.incoming


# ============================================================================ locks
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


class _Claim:
    """Non-blocking exclusive ``flock`` on ``_locks/<sha256>.lock``: held by the process scoring
    that batch, released by the kernel if the process dies."""

    def __init__(self, locks_dir: Path, sha: str) -> None:
        self.path = locks_dir / f"{sha}.lock"
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
        if remove:  # safe: whoever opens it next re-checks the ledger under the ledger lock
            _unlink(self.path)
        os.close(self._fd)
        self._fd = None


# ============================================================================ ledger
class _LedgerTxn:
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
    the context of the next batch (:mod:`flows.steps.stream`). Entries of sequence batches also
    have ``context_from`` (the batch they continued, or null) and ``notes``.

    Every change happens under an exclusive ``flock`` of ``_ledger.lock`` and is written to
    ``_ledger.json.tmp``, fsynced and renamed, so readers never see a half-written ledger.
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
    def locked(self) -> Iterator[_LedgerTxn]:
        """Hold the ledger lock; changes made through the transaction are saved on exit."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self.lock_path):
            txn = _LedgerTxn(self.read())
            yield txn
            if txn.changed:
                text = json.dumps(jsonable(txn.data), indent=2, allow_nan=False) + "\n"
                _write_text_atomic(self.path, text)


# ============================================================================ model + suite
@dataclass(frozen=True)
class ModelRef:
    """The model version a batch is scored with (written into every output row)."""

    name: str
    version: int
    alias: str | None = None
    uri: str | None = None
    run_id: str | None = None

    @classmethod
    def from_version(cls, info: VersionInfo) -> ModelRef:
        return cls(
            name=info.name,
            version=int(info.version),
            alias=info.alias,
            uri=info.model_uri,
            run_id=info.run_id,
        )

    def describe(self) -> str:
        alias = f" (@{self.alias})" if self.alias else ""
        return f"{self.name} version {self.version}{alias}"


class BatchScorer:
    """Turns a frame of input rows into the score columns.

    Args:
        predict: DataFrame of feature columns -> DataFrame with ``anomaly_score``, ``is_anomaly``
            and (usually) ``contribution_<feature>`` columns, one row per input row.
        features: the columns the model takes (from the signature); the others are passed through.
        model: the version, recorded in the output.
        prepare: optional cast of the feature frame before ``predict``
            (:func:`flows.registry.prepare_input` for a pyfunc).
        context_rows: for a sequence model, how many points before a batch it takes as context
            (the detector's ``context_length``: ``window - 1`` + half the smoothing); ``predict(frame, params={"context_rows": k})`` then scores the last
            ``len(frame) - k`` rows of ``frame``. 0 for row-by-row models.
        timestamp_column: the column that orders a sequence model's series (None: row order).
    """

    def __init__(
        self,
        predict: Callable[..., pd.DataFrame],
        features: Sequence[str],
        model: ModelRef,
        prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
        context_rows: int = 0,
        timestamp_column: str | None = None,
    ) -> None:
        if not features:
            raise ValueError("BatchScorer needs the model's feature columns")
        self.predict = predict
        self.features = list(features)
        self.model = model
        self.prepare = prepare
        self.context_rows = int(context_rows)
        self.timestamp_column = timestamp_column

    @property
    def is_sequence(self) -> bool:
        return self.context_rows > 0

    @classmethod
    def from_pyfunc(
        cls,
        model: PyFuncModel,
        info: VersionInfo,
        suite: gx.ExpectationSuite | None = None,
    ) -> BatchScorer:
        """A scorer around the registered pyfunc; features from its signature (else the suite)."""
        from flows.registry import prepare_input

        schema = model.metadata.get_input_schema() if model.metadata is not None else None
        features: list[str] = []
        if schema is not None and schema.has_input_names():
            features = list(schema.input_names())
        elif suite is not None:
            features = list((suite.meta or {}).get("feature_columns") or [])
        if not features:
            raise ValueError(
                f"{info.model_uri} has no input signature and its suite names no feature "
                "columns; register it with the pipeline (`anomaly train`)"
            )
        meta = dict(getattr(model.metadata, "metadata", None) or {})  # the MLmodel's metadata
        timestamp = meta.get("timestamp_column") or (
            (suite.meta or {}).get("timestamp_column") if suite is not None else None
        )
        return cls(
            predict=model.predict,
            features=features,
            model=ModelRef.from_version(info),
            prepare=lambda frame: prepare_input(model, frame),
            context_rows=int(meta.get("context_rows") or 0),
            timestamp_column=timestamp,
        )

    def normalize(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A CSV chunk typed like the training data: feature columns cast for the model, and the
        timestamp column of a sequence model parsed as dates when it holds date strings (as
        ingest parses them; left as text when it does not parse, for validation to reject).
        Other columns are untouched."""
        out = frame
        ts = self.timestamp_column
        column = frame[ts] if ts is not None and ts in frame.columns else None
        if column is not None and not (
            pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column)
        ):  # text (object or pandas' str dtype)
            try:
                parsed = parse_timestamps(column)
            except (ValueError, TypeError):
                parsed = None
            if parsed is not None:
                out = frame.copy()
                out[ts] = parsed
        if self.prepare is None:
            return out
        present = [c for c in self.features if c in out.columns]
        if not present:
            return out
        cast = self.prepare(out[present])
        changed = [c for c in present if cast[c].dtype != out[c].dtype]
        if not changed:
            return out
        out = out.copy() if out is frame else out
        for c in changed:
            out[c] = cast[c]
        return out

    def __call__(self, frame: pd.DataFrame, context: pd.DataFrame | None = None) -> pd.DataFrame:
        """Score columns for the rows of ``frame`` (one output row per row). ``context``: the
        points before ``frame`` (sequence models; their feature columns), or None."""
        x = frame[self.features]
        if self.prepare is not None:
            x = self.prepare(x)
        if self.is_sequence:
            k = 0 if context is None else len(context)
            if k:
                before = context[self.features]
                if self.prepare is not None:
                    before = self.prepare(before)
                x = pd.concat([before.astype(x.dtypes.to_dict()), x], ignore_index=True)
            out = self.predict(x, params={"context_rows": k})
        else:
            out = self.predict(x)
        if not isinstance(out, pd.DataFrame):
            out = pd.DataFrame(out)
        missing = [c for c in SCORE_COLUMNS if c not in out.columns]
        if missing:
            raise RuntimeError(f"{self.model.describe()} returned no column(s) {missing}")
        if len(out) != len(frame):
            raise RuntimeError(
                f"{self.model.describe()} returned {len(out)} rows for {len(frame)} input rows"
            )
        return out.reset_index(drop=True)


def suite_cache_path(params: Params, root: str | Path, version: int) -> Path:
    """``<data.snapshot_dir>/suites/<version>.json``."""
    return resolve(Path(root), params.data.snapshot_dir) / SUITES_DIR / f"{int(version)}.json"


def _suite_name(model: str, version: int) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", f"{model}_v{version}")


def fetch_suite(params: Params, root: str | Path, info: VersionInfo) -> Path:
    """The GX suite registered with model version ``info`` (the run artifact
    :data:`flows.registry.SUITE_ARTIFACT`), cached at :func:`suite_cache_path`.

    The cached copy is named ``<model>_v<version>`` (one GX checkpoint per version) and records
    the model name, version and run id in ``meta.registered_model``; a cached file for another
    run (a re-created registry) is downloaded again.

    Raises:
        RegistryError: the version has no run or its run has no suite artifact.
    """
    from flows import registry
    from flows.steps.validate import load_suite

    path = suite_cache_path(params, root, info.version)
    wanted = {"name": info.name, "version": int(info.version), "run_id": info.run_id}
    if path.is_file():
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
            meta = (cached.get("meta") or {}).get("registered_model") or {}
            if {k: meta.get(k) for k in wanted} == wanted:
                return path
        except (OSError, ValueError):
            pass  # unreadable cache: download again
    if not info.run_id:
        raise registry.RegistryError(
            f"{info.model_uri} has no run, so no expectation suite to validate batches with; "
            "register versions with the pipeline (`anomaly train`)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".download-") as tmp:
        local = registry.download_artifact(params, root, info.run_id, registry.SUITE_ARTIFACT, tmp)
        try:
            suite = json.loads(Path(local).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise registry.RegistryError(
                f"the expectation suite of {info.model_uri} ({registry.SUITE_ARTIFACT} of run "
                f"{info.run_id}) is unreadable: {exc}"
            ) from exc
    suite["name"] = _suite_name(info.name, info.version)
    suite.setdefault("meta", {})
    suite["meta"]["registered_model"] = {**wanted, "artifact": registry.SUITE_ARTIFACT}
    atomic_write_json(suite, path)
    load_suite(path)  # fails now, with the path, if GX cannot load it
    return path


# ============================================================================ results
@dataclass
class BatchResult:
    """What happened to one batch."""

    batch: str
    source: str
    status: str  # scored | quarantined | skipped | failed
    sha256: str | None = None
    rows: int | None = None
    flagged: int | None = None
    output: str | None = None
    quarantined_to: str | None = None
    report: str | None = None
    reason: str | None = None
    model_version: int | None = None
    chunks: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. how a time series batch was continued

    @property
    def rate(self) -> float | None:
        if not self.rows or self.flagged is None:
            return None
        return self.flagged / self.rows

    def line(self) -> str:
        """One line for the terminal / the logs."""
        head = f"{self.status:<11} {self.batch}"
        if self.status == "scored":
            rate = self.rate or 0.0
            return (
                f"{head}: {self.rows:,} rows, {self.flagged:,} flagged ({rate:.2%}) "
                f"-> {self.output}" + "".join(f"; {n}" for n in self.notes)
            )
        if self.status == "quarantined":
            return f"{head}: {self.reason} -> {self.quarantined_to} (report: {self.report})"
        if self.status == "skipped":
            return f"{head}: {self.reason}" + (f" -> {self.output}" if self.output else "")
        return f"{head}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rate"] = self.rate
        return out


@dataclass
class ScoringSummary:
    """One scoring run: the model version used and what happened to each batch."""

    model_name: str
    model_version: int
    model_alias: str | None
    model_uri: str | None
    batches: list[BatchResult] = field(default_factory=list)
    started_at: str = ""
    seconds: float = 0.0
    incoming_dir: str | None = None
    recovered: list[str] = field(default_factory=list)
    mlflow_run_id: str | None = None

    def _with(self, status: str) -> list[BatchResult]:
        return [b for b in self.batches if b.status == status]

    @property
    def scored(self) -> list[BatchResult]:
        return self._with("scored")

    @property
    def quarantined(self) -> list[BatchResult]:
        return self._with("quarantined")

    @property
    def skipped(self) -> list[BatchResult]:
        return self._with("skipped")

    @property
    def failed(self) -> list[BatchResult]:
        return self._with("failed")

    @property
    def rows_scored(self) -> int:
        return sum(b.rows or 0 for b in self.scored)

    @property
    def flagged(self) -> int:
        return sum(b.flagged or 0 for b in self.scored)

    @property
    def model(self) -> str:
        alias = f" (@{self.model_alias})" if self.model_alias else ""
        return f"{self.model_name} version {self.model_version}{alias}"

    def headline(self) -> str:
        if not self.batches:
            where = f" in {self.incoming_dir}" if self.incoming_dir else ""
            return f"no new batches{where}; model {self.model}"
        parts = [
            f"{len(self.scored)} scored ({self.rows_scored:,} rows, {self.flagged:,} flagged)",
            f"{len(self.quarantined)} quarantined",
            f"{len(self.skipped)} skipped",
        ]
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        return f"model {self.model}: " + ", ".join(parts)

    def quarantine_message(self) -> str:
        """The quarantined batches with their reasons (empty when none)."""
        if not self.quarantined:
            return ""
        lines = [
            f"{len(self.quarantined)} of {len(self.batches)} batch(es) quarantined "
            "(the others went on):"
        ]
        lines += [
            f"  - {b.batch}: {b.reason} (moved to {b.quarantined_to}; report {b.report})"
            for b in self.quarantined
        ]
        return "\n".join(lines)

    def state_message(self, limit: int = 120) -> str:
        """The headline plus, when any, the quarantined batches with their reasons cut short."""
        if not self.quarantined:
            return self.headline()

        def short(text: str | None) -> str:
            text = text or ""
            return text if len(text) <= limit else text[: limit - 3] + "..."

        listed = "; ".join(f"{b.batch} ({short(b.reason)})" for b in self.quarantined)
        return f"{self.headline()}. QUARANTINED: {listed}"

    def lines(self) -> list[str]:
        return [b.line() for b in self.batches]

    def table(self) -> list[dict[str, Any]]:
        """Rows for a Prefect table artifact."""
        return [
            {
                "batch": b.batch,
                "status": b.status,
                "rows": b.rows,
                "flagged": b.flagged,
                "rate": None if b.rate is None else round(b.rate, 6),
                "model_version": b.model_version,
                "where": b.output or b.quarantined_to,
                "reason": b.reason,
            }
            for b in self.batches
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "model_alias": self.model_alias,
            "model_uri": self.model_uri,
            "started_at": self.started_at,
            "seconds": self.seconds,
            "incoming_dir": self.incoming_dir,
            "recovered": list(self.recovered),
            "mlflow_run_id": self.mlflow_run_id,
            "rows_scored": self.rows_scored,
            "flagged": self.flagged,
            "batches": [b.to_dict() for b in self.batches],
        }


class BatchRejected(DataError):
    """A batch that cannot be scored as it is: it goes to quarantine with this explanation."""

    def __init__(
        self,
        reason: str,
        *,
        stage: str,
        problems: Sequence[str] = (),
        report: ValidationReport | None = None,
        rows: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stage = stage
        self.problems = list(problems)
        self.report = report
        self.rows = rows


# ============================================================================ reading
def _tables(pieces: Iterable[pa.Table | pa.RecordBatch]) -> Iterator[pa.Table]:
    for piece in pieces:
        table = pa.Table.from_batches([piece]) if isinstance(piece, pa.RecordBatch) else piece
        if table.num_rows:
            yield table


def _concat(tables: list[pa.Table], first_row: int) -> pa.Table:
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise BatchRejected(
            f"column types change between rows near row {first_row:,}: {_first_line(exc)}",
            stage="read",
        ) from exc


def _rechunk(pieces: Iterable[pa.Table | pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``rows`` rows; a last piece under ``rows / 2`` joins the one before."""
    buffer: list[pa.Table] = []
    buffered = 0
    emitted = 0
    pending: pa.Table | None = None
    for table in _tables(pieces):
        buffer.append(table)
        buffered += table.num_rows
        while buffered >= rows:
            whole = _concat(buffer, emitted)
            chunk, rest = whole.slice(0, rows), whole.slice(rows)
            buffer, buffered = ([rest], rest.num_rows) if rest.num_rows else ([], 0)
            if pending is not None:
                yield pending
                emitted += pending.num_rows
            pending = chunk
    tail = _concat(buffer, emitted) if buffered else None
    if pending is None:
        if tail is not None:
            yield tail
    elif tail is None:
        yield pending
    elif 2 * tail.num_rows < rows:
        yield _concat([pending, tail], emitted)
    else:
        yield pending
        yield tail


def _csv_tables(
    path: Path, rows: int, normalize: Callable[[pd.DataFrame], pd.DataFrame] | None
) -> Iterator[pa.Table]:
    try:
        reader = pd.read_csv(path, chunksize=rows, low_memory=False)
    except pd.errors.EmptyDataError as exc:
        raise BatchRejected(f"empty file (no columns, no rows): {path.name}", stage="read") from exc
    except Exception as exc:
        raise BatchRejected(
            f"cannot read {path.name} as CSV: {_first_line(exc)}", stage="read"
        ) from exc
    seen = 0
    with reader:
        while True:
            try:
                frame = next(reader)
            except StopIteration:
                return
            except Exception as exc:  # parser, decoding, decompression errors mid-file
                raise BatchRejected(
                    f"cannot read {path.name} as CSV after row {seen:,}: {_first_line(exc)}",
                    stage="read",
                ) from exc
            frame.columns = [str(c) for c in frame.columns]
            if normalize is not None:
                frame = normalize(frame)
            seen += len(frame)
            yield pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)


def _parquet_tables(path: Path, rows: int) -> Iterator[pa.Table]:
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise BatchRejected(
            f"cannot read {path.name} as Parquet: {_first_line(exc)}", stage="read"
        ) from exc
    with pf:
        if pf.metadata.num_rows == 0:
            raise BatchRejected(f"empty file (0 rows): {path.name}", stage="read")
        seen = 0
        batches = pf.iter_batches(batch_size=rows)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception as exc:  # a corrupt page or row group
                raise BatchRejected(
                    f"cannot read {path.name} as Parquet after row {seen:,}: {_first_line(exc)}",
                    stage="read",
                ) from exc
            seen += batch.num_rows
            yield pa.Table.from_batches([batch]).replace_schema_metadata(None)


def iter_chunks(
    path: str | Path,
    chunk_rows: int,
    normalize: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> Iterator[pa.Table]:
    """The rows of a CSV or Parquet batch as Arrow tables of ``chunk_rows`` rows (the last one up
    to 1.5 x ``chunk_rows``); never the whole file in memory.

    ``normalize`` is applied to each CSV chunk (as a DataFrame) before it becomes a table.

    Raises:
        BatchRejected: missing, empty, unreadable or corrupt file (stage ``read``).
    """
    path = Path(path)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    kind = batch_kind(path)
    if kind is None:
        raise BatchRejected(
            f"not a batch file: {path.name} (expected .csv, .csv.gz, .parquet or .pq)",
            stage="read",
        )
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise BatchRejected(f"file not found: {path}", stage="read") from exc
    if size == 0:
        raise BatchRejected(f"empty file (0 bytes): {path.name}", stage="read")
    pieces = _csv_tables(path, chunk_rows, normalize) if kind == "csv" else _parquet_tables(
        path, chunk_rows
    )
    emitted = 0
    for chunk in _rechunk(pieces, chunk_rows):
        emitted += chunk.num_rows
        yield chunk
    if emitted == 0:
        raise BatchRejected(
            f"empty file (a header but 0 rows): {path.name}"
            if kind == "csv"
            else f"empty file (0 rows): {path.name}",
            stage="read",
        )


# ============================================================================ one batch
def _validate_chunk(
    frame: pd.DataFrame,
    suite: gx.ExpectationSuite,
    scorer: BatchScorer,
    dirs: ScoringDirs,
    gx_name: str,
    rows: tuple[int, int],
    *,
    passthrough: Sequence[str] = (),
    first: bool = True,
    background: ThreadPoolExecutor | None = None,
) -> Future[ValidationReport] | None:
    """Validate one chunk; raise :class:`BatchRejected` naming the problem when it fails.

    The first chunk of a batch always goes through Great Expectations (its result is stored in
    the GX context: the batch's Data Docs entry). Later chunks are checked with
    :func:`~flows.steps.validate.quick_check` and go to GX only when it does not pass them, so
    a failing chunk is always judged and reported by GX.

    With ``background``, a first chunk that the quick check passes is handed to GX in that
    executor, and the Future is returned: GX (~0.5 s, mostly Python) then runs while the batch
    is scored (TensorFlow and pyarrow release the GIL). The caller must wait for it before the
    scored file is renamed into place; ``.result()`` raises :class:`BatchRejected` if GX
    disagrees, and the partly written file is then deleted like any rejected batch's.
    Returns None when the chunk is validated already.
    """
    from flows.steps.validate import gx_context_dir, quick_check, validate_frame

    meta = suite.meta or {}
    required = list(meta.get("columns") or [])
    label = meta.get("label_column")
    needed = required or scorer.features
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
    checked = frame[[c for c in frame.columns if c in set(required) or c == label]] if required else frame
    passes = not missing and quick_check(checked, suite) is True
    if passes and not first:
        return None

    def with_gx() -> ValidationReport:
        with exclusive_lock(dirs.scored / GX_LOCK_FILE):  # GX's file stores: not multi-process safe
            report = validate_frame(
                checked, suite, gx_context_dir(dirs.root), batch_name=gx_name, build_docs=False,
                # a chunk the quick check passed is GX-validated for the record (its Data Docs
                # entry): counts and example values are enough there; a failing chunk gets the
                # row positions too, for its quarantine report
                result_format="BASIC" if passes else "SUMMARY",
            )
        if report.success:
            return report
        if missing:
            reason = f"missing column(s) {missing} that the model needs"
            if unknown:
                reason += f"; the batch has column(s) the model does not know: {unknown} (renamed?)"
        else:
            ordered = sorted(report.failed, key=_severity)  # stable: suite order within a rank
            shown = "; ".join(ordered[:3]) or "the expectation suite failed"
            more = len(ordered) - 3
            reason = f"failed validation: {shown}" + (f" (+{more} more)" if more > 0 else "")
        raise BatchRejected(
            reason, stage="validate", problems=report.failed, report=report, rows=rows
        )

    if passes and background is not None:
        return background.submit(with_gx)
    with_gx()
    return None


_SEVERE = ("table", "missing", "must be numeric", "must not be null", "must be finite")


def _severity(line: str) -> int:
    """Rank of a failure line for the one-line reason: structure and types before ranges."""
    return next((i for i, word in enumerate(_SEVERE) if word in line), len(_SEVERE))


def _score_columns(
    table: pa.Table, scores: pd.DataFrame, model: ModelRef, scored_at: datetime
) -> pa.Table:
    n = table.num_rows
    columns = list(table.columns)
    names = list(table.column_names)
    for name in scores.columns:
        values = scores[name].to_numpy()
        if name == "is_anomaly":
            values = values.astype("int64")
        columns.append(pa.array(values))
        names.append(str(name))
    stamp = int(scored_at.timestamp() * 1_000_000)
    columns += [  # constant columns: pa.repeat builds them without Python objects per row
        pa.repeat(pa.scalar(model.name, type=pa.string()), n),
        pa.repeat(pa.scalar(int(model.version), type=pa.int64()), n),
        pa.repeat(pa.scalar(model.alias or "", type=pa.string()), n),
        pa.repeat(pa.scalar(stamp, type=pa.timestamp("us", tz="UTC")), n),
    ]
    names += list(MODEL_COLUMNS)
    return pa.Table.from_arrays(columns, names=names)


def _dictionary_columns(table: pa.Table) -> list[str]:
    """Columns worth Parquet dictionary encoding: text-like ones. Floats (scores,
    contributions, most features) almost never repeat, and trying costs 4x the write time."""
    return [
        f.name
        for f in table.schema
        if pa.types.is_string(f.type)
        or pa.types.is_large_string(f.type)
        or pa.types.is_dictionary(f.type)
        or pa.types.is_boolean(f.type)
    ]


def _float_columns(table: pa.Table) -> list[str]:
    """Columns written with Parquet's BYTE_STREAM_SPLIT encoding: floats. Scores and
    contributions are float32 numbers held as float64, so their low bytes are zeros that
    compress well once split into streams: files ~25 % smaller and faster to write than with
    plain encoding."""
    return [
        f.name for f in table.schema if pa.types.is_float32(f.type) or pa.types.is_float64(f.type)
    ]


def _conform(table: pa.Table, schema: pa.Schema, first_row: int) -> pa.Table:
    if table.schema.equals(schema, check_metadata=False):
        return table
    try:
        return table.cast(schema.remove_metadata()).replace_schema_metadata(schema.metadata)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError) as exc:
        changed = [
            f"{f.name!r} ({schema.field(f.name).type} before, {f.type} here)"
            for f in table.schema
            if f.name in schema.names and schema.field(f.name).type != f.type
        ]
        raise BatchRejected(
            f"column types change from row {first_row:,} on: {', '.join(changed) or 'columns'}; "
            f"make them consistent or send the batch as Parquet ({_first_line(exc)})",
            stage="read",
        ) from exc


def _score_to_file(
    path: Path,
    *,
    tmp: Path,
    output: Path,
    sha: str,
    scorer: BatchScorer,
    suite: gx.ExpectationSuite,
    dirs: ScoringDirs,
    chunk_rows: int,
    scored_at: datetime,
    passthrough: Sequence[str] = (),
    cursor: SeriesCursor | None = None,
) -> dict[str, Any]:
    """Validate, score and write ``path`` to ``tmp`` chunk by chunk, then rename it to ``output``.
    ``cursor`` (sequence models) checks the time order and carries the context between chunks.
    Raises :class:`BatchRejected` (nothing renamed) for bad data."""
    timings = {"read": 0.0, "validate": 0.0, "predict": 0.0, "write": 0.0}
    rows = flagged = chunks = 0
    writer: pq.ParquetWriter | None = None
    # Writing a chunk (pyarrow, which releases the GIL) overlaps with validating and predicting
    # the next one, and so does reading the chunk after it; at most one write and one read are
    # pending (memory: the chunk being written, the one being scored, the next one (look-ahead),
    # and the one being read).
    write_behind = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-writer")
    pending: Future[None] | None = None
    gx_behind = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gx-validation")
    gx_pending: Future[Any] | None = None

    def wait_pending() -> None:
        nonlocal pending
        if pending is not None:
            t = time.perf_counter()
            done, pending = pending, None
            done.result()  # a write error surfaces here, in the scoring thread
            timings["write"] += time.perf_counter() - t

    added = [*SCORE_COLUMNS, *MODEL_COLUMNS]
    if cursor is not None:  # a chunk must hold the next chunk's look-ahead and a window
        chunk_rows = max(chunk_rows, SEQUENCE_CHUNK_FACTOR * max(scorer.context_rows, 1))
    normalize = scorer.normalize if batch_kind(path) == "csv" else None
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-reader")
    iterator = _with_next(_read_ahead(iter_chunks(path, chunk_rows, normalize=normalize), reader))
    try:
        while True:
            t = time.perf_counter()
            try:
                table, following = next(iterator)
            except StopIteration:
                break
            last = following is None
            frame = table.to_pandas()
            timings["read"] += time.perf_counter() - t
            span = (rows, rows + table.num_rows - 1)
            if chunks == 0:
                taken = [c for c in frame.columns if c in added or c.startswith("contribution_")]
                if taken:
                    raise BatchRejected(
                        f"the batch already has column(s) {taken} that scoring adds (is it an "
                        "already scored file?)",
                        stage="validate",
                    )
            t = time.perf_counter()
            single = chunks == 0 and last
            gx_name = path.name if single else f"{path.name} rows {span[0]}-{span[1]}"
            in_background = _validate_chunk(
                frame, suite, scorer, dirs, gx_name, span,
                passthrough=passthrough, first=chunks == 0, background=gx_behind,
            )
            if in_background is not None:  # only ever the first chunk
                gx_pending = in_background
            context = None
            if cursor is not None:
                try:
                    context = cursor.context_for(frame, span[0])
                except SeriesOrderError as exc:
                    raise BatchRejected(str(exc), stage="validate", rows=span) from exc
            timings["validate"] += time.perf_counter() - t

            t = time.perf_counter()
            scored_frame = frame
            if cursor is not None and following is not None:
                # the first points of the next chunk, so that the last points of this one are
                # scored by all the windows that cover them, as in one piece (their scores are
                # dropped; the next chunk scores those points itself)
                ahead = following.slice(0, scorer.context_rows).to_pandas()
                scored_frame = pd.concat([frame, ahead], ignore_index=True)
            try:
                try:
                    scores = scorer(scored_frame, context=context)
                except Exception as exc:
                    if scored_frame is frame or not _is_input_error(exc):
                        raise
                    # bad rows in the look-ahead (not validated yet): score this chunk alone;
                    # the next chunk's validation then names the problem and its rows
                    scored_frame = frame
                    scores = scorer(frame, context=context)
                if scored_frame is not frame:
                    scores = scores.iloc[: len(frame)].reset_index(drop=True)
            except Exception as exc:
                if not _is_input_error(exc):
                    raise
                raise BatchRejected(
                    f"the model rejected rows {span[0]:,}-{span[1]:,}: {_first_line(exc)}",
                    stage="score",
                    rows=span,
                ) from exc
            if cursor is not None:
                cursor.advance(frame)
            timings["predict"] += time.perf_counter() - t
            if gx_pending is not None and gx_pending.done():  # GX of the first chunk
                gx_pending, running = None, gx_pending
                running.result()  # raises BatchRejected if GX disagrees

            t = time.perf_counter()
            out = _score_columns(table, scores, scorer.model, scored_at)
            if writer is None:
                meta = {
                    META_SHA: sha.encode(),
                    META_BATCH: path.name.encode(),
                    META_MODEL: (scorer.model.uri or "").encode(),
                }
                tmp.parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(
                    tmp,
                    out.schema.with_metadata(meta),
                    use_dictionary=_dictionary_columns(out),
                    use_byte_stream_split=_float_columns(out),
                )
            else:
                out = _conform(out, writer.schema, rows)
            timings["write"] += time.perf_counter() - t
            wait_pending()
            pending = write_behind.submit(writer.write_table, out)
            rows += table.num_rows
            flagged += int(np.asarray(scores["is_anomaly"]).sum())
            chunks += 1
            del frame, scores, out, table
            _collect_garbage(span[1] - span[0] + 1)
        wait_pending()
        if gx_pending is not None:  # GX of the first chunk, run while the batch was scored
            t = time.perf_counter()
            gx_pending, running = None, gx_pending
            running.result()
            timings["validate"] += time.perf_counter() - t
        if writer is None:  # iter_chunks raises for empty files; defensive
            raise BatchRejected(f"empty file: {path.name}", stage="read")
        t = time.perf_counter()
        writer.close()
        writer = None
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, output)
        _fsync_dir(output.parent)
        timings["write"] += time.perf_counter() - t
    finally:
        for running in (pending, gx_pending):  # a failure elsewhere: let them end first
            if running is not None:
                with contextlib.suppress(Exception):
                    running.result()
        write_behind.shutdown(wait=True)
        gx_behind.shutdown(wait=True)
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        iterator.close()
        reader.shutdown(wait=True)
    return {
        "rows": rows,
        "flagged": flagged,
        "chunks": chunks,
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }


def _read_ahead(items: Iterator[pa.Table], reader: ThreadPoolExecutor) -> Iterator[pa.Table]:
    """The items of ``items``, the next one being read in ``reader`` (one thread) while the
    caller works on the current one: decoding Parquet or parsing CSV releases the GIL. A read
    error is raised here, in the caller's thread, in its place in the sequence."""
    pending = reader.submit(next, items, None)
    try:
        while True:
            item = pending.result()
            if item is None:
                return
            pending = reader.submit(next, items, None)
            yield item
    finally:
        with contextlib.suppress(Exception):  # a generator cannot be closed while it runs
            pending.result()
        items.close()


def _with_next(items: Iterator[pa.Table]) -> Iterator[tuple[pa.Table, pa.Table | None]]:
    """``(item, next item or None)`` pairs, one item ahead."""
    try:
        previous = next(items)
    except StopIteration:
        return
    try:
        for item in items:
            yield previous, item
            previous = item
        yield previous, None
    finally:
        items.close()


def _is_input_error(exc: BaseException) -> bool:
    """Errors of a model rejecting its input (schema enforcement, the detector's checks)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return isinstance(exc, (ValueError, TypeError)) or "MlflowException" in names


def _output_name(txn: _LedgerTxn, dirs: ScoringDirs, name: str, sha: str) -> str:
    """``<stem>.parquet`` unless another batch owns that name (then ``<stem>.<sha12>.parquet``)."""
    stem = batch_stem(name)
    taken = {
        Path(e["output"]).name
        for h, e in [*txn.batches.items(), *txn.in_progress.items()]
        if h != sha and e.get("output")
    }
    for candidate in (f"{stem}.parquet", f"{stem}.{sha[:12]}.parquet", f"{stem}.{sha}.parquet"):
        if candidate in taken:
            continue
        existing = dirs.scored / candidate
        if existing.exists() and _output_sha(existing) != sha:
            continue  # a file this ledger does not know: never overwrite it
        return candidate
    raise RuntimeError(f"no free output name for batch {name} in {dirs.scored}")


def _output_sha(path: Path) -> str | None:
    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception:
        return None
    value = meta.get(META_SHA)
    return value.decode() if value else None


def _quarantine(
    path: Path,
    *,
    sha: str,
    size: int | None,
    rejection: BatchRejected,
    dirs: ScoringDirs,
    model: ModelRef,
    suite_path: Path | None,
) -> tuple[Path, Path]:
    """Write the report, then move (incoming) or copy (elsewhere) the batch to quarantine."""
    inside = dirs.in_incoming(path)
    dest = _free_path(dirs.quarantine, path.name, sha)
    report_path = dest.with_name(dest.name + REPORT_SUFFIX)
    vr = rejection.report
    report = {
        "batch": path.name,
        "source": display_path(dirs.root, path),
        "quarantined_to": display_path(dirs.root, dest),
        "original_kept": not inside,
        "sha256": sha,
        "bytes": size,
        "reason": rejection.reason,
        "stage": rejection.stage,
        "problems": rejection.problems or [rejection.reason],
        "rows": None if rejection.rows is None else list(rejection.rows),
        "model": {
            "name": model.name,
            "version": model.version,
            "alias": model.alias,
            "uri": model.uri,
        },
        "suite": display_path(dirs.root, suite_path),
        "validation": None if vr is None else vr.to_dict(),
        "data_docs_page": None if vr is None or vr.data_docs_page is None
        else str(vr.data_docs_page),
        "great_expectations_result": None if vr is None else vr.raw,
        "quarantined_at": iso_time(),
        "what_next": "fix the file and drop it into the incoming folder again (a changed file "
        "is a new batch), or score it with `anomaly score PATH`",
    }
    _write_text_atomic(report_path, json.dumps(jsonable(report), indent=2) + "\n")
    if inside:
        _move(path, dest)
    else:
        _copy(path, dest)
    return dest, report_path


def score_batch(
    path: str | Path,
    *,
    scorer: BatchScorer,
    suite: gx.ExpectationSuite,
    params: Params,
    root: str | Path,
    suite_path: str | Path | None = None,
) -> BatchResult:
    """Score one batch file exactly once (see the module docstring for the protocol).

    Returns a :class:`BatchResult` with status ``scored``, ``quarantined`` (bad data: the file and
    its report are in the quarantine folder) or ``skipped`` (already in the ledger, being scored
    by another run, or gone). Raises only for failures that are not the data's fault (disk full,
    a bug, GX failing); the batch then stays where it was for the next run.
    """
    started = time.perf_counter()
    path = Path(path).expanduser().resolve()
    dirs = ScoringDirs.from_params(params, root)
    ledger = Ledger(dirs.scored)
    model = scorer.model
    base = {"batch": path.name, "source": display_path(dirs.root, path) or str(path)}

    def result(status: str, **kw: Any) -> BatchResult:
        kw.setdefault("model_version", model.version)
        return BatchResult(status=status, seconds=round(time.perf_counter() - started, 3),
                           **base, **kw)

    try:
        sha = file_sha256(path)
        size = path.stat().st_size
    except FileNotFoundError:
        return result("skipped", reason="gone: moved away by another run or a person")
    except IsADirectoryError:
        return result("skipped", reason="a folder, not a batch file")

    claim = _Claim(dirs.locks, sha)
    if not claim.acquire():
        return result("skipped", sha256=sha, reason="being scored by another run right now")
    done_with_claim = False
    try:
        with ledger.locked() as txn:
            entry = txn.get(sha)
            if entry is not None:
                if dirs.in_incoming(path) and path.exists():
                    _move(path, _free_path(dirs.done, path.name, sha))
                same = "" if entry.get("batch") == path.name else f" (same content as {entry.get('batch')})"
                done_with_claim = True
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
                done_with_claim = True
                return result("skipped", sha256=sha, reason="gone: processed by another run")
            stale = txn.in_progress.get(sha)
            if stale is not None:  # we hold the claim: its previous owner is dead
                _unlink(dirs.root / stale["tmp"] if stale.get("tmp") else None)
            out_name = _output_name(txn, dirs, path.name, sha)
            output = dirs.scored / out_name
            tmp = dirs.scored / (out_name + TMP_SUFFIX)
            cursor = None
            if scorer.is_sequence:
                kept = txn.data.get("stream")
                cursor = SeriesCursor(
                    features=scorer.features,
                    timestamp_column=scorer.timestamp_column,
                    context_rows=scorer.context_rows,
                    start=StreamContext.from_dict(kept) if kept else None,
                    batch=path.name,
                    max_gap_steps=params.data.gap_factor,
                )
            txn.claim(
                sha,
                {
                    "batch": path.name,
                    "output": display_path(dirs.root, output),
                    "tmp": display_path(dirs.root, tmp),
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "started": iso_time(),
                },
            )

        scored_at = _now()
        try:
            with _frozen_heap():
                stats = _score_to_file(
                    path,
                    tmp=tmp,
                    output=output,
                    sha=sha,
                    scorer=scorer,
                    suite=suite,
                    dirs=dirs,
                    chunk_rows=params.scoring.chunk_rows,
                    scored_at=scored_at,
                    passthrough=params.scoring.passthrough_columns,
                    cursor=cursor,
                )
        except BatchRejected as rejection:
            _unlink(tmp)
            with ledger.locked() as txn:
                dest, report_path = _quarantine(
                    path,
                    sha=sha,
                    size=size,
                    rejection=rejection,
                    dirs=dirs,
                    model=model,
                    suite_path=Path(suite_path) if suite_path else None,
                )
                txn.release(sha)
                txn.add_quarantine(
                    {
                        "batch": path.name,
                        "sha256": sha,
                        "reason": rejection.reason,
                        "stage": rejection.stage,
                        "quarantined_to": display_path(dirs.root, dest),
                        "report": display_path(dirs.root, report_path),
                        "model_version": model.version,
                        "at": iso_time(),
                    }
                )
            done_with_claim = True
            _log.info("quarantined %s: %s", path.name, rejection.reason)
            return result(
                "quarantined",
                sha256=sha,
                reason=rejection.reason,
                quarantined_to=display_path(dirs.root, dest),
                report=display_path(dirs.root, report_path),
            )
        except BaseException:
            _unlink(tmp)
            with contextlib.suppress(Exception), ledger.locked() as txn:
                txn.release(sha)
            done_with_claim = True
            raise

        archived = _free_path(dirs.done, path.name, sha) if dirs.in_incoming(path) else None
        rate = stats["flagged"] / stats["rows"] if stats["rows"] else 0.0
        tail = cursor.finish() if cursor is not None else None
        notes = list(cursor.notes) if cursor is not None else []
        with ledger.locked() as txn:
            if tail is not None:  # the newest point of the stream so far: the next batch's context
                kept = txn.data.get("stream")
                if not kept or tail.last_t > float(kept.get("last_t", float("-inf"))):
                    txn.data["stream"] = tail.to_dict()
                    txn.changed = True
            txn.record(
                sha,
                {
                    "batch": path.name,
                    "sha256": sha,
                    "rows": stats["rows"],
                    "flagged": stats["flagged"],
                    "rate": rate,
                    "model_name": model.name,
                    "model_version": model.version,
                    "model_alias": model.alias,
                    "model_uri": model.uri,
                    "output": display_path(dirs.root, output),
                    "source": display_path(dirs.root, path),
                    "archived": display_path(dirs.root, archived),
                    "scored_at": scored_at.isoformat(timespec="seconds"),
                    "chunks": stats["chunks"],
                    "seconds": round(time.perf_counter() - started, 3),
                    **(
                        {"context_from": cursor.start.batch if cursor.continues else None,
                         "notes": notes}
                        if cursor is not None else {}
                    ),
                },
            )
            txn.release(sha)
        if archived is not None:
            _move(path, archived)
        done_with_claim = True
        return result(
            "scored",
            sha256=sha,
            rows=stats["rows"],
            flagged=stats["flagged"],
            output=display_path(dirs.root, output),
            chunks=stats["chunks"],
            timings=stats["timings"],
            notes=notes,
        )
    finally:
        claim.release(remove=done_with_claim)


# ============================================================================ recovery
def recover(params: Params, root: str | Path) -> list[str]:
    """Clean up after runs that died: drop their ``in_progress`` claims (when the claim's lock is
    free, i.e. the owner is gone) and delete their ``*.tmp`` files in the scored and quarantine
    folders. Safe while other runs are scoring: their claims are locked and left alone.
    Returns the files removed."""
    dirs = ScoringDirs.from_params(params, root)
    if not dirs.scored.is_dir():
        return []
    removed: list[str] = []
    ledger = Ledger(dirs.scored)
    with ledger.locked() as txn:
        live: set[Path] = set()
        for sha, claim in list(txn.in_progress.items()):
            tmp = dirs.root / claim["tmp"] if claim.get("tmp") else None
            lock = _Claim(dirs.locks, sha)
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
            for tmp in folder.glob(f"*{TMP_SUFFIX}"):
                if tmp.resolve() not in live and tmp.is_file():
                    _unlink(tmp)
                    removed.append(display_path(dirs.root, tmp) or str(tmp))
    if removed:
        _log.warning("removed leftovers of an interrupted scoring run: %s", ", ".join(removed))
    return removed


# ============================================================================ a whole run
def expand_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Explicit paths -> batch files: a folder gives its batch files; a file must be a CSV or
    Parquet file that exists.

    Raises:
        DataError: a path that does not exist or is not a CSV / Parquet file.
    """
    out: list[Path] = []
    problems: list[str] = []
    for p in paths:
        path = Path(p).expanduser().resolve()
        if path.is_dir():
            out.extend(discover_batches(path))
        elif not path.exists():
            problems.append(f"{path}: no such file")
        elif batch_kind(path) is None:
            problems.append(f"{path}: not a CSV or Parquet file (.csv, .csv.gz, .parquet, .pq)")
        else:
            out.append(path)
    if problems:
        raise DataError("cannot score:\n" + "\n".join(f"  - {x}" for x in problems))
    return list(dict.fromkeys(out))


def run_scoring(
    params: Params,
    root: str | Path,
    *,
    scorer: BatchScorer,
    suite: gx.ExpectationSuite,
    paths: Sequence[str | Path] | None = None,
    suite_path: str | Path | None = None,
) -> ScoringSummary:
    """The scoring run without Prefect: recover, then score ``paths`` (default: every batch in
    ``scoring.incoming_dir``) one after the other."""
    started, started_at = time.perf_counter(), iso_time()
    dirs = ScoringDirs.from_params(params, root)
    batches = expand_paths(paths) if paths else discover_batches(dirs.incoming)
    recovered = recover(params, root)
    summary = ScoringSummary(
        model_name=scorer.model.name,
        model_version=scorer.model.version,
        model_alias=scorer.model.alias,
        model_uri=scorer.model.uri,
        started_at=started_at,
        incoming_dir=display_path(dirs.root, dirs.incoming),
        recovered=recovered,
    )
    for batch in batches:
        summary.batches.append(
            score_batch(
                batch, scorer=scorer, suite=suite, params=params, root=root,
                suite_path=suite_path,
            )
        )
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary
