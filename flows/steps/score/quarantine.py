"""Quarantining a batch: its report, then the file itself, in the quarantine folder.

``<quarantine_dir>/<batch>`` is the batch byte for byte (moved from the incoming folder, or
*copied* when it was given by path from elsewhere, and left where it was);
``<quarantine_dir>/<batch>.report.json`` says why: a one-line reason, every problem (each failed
expectation), the rows of the rejected chunk, and the model version and suite it was checked
against. Called under the ledger lock (:func:`~flows.steps.score.batch.score_batch`).
"""

from __future__ import annotations

import json
from pathlib import Path

from flows.io import atomic_write_text, copy_file, display_path, jsonable, move_file
from flows.layout import ScoringDirs
from flows.steps.score.batches import free_path
from flows.steps.score.ledger import iso_time
from flows.steps.score.results import BatchRejected
from flows.steps.score.scorer import ModelRef

__all__ = ["quarantine"]

WHAT_NEXT = (
    "fix the file and drop it into the incoming folder again (a changed file is a new batch), "
    "or score it with `anomaly score PATH`"
)


def quarantine(
    path: Path,
    *,
    sha: str,
    size: int | None,
    rejection: BatchRejected,
    dirs: ScoringDirs,
    model: ModelRef,
    suite_path: Path | None,
) -> tuple[Path, Path]:
    """Write the report, then move (incoming) or copy (elsewhere) the batch to quarantine.
    Returns ``(quarantined file, report)``."""
    dest = free_path(dirs.quarantine, path.name, sha)
    report_path = dirs.quarantine_report(dest)
    vr = rejection.report
    report = {
        "batch": path.name,
        "source": display_path(dirs.root, path),
        "quarantined_to": display_path(dirs.root, dest),
        "original_kept": not dirs.in_incoming(path),
        "sha256": sha,
        "bytes": size,
        "reason": rejection.reason,
        "stage": rejection.stage,
        "problems": rejection.problems or [rejection.reason],
        "rows": None if rejection.rows is None else list(rejection.rows),
        "model": {"name": model.name, "version": model.version, "alias": model.alias,
                  "uri": model.uri},
        "suite": display_path(dirs.root, suite_path),
        "validation": None if vr is None else vr.to_dict(),
        "data_docs_page": None if vr is None or vr.data_docs_page is None
        else str(vr.data_docs_page),
        "great_expectations_result": None if vr is None else vr.raw,
        "quarantined_at": iso_time(),
        "what_next": WHAT_NEXT,
    }
    atomic_write_text(report_path, json.dumps(jsonable(report), indent=2) + "\n")
    if dirs.in_incoming(path):
        move_file(path, dest)
    else:
        copy_file(path, dest)
    return dest, report_path
