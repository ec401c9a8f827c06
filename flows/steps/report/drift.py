"""Drift of the day's scored rows against the training data of the model that scored them, per
feature: PSI and KS.

The reference is the **drift reference of a model version**: a bounded sample of the training
split it was trained on (every row, labelled anomalies included, because scored batches contain
anomalies too), logged with the version at registration (:mod:`flows.steps.reference`) and
fetched from the registry by the flow (:func:`flows.registry.fetch_references`); this module only
reads the files it is given, so the report never depends on the working copy's
``data/processed``, which another training may have replaced since. The features are the
reference's columns (the model's input columns when it was trained).

* Each batch is compared with the reference of its own model version (the ledger's
  ``model_version``).
* The day as a whole (every scored row of the day) is compared with the reference of the
  version that **scored most of the day's rows** (ties: the newer version); the page says which,
  and a note says so when more than one version scored on the day.

For each feature: the population stability index over the reference's deciles
(:func:`population_stability_index`) and the two-sample Kolmogorov-Smirnov test
(:func:`ks_test`). A feature is flagged as drifted by :func:`is_drifted`. The day's side is sampled
reproducibly to at most :data:`MAX_DRIFT_ROWS` rows (:func:`sample_parquet`), so a day of any size
costs bounded memory and time. When drift cannot be measured the result says why
(``available=False`` and a note: no scored batch, no readable output, a version without a
reference, an unreachable registry) instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from flows.io import display_path, resolve
from flows.steps.reference import read_drift_reference, sample_parquet
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
    "reference_versions",
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
#: Rows sampled (without replacement, fixed seed) from the day's scored rows (and at most as
#: many of a drift reference) for the drift statistics: bounds memory and time on any day.
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
    """Drift of one feature: the day's sampled rows against the drift reference (training rows)."""

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
    reference_version: int | None = None  # the version whose reference the day is compared with
    reference: str | None = None  # that reference (the cached file, relative to the root)
    training_split: str | None = None  # the training split it was drawn from, at registration
    training_rows: int = 0  # rows of that training split
    training_sample: int = 0  # rows of it used (the reference's rows)
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
            "reference_version": self.reference_version,
            "reference": self.reference,
            "training_split": self.training_split,
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


def reference_versions(batches: Sequence[BatchRow]) -> list[int]:
    """The model versions whose drift references the day's drift needs: those that scored a
    batch of the day (the flow fetches them, :func:`flows.registry.fetch_references`)."""
    return sorted({int(b.model_version) for b in batches
                   if b.status == "scored" and b.model_version is not None})


@dataclass(frozen=True)
class _Reference:
    version: int
    path: Path
    frame: pd.DataFrame
    meta: dict[str, Any]

    @property
    def features(self) -> list[str]:
        return list(self.meta["features"])


def _load_references(
    root: Path, references: Mapping[int, Path | str], versions: Sequence[int]
) -> tuple[dict[int, _Reference], dict[int, str]]:
    """The readable references of ``versions``, and for the others why there is none."""
    loaded: dict[int, _Reference] = {}
    missing: dict[int, str] = {}
    for v in versions:
        given = references.get(v)
        if given is None:
            missing[v] = f"the drift reference of model version {v} was not fetched"
            continue
        if isinstance(given, str):
            missing[v] = given
            continue
        path = resolve(root, given)
        try:
            frame, meta = read_drift_reference(path)
        except Exception as exc:  # a damaged cache is a note on the page, not a failed report
            missing[v] = (f"the drift reference of model version {v} "
                          f"({display_path(root, path)}) is unreadable: {exc}")
            continue
        if not meta["features"]:
            missing[v] = f"the drift reference of model version {v} has no feature columns"
            continue
        loaded[v] = _Reference(v, path, frame, meta)
    return loaded, missing


def _rows_by_version(readable: Sequence[tuple[BatchRow, Path, int]]) -> dict[int, int]:
    rows: dict[int, int] = {}
    for b, _, n in readable:
        if b.model_version is not None:
            rows[int(b.model_version)] = rows.get(int(b.model_version), 0) + n
    return rows


def _sample_batches(
    readable: Sequence[tuple[BatchRow, Path, int]], loaded: Mapping[int, _Reference],
    max_rows: int,
) -> list[pd.DataFrame]:
    """Each readable output sampled in proportion to its rows (the columns of every loaded
    reference), its drift against its own version's reference set on its batch row."""
    columns = list(dict.fromkeys(f for r in loaded.values() for f in r.features))
    frames: list[pd.DataFrame] = []
    for (b, path, _), k in zip(readable, _allocation([n for *_, n in readable], max_rows),
                               strict=True):
        rng_b = np.random.default_rng([SAMPLE_SEED, len(frames) + 1])
        sample = sample_parquet(path, columns, k, rng_b)
        b.sample_rows = len(sample)
        frames.append(sample)
        own = loaded.get(int(b.model_version)) if b.model_version is not None else None
        if own is None:
            continue
        per_batch = compute_drift(own.frame, sample, own.features)
        values = [f.psi for f in per_batch if f.psi is not None]
        b.max_psi = max(values) if values else None
        b.drifted_features = [f.feature for f in per_batch if f.drifted]
    return frames


def _batch_notes(
    readable: Sequence[tuple[BatchRow, Path, int]], missing: Mapping[int, str], main: int | None
) -> list[str]:
    """Why some batches have no drift of their own (their version's reference is missing, or
    the ledger does not say which version scored them)."""
    notes = []
    unversioned = [b.batch for b, *_ in readable if b.model_version is None]
    if unversioned:
        notes.append(f"no per-batch drift for {', '.join(unversioned)}: the ledger does not say "
                     "which model version scored it, so it has no drift reference")
    for v, why in missing.items():
        if v == main:
            continue  # said first, as the reason the day has no drift
        names = [b.batch for b, *_ in readable if b.model_version == v]
        notes.append(f"no per-batch drift for {', '.join(names)}: {why}")
    return notes


def _mixed_versions_note(rows: Mapping[int, int], main: int) -> str | None:
    if len(rows) < 2:
        return None
    versions = ", ".join(str(v) for v in sorted(rows))
    return (f"the day's batches were scored by model versions {versions}: the day's rows are "
            f"compared with the drift reference of version {main}, which scored most of them "
            f"({rows[main]:,} of {sum(rows.values()):,} rows); each batch with its own "
            "version's")


def _day_drift(
    result: DriftResult, root: Path, ref: _Reference, frames: Sequence[pd.DataFrame],
    max_rows: int,
) -> None:
    """The day's sampled rows against ``ref``, into ``result``."""
    train = ref.frame
    if len(train) > max_rows:
        train = train.sample(n=max_rows, random_state=SAMPLE_SEED)
    result.reference = display_path(root, ref.path)
    result.training_split = ref.meta.get("source")
    result.training_rows = int(ref.meta.get("training_rows") or len(ref.frame))
    result.training_sample = len(train)
    day = pd.concat(frames, ignore_index=True)
    result.day_sample = len(day)
    result.features = compute_drift(train, day, ref.features)
    result.available = bool(result.features)


def drift_of_day(
    root: str | Path,
    batches: Sequence[BatchRow],
    references: Mapping[int, Path | str],
    max_rows: int = MAX_DRIFT_ROWS,
) -> DriftResult:
    """Drift of the day's scored rows against the drift references of the model versions that
    scored them (see the module docstring), per feature and per batch (the batch rows get
    ``sample_rows``, ``max_psi`` and ``drifted_features``).

    Args:
        references: model version -> its drift reference file (the cached copy), or the
            sentence saying why there is none (:func:`flows.registry.fetch_references`), for
            the versions of :func:`reference_versions`.

    Returns a result with ``available=False`` and a note (never raises for missing data): no
    scored batch, no readable scored output, no reference for the version that scored most
    rows (why: not registered with one, unreadable, the registry unreachable), or no feature
    column in common. The features are the reference's: the model's input columns.
    """
    root = Path(root).resolve()
    scored = [b for b in batches if b.status == "scored"]
    result = DriftResult(available=False, day_rows=sum(b.rows or 0 for b in scored))
    if not scored:
        result.note = "no batch was scored on this day: nothing to compare"
        return result
    readable, problems = _scored_outputs(root, scored)
    if not readable:
        result.note = "no scored output of the day could be read: " + "; ".join(problems)
        return result
    rows = _rows_by_version(readable)
    main = max(rows, key=lambda v: (rows[v], v)) if rows else None
    result.reference_version = main
    loaded, missing = _load_references(root, references, sorted(rows))
    notes: list[str] = []
    if main is None:
        notes.append("the ledger does not say which model version scored the day's batches, "
                     "so there is no drift reference to compare them with: drift not measured")
    elif main not in loaded:
        notes.append(f"{missing[main]}: drift not measured")
    frames = _sample_batches(readable, loaded, max_rows) if loaded else []
    if main in loaded:
        _day_drift(result, root, loaded[main], frames, max_rows)
        if not result.features:
            notes.append("the day's scored outputs have none of the feature columns of the "
                         f"drift reference of model version {main}: drift not measured")
        mixed = _mixed_versions_note(rows, main)
        notes.extend([mixed] if mixed else [])
    if problems:
        notes.append("left out of the drift: " + "; ".join(problems))
    notes.extend(_batch_notes(readable, missing, main))
    result.note = "; ".join(notes) or None
    return result
