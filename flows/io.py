"""Files: the accepted table formats, reading one table, atomic writes, moves, hashes, paths.

Every step writes through :func:`atomic_save` (a temporary name next to the target, then
``os.replace``), so a crash never leaves a half-written file under a final name. Paths from
``params.yaml`` are resolved with :func:`resolve` and shown with :func:`display_path` (relative
to the project root when inside it, so metadata and ledgers stay portable).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flows.errors import DataError

__all__ = [
    "TABLE_FORMATS",
    "atomic_save",
    "atomic_write_json",
    "atomic_write_parquet",
    "atomic_write_text",
    "copy_file",
    "display_path",
    "file_sha256",
    "first_line",
    "fsync_dir",
    "jsonable",
    "move_file",
    "read_table",
    "resolve",
    "suffixes_text",
    "table_kind",
    "table_stem",
    "unlink_quietly",
]

#: The one table of accepted input formats: kind -> file name endings (lower case). Training
#: (``data.source``) and scoring (batches) accept the same files. Compressed CSV is decompressed
#: by pandas from the ending (``.zst`` needs the optional ``zstandard`` package).
TABLE_FORMATS: dict[str, tuple[str, ...]] = {
    "csv": (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".csv.zst"),
    "parquet": (".parquet", ".pq"),
}


# --------------------------------------------------------------------------- formats
def table_kind(path: str | Path) -> str | None:
    """``"csv"``, ``"parquet"`` or None (not a table file), from the file name."""
    name = Path(path).name.lower()
    return next((kind for kind, ends in TABLE_FORMATS.items() if name.endswith(ends)), None)


def table_stem(name: str) -> str:
    """The file name without its table ending: ``day1.csv.gz`` -> ``day1``."""
    lower = name.lower()
    endings = sorted((e for ends in TABLE_FORMATS.values() for e in ends), key=len, reverse=True)
    for ending in endings:
        if lower.endswith(ending) and len(name) > len(ending):
            return name[: -len(ending)]
    return Path(name).stem or name


def suffixes_text() -> str:
    """The accepted endings for messages: ``.csv, .csv.gz, ... or .pq``."""
    endings = [e for ends in TABLE_FORMATS.values() for e in ends]
    return ", ".join(endings[:-1]) + f" or {endings[-1]}"


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (its type name when the message is empty)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_table(path: str | Path) -> pd.DataFrame:
    """Read one CSV (optionally compressed) or Parquet file; problems raise :class:`DataError`."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if not path.is_file():
        raise DataError(f"not a regular file: {path}")
    kind = table_kind(path)
    if kind is None:
        raise DataError(f"unsupported file type: {path} (expected {suffixes_text()})")
    if path.stat().st_size == 0:
        raise DataError(f"empty data file (0 bytes): {path}")
    try:
        df = pd.read_csv(path, low_memory=False) if kind == "csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"empty data file (no columns, no rows): {path}") from exc
    except Exception as exc:  # parser, decompression, Arrow and OS errors alike
        raise DataError(
            f"cannot read {path} as {'CSV' if kind == 'csv' else 'Parquet'}: {first_line(exc)}"
        ) from exc
    if len(df.columns) == 0:
        raise DataError(f"empty data file (no columns): {path}")
    if len(df) == 0:
        raise DataError(f"empty data file (a header but 0 rows): {path}")
    df.columns = [str(c) for c in df.columns]
    return df


# --------------------------------------------------------------------------- paths
def resolve(root: str | Path, path: str | Path) -> Path:
    """A path from params: absolute (after ``~`` expansion) as given, else relative to ``root``."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(root) / p


def display_path(root: str | Path, path: str | Path | None) -> str | None:
    """``path`` relative to ``root`` when inside it, else as given (None stays None)."""
    if path is None:
        return None
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- writing
def atomic_save(path: str | Path, write: Callable[[Path], object], *, fsync: bool = False) -> Path:
    """Call ``write(tmp)`` with a temporary file next to ``path`` (same suffix, so writers that
    check it, like Keras' ``save``, accept it), then ``os.replace`` it onto ``path``. With
    ``fsync`` the file's bytes reach the disk before the rename (ledgers, reports).

    A crash or an exception leaves the previous ``path`` untouched and no temporary file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_parquet(df: pd.DataFrame, path: Path) -> Path:
    """Write ``df`` (without its index) to ``path`` via a temporary name and ``os.replace``."""
    return atomic_save(path, lambda tmp: df.to_parquet(tmp, index=False))


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` via a temporary name, fsynced, then renamed."""
    return atomic_save(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), fsync=True)


def jsonable(obj: Any) -> Any:
    """``obj`` as strict JSON values: numpy scalars -> Python, NaN -> None, +-inf -> "inf" /
    "-inf", tuples and sets -> lists, anything else unknown (Paths, timestamps) -> str."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def atomic_write_json(obj: Any, path: Path) -> Path:
    """Write ``obj`` as indented, strict JSON (no NaN/Infinity) via a temporary name."""
    text = json.dumps(obj, indent=2, allow_nan=False, default=str) + "\n"
    return atomic_save(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


# --------------------------------------------------------------------------- moving, hashing
def unlink_quietly(path: Path | None) -> None:
    """Delete ``path`` if it exists (None: nothing)."""
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort: not every file system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def copy_file(src: Path, dst: Path) -> Path:
    """Copy ``src`` to ``dst`` through a temporary name (a crash leaves no partial ``dst``)."""
    return atomic_save(dst, lambda tmp: shutil.copy2(src, tmp))


def move_file(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` (atomic on one file system; copy + rename + delete across)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        copy_file(src, dst)
        src.unlink()


def file_sha256(path: str | Path, block: int = 1 << 20) -> str:
    """SHA-256 of the file's bytes (the ledger key: the same content is the same batch)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            h.update(chunk)
    return h.hexdigest()
