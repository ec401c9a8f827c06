"""Step 7, register: one MLflow run with the model, its evaluation and lineage; a new registered
version with alias ``challenger``; the promotion gate on ``champion``.

Reads (paths relative to the project root)::

    models/model.keras                               the calibrated detector (required)
    metrics.json                                     evaluation on the test split (absent or
                                                     without roc_auc/pr_auc/f1 when no labels)
    models/threshold.json                            the calibration record (optional)
    <data.snapshot_dir>/snapshot.json                the snapshot's sha256 and source (lineage)
    <data.snapshot_dir>/expectation_suite.json       the GX suite scoring validates batches with
    <data.snapshot_dir>/validation_report.json       the validation of the splits
    plots/**/*.png                                   evaluation plots (optional)
    gx/uncommitted/data_docs/local_site/             the GX Data Docs site (optional)
    <data.split_dir>/validation.parquet + split.json the input example (first rows, feature columns;
                                                     for a sequence model the first
                                                     max(5, model.window) points)

Writes ``models/registration.json``: run id, model name, version, aliases, promoted, reason.
All MLflow work is in :func:`flows.registry.log_and_register`; this module only gathers files.
"""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from flows.config import Params, resolve
from flows.registry import Registration, log_and_register
from flows.steps.calibrate import MODEL_FILE, THRESHOLD_FILE
from flows.steps.evaluate import METRICS_FILE
from flows.steps.ingest import SNAPSHOT_META_FILE, SPLIT_META_FILE, atomic_write_json
from flows.steps.preprocess import MODELS_DIR, PLOTS_DIR
from flows.steps.train import HISTORY_FILE
from flows.steps.validate import GX_DIR, REPORT_FILE, SUITE_FILE

__all__ = [
    "MODEL_FILE",
    "REGISTRATION_FILE",
    "RegisterResult",
    "StepInputError",
    "git_commit",
    "register",
]

_log = logging.getLogger(__name__)

REGISTRATION_FILE = f"{MODELS_DIR}/registration.json"
DATA_DOCS_DIR = f"{GX_DIR}/uncommitted/data_docs/local_site"
EXAMPLE_ROWS = 5


class StepInputError(FileNotFoundError):
    """An input the register step needs is missing or unreadable; the message names the stage
    to run first."""


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


def _input_example(params: Params, root: Path) -> pd.DataFrame:
    split_dir = resolve(root, params.data.split_dir)
    path = split_dir / "validation.parquet"
    if not path.is_file():
        raise StepInputError(
            f"no validation split at {path} for the model's input example; run the ingest stage "
            "first (`anomaly stage ingest`)"
        )
    meta = _read_json(split_dir / SPLIT_META_FILE, "split metadata")
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


def register(params: Params, root: str | Path) -> RegisterResult:
    """Log and register the calibrated model; write ``models/registration.json``.

    Raises:
        StepInputError: no ``models/model.keras`` (run the calibrate stage first) or no
            validation split (run ingest first).
        flows.registry.RegistryError: the registry failed (after retries).
    """
    root = Path(root).resolve()
    model_path = root / MODEL_FILE
    if not model_path.is_file():
        raise StepInputError(
            f"no trained model at {model_path}; run the calibrate stage first "
            "(`anomaly stage calibrate`, or `anomaly train` for the whole pipeline)"
        )
    snapshot_dir = resolve(root, params.data.snapshot_dir)

    metrics: dict[str, Any] = dict(_read_json(root / METRICS_FILE, "metrics"))
    threshold_record = _read_json(root / THRESHOLD_FILE, "threshold record")
    for key, value in _threshold_metrics(threshold_record).items():
        metrics.setdefault(key, value)
    snapshot = _read_json(snapshot_dir / SNAPSHOT_META_FILE, "snapshot metadata")

    tags = {
        "data.snapshot_sha256": str(snapshot.get("sha256", "unknown")),
        "data.source": str(snapshot.get("source") or params.data.source),
        "git.commit": git_commit(root),
        "pipeline.step": "register",
    }

    artifacts: list[Path] = [
        p
        for p in (
            root / METRICS_FILE,
            root / THRESHOLD_FILE,
            root / HISTORY_FILE,
            snapshot_dir / SNAPSHOT_META_FILE,
            snapshot_dir / SUITE_FILE,
            snapshot_dir / REPORT_FILE,
        )
        if p.is_file()
    ]
    plots = root / PLOTS_DIR
    if plots.is_dir():
        artifacts.extend(sorted(plots.rglob("*.png")))
    docs = root / DATA_DOCS_DIR
    if docs.is_dir():
        artifacts.append(docs)
    if not (snapshot_dir / SUITE_FILE).is_file():
        _log.warning(
            "no expectation suite at %s: scoring cannot validate batches against this version",
            snapshot_dir / SUITE_FILE,
        )

    registration = log_and_register(
        params,
        root,
        model_path=model_path,
        metrics=metrics,
        params_flat=params.flat(),
        artifacts=artifacts,
        tags=tags,
        input_example=_input_example(params, root),
    )
    record = registration.to_dict()
    record["registered_at"] = datetime.now(tz=UTC).isoformat(timespec="seconds")
    record["lineage"] = tags
    out = atomic_write_json(record, root / REGISTRATION_FILE)
    return RegisterResult(
        registration=registration,
        registration_path=out,
        artifacts=artifacts,
        metrics=metrics,
        tags=tags,
    )
