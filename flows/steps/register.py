"""Step 7, register: gather what one registration logs (the model, its evaluation, its lineage and
the pipeline's reports) and, once registered, write the record.

Reads (paths relative to the project root; :class:`flows.layout.Layout` is the catalog)::

    models/model.keras                               the calibrated detector (required)
    metrics.json                                     evaluation on the test split (absent or
                                                     without roc_auc/pr_auc/f1 when no labels)
    models/threshold.json                            the calibration record (optional)
    models/training_history.json                     the training history (optional)
    <data.snapshot_dir>/snapshot.json                the snapshot's sha256 and source (lineage)
    <data.snapshot_dir>/expectation_suite.json       the GX suite scoring validates batches with
    <data.snapshot_dir>/validation_report.json       the validation of the splits
    <data.snapshot_dir>/drift_reference.parquet      the drift reference of the training split
                                                     (written by :func:`flows.steps.reference.
                                                     write_drift_reference` just before)
    plots/**/*.png                                   evaluation plots (optional)
    gx/uncommitted/data_docs/local_site/             the GX Data Docs site (optional)
    <data.split_dir>/validation.parquet + split.json the input example (first rows, feature columns;
                                                     for a sequence model the first
                                                     max(5, model.window) points)

Writes ``models/registration.json``: run id, model name, version, aliases, promoted, reason.

This module touches no registry: :func:`registration_inputs` returns what to register, the stage
wiring (:func:`flows.stages.register`) hands it to :func:`flows.registry.log_and_register` and
gives the result to :func:`record_registration`.
"""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from flows.config import Params
from flows.io import atomic_write_json
from flows.layout import Layout

if TYPE_CHECKING:
    from flows.registry import Registration

__all__ = [
    "RegisterResult",
    "RegistrationInputs",
    "StepInputError",
    "git_commit",
    "record_registration",
    "registration_inputs",
]

_log = logging.getLogger(__name__)

EXAMPLE_ROWS = 5


class StepInputError(FileNotFoundError):
    """An input the register step needs is missing or unreadable; the message names the stage
    to run first."""


@dataclass(frozen=True)
class RegistrationInputs:
    """What one registration logs (the keyword arguments of
    :func:`flows.registry.log_and_register` that come from files)."""

    model_path: Path
    metrics: dict[str, Any]
    params_flat: dict[str, Any]
    artifacts: list[Path]
    tags: dict[str, str]
    input_example: pd.DataFrame


@dataclass(frozen=True)
class RegisterResult:
    registration: Registration
    registration_path: Path
    artifacts: list[Path] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.registration.run_id

    @property
    def version(self) -> int:
        return self.registration.version

    @property
    def promoted(self) -> bool:
        return self.registration.promoted

    @property
    def reason(self) -> str:
        return self.registration.reason


def git_commit(root: str | Path) -> str:
    """``git rev-parse HEAD`` of the repository holding ``root``, or ``"unknown"``."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else "unknown"


def _read_json(path: Path, what: str, *, required: bool = False, stage: str = "") -> dict:
    if not path.is_file():
        if required:
            raise StepInputError(f"no {what} at {path}; run the {stage} stage first")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StepInputError(f"cannot read {what} at {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise StepInputError(f"{what} at {path} is not a JSON object")
    return data


def _input_example(params: Params, layout: Layout) -> pd.DataFrame:
    path = layout.split("validation")
    if not path.is_file():
        raise StepInputError(
            f"no validation split at {path} for the model's input example; run the ingest stage "
            "first (`anomaly stage ingest`)"
        )
    meta = _read_json(layout.split_meta, "split metadata")
    columns = meta.get("feature_columns") or params.data.feature_columns
    try:
        frame = pd.read_parquet(path, columns=list(columns) if columns else None)
    except Exception as exc:  # pyarrow raises several types for a bad file or column
        raise StepInputError(f"cannot read the input example from {path}: {exc}") from exc
    if frame.empty:
        raise StepInputError(f"the validation split {path} is empty; cannot build an input example")
    # a sequence model scores windows: its example is at least one window of consecutive points
    rows = max(EXAMPLE_ROWS, params.model.window) if params.model.is_sequence else EXAMPLE_ROWS
    return frame.head(rows).reset_index(drop=True)


def _threshold_metrics(record: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for source, target in (
        ("threshold", "threshold"),
        ("false_alarm_rate", "expected_false_alarm_rate"),
        ("expected_false_alarm_rate", "expected_false_alarm_rate"),
    ):
        value = record.get(source)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.setdefault(target, float(value))
    return out


def _validation_warnings(layout: Layout) -> dict[str, dict[str, int]]:
    """``{split: {"n_warnings": failed warnings, column: unexpected rows}}`` of the validation report
    (logged as ``validation_warnings.<split>.<column>`` metrics); {} without a report."""
    report = _read_json(layout.validation_report, "validation report")
    out: dict[str, dict[str, int]] = {}
    for split, batch in (report.get("batches") or {}).items():
        if batch.get("n_warnings"):
            out[split] = {"n_warnings": int(batch["n_warnings"]), **(batch.get("warning_rows") or {})}
    return out


def _artifacts(layout: Layout) -> list[Path]:
    """The files and folders logged with the model (those that exist)."""
    artifacts: list[Path] = [
        p
        for p in (
            layout.metrics,
            layout.threshold,
            layout.history,
            layout.snapshot_meta,
            layout.suite,
            layout.validation_report,
            layout.drift_reference,
        )
        if p.is_file()
    ]
    if layout.plots_dir.is_dir():
        artifacts.extend(sorted(layout.plots_dir.rglob("*.png")))
    if layout.data_docs_site.is_dir():
        artifacts.append(layout.data_docs_site)
    return artifacts


def registration_inputs(params: Params, root: str | Path) -> RegistrationInputs:
    """What to register: the calibrated model, its metrics (evaluation, then the calibration's
    ``threshold`` and ``expected_false_alarm_rate``), the flat settings, the artifacts, the
    lineage tags and the input example.

    Raises:
        StepInputError: no ``models/model.keras`` (run the calibrate stage first) or no
            validation split (run ingest first).
    """
    layout = Layout.of(params, root)
    model_path = layout.model
    if not model_path.is_file():
        raise StepInputError(
            f"no trained model at {model_path}; run the calibrate stage first "
            "(`anomaly stage calibrate`, or `anomaly train` for the whole pipeline)"
        )
    metrics: dict[str, Any] = dict(_read_json(layout.metrics, "metrics"))
    threshold_record = _read_json(layout.threshold, "threshold record")
    for key, value in _threshold_metrics(threshold_record).items():
        metrics.setdefault(key, value)
    snapshot = _read_json(layout.snapshot_meta, "snapshot metadata")
    warnings = _validation_warnings(layout)
    if warnings:
        metrics.setdefault("validation_warnings", warnings)

    tags = {
        "data.snapshot_sha256": str(snapshot.get("sha256", "unknown")),
        "data.source": str(snapshot.get("source") or params.data.source),
        "git.commit": git_commit(layout.root),
        "pipeline.step": "register",
    }
    artifacts = _artifacts(layout)
    if not layout.suite.is_file():
        _log.warning(
            "no expectation suite at %s: scoring cannot validate batches against this version",
            layout.suite,
        )
    return RegistrationInputs(
        model_path=model_path,
        metrics=metrics,
        params_flat=params.flat(),
        artifacts=artifacts,
        tags=tags,
        input_example=_input_example(params, layout),
    )


def record_registration(
    params: Params, root: str | Path, registration: Registration, inputs: RegistrationInputs
) -> RegisterResult:
    """Write ``models/registration.json``: ``registration`` with ``registered_at`` (ISO, UTC) and
    the ``lineage`` tags."""
    record = registration.to_dict()
    record["registered_at"] = datetime.now(tz=UTC).isoformat(timespec="seconds")
    record["lineage"] = inputs.tags
    out = atomic_write_json(record, Layout.of(params, root).registration)
    return RegisterResult(
        registration=registration,
        registration_path=out,
        artifacts=inputs.artifacts,
        metrics=inputs.metrics,
        tags=inputs.tags,
    )
