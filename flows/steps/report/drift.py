"""Drift of the day's scored rows against the training snapshot, per feature: PSI and KS.

The reference is the training snapshot ``<data.split_dir>/train.parquet`` of the project (all its
rows, labelled anomalies included, because scored batches contain anomalies too); the features are
the model's input columns (:func:`flows.columns.feature_columns`). For each feature: the
population stability index over the training split's deciles (:func:`population_stability_index`)
and the two-sample Kolmogorov-Smirnov test (:func:`ks_test`). A feature is flagged as drifted by
:func:`is_drifted`. Both sides are sampled reproducibly to at most :data:`MAX_DRIFT_ROWS` rows
(:func:`sample_parquet`), so a day of any size costs bounded memory and time. Without a training
snapshot the result says so (``available=False`` and a note) instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flows.columns import feature_columns
from flows.config import Params
from flows.io import display_path, resolve
from flows.layout import Layout
from flows.steps.report.days import BatchRow

__all__ = [
    "DRIFT_RULE",
    "KS_ALPHA",
    "KS_MIN_STATISTIC",
    "MAX_DRIFT_ROWS",
    "MIN_BATCH_SAMPLE",
    "PSI_BINS",
    "PSI_DRIFT",
    "PSI_EPSILON",
    "PSI_FORMULA",
    "PSI_WATCH",
    "SAMPLE_SEED",
    "DriftResult",
    "FeatureDrift",
    "compute_drift",
    "drift_level",
    "drift_of_day",
    "feature_drift",
    "is_drifted",
    "ks_test",
    "population_stability_index",
    "quantile_edges",
    "sample_parquet",
]

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

#: The rule and the formula as the page and report.json state them.
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


# ============================================================================ statistics
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


def _scored_outputs(
    root: Path, scored: Sequence[BatchRow]
) -> tuple[list[tuple[BatchRow, Path, int]], list[str]]:
    """(batch, its scored Parquet, its rows) of each readable output, and what is wrong with
    the others (missing, unreadable), one line per batch."""
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
    return readable, problems


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
    train_path = Layout.of(params, root).split("train")
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
    readable, problems = _scored_outputs(root, scored)
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
