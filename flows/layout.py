"""The one catalog of artifact paths: where every step reads and writes, and what DVC declares.

Folders that ``params.yaml`` sets (``data.snapshot_dir``, ``data.split_dir``, the ``scoring``
folders, ``report.reports_dir``) are resolved against the project root; every other artifact has a
fixed place under the root. ``dvc.yaml`` declares the same paths for the default settings
(:meth:`Layout.stage_files` is what a test compares it with)::

    <snapshot_dir>/snapshot.parquet, snapshot.json      ingest: the source as read, its hash
    <split_dir>/{train,validation,test}.parquet, split.json   ingest: the split
    <snapshot_dir>/expectation_suite.json, validation_report.json   validate
    gx/                                                 the Great Expectations project (Data Docs
                                                        under gx/uncommitted/data_docs/local_site)
    models/preprocessing.keras, preprocessing.json      preprocess
    models/detector.keras, training_history.json        train (plots/loss.csv)
    models/model.keras, threshold.json                  calibrate
    metrics.json, plots/*                               evaluate
    models/registration.json                            register
    <snapshot_dir>/drift_reference.parquet              register: a bounded sample of the
                                                        training split, logged with the version
    <snapshot_dir>/suites/<version>.json                scoring: each model version's GX suite
    <snapshot_dir>/references/<version>.parquet         report: each model version's drift
                                                        reference (downloaded from its run)
    <incoming_dir>/, <incoming_dir>/_done/              scoring: new batches, scored inputs
    <scored_dir>/<batch>.parquet, _ledger.db, _locks/   scoring: outputs and the ledger (its
                                                        SQLite file unless scoring.ledger_url)
    <quarantine_dir>/                                   scoring: rejected batches + reports
    <reports_dir>/<YYYY-MM-DD>/                         the data-quality report of a day:
        report.html, report.json, plots/*.png, data_docs/   (:class:`ReportFolder`)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flows.io import display_path, resolve

if TYPE_CHECKING:
    from flows.config import Params

__all__ = ["SPLIT_NAMES", "Layout", "ReportFolder", "ScoringDirs"]

SPLIT_NAMES = ("train", "validation", "test")

MODELS_DIR = "models"
PLOTS_DIR = "plots"
GX_DIR = "gx"
DATA_DOCS_SITE = "local_site"

# evaluate's plots: data for `dvc plots`, and pictures
PLOT_DATA = ("roc.csv", "pr.csv", "scores.csv")
PLOT_PNGS = ("score_histogram.png", "roc_curve.png", "pr_curve.png", "top_contributions.png")
SEQUENCE_PLOT_PNGS = ("series_flagged.png", "reconstruction_error.png")

# the scoring folders' own files (names starting with "_" are never taken for batches)
LEDGER_DB_FILE = "_ledger.db"  # and SQLite's -wal / -shm next to it
#: the ledger of earlier versions: imported once into the database, then renamed with the suffix
LEDGER_FILE = "_ledger.json"
LEDGER_IMPORTED_SUFFIX = ".imported"
GX_LOCK_FILE = "_gx.lock"
LOCKS_DIR = "_locks"
DONE_DIR = "_done"
#: ``<output>.tmp``: a scored file being written (renamed onto ``<output>`` when complete)
TMP_SUFFIX = ".tmp"
#: ``<quarantined file>.report.json``: why a batch was quarantined
REPORT_SUFFIX = ".report.json"

# a day's data-quality report folder, and the lock of the reports folder (two runs for one day)
REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
REPORT_PLOTS_DIR = "plots"
REPORT_DATA_DOCS_DIR = "data_docs"
REPORTS_LOCK_FILE = ".lock"

#: register: the drift reference; logged under the run's ``reports/`` with this name
DRIFT_REFERENCE_FILE = "drift_reference.parquet"


@dataclass(frozen=True)
class ScoringDirs:
    """The folders of ``params.scoring`` resolved against the project root (absolute)."""

    root: Path
    incoming: Path
    scored: Path
    quarantine: Path
    #: ``scoring.ledger_url``: the ledger's database (None: ``<scored>/_ledger.db``)
    ledger_url: str | None = None

    @classmethod
    def from_params(cls, params: Params, root: str | Path) -> ScoringDirs:
        """``scoring.incoming_dir``, ``scored_dir`` and ``quarantine_dir`` resolved against
        ``root``."""
        root = Path(root).resolve()
        s = params.scoring
        return cls(
            root=root,
            incoming=resolve(root, s.incoming_dir).resolve(),
            scored=resolve(root, s.scored_dir).resolve(),
            quarantine=resolve(root, s.quarantine_dir).resolve(),
            ledger_url=s.ledger_url,
        )

    @property
    def done(self) -> Path:
        """Inputs that were scored (or duplicates of a scored batch): kept, never deleted."""
        return self.incoming / DONE_DIR

    @property
    def locks(self) -> Path:
        """Per-batch claim locks ``<sha256>.lock``."""
        return self.scored / LOCKS_DIR

    def claim_lock(self, sha: str) -> Path:
        """``_locks/<sha256>.lock``: held while a run scores the batch of that content (a
        SQLite ledger's claim; PostgreSQL holds an advisory lock instead)."""
        return self.locks / f"{sha}.lock"

    @property
    def gx_lock(self) -> Path:
        """Serialises GX's file stores between processes (they are not multi-process safe)."""
        return self.scored / GX_LOCK_FILE

    def partial_output(self, name: str) -> Path:
        """``<scored_dir>/<name>.tmp``: the scored file ``name`` while it is being written."""
        return self.scored / (name + TMP_SUFFIX)

    @staticmethod
    def quarantine_report(quarantined: Path) -> Path:
        """``<quarantined file>.report.json`` next to a quarantined batch."""
        return quarantined.with_name(quarantined.name + REPORT_SUFFIX)

    def in_incoming(self, path: Path) -> bool:
        """True for a file directly in the incoming folder (moved out when processed)."""
        return Path(path).resolve().parent == self.incoming


@dataclass(frozen=True)
class ReportFolder:
    """The files of one day's report folder ``<reports_dir>/<YYYY-MM-DD>/``, or of its staging
    twin (the same names under another folder)."""

    folder: Path

    @property
    def html(self) -> Path:
        return self.folder / REPORT_HTML

    @property
    def json(self) -> Path:
        return self.folder / REPORT_JSON

    @property
    def plots_dir(self) -> Path:
        return self.folder / REPORT_PLOTS_DIR

    def plot(self, name: str) -> Path:
        """``plots/<name>.png``."""
        return self.plots_dir / f"{name}.png"

    @property
    def data_docs_dir(self) -> Path:
        return self.folder / REPORT_DATA_DOCS_DIR

    @property
    def data_docs_index(self) -> Path:
        return self.data_docs_dir / "index.html"


@dataclass(frozen=True)
class Layout:
    """Every artifact path of a project (absolute), for one set of settings."""

    root: Path
    snapshot_dir: Path
    split_dir: Path
    scoring: ScoringDirs
    reports_dir: Path

    @classmethod
    def of(cls, params: Params, root: str | Path) -> Layout:
        root = Path(root).resolve()
        return cls(
            root=root,
            snapshot_dir=resolve(root, params.data.snapshot_dir),
            split_dir=resolve(root, params.data.split_dir),
            scoring=ScoringDirs.from_params(params, root),
            reports_dir=resolve(root, params.report.reports_dir).resolve(),
        )

    def relative(self, path: str | Path | None) -> str | None:
        """``path`` relative to the root when inside it (for metadata and messages)."""
        return display_path(self.root, path)

    # ------------------------------------------------------------------ ingest
    @property
    def snapshot(self) -> Path:
        return self.snapshot_dir / "snapshot.parquet"

    @property
    def snapshot_meta(self) -> Path:
        return self.snapshot_dir / "snapshot.json"

    def split(self, name: str) -> Path:
        """``<split_dir>/<name>.parquet`` for train | validation | test."""
        if name not in SPLIT_NAMES:
            raise ValueError(f"unknown split {name!r}; splits: {', '.join(SPLIT_NAMES)}")
        return self.split_dir / f"{name}.parquet"

    @property
    def splits(self) -> dict[str, Path]:
        return {name: self.split(name) for name in SPLIT_NAMES}

    @property
    def split_meta(self) -> Path:
        return self.split_dir / "split.json"

    # ------------------------------------------------------------------ validate
    @property
    def suite(self) -> Path:
        return self.snapshot_dir / "expectation_suite.json"

    @property
    def validation_report(self) -> Path:
        return self.snapshot_dir / "validation_report.json"

    @property
    def gx_dir(self) -> Path:
        return self.root / GX_DIR

    @property
    def data_docs_site(self) -> Path:
        return self.gx_dir / "uncommitted" / "data_docs" / DATA_DOCS_SITE

    # ------------------------------------------------------------------ model steps
    @property
    def models_dir(self) -> Path:
        return self.root / MODELS_DIR

    @property
    def plots_dir(self) -> Path:
        return self.root / PLOTS_DIR

    @property
    def preprocessing_model(self) -> Path:
        return self.models_dir / "preprocessing.keras"

    @property
    def preprocessing_meta(self) -> Path:
        return self.models_dir / "preprocessing.json"

    @property
    def detector(self) -> Path:
        """The fitted, uncalibrated detector (train)."""
        return self.models_dir / "detector.keras"

    @property
    def history(self) -> Path:
        return self.models_dir / "training_history.json"

    @property
    def loss_csv(self) -> Path:
        return self.plots_dir / "loss.csv"

    @property
    def model(self) -> Path:
        """The calibrated detector (calibrate): what evaluate scores and register packages."""
        return self.models_dir / "model.keras"

    @property
    def threshold(self) -> Path:
        return self.models_dir / "threshold.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    def plot(self, name: str) -> Path:
        return self.plots_dir / name

    @property
    def registration(self) -> Path:
        return self.models_dir / "registration.json"

    @property
    def drift_reference(self) -> Path:
        """register: the drift reference of the training split (:mod:`flows.steps.reference`),
        logged with the version's run."""
        return self.snapshot_dir / DRIFT_REFERENCE_FILE

    # ------------------------------------------------------------------ serving
    def version_suite(self, version: int) -> Path:
        """The cached GX suite of a registered model version."""
        return self.snapshot_dir / "suites" / f"{int(version)}.json"

    def version_reference(self, version: int) -> Path:
        """The cached drift reference of a registered model version (the report reads it)."""
        return self.snapshot_dir / "references" / f"{int(version)}.parquet"

    def report_dir(self, day: str) -> Path:
        return self.reports_dir / day

    def report_folder(self, day: str) -> ReportFolder:
        """The files of the report of ``day`` (``YYYY-MM-DD``)."""
        return ReportFolder(self.report_dir(day))

    @property
    def reports_lock(self) -> Path:
        """Held while a day's report folder is swapped in (two runs for the same day)."""
        return self.reports_dir / REPORTS_LOCK_FILE

    # ------------------------------------------------------------------ DVC
    def stage_files(self) -> dict[str, dict[str, list[str]]]:
        """What each DVC stage reads (``deps``) and writes (``outs``: outs, metrics and plots),
        relative to the root: ``dvc.yaml`` declares exactly these for the default settings."""
        rel = self.relative
        split_dir = rel(self.split_dir)
        plots = [rel(self.plot(n)) for n in (*PLOT_DATA, *PLOT_PNGS, *SEQUENCE_PLOT_PNGS)]
        files: dict[str, dict[str, list[str | None]]] = {
            "ingest": {"deps": [], "outs": [rel(self.snapshot), rel(self.snapshot_meta), split_dir]},
            "validate": {
                "deps": [split_dir],
                "outs": [rel(self.suite), rel(self.validation_report)],
            },
            "preprocess": {
                "deps": [split_dir, rel(self.validation_report)],
                "outs": [rel(self.preprocessing_model), rel(self.preprocessing_meta)],
            },
            "train": {
                "deps": [split_dir, rel(self.preprocessing_model)],
                "outs": [rel(self.detector), rel(self.history), rel(self.loss_csv)],
            },
            "calibrate": {
                "deps": [split_dir, rel(self.detector)],
                "outs": [rel(self.model), rel(self.threshold)],
            },
            "evaluate": {"deps": [split_dir, rel(self.model)], "outs": [rel(self.metrics), *plots]},
            "register": {
                "deps": [
                    split_dir,
                    rel(self.model),
                    rel(self.threshold),
                    rel(self.metrics),
                    rel(self.snapshot_meta),
                    rel(self.suite),
                ],
                "outs": [rel(self.registration), rel(self.drift_reference)],
            },
        }
        return {stage: {k: [str(p) for p in v] for k, v in io.items()} for stage, io in files.items()}
