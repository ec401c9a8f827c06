"""The nightly data-quality report: one day's batches -> drift, trend, Data Docs, one HTML page.

    read the scoring ledger (read-only) -> the batches scored or quarantined on the day (UTC)
    -> drift of the day's scored rows against the training snapshot, per feature (PSI + KS)
    -> anomaly-rate trend over ``report.trend_days`` days ending at the day
    -> a Great Expectations Data Docs site of the day's validations only
    -> plots (matplotlib PNGs) + one self-contained HTML page + report.json
    -> one MLflow run (metrics, the folder as artifacts) and a Prefect markdown artifact

Output, replaced whole when the same day is reported again::

    <report.reports_dir>/<YYYY-MM-DD>/report.html      self-contained: CSS inline, plots as
                                                       data: URIs, no script, font or style
                                                       fetched from anywhere
    <report.reports_dir>/<YYYY-MM-DD>/report.json      the numbers of the page
    <report.reports_dir>/<YYYY-MM-DD>/plots/*.png      the plots of the page, as files
    <report.reports_dir>/<YYYY-MM-DD>/data_docs/       GX Data Docs of the day's validations
                                                       (index.html; linked from the page)

The folder is built under a hidden staging name next to it and swapped in by renames, so a
reader (or a crash) never sees half a report, and a rerun replaces the previous one.

**Which batches.** A ledger entry belongs to the day of its UTC timestamp: ``scored_at`` of a
scored batch (when scoring started), ``at`` of a quarantined one. Batches skipped as duplicates
are not in the ledger (they were reported on the day they were scored); batches being scored
right now are not reported (the page says how many). Rows of a quarantined batch are counted in
its quarantined file when it can be read, else shown as unknown.

**Drift.** The reference is the training snapshot ``<data.split_dir>/train.parquet`` of the
project (all its rows, labelled anomalies included, because scored batches contain anomalies
too); the features are the model's input columns (:func:`flows.steps.ingest.feature_columns`).
For each feature: the population stability index over the training split's deciles
(:func:`population_stability_index`) and the two-sample Kolmogorov-Smirnov test
(:func:`ks_test`). A feature is flagged as drifted by :func:`is_drifted`. Both sides are sampled
reproducibly to at most :data:`MAX_DRIFT_ROWS` rows (:func:`sample_parquet`), so a day of any
size costs bounded memory and time. Without a training snapshot the page says so instead of
failing.

The step functions below are plain functions (tests call them directly); the flow at the end only
wires them, does the file and MLflow I/O and logs.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import logging
import math
import os
import re
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.config import ConfigError, Params, load_params, project_root, resolve
from flows.scoring import retry_if_transient
from flows.steps.ingest import atomic_write_json, feature_columns, jsonable, split_paths
from flows.steps.score import (
    GX_LOCK_FILE,
    Ledger,
    ScoringDirs,
    batch_kind,
    display_path,
    exclusive_lock,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "KS_ALPHA",
    "KS_MIN_STATISTIC",
    "MAX_DRIFT_ROWS",
    "PSI_BINS",
    "PSI_DRIFT",
    "PSI_EPSILON",
    "PSI_WATCH",
    "BatchRow",
    "DataDocs",
    "DataQualityReport",
    "DriftResult",
    "FeatureDrift",
    "TrendPoint",
    "anomaly_rate_trend",
    "batches_of_day",
    "build_data_docs",
    "collect_batches",
    "compute_drift",
    "count_rows",
    "data_quality_flow",
    "drift_level",
    "drift_of_day",
    "entry_day",
    "feature_drift",
    "is_drifted",
    "ks_test",
    "log_report",
    "parse_report_date",
    "population_stability_index",
    "publish",
    "quantile_edges",
    "render_html",
    "render_plots",
    "sample_parquet",
    "write_report",
]

_log = logging.getLogger(__name__)

ARTIFACT_KEY = "data-quality-report"
HTML_FILE = "report.html"
JSON_FILE = "report.json"
PLOTS_DIR = "plots"
DATA_DOCS_DIR = "data_docs"
MLFLOW_ARTIFACT_DIR = "report"

#: PSI: number of quantile bins of the training values, and the smoothing added to every bin's
#: share (so an empty bin gives a large but finite term instead of log(0)).
PSI_BINS = 10
PSI_EPSILON = 1e-4
#: PSI rule of thumb (credit-scoring practice): < 0.1 stable, 0.1-0.2 moderate shift, > 0.2 drift.
PSI_WATCH = 0.1
PSI_DRIFT = 0.2
#: KS: flagged when p < KS_ALPHA *and* the statistic (largest gap between the two empirical CDFs)
#: exceeds KS_MIN_STATISTIC. On samples of 10^5 rows p is tiny for differences nobody cares
#: about; the statistic keeps the flag to shifts of at least 10 percentage points of the CDF.
KS_ALPHA = 0.01
KS_MIN_STATISTIC = 0.1
#: Rows sampled (without replacement, fixed seed) from the day's scored rows and from the
#: training snapshot for the drift statistics: bounds memory and time on days of any size.
MAX_DRIFT_ROWS = 200_000
#: Rows always kept from one batch (when it has them), so per-batch drift is not computed from a
#: handful of rows on a day of many batches.
MIN_BATCH_SAMPLE = 2_000
SAMPLE_SEED = 0
#: A validation stored up to this long before the day's start or after its end still belongs to
#: a batch of the day (a batch scored at 23:59 is validated after midnight; a quarantine entry is
#: written after its validation).
VALIDATION_SLACK = timedelta(hours=1)

DRIFT_RULE = (
    f"a feature is flagged as drifted when PSI > {PSI_DRIFT} or when the Kolmogorov-Smirnov "
    f"test has p < {KS_ALPHA} and statistic D > {KS_MIN_STATISTIC}"
)
PSI_FORMULA = (
    f"PSI = sum over {PSI_BINS} bins of (a - e) * ln(a / e), bins cut at the deciles of the "
    "training values (first and last bins open-ended, tied cut points merged), e and a the "
    f"shares of training and day rows per bin, each smoothed as (share + {PSI_EPSILON:g}) / "
    f"(1 + bins * {PSI_EPSILON:g})"
)


# ============================================================================ dates
def parse_report_date(value: str | date | None, *, today: date | None = None) -> date:
    """The day to report: ``YYYY-MM-DD`` (UTC), or yesterday (UTC) when ``value`` is None.

    Args:
        value: the ``--date`` option (or the deployment's ``date`` parameter).
        today: today's UTC date (default: now); for tests.

    Raises:
        ConfigError: naming ``--date`` and the received value: not ``YYYY-MM-DD``, not a
            calendar date, or a day after today (UTC).
    """
    today = today or datetime.now(tz=UTC).date()
    if value is None:
        return today - timedelta(days=1)
    if isinstance(value, datetime):  # a datetime is a date too: say which day it means
        value = value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        day = value
    else:
        text = str(value).strip()
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ConfigError(
                f"--date: expected a day as YYYY-MM-DD (UTC), e.g. {today.isoformat()}; "
                f"got {value!r}",
                keys=["--date"],
            )
        try:
            day = date.fromisoformat(text)
        except ValueError as exc:
            raise ConfigError(
                f"--date: {value!r} is not a calendar date ({exc})", keys=["--date"]
            ) from None
    if day > today:
        raise ConfigError(
            f"--date: {day.isoformat()!r} is in the future (today is {today.isoformat()} UTC); "
            "nothing can have been scored on it yet",
            keys=["--date"],
        )
    return day


def entry_day(timestamp: str | None) -> date | None:
    """The UTC day of an ISO-8601 ledger timestamp (naive ones are taken as UTC); None when the
    timestamp is missing or unreadable."""
    ts = _utc(timestamp)
    return ts.date() if ts is not None else None


def _utc(timestamp: str | None) -> datetime | None:
    if not timestamp:
        return None
    try:
        ts = datetime.fromisoformat(str(timestamp))
    except ValueError:
        return None
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC)


# ============================================================================ batches
@dataclass
class BatchRow:
    """One batch of the day: a scored or a quarantined ledger entry (one row of the table)."""

    batch: str
    status: str  # scored | quarantined
    at: str  # ISO-8601 UTC: scored_at (scoring started) or the quarantine time
    rows: int | None = None  # None: unknown (a quarantined file that cannot be read)
    flagged: int | None = None
    model_version: int | None = None
    sha256: str | None = None
    output: str | None = None  # scored Parquet (relative to the project root when inside)
    quarantined_to: str | None = None
    report: str | None = None  # the quarantine report (.report.json)
    reason: str | None = None
    stage: str | None = None  # read | validate: where the quarantined batch was rejected
    # filled by later steps
    validations: int = 0  # GX validations stored for it (the first chunk, and any chunk the quick check did not pass)
    validations_failed: int = 0
    data_docs_page: str | None = None  # relative to the report folder
    sample_rows: int = 0  # rows of it used for drift
    max_psi: float | None = None
    drifted_features: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Passed validation (= was scored)."""
        return self.status == "scored"

    @property
    def rate(self) -> float | None:
        """Flagged share of its rows (None when not scored or no rows)."""
        if not self.rows or self.flagged is None:
            return None
        return self.flagged / self.rows

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed"] = self.passed
        out["rate"] = self.rate
        return out


def batches_of_day(ledger: Mapping[str, Any], day: date) -> list[BatchRow]:
    """The ledger entries of ``day`` (by UTC timestamp), scored and quarantined, oldest first.

    Args:
        ledger: the ledger as read by :meth:`flows.steps.score.Ledger.read`.
        day: the UTC day.

    Returns:
        One :class:`BatchRow` per entry; quarantined rows have ``rows=None`` (the ledger does not
        know them: :func:`collect_batches` counts them in the quarantined file).
    """
    out: list[BatchRow] = []
    for sha, e in (ledger.get("batches") or {}).items():
        if entry_day(e.get("scored_at")) != day:
            continue
        out.append(
            BatchRow(
                batch=str(e.get("batch") or sha[:12]),
                status="scored",
                at=str(e.get("scored_at")),
                rows=_int(e.get("rows")),
                flagged=_int(e.get("flagged")),
                model_version=_int(e.get("model_version")),
                sha256=e.get("sha256") or sha,
                output=e.get("output"),
            )
        )
    for e in ledger.get("quarantined") or []:
        if entry_day(e.get("at")) != day:
            continue
        out.append(
            BatchRow(
                batch=str(e.get("batch") or "?"),
                status="quarantined",
                at=str(e.get("at")),
                model_version=_int(e.get("model_version")),
                sha256=e.get("sha256"),
                quarantined_to=e.get("quarantined_to"),
                report=e.get("report"),
                reason=e.get("reason"),
                stage=e.get("stage"),
            )
        )
    # ties (same second) keep a stable, readable order
    out.sort(key=lambda b: (_utc(b.at) or datetime.min.replace(tzinfo=UTC), b.batch))
    return out


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def count_rows(path: str | Path) -> int | None:
    """Data rows of a CSV or Parquet batch file; None when the file is missing or unreadable
    (corrupt, not a batch file). A 0-byte or header-only file has 0 rows."""
    path = Path(path)
    kind = batch_kind(path)
    try:
        if not path.is_file() or kind is None:
            return None
        if path.stat().st_size == 0:
            return 0
        if kind == "parquet":
            return int(pq.read_metadata(path).num_rows)
        total = 0  # first column only, in chunks: a large file costs bounded memory
        with pd.read_csv(path, usecols=[0], chunksize=500_000, low_memory=False) as reader:
            for chunk in reader:
                total += len(chunk)
        return total
    except pd.errors.EmptyDataError:
        return 0
    except Exception:  # a corrupt or malformed file: its rows are unknown, not an error
        return None


def collect_batches(
    params: Params, root: str | Path, day: date, ledger: Mapping[str, Any] | None = None
) -> list[BatchRow]:
    """The batches of ``day`` from ``<scoring.scored_dir>/_ledger.json`` (read, never written;
    or the given ``ledger`` content), with the rows of each quarantined batch counted in its
    quarantined file.

    Raises:
        RuntimeError: the ledger exists but is unreadable (the message names it).
    """
    dirs = ScoringDirs.from_params(params, root)
    if ledger is None:
        ledger = Ledger(dirs.scored).read()
    batches = batches_of_day(ledger, day)
    for b in batches:
        if b.status == "quarantined" and b.quarantined_to:
            b.rows = count_rows(resolve(dirs.root, b.quarantined_to))
    return batches


# ============================================================================ trend
@dataclass
class TrendPoint:
    """One day of the anomaly-rate trend (from the ledger's entries of that UTC day)."""

    date: str
    batches: int = 0  # scored
    rows: int = 0  # scored rows
    flagged: int = 0
    quarantined: int = 0  # quarantined batches

    @property
    def rate(self) -> float | None:
        """flagged / rows (None on a day without scored rows)."""
        return self.flagged / self.rows if self.rows else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rate": self.rate}


def anomaly_rate_trend(ledger: Mapping[str, Any], day: date, days: int) -> list[TrendPoint]:
    """Per UTC day, the ``days`` days ending at ``day`` (oldest first): scored batches, rows,
    flagged rows, quarantined batches; rate = flagged / rows of the day (not a mean of batch
    rates, so a large batch weighs as much as its rows)."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    first = day - timedelta(days=days - 1)
    points = {first + timedelta(days=i): TrendPoint((first + timedelta(days=i)).isoformat())
              for i in range(days)}
    for e in (ledger.get("batches") or {}).values():
        p = points.get(entry_day(e.get("scored_at")))
        if p is not None:
            p.batches += 1
            p.rows += _int(e.get("rows")) or 0
            p.flagged += _int(e.get("flagged")) or 0
    for e in ledger.get("quarantined") or []:
        p = points.get(entry_day(e.get("at")))
        if p is not None:
            p.quarantined += 1
    return [points[d] for d in sorted(points)]


# ============================================================================ drift statistics
def _finite(values: Any) -> np.ndarray:
    v = pd.to_numeric(pd.Series(np.asarray(values).ravel()), errors="coerce").to_numpy(
        dtype="float64", na_value=np.nan
    )
    return v[np.isfinite(v)]


def quantile_edges(reference: Any, bins: int = PSI_BINS) -> np.ndarray:
    """The inner cut points of ``bins`` quantile bins of ``reference``: its (1/bins, ...,
    (bins-1)/bins) quantiles (linear interpolation), ties merged. Bin i is
    (edge[i-1], edge[i]], with the first and last bins open-ended, so values outside the
    training range fall into the end bins. Shape (<= bins - 1,)."""
    ref = _finite(reference)
    if ref.size == 0:
        raise ValueError("no finite reference values to cut bins from")
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    return np.unique(np.quantile(ref, np.arange(1, bins) / bins))


def _shares(values: np.ndarray, edges: np.ndarray, eps: float) -> np.ndarray:
    """Smoothed share of ``values`` per bin: (count / n + eps) / (1 + n_bins * eps)."""
    n_bins = edges.size + 1
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=n_bins)
    return (counts / values.size + eps) / (1.0 + n_bins * eps)


def population_stability_index(
    expected: Any, actual: Any, bins: int = PSI_BINS, eps: float = PSI_EPSILON
) -> float:
    """Population stability index of ``actual`` against ``expected`` (the training values).

    ``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)`` over the quantile bins of ``expected``
    (:func:`quantile_edges`), where ``e_i`` and ``a_i`` are the shares of expected and actual
    values in bin i, each smoothed as ``(share + eps) / (1 + n_bins * eps)`` (they still sum to
    1; an empty bin gives a large finite term instead of an infinite one). 0 for identical
    distributions; symmetric in the two shares; non-finite values are ignored.

    Raises:
        ValueError: no finite values on one side.
    """
    e_values, a_values = _finite(expected), _finite(actual)
    if a_values.size == 0:
        raise ValueError("no finite values to compare")
    edges = quantile_edges(e_values, bins)
    return _psi(_shares(e_values, edges, eps), _shares(a_values, edges, eps))


def _psi(e: np.ndarray, a: np.ndarray) -> float:
    return float(np.sum((a - e) * np.log(a / e)))


def ks_test(expected: Any, actual: Any) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``, two-sided): (D, p), D the
    largest gap between the two empirical CDFs (0..1). Non-finite values are ignored."""
    from scipy.stats import ks_2samp

    res = ks_2samp(_finite(expected), _finite(actual))
    return float(res.statistic), float(res.pvalue)


def drift_level(psi: float | None) -> str:
    """``stable`` (PSI < 0.1), ``moderate`` (0.1-0.2), ``drift`` (> 0.2) or ``n/a``."""
    if psi is None or not math.isfinite(psi):
        return "n/a"
    if psi > PSI_DRIFT:
        return "drift"
    return "moderate" if psi >= PSI_WATCH else "stable"


def is_drifted(psi: float | None, ks_statistic: float | None, ks_pvalue: float | None) -> bool:
    """The drift flag: PSI > :data:`PSI_DRIFT`, or KS p < :data:`KS_ALPHA` with statistic
    > :data:`KS_MIN_STATISTIC` (the p-value alone flags negligible differences on large
    samples)."""
    if psi is not None and psi > PSI_DRIFT:
        return True
    return (
        ks_pvalue is not None
        and ks_statistic is not None
        and ks_pvalue < KS_ALPHA
        and ks_statistic > KS_MIN_STATISTIC
    )


@dataclass
class FeatureDrift:
    """Drift of one feature: the day's sampled rows against the training snapshot."""

    feature: str
    psi: float | None
    ks_statistic: float | None
    ks_pvalue: float | None
    train_rows: int
    day_rows: int
    train_mean: float | None
    day_mean: float | None
    drifted: bool
    level: str
    edges: list[float] = field(default_factory=list)  # inner bin cut points (training deciles)
    train_shares: list[float] = field(default_factory=list)  # smoothed, per bin
    day_shares: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def feature_drift(feature: str, train: Any, day: Any) -> FeatureDrift:
    """PSI, KS and the per-bin shares of one feature (see :func:`population_stability_index`)."""
    t, d = _finite(train), _finite(day)
    if t.size == 0 or d.size == 0:
        return FeatureDrift(feature, None, None, None, int(t.size), int(d.size),
                            _mean(t), _mean(d), False, "n/a")
    edges = quantile_edges(t)
    e, a = _shares(t, edges, PSI_EPSILON), _shares(d, edges, PSI_EPSILON)
    psi = _psi(e, a)
    ks_d, ks_p = ks_test(t, d)
    return FeatureDrift(
        feature=feature,
        psi=psi,
        ks_statistic=ks_d,
        ks_pvalue=ks_p,
        train_rows=int(t.size),
        day_rows=int(d.size),
        train_mean=_mean(t),
        day_mean=_mean(d),
        drifted=is_drifted(psi, ks_d, ks_p),
        level=drift_level(psi),
        edges=[float(x) for x in edges],
        train_shares=[float(x) for x in e],
        day_shares=[float(x) for x in a],
    )


def _mean(v: np.ndarray) -> float | None:
    return float(v.mean()) if v.size else None


def compute_drift(
    train: pd.DataFrame, day: pd.DataFrame, features: Sequence[str]
) -> list[FeatureDrift]:
    """:func:`feature_drift` of every feature present in both frames, in ``features`` order."""
    return [feature_drift(f, train[f], day[f]) for f in features
            if f in train.columns and f in day.columns]


@dataclass
class DriftResult:
    """The drift section: per-feature statistics of the day, or why there are none."""

    available: bool
    note: str | None = None
    training_snapshot: str | None = None
    training_rows: int = 0  # rows of the snapshot
    training_sample: int = 0  # rows of it used
    day_rows: int = 0  # scored rows of the day
    day_sample: int = 0  # rows of them used
    features: list[FeatureDrift] = field(default_factory=list)

    @property
    def max_psi(self) -> float | None:
        values = [f.psi for f in self.features if f.psi is not None]
        return max(values) if values else None

    @property
    def drifted(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "note": self.note,
            "training_snapshot": self.training_snapshot,
            "training_rows": self.training_rows,
            "training_sample": self.training_sample,
            "day_rows": self.day_rows,
            "day_sample": self.day_sample,
            "max_psi": self.max_psi,
            "drifted_features": self.drifted,
            "rule": DRIFT_RULE,
            "psi": PSI_FORMULA,
            "features": [f.to_dict() for f in self.features],
        }


# ============================================================================ reading samples
def sample_parquet(
    path: str | Path, columns: Sequence[str], k: int, rng: np.random.Generator
) -> pd.DataFrame:
    """``k`` rows drawn without replacement (all rows when the file has at most ``k``) of the
    ``columns`` of a Parquet file present in it, read batch by batch: memory stays ~``k`` rows
    however large the file. The draw depends only on ``rng``'s state (reproducible)."""
    with pq.ParquetFile(path) as pf:
        present = [c for c in columns if c in pf.schema_arrow.names]
        n = pf.metadata.num_rows
        if k >= n:
            return pf.read(columns=present).to_pandas()
        wanted = np.sort(rng.choice(n, size=k, replace=False))
        pieces: list[pa.Table] = []
        offset = 0
        for batch in pf.iter_batches(columns=present, batch_size=65_536):
            lo, hi = np.searchsorted(wanted, [offset, offset + batch.num_rows])
            if hi > lo:
                taken = batch.take(pa.array(wanted[lo:hi] - offset))
                pieces.append(pa.Table.from_batches([taken]))
            offset += batch.num_rows
            if hi == wanted.size:
                break
    if not pieces:
        return pd.DataFrame(columns=present)
    return pa.concat_tables(pieces).to_pandas()


def _allocation(sizes: Sequence[int], total_max: int) -> list[int]:
    """Rows to sample per file, at most ``total_max`` in all: every row when the day fits;
    else ``min(size, MIN_BATCH_SAMPLE)`` per file when those floors fit, and the rest of the
    budget shared in proportion to the rows above the floors; else plain proportional shares."""
    total = sum(sizes)
    if total <= total_max:
        return list(sizes)
    floors = [min(n, MIN_BATCH_SAMPLE) for n in sizes]
    if sum(floors) > total_max:
        floors = [0] * len(sizes)
    budget, above = total_max - sum(floors), total - sum(floors)
    return [f + (budget * (n - f)) // above for n, f in zip(sizes, floors, strict=True)]


def drift_of_day(
    params: Params,
    root: str | Path,
    batches: Sequence[BatchRow],
    max_rows: int = MAX_DRIFT_ROWS,
) -> DriftResult:
    """Drift of the day's scored rows against ``<data.split_dir>/train.parquet``, per feature
    and per batch (the batch rows get ``sample_rows``, ``max_psi`` and ``drifted_features``).

    Returns a result with ``available=False`` and a note (never raises for missing data): no
    scored batch, no training snapshot, no feature columns, or no readable scored output.
    """
    root = Path(root).resolve()
    scored = [b for b in batches if b.status == "scored"]
    train_path = split_paths(params, root)["train"]
    result = DriftResult(available=False, training_snapshot=display_path(root, train_path),
                         day_rows=sum(b.rows or 0 for b in scored))
    if not scored:
        result.note = "no batch was scored on this day: nothing to compare"
        return result
    if not train_path.is_file():
        result.note = (
            f"the training snapshot {result.training_snapshot} is missing, so drift cannot be "
            "measured (run `anomaly stage ingest`, or `dvc pull` / `dvc repro` to restore it)"
        )
        return result
    try:  # the feature columns from the first rows: the dtypes are what decides
        with pq.ParquetFile(train_path) as pf:
            head = next(pf.iter_batches(batch_size=1_000), None)
            head_df = (pa.Table.from_batches([head]).to_pandas() if head is not None
                       else pf.schema_arrow.empty_table().to_pandas())
            result.training_rows = pf.metadata.num_rows
        features = feature_columns(head_df, params, source=str(train_path))
    except Exception as exc:  # an unreadable snapshot is a note on the page, not a failed report
        result.note = f"cannot read the training snapshot {result.training_snapshot}: {exc}"
        return result
    if not features:
        result.note = f"the training snapshot {result.training_snapshot} has no feature columns"
        return result

    rng = np.random.default_rng(SAMPLE_SEED)
    train = sample_parquet(train_path, features, min(max_rows, result.training_rows), rng)
    result.training_sample = len(train)

    # day side: each scored output, sampled in proportion to its rows
    readable: list[tuple[BatchRow, Path, int]] = []
    problems: list[str] = []
    for b in scored:
        path = resolve(root, b.output) if b.output else None
        if path is None or not path.is_file():
            problems.append(f"{b.batch}: its output {b.output} is missing")
            continue
        try:
            n = pq.read_metadata(path).num_rows
        except Exception as exc:
            problems.append(f"{b.batch}: its output {b.output} is unreadable ({exc})")
            continue
        readable.append((b, path, n))
    frames: list[pd.DataFrame] = []
    for (b, path, _), k in zip(readable, _allocation([n for *_, n in readable], max_rows),
                               strict=True):
        rng_b = np.random.default_rng([SAMPLE_SEED, len(frames) + 1])
        sample = sample_parquet(path, features, k, rng_b)
        b.sample_rows = len(sample)
        frames.append(sample)
        per_batch = compute_drift(train, sample, features)
        values = [f.psi for f in per_batch if f.psi is not None]
        b.max_psi = max(values) if values else None
        b.drifted_features = [f.feature for f in per_batch if f.drifted]
    if problems:
        result.note = "left out of the drift: " + "; ".join(problems)
    if not frames:
        result.note = "no scored output of the day could be read: " + "; ".join(problems)
        return result
    day = pd.concat(frames, ignore_index=True)
    result.day_sample = len(day)
    result.features = compute_drift(train, day, features)
    result.available = bool(result.features)
    return result


# ============================================================================ Data Docs
@dataclass
class DataDocs:
    """The Data Docs site of the day's validations, copied into the report folder."""

    index: Path | None  # <report folder>/data_docs/index.html, None when not built
    validations: int = 0
    note: str | None = None
    pages: dict[str, tuple[int, int, str | None]] = field(default_factory=dict)
    """batch name -> (validations, failed validations, page relative to the report folder)"""


def build_data_docs(
    params: Params, root: str | Path, day: date, batches: Sequence[BatchRow], out_dir: Path
) -> DataDocs:
    """Build a Data Docs site with only the day's validations into ``out_dir/data_docs``.

    The project's GX context (``<root>/gx``) keeps every validation ever run, one per scored
    chunk: its own site grows without bound. Instead the day's validation results (run name =
    a batch of the day, as scoring names them: ``<batch>`` or ``<batch> rows a-b``; run time
    within the day, give or take :data:`VALIDATION_SLACK`) and their suites are copied through
    GX's store API into a temporary file context, whose site is built and copied. The project's
    context is only read, under the lock scoring holds while it writes to it.

    GX's pages take their CSS and JavaScript from public CDNs: offline they render unstyled and
    the index's (JavaScript) list of validations stays empty, while each validation page is
    plain HTML; hence ``pages``, which the report links per batch.
    """
    from flows.steps.validate import (
        DATA_DOCS_SITE,
        file_url_to_path,
        gx_context,
        gx_context_dir,
        gx_run_name,
    )

    root = Path(root).resolve()
    context_dir = gx_context_dir(root)
    if not (context_dir / "great_expectations.yml").is_file():
        return DataDocs(None, note=f"no Great Expectations project at {context_dir}: nothing "
                        "has been validated yet")
    names = {gx_run_name(b.batch): b.batch for b in batches}
    if not names:
        return DataDocs(None, note="no batches on this day, so no validations to show")
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC) - VALIDATION_SLACK
    end = start + timedelta(days=1) + 2 * VALIDATION_SLACK

    def batch_of(run_name: str | None) -> str | None:
        if not run_name:
            return None
        if run_name in names:
            return names[run_name]
        head, sep, _ = run_name.rpartition("_rows_")
        return names.get(head) if sep else None

    dirs = ScoringDirs.from_params(params, root)
    lock = dirs.scored / GX_LOCK_FILE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GX's deprecation chatter about its own internals
        with exclusive_lock(lock) if lock.parent.is_dir() else contextlib.nullcontext():
            ctx = gx_context(context_dir)
            store = ctx.validation_results_store
            chosen: list[tuple[Any, Any, str]] = []  # (key, result, batch)
            for key in store.list_keys():
                run_id = getattr(key, "run_id", None)
                run_time = getattr(run_id, "run_time", None)
                batch = batch_of(getattr(run_id, "run_name", None))
                if batch is None or run_time is None:
                    continue
                t = run_time if run_time.tzinfo else run_time.replace(tzinfo=UTC)
                if start <= t < end:
                    chosen.append((key, store.get(key), batch))
            suites = {}
            for key, _, _ in chosen:
                name = key.expectation_suite_identifier.name
                if name not in suites:
                    with contextlib.suppress(Exception):  # a deleted suite: results still render
                        suites[name] = ctx.suites.get(name)
        if not chosen:
            return DataDocs(None, note="no Great Expectations validations are stored for the "
                            "batches of this day (e.g. only batches rejected while reading)")

        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".gx-") as tmp:
            sub = gx_context(Path(tmp) / "gx")
            for suite in suites.values():
                sub.suites.add(suite)
            for key, value, _ in chosen:
                sub.validation_results_store.set(key, value)
            built = sub.build_data_docs(site_names=[DATA_DOCS_SITE])
            index = file_url_to_path(built.get(DATA_DOCS_SITE))
            if index is None or not index.is_file():
                return DataDocs(None, note="Great Expectations built no Data Docs site")
            site = index.parent
            pages: dict[str, tuple[int, int, str | None]] = {}
            for key, value, batch in sorted(chosen, key=lambda c: c[0].run_id.run_time):
                urls = sub.get_docs_sites_urls(resource_identifier=key, site_name=DATA_DOCS_SITE)
                page = file_url_to_path(urls[0]["site_url"]) if urls else None
                rel = (Path(DATA_DOCS_DIR) / page.relative_to(site)).as_posix() if page else None
                n, failed, shown = pages.get(batch, (0, 0, None))
                ok = bool(getattr(value, "success", True))
                # link the first failed validation of a batch, else its first one
                if shown is None or (not ok and failed == 0):
                    shown = rel
                pages[batch] = (n + 1, failed + (not ok), shown)
            target = out_dir / DATA_DOCS_DIR
            shutil.copytree(site, target)
    return DataDocs(target / "index.html", validations=len(chosen), pages=pages)


# ============================================================================ the report
@dataclass
class DataQualityReport:
    """The report of one day: what the page shows, where it was written."""

    date: str
    root: Path = field(repr=False)
    folder: Path
    html: Path
    json_path: Path
    data_docs_index: Path | None
    batches: list[BatchRow]
    drift: DriftResult
    trend: list[TrendPoint]
    plots: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    data_docs_note: str | None = None
    generated_at: str = ""
    mlflow_run_id: str | None = None
    seconds: float = 0.0

    @property
    def scored(self) -> list[BatchRow]:
        return [b for b in self.batches if b.status == "scored"]

    @property
    def quarantined(self) -> list[BatchRow]:
        return [b for b in self.batches if b.status == "quarantined"]

    @property
    def rows_scored(self) -> int:
        return sum(b.rows or 0 for b in self.scored)

    @property
    def rows_quarantined(self) -> int | None:
        """Rows of the quarantined batches; None when one of them is unknown."""
        rows = [b.rows for b in self.quarantined]
        return None if any(r is None for r in rows) else sum(rows)  # type: ignore[arg-type]

    @property
    def flagged(self) -> int:
        return sum(b.flagged or 0 for b in self.scored)

    @property
    def rate(self) -> float | None:
        return self.flagged / self.rows_scored if self.rows_scored else None

    def where(self) -> str:
        return display_path(self.root, self.html) or str(self.html)

    def headline(self) -> str:
        """One line: where the page is, batches, rows, pass/fail counts, drift."""
        if not self.batches:
            return (f"data-quality report {self.date}: no batches scored or quarantined on this "
                    f"day -> {self.where()}")
        rate = f", {self.rate:.2%} flagged" if self.rate is not None else ""
        drift = (
            f"; drift in {len(self.drift.drifted)} of {len(self.drift.features)} features"
            + (f" ({', '.join(self.drift.drifted)})" if self.drift.drifted else "")
            if self.drift.available
            else "; drift not measured"
        )
        return (
            f"data-quality report {self.date}: {len(self.batches)} batches "
            f"({len(self.scored)} passed, {len(self.quarantined)} failed/quarantined), "
            f"{self.rows_scored:,} rows scored{rate}{drift} -> {self.where()}"
        )

    def metrics(self) -> dict[str, float]:
        """The MLflow metrics of the run."""
        out: dict[str, float] = {
            "batches": len(self.batches),
            "scored": len(self.scored),
            "quarantined": len(self.quarantined),
            "rows": self.rows_scored,
            "flagged": self.flagged,
        }
        if self.rows_quarantined is not None:
            out["rows_quarantined"] = self.rows_quarantined
        if self.rate is not None:
            out["rate"] = self.rate
        if self.drift.available:
            from flows.registry import metric_key

            out["drifted_features"] = len(self.drift.drifted)
            if self.drift.max_psi is not None:
                out["max_psi"] = self.drift.max_psi
            for f in self.drift.features:
                key = metric_key(f.feature)
                if f.psi is not None:
                    out[f"psi/{key}"] = f.psi
                if f.ks_statistic is not None:
                    out[f"ks/{key}"] = f.ks_statistic
        return out

    def to_dict(self) -> dict[str, Any]:
        """report.json (paths relative to the report folder)."""
        rel = self.folder
        return jsonable({
            "date": self.date,
            "generated_at": self.generated_at,
            "folder": display_path(self.root, self.folder),
            "html": self.html.relative_to(rel).as_posix(),
            "totals": {
                "batches": len(self.batches),
                "passed": len(self.scored),
                "quarantined": len(self.quarantined),
                "rows_scored": self.rows_scored,
                "rows_quarantined": self.rows_quarantined,
                "flagged": self.flagged,
                "rate": self.rate,
                "max_psi": self.drift.max_psi,
                "drifted_features": self.drift.drifted,
            },
            "batches": [b.to_dict() for b in self.batches],
            "drift": self.drift.to_dict(),
            "trend": [p.to_dict() for p in self.trend],
            "data_docs": {
                "index": self.data_docs_index.relative_to(rel).as_posix()
                if self.data_docs_index else None,
                "validations": sum(b.validations for b in self.batches),
                "note": self.data_docs_note,
            },
            "plots": {k: v.relative_to(rel).as_posix() for k, v in self.plots.items()},
            "notes": list(self.notes),
        })


# ============================================================================ plots
_GREEN, _RED, _AMBER, _BLUE, _GREY = "#2e7d32", "#c62828", "#ef8f00", "#1565c0", "#9e9e9e"


def _figure(width: float, height: float) -> Figure:
    # the object API without pyplot: no global state, no GUI backend, whatever MPLBACKEND says
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def plot_trend(trend: Sequence[TrendPoint], day: str) -> bytes:
    """Anomaly rate per day (line, %, gaps on days without rows) over scored rows (bars)."""
    fig = _figure(8, 3.2)
    ax = fig.add_subplot()
    x = np.arange(len(trend))
    rows = [p.rows for p in trend]
    bars = ax.twinx()
    bars.bar(x, rows, color=_GREY, alpha=0.3, width=0.7, label="rows scored")
    bars.set_ylabel("rows scored", color="#616161")
    ax.set_zorder(bars.get_zorder() + 1)
    ax.patch.set_visible(False)
    rate = [100 * p.rate if p.rate is not None else np.nan for p in trend]
    ax.plot(x, rate, marker="o", color=_BLUE, label="anomaly rate")
    for i, p in enumerate(trend):
        if p.date == day:
            ax.axvspan(i - 0.45, i + 0.45, color=_AMBER, alpha=0.15)
    ax.set_ylabel("flagged rows (%)")
    ax.set_ylim(bottom=0)
    ax.set_xticks(x, [p.date[5:] for p in trend], rotation=45, ha="right", fontsize=8)
    ax.set_title(f"Anomaly rate per day, {trend[0].date} to {trend[-1].date} (UTC)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def plot_rows(batches: Sequence[BatchRow]) -> bytes:
    """Rows per batch, stacked: scored (passed) and quarantined (failed); unknown rows as 0."""
    n = len(batches)
    fig = _figure(8, min(1.2 + 0.32 * n, 12))
    ax = fig.add_subplot()
    y = np.arange(n)
    scored = [(b.rows or 0) if b.status == "scored" else 0 for b in batches]
    quarantined = [(b.rows or 0) if b.status == "quarantined" else 0 for b in batches]
    ax.barh(y, scored, color=_GREEN, label="scored (passed)")
    ax.barh(y, quarantined, left=scored, color=_RED, label="quarantined (failed)")
    for i, b in enumerate(batches):
        if b.rows is None:
            ax.text(0, i, "  rows unknown", va="center", fontsize=8, color=_RED)
    ax.set_yticks(y, [_short(b.batch, 40) for b in batches], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("rows")
    fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    ax.set_title("Rows per batch", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def plot_psi(features: Sequence[FeatureDrift]) -> bytes:
    """PSI per feature, coloured by level, with the 0.1 and 0.2 lines."""
    fig = _figure(8, 3.2)
    ax = fig.add_subplot()
    colors = {"stable": _GREEN, "moderate": _AMBER, "drift": _RED}
    values = [f.psi or 0.0 for f in features]
    ax.bar(range(len(features)), values,
           color=[colors.get(f.level, _GREY) for f in features])
    ax.axhline(PSI_WATCH, color=_AMBER, ls="--", lw=1, label=f"{PSI_WATCH} moderate")
    ax.axhline(PSI_DRIFT, color=_RED, ls="--", lw=1, label=f"{PSI_DRIFT} drift")
    ax.set_xticks(range(len(features)), [_short(f.feature, 20) for f in features],
                  rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("PSI")
    ax.legend(fontsize=8)
    ax.set_title("Population stability index per feature (day vs training snapshot)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def plot_bins(features: Sequence[FeatureDrift], top: int = 6) -> bytes:
    """Share of rows per training-decile bin, training vs day, for the ``top`` features with
    the highest PSI: what the PSI sums up."""
    shown = sorted((f for f in features if f.train_shares), key=lambda f: -(f.psi or 0))[:top]
    cols = min(3, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig = _figure(8, 2.4 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel()[len(shown):]:
        ax.set_visible(False)
    for ax, f in zip(axes.ravel(), shown, strict=False):
        x = np.arange(len(f.train_shares))
        ax.bar(x - 0.2, f.train_shares, width=0.4, color=_GREY, label="training")
        ax.bar(x + 0.2, f.day_shares, width=0.4,
               color=_RED if f.drifted else _BLUE, label="day")
        ax.set_title(f"{_short(f.feature, 24)}  PSI {f.psi:.3f}", fontsize=9)
        ax.set_xticks(x, [str(i + 1) for i in x], fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle("Share of rows per training-decile bin", fontsize=10)
    return _png(fig)


def render_plots(report: DataQualityReport) -> dict[str, bytes]:
    """The report's PNGs by name: ``trend`` always; ``rows`` when there are batches; ``psi`` and
    ``bins`` when drift was measured."""
    plots = {"trend": plot_trend(report.trend, report.date)}
    if report.batches:
        plots["rows"] = plot_rows(report.batches)
    if report.drift.available and report.drift.features:
        plots["psi"] = plot_psi(report.drift.features)
        plots["bins"] = plot_bins(report.drift.features)
    return plots


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ============================================================================ HTML
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0 auto;max-width:1100px;padding:1.5rem;color:#212121;background:#fff;line-height:1.4}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin-top:2rem;
border-bottom:1px solid #e0e0e0;padding-bottom:.2rem}
.meta{color:#616161;font-size:.9rem}
.cards{display:flex;flex-wrap:wrap;gap:.6rem;margin:1rem 0}
.card{border:1px solid #e0e0e0;border-radius:6px;padding:.5rem .8rem;min-width:7.5rem}
.card b{display:block;font-size:1.3rem}.card span{color:#616161;font-size:.8rem}
table{border-collapse:collapse;width:100%;font-size:.85rem;margin:.5rem 0}
th,td{border-bottom:1px solid #eee;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#fafafa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#2e7d32;font-weight:600}.fail{color:#c62828;font-weight:600}
.drift{color:#c62828;font-weight:600}.moderate{color:#ef8f00}.stable{color:#2e7d32}
.note{background:#fff8e1;border-left:4px solid #ef8f00;padding:.5rem .8rem;margin:.6rem 0}
img{max-width:100%;height:auto;display:block;margin:.6rem 0}
small{color:#757575}code{font-size:.85em}tr.today{background:#fff8e1}
"""

# Sets data-images-ok on <body> once the page has loaded: "true" when every image decoded
# (naturalWidth > 0). A headless browser's DOM dump then shows whether the plots render.
_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.every(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute("data-images", String(imgs.length));
  document.body.setAttribute("data-images-ok", ok ? "true" : "false");
});
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"


def _pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def _fixed(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pvalue(value: float | None) -> str:
    return "–" if value is None else (f"{value:.3g}" if value >= 1e-4 else f"{value:.1e}")


def _clock(timestamp: str) -> str:
    """``HH:MM:SS`` (UTC) of an ISO timestamp; the text itself when unreadable."""
    ts = _utc(timestamp)
    return ts.strftime("%H:%M:%S") if ts else timestamp


def _img(name: str, png: bytes | None, alt: str) -> str:
    if png is None:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img id="plot-{_e(name)}" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def render_html(report: DataQualityReport, images: Mapping[str, bytes]) -> str:
    """The self-contained page: inline CSS, the plots as ``data:`` URIs, one inline script
    (marks the page once every image decoded); every link is relative to the report folder."""
    d = report.drift
    batch_rows = []
    for b in report.batches:
        status = ('<span class="pass">passed · scored</span>' if b.passed
                  else '<span class="fail">failed · quarantined</span>')
        detail = _e(b.output) if b.passed else (
            f"{_e(b.reason)}<br><small>moved to {_e(b.quarantined_to)}; report "
            f"{_e(b.report)}</small>")
        docs = (f'<a href="{_e(b.data_docs_page)}">{b.validations} '
                f'validation{"s" if b.validations != 1 else ""}'
                + (f", {b.validations_failed} failed" if b.validations_failed else "") + "</a>"
                if b.data_docs_page else "–")
        drift = ("–" if b.max_psi is None else
                 f"{b.max_psi:.3f}" + (f' <span class="drift">{_e(", ".join(b.drifted_features))}'
                                       "</span>" if b.drifted_features else ""))
        batch_rows.append(
            f'<tr data-batch="{_e(b.batch)}"><td>{_e(b.batch)}</td><td>{status}</td>'
            f'<td class="num">{_num(b.rows)}</td>'
            f'<td class="num">{"–" if b.flagged is None else f"{b.flagged:,}"}</td>'
            f'<td class="num">{_pct(b.rate)}</td><td>{_e(b.model_version)}</td>'
            f'<td title="{_e(b.at)}">{_e(_clock(b.at))}</td><td>{drift}</td><td>{docs}</td>'
            f"<td>{detail}</td></tr>"
        )
    if report.batches:
        batches_html = (
            '<table id="batches"><thead><tr><th>batch</th><th>validation</th><th>rows</th>'
            "<th>flagged</th><th>rate</th><th>model version</th><th>time (UTC)</th>"
            "<th>max PSI · drifted</th><th>Data Docs</th><th>output / reason</th></tr></thead>"
            f"<tbody>{''.join(batch_rows)}</tbody></table>"
            + _img("rows", images.get("rows"), "rows per batch, scored and quarantined")
        )
    else:
        batches_html = ('<p class="note" id="no-batches">No batches were scored or quarantined '
                        f"on {_e(report.date)} (UTC).</p>")

    if d.available:
        feature_rows = "".join(
            f'<tr data-feature="{_e(f.feature)}"><td>{_e(f.feature)}</td>'
            f'<td class="num">{_fixed(f.psi)}</td><td class="{_e(f.level)}">{_e(f.level)}</td>'
            f'<td class="num">{_fixed(f.ks_statistic)}</td><td class="num">{_pvalue(f.ks_pvalue)}'
            f'</td><td class="num">{_fixed(f.train_mean, 4)}</td>'
            f'<td class="num">{_fixed(f.day_mean, 4)}</td>'
            f"<td>{'<span class=drift>yes</span>' if f.drifted else 'no'}</td></tr>"
            for f in d.features
        )
        sampled = (f"{d.day_sample:,} of {d.day_rows:,} scored rows" if d.day_sample < d.day_rows
                   else f"all {d.day_rows:,} scored rows")
        tsampled = (f"{d.training_sample:,} of {d.training_rows:,}"
                    if d.training_sample < d.training_rows else f"all {d.training_rows:,}")
        drift_html = (
            (f'<p class="note">{_e(d.note)}</p>' if d.note else "")
            + f"<p>{sampled} of the day against {tsampled} rows of the training snapshot "
            f"<code>{_e(d.training_snapshot)}</code>. "
            + (f'<span class="drift">Drift in {len(d.drifted)} feature(s): '
               f"{_e(', '.join(d.drifted))}.</span>" if d.drifted else "No feature drifted.")
            + "</p>"
            '<table id="drift"><thead><tr><th>feature</th><th>PSI</th><th>level</th>'
            "<th>KS statistic D</th><th>KS p-value</th><th>training mean</th><th>day mean</th>"
            f"<th>drifted</th></tr></thead><tbody>{feature_rows}</tbody></table>"
            + _img("psi", images.get("psi"), "PSI per feature")
            + _img("bins", images.get("bins"), "share of rows per training-decile bin")
            + f"<p><small>Rule: {_e(DRIFT_RULE)}. {_e(PSI_FORMULA)}. KS: two-sided two-sample "
            "Kolmogorov-Smirnov test (scipy.stats.ks_2samp).</small></p>"
        )
    else:
        drift_html = f'<p class="note" id="no-drift">{_e(d.note or "drift not measured")}</p>'

    trend_rows = "".join(
        f'<tr{" class=today" if p.date == report.date else ""}><td>{_e(p.date)}</td>'
        f'<td class="num">{p.batches:,}</td><td class="num">{p.quarantined:,}</td>'
        f'<td class="num">{p.rows:,}</td><td class="num">{p.flagged:,}</td>'
        f'<td class="num">{_pct(p.rate)}</td></tr>'
        for p in report.trend
    )
    trend_html = (
        _img("trend", images.get("trend"), "anomaly rate per day")
        + '<table id="trend"><thead><tr><th>day (UTC)</th><th>batches scored</th>'
        "<th>quarantined</th><th>rows</th><th>flagged</th><th>rate</th></tr></thead>"
        f"<tbody>{trend_rows}</tbody></table>"
    )

    if report.data_docs_index is not None:
        rel = report.data_docs_index.relative_to(report.folder).as_posix()
        n = sum(b.validations for b in report.batches)
        docs_html = (f'<p><a id="data-docs" href="{_e(rel)}">Great Expectations Data Docs</a> '
                     f"of the day's {n} validation(s) (one per scored chunk; each batch links its "
                     "own in the table above).</p><p><small>GX's pages load their styles, and "
                     "the index its list of validations, from public CDNs: without internet "
                     "access they show unstyled and the index's list stays empty; the per-batch "
                     "links above always work.</small></p>")
    else:
        docs_html = f'<p class="note">{_e(report.data_docs_note or "no Data Docs")}</p>'

    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in report.notes)
    versions = sorted({b.model_version for b in report.batches if b.model_version is not None})
    cards = [
        (len(report.batches), "batches"),
        (len(report.scored), "passed · scored"),
        (len(report.quarantined), "failed · quarantined"),
        (f"{report.rows_scored:,}", "rows scored"),
        (_num(report.rows_quarantined), "rows quarantined"),
        (_pct(report.rate), "flagged (anomaly rate)"),
        (_fixed(d.max_psi), "max PSI"),
        (len(d.drifted) if d.available else "–", "drifted features"),
    ]
    cards_html = "".join(f"<div class=card><b>{_e(v)}</b><span>{_e(k)}</span></div>"
                         for v, k in cards)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Data-quality report {_e(report.date)}</title>
<style>{_CSS}</style>
<script>{_SCRIPT}</script>
</head><body>
<h1>Data-quality report {_e(report.date)} <small>(UTC)</small></h1>
<p class="meta">Generated {_e(report.generated_at)} · model version(s)
{_e(", ".join(map(str, versions)) or "–")} · project <code>{_e(report.root.name)}</code></p>
<div class="cards" id="summary">{cards_html}</div>
{notes}
<h2>Batches</h2>
{batches_html}
<h2>Drift against the training snapshot</h2>
{drift_html}
<h2>Anomaly rate over the last {len(report.trend)} days</h2>
{trend_html}
<h2>Validations</h2>
{docs_html}
</body></html>
"""


def _markdown(report: DataQualityReport) -> str:
    """The Prefect artifact: headline, batches and drift as markdown tables."""
    lines = [f"# Data-quality report {report.date}", "", report.headline(), "",
             f"Page: `{report.html}`", ""]
    if report.batches:
        lines += ["| batch | validation | rows | flagged | rate | max PSI |",
                  "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {b.batch} | {'passed' if b.passed else 'quarantined'} | {_num(b.rows)} | "
                  f"{_num(b.flagged)} | {_pct(b.rate)} | {_fixed(b.max_psi)} |"
                  for b in report.batches]
        lines.append("")
    if report.drift.available:
        lines += ["| feature | PSI | KS D | KS p | drifted |", "|---|---:|---:|---:|---|"]
        lines += [f"| {f.feature} | {_fixed(f.psi)} | {_fixed(f.ks_statistic)} | "
                  f"{_pvalue(f.ks_pvalue)} | {'**yes**' if f.drifted else 'no'} |"
                  for f in report.drift.features]
    else:
        lines.append(f"Drift: {report.drift.note}")
    return "\n".join(lines) + "\n"


# ============================================================================ writing
def _remove_leftovers(reports_dir: Path) -> None:
    """Staging folders of runs that died (their pid is gone) and swapped-out old reports."""
    for p in reports_dir.glob(".*.staging-*"):
        m = re.search(r"\.staging-(\d+)-", p.name)
        alive = True
        if m:
            try:
                os.kill(int(m.group(1)), 0)
            except ProcessLookupError:
                alive = False
            except PermissionError:
                pass
        if not alive:
            shutil.rmtree(p, ignore_errors=True)
    for p in reports_dir.glob(".*.old-*"):
        shutil.rmtree(p, ignore_errors=True)


def publish(staging: Path, final: Path) -> None:
    """Swap ``staging`` in as ``final`` (replacing a previous report of the day) by renames,
    under a lock so that two runs for the same day do not interleave."""
    with exclusive_lock(final.parent / ".lock"):
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(final, old)
        os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_report(report: DataQualityReport, staging: Path) -> None:
    """Plots, page and report.json into ``staging`` (the report's paths point at its final
    folder; the files land in the staging one)."""
    images = render_plots(report)
    (staging / PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    for name, png in images.items():
        (staging / PLOTS_DIR / f"{name}.png").write_bytes(png)
        report.plots[name] = report.folder / PLOTS_DIR / f"{name}.png"
    (staging / HTML_FILE).write_text(render_html(report, images), encoding="utf-8")
    atomic_write_json(report.to_dict(), staging / JSON_FILE)


# ============================================================================ tasks
@task(name="collect-batches", cache_policy=NO_CACHE)
def _collect(params: Params, root: Path, day: date) -> tuple[list[BatchRow], list[TrendPoint], int]:
    ledger = Ledger(ScoringDirs.from_params(params, root).scored).read()  # once: one snapshot
    batches = collect_batches(params, root, day, ledger)
    trend = anomaly_rate_trend(ledger, day, params.report.trend_days)
    return batches, trend, len(ledger.get("in_progress") or {})


@task(name="compute-drift", cache_policy=NO_CACHE)
def _drift(params: Params, root: Path, batches: list[BatchRow]) -> DriftResult:
    return drift_of_day(params, root, batches)


@task(name="build-data-docs", cache_policy=NO_CACHE)
def _data_docs(params: Params, root: Path, day: date, batches: list[BatchRow],
               staging: Path) -> DataDocs:
    return build_data_docs(params, root, day, batches, staging)


@task(name="log-to-mlflow", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 4],
      retry_condition_fn=retry_if_transient)
def log_report(params: Params, root: Path, report: DataQualityReport) -> str:
    """One MLflow run in the pipeline's experiment, tagged ``pipeline.step=report`` and
    ``report.date``: the report's metrics and its folder as artifacts under ``report/``.
    Returns the run id."""
    import mlflow

    from flows.registry import configure_mlflow

    configure_mlflow(params, root)
    versions = sorted({str(b.model_version) for b in report.batches if b.model_version})
    tags = {
        "pipeline.step": "report",
        "report.date": report.date,
        "report.path": display_path(root, report.folder) or str(report.folder),
        "report.drifted_features": ",".join(report.drift.drifted)[:5000],
        "model.versions": ",".join(versions),
    }
    nested = mlflow.active_run() is not None
    with mlflow.start_run(run_name=f"report-{report.date}", nested=nested, tags=tags) as run:
        mlflow.log_metrics(report.metrics())
        mlflow.log_artifacts(str(report.folder), MLFLOW_ARTIFACT_DIR)
    return run.info.run_id


# ============================================================================ the flow
@flow(name="data-quality", log_prints=True, validate_parameters=False)
def data_quality_flow(
    date: str | None = None,
    params: Params | None = None,
    root: str | None = None,
    params_file: str | None = None,
    overrides: Sequence[str] = (),
) -> DataQualityReport:
    """Write the data-quality report of one day to ``<report.reports_dir>/<date>/``.

    Args:
        date: the UTC day, ``YYYY-MM-DD``; default yesterday (what the nightly schedule runs).
        params: loaded settings (else read from ``params_file`` with ``overrides``).
        root: project root (default: ``ANOMALY_PROJECT_ROOT`` or the current folder).

    Returns:
        The :class:`DataQualityReport` (``headline()`` says where the page is). A day without
        batches gives a report that says so; an MLflow failure is logged as an error and leaves
        the written report in place (``mlflow_run_id`` None).

    Raises:
        ConfigError: a malformed or future ``date``, or invalid settings.
        RuntimeError: the scoring ledger is unreadable.
    """
    from flows.training import quiet_user_error_tracebacks

    quiet_user_error_tracebacks()
    logger = get_run_logger()
    started = time.perf_counter()
    day = parse_report_date(date)
    project = (Path(root) if root else project_root()).resolve()
    settings = params if params is not None else load_params(params_file, overrides)
    reports_dir = resolve(project, settings.report.reports_dir).resolve()
    final = reports_dir / day.isoformat()

    batches, trend, in_progress = _collect(settings, project, day)
    logger.info("%s: %d batch(es) in the ledger (%d scored, %d quarantined)", day, len(batches),
                sum(b.passed for b in batches), sum(not b.passed for b in batches))
    drift_state = _drift(settings, project, batches, return_state=True)
    if drift_state.is_completed():
        drift = drift_state.result()
    else:  # a bug or an unreadable file must not cost the night its report: say so on the page
        exc = drift_state.result(raise_on_failure=False)
        logger.error("could not compute the drift of the day: %s", exc)
        drift = DriftResult(available=False, note=f"drift could not be computed: {exc}")
    if drift.available:
        logger.info("drift: max PSI %.3f; drifted: %s", drift.max_psi or 0.0,
                    ", ".join(drift.drifted) or "none")
    else:
        logger.info("drift not measured: %s", drift.note)
    notes = []
    if in_progress:
        notes.append(f"{in_progress} batch(es) were being scored while this report was written; "
                     "they are not in it (rerun the report to include them)")

    reports_dir.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(reports_dir)
    staging = reports_dir / f".{day.isoformat()}.staging-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        docs_state = _data_docs(settings, project, day, batches, staging, return_state=True)
        if docs_state.is_completed():
            docs = docs_state.result()
        else:  # the page without Data Docs is still worth writing
            exc = docs_state.result(raise_on_failure=False)
            logger.error("could not build the Data Docs of the day: %s", exc)
            shutil.rmtree(staging / DATA_DOCS_DIR, ignore_errors=True)  # no half-copied site
            docs = DataDocs(None, note=f"Data Docs could not be built: {exc}")
        for b in batches:
            n, failed, page = docs.pages.get(b.batch, (0, 0, None))
            b.validations, b.validations_failed, b.data_docs_page = n, failed, page
        report = DataQualityReport(
            date=day.isoformat(),
            root=project,
            folder=final,
            html=final / HTML_FILE,
            json_path=final / JSON_FILE,
            data_docs_index=final / DATA_DOCS_DIR / "index.html" if docs.index else None,
            batches=batches,
            drift=drift,
            trend=trend,
            notes=notes,
            data_docs_note=docs.note,
            generated_at=datetime.now(tz=UTC).isoformat(timespec="seconds"),
        )
        write_report(report, staging)
        publish(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    report.seconds = round(time.perf_counter() - started, 3)
    logger.info("wrote %s", report.where())

    log_state = log_report(settings, project, report, return_state=True)
    if log_state.is_completed():
        report.mlflow_run_id = log_state.result()
    else:  # the report is on disk: say so, do not fail the run for the registry
        logger.error("could not log the report to MLflow: %s",
                     log_state.result(raise_on_failure=False))
    create_markdown_artifact(
        key=ARTIFACT_KEY, markdown=_markdown(report),
        description=f"Data-quality report {report.date}",
    )
    for b in report.quarantined:
        logger.warning("quarantined on %s: %s: %s", report.date, b.batch, b.reason)
    logger.info(report.headline())
    return report
