"""Which files are batches and what they are called: discovery in the incoming folder, explicit
paths, the free names a batch takes in ``_done/``, the quarantine and the scored folder.

A batch is one file of a format in :data:`flows.io.TABLE_FORMATS` (CSV, also compressed, or
Parquet). Files whose name starts with ``.`` or ``_`` are never picked up, so a producer can
write ``.upload.csv`` and rename it when complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from flows.errors import DataError
from flows.io import suffixes_text, table_kind, table_stem
from flows.layout import ScoringDirs
from flows.steps.score.ledger import LedgerTxn
from flows.steps.score.output import output_sha

__all__ = ["discover_batches", "expand_paths", "free_path", "output_name"]


def discover_batches(directory: str | Path) -> list[Path]:
    """The batch files directly in ``directory`` (table files, not hidden, not ``_*``), sorted
    by name; ``[]`` when the folder does not exist."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and not p.name.startswith((".", "_")) and table_kind(p) is not None
    )


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
        elif table_kind(path) is None:
            problems.append(f"{path}: not a CSV or Parquet file ({suffixes_text()})")
        else:
            out.append(path)
    if problems:
        raise DataError("cannot score:\n" + "\n".join(f"  - {x}" for x in problems))
    return list(dict.fromkeys(out))


def _suffix(name: str) -> str:
    return name[len(table_stem(name)) :]


def free_path(directory: Path, name: str, sha: str) -> Path:
    """``directory/name``, or ``directory/<stem>.<sha12><suffix>`` when a file of that name is
    already there (which may only be the same content: same hash, same name)."""
    first = directory / name
    if not first.exists():
        return first
    return directory / f"{table_stem(name)}.{sha[:12]}{_suffix(name)}"


def output_name(txn: LedgerTxn, dirs: ScoringDirs, name: str, sha: str) -> str:
    """``<stem>.parquet`` unless another batch owns that name (then ``<stem>.<sha12>.parquet``)."""
    stem = table_stem(name)
    taken = txn.taken_outputs(sha)
    for candidate in (f"{stem}.parquet", f"{stem}.{sha[:12]}.parquet", f"{stem}.{sha}.parquet"):
        if candidate in taken:
            continue
        existing = dirs.scored / candidate
        if existing.exists() and output_sha(existing) != sha:
            continue  # a file this ledger does not know: never overwrite it
        return candidate
    raise RuntimeError(f"no free output name for batch {name} in {dirs.scored}")
