"""The labelled series of the sequence suite (``benchmarks/sequence_suite.py``).

Every series is a :class:`Series`: a normal ``train`` part (``(n, channels)`` float64, no
labelled anomaly), a ``test`` part and its point labels (1 = anomaly). Nothing is downloaded at
run time:

* ``ucr135``: UCR anomaly archive series 135 (InternalBleeding16), read by
  ``benchmarks/ucr_sequence.py``'s ``load_series`` from ``../shared/data``; the same two files
  ship inside ``aeon`` (``aeon/datasets/data/KDD-TSAD_135/``).
* ``aeon_ecg3``: ``aeon/datasets/data/UnitTest/ecg-diff-count-3_{TRAIN_NA,TEST}.csv`` inside the
  installed ``aeon`` package (a GutenTAG ECG-like series from TimeEval, 10,000 points per part,
  three 100-point anomalies of different types in TEST; TRAIN_NA is its anomaly-free training
  series).
* ``sktime_mitdb`` / ``sktime_yahoo``: ``sktime/datasets/data/{mitdb,yahoo}/*.csv`` inside the
  installed ``sktime`` package (TSB-UAD excerpts of the MIT-BIH arrhythmia database, 7,500
  points, and of a Yahoo S5 series, 1,000 points). They come as one labelled series, so TRAIN is
  a prefix that ends before the first labelled point (the split point is fixed below) and TEST
  is the rest.
* ``gen_<type>``: :func:`generate` (seeded, parameters in :data:`GENERATED`): one series per
  UCR / TimeEval anomaly type (spike, level shift, frequency change, pattern change, variance
  change, trend) and one 3-channel series with a correlation break in one channel.

Packages are found with ``importlib.util.find_spec`` and their files read directly (the
packages themselves are never imported, so their own dependencies do not matter at run time).
Packages also checked but shipping no labelled anomaly series: river (AirlinePassengers,
WaterFlow, ... are unlabelled), statsmodels (nile, sunspots, co2, ...: unlabelled), aeon's
``Daphnet_S06R02E0`` (multivariate, but its bundled excerpt has no labelled point).

:func:`train_period` is how the peers' window is chosen: the dominant period of the TRAIN part
only (never TEST or its labels).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from anomaly_models.sequences import dominant_period as library_dominant_period

#: the UCR rule: the arg-max point lies within this many points of a labelled anomaly
UCR_MARGIN = 100
#: peers' window when the TRAIN part has no dominant period (see :func:`train_period`)
FALLBACK_PERIOD = 32
MIN_PERIOD, MAX_PERIOD = 8, 400


@dataclass(frozen=True)
class Series:
    name: str
    train: np.ndarray  # (n_train, channels)
    test: np.ndarray  # (n_test, channels)
    labels: np.ndarray  # (n_test,) int 0/1
    anomaly_type: str
    source: str  # package + file, or generator parameters
    hit_margin: int = UCR_MARGIN
    channels: tuple[str, ...] = ("value",)
    info: dict = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """sha1 (12 hex digits) of TRAIN, TEST and the labels: cached results of other data
        are recomputed."""
        digest = hashlib.sha1()
        for array in (self.train, self.test, self.labels):
            digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
        return digest.hexdigest()[:12]

    @property
    def n_channels(self) -> int:
        return self.train.shape[1]

    def regions(self) -> list[tuple[int, int]]:
        """Labelled anomaly regions of TEST as inclusive ``(first, last)`` point indices."""
        return label_regions(self.labels)


def label_regions(labels: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.r_[0, np.asarray(labels, dtype=int), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def hit_zone(series: Series) -> np.ndarray:
    """Boolean ``(n_test,)``: the points where an arg-max counts as a UCR hit."""
    zone = np.zeros(len(series.labels), dtype=bool)
    for first, last in series.regions():
        zone[max(0, first - series.hit_margin) : last + series.hit_margin + 1] = True
    return zone


# -------------------------------------------------------------------------------------- period


def _detrended(values: np.ndarray) -> np.ndarray:
    """Each channel of a ``(n, channels)`` series minus its least-squares line."""
    t = np.arange(len(values))
    out = np.empty_like(values)
    for c in range(values.shape[1]):
        slope, intercept = np.polyfit(t, values[:, c], 1)
        out[:, c] = values[:, c] - (slope * t + intercept)
    return out


def dominant_period(values: np.ndarray) -> int | None:
    """Dominant period in points of a ``(n,)`` / ``(n, channels)`` series, or None: the
    library's :func:`anomaly_models.sequences.dominant_period` (autocorrelation, searched after
    its first drop below zero) of the linearly detrended series, at lags :data:`MIN_PERIOD` ..
    ``min(MAX_PERIOD, n // 3)`` (at least three cycles in the series)."""
    array = np.asarray(values, dtype=np.float64)
    array = array[:, None] if array.ndim == 1 else array
    return library_dominant_period(
        _detrended(array), min_period=MIN_PERIOD, max_period=min(MAX_PERIOD, len(array) // 3)
    )


def train_period(series: Series) -> tuple[int, bool]:
    """The peers' window: :func:`dominant_period` of the TRAIN part only, else
    :data:`FALLBACK_PERIOD`; returns ``(window, found)``."""
    period = dominant_period(series.train)
    return (FALLBACK_PERIOD, False) if period is None else (period, True)


# -------------------------------------------------------------------------------- package files


def package_file(module: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {module!r} is not installed (it is in the `bench` extra of pyproject.toml)"
        )
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not in the installed {module!r} package")
    return path


def package_version(module: str) -> str:
    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "?"


def _as_2d(values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array[:, None] if array.ndim == 1 else array


def load_ucr135() -> Series:
    from benchmarks.ucr_sequence import SERIES, load_series

    train, test, labels = load_series()
    return Series(
        "ucr135",
        _as_2d(train),
        _as_2d(test),
        labels,
        "UCR 135: an unusual heartbeat-like cycle",
        f"shared/data/{SERIES}_{{TRAIN,TEST}}.csv (also in aeon: datasets/data/KDD-TSAD_135/)",
    )


def load_aeon_ecg3() -> Series:
    parts = {}
    for part in ("TRAIN_NA", "TEST"):
        frame = pd.read_csv(
            package_file("aeon", "datasets", "data", "UnitTest", f"ecg-diff-count-3_{part}.csv")
        )
        parts[part] = frame.sort_values("timestamp")
    if parts["TRAIN_NA"]["is_anomaly"].any():
        raise ValueError("aeon's ecg-diff-count-3_TRAIN_NA.csv has labelled anomalies")
    return Series(
        "aeon_ecg3",
        _as_2d(parts["TRAIN_NA"]["value-0"]),
        _as_2d(parts["TEST"]["value-0"]),
        parts["TEST"]["is_anomaly"].to_numpy(int),
        "TimeEval/GutenTAG ECG: 3 anomalies of 100 points (different kinds)",
        f"aeon {package_version('aeon')}: datasets/data/UnitTest/ecg-diff-count-3_"
        "{TRAIN_NA,TEST}.csv",
    )


def _split_prefix(name, module, parts, split, anomaly_type, hit_margin=UCR_MARGIN) -> Series:
    frame = pd.read_csv(package_file(module, *parts))
    values, labels = frame["data"].to_numpy(float), frame["label"].to_numpy(int)
    if labels[:split].any():
        raise ValueError(f"{name}: the TRAIN prefix (first {split} points) has labelled points")
    return Series(
        name,
        _as_2d(values[:split]),
        _as_2d(values[split:]),
        labels[split:],
        anomaly_type,
        f"{module} {package_version(module)}: {'/'.join(parts)} (TRAIN = points 0-{split - 1}, "
        f"TEST = {split}-{len(values) - 1})",
        hit_margin=hit_margin,
    )


def load_sktime_mitdb() -> Series:
    return _split_prefix(
        "sktime_mitdb",
        "sktime",
        ("datasets", "data", "mitdb", "mitdb.csv"),
        3750,
        "MIT-BIH ECG: one 352-point run of abnormal beats",
    )


def load_sktime_yahoo() -> Series:
    # 7 single-point anomalies over 415 points: with the UCR margin of 100 nearly all of TEST
    # would count as a hit, so a hit here must lie within 5 points of a labelled point
    return _split_prefix(
        "sktime_yahoo",
        "sktime",
        ("datasets", "data", "yahoo", "yahoo.csv"),
        400,
        "Yahoo S5: 7 single-point spikes/dips",
        hit_margin=5,
    )


# ---------------------------------------------------------------------------------- generator

GEN_TRAIN, GEN_TEST = 2000, 3000
NOISE = 0.15  # std of the Gaussian noise added to every point
#: normal variability, each a unit-variance AR(1) process with correlation time ``tau``
#: periods, scaled: (scale, tau) of the cycle-length jitter (relative), of the amplitude
#: modulation (relative) and of the baseline wander (absolute)
SPEED_JITTER, AMPLITUDE_JITTER, BASELINE_WANDER = (0.05, 3.0), (0.15, 2.0), (0.25, 5.0)
HARMONICS = (1.0, 0.4, 0.2)  # amplitudes of the period's 1st, 2nd and 3rd harmonics
PERIOD_RANGE = (20, 200)  # the period is drawn uniformly from these (inclusive)
POSITION_RANGE = (0.2, 0.8)  # the anomaly starts in this share of TEST (drawn uniformly)

#: name -> (seed, anomaly type, length in periods (0: one point), strength, description)
GENERATED: dict[str, tuple[int, str, float, float, str]] = {
    "gen_spike": (101, "spike", 0, 2.0, "one point +/- 2.0 (sign drawn)"),
    "gen_level_shift": (102, "level shift", 2, 1.0, "+1.0 added over the segment"),
    "gen_frequency": (
        103,
        "frequency change",
        2,
        1.3,
        "frequency x1.3 over the segment (phase-continuous)",
    ),
    "gen_pattern": (
        104,
        "pattern change",
        2,
        3.0,
        "waveform squared off: tanh(3 x / peak) rescaled to the same peak",
    ),
    "gen_variance": (105, "variance change", 2, 3.0, "noise std x3 over the segment"),
    "gen_trend": (106, "trend", 4, 0.8, "triangular drift: up to +0.8 at the centre, back to 0"),
    "gen_multivariate": (
        107,
        "correlation break (3 channels)",
        2,
        -1.0,
        "channel 1's periodic part inverted (x -1) over the segment; channels 0 and 2 normal",
    ),
}


def _ar1(rng: np.random.Generator, n: int, tau: float) -> np.ndarray:
    """A stationary unit-variance AR(1) series with correlation time ``tau`` points."""
    from scipy.signal import lfilter

    rho = float(np.exp(-1.0 / tau))
    shocks = rng.normal(size=n) * np.sqrt(1 - rho**2)
    shocks[0] = rng.normal()
    return lfilter([1.0], [1.0, -rho], shocks)


def _wave(theta: np.ndarray, phases: np.ndarray) -> np.ndarray:
    return sum(a * np.sin((k + 1) * theta + phases[k]) for k, a in enumerate(HARMONICS))


def generate(name: str) -> Series:
    """One generated series (see :data:`GENERATED`), the same for the same name.

    ``rng = numpy.random.default_rng(seed)`` draws, in order: the period ``P`` (integer in
    :data:`PERIOD_RANGE`), the harmonics' phases, the anomaly's start in TEST (uniform over
    :data:`POSITION_RANGE` of TEST, minus the segment length), a sign (spike), the three
    AR(1) variability series and the noise. The wave is ``w(theta) = sum_k HARMONICS[k] *
    sin(k * theta + phase_k)`` (peak-to-peak about 2.6, std about 0.78); its phase ``theta``
    advances by ``2 pi / P * (1 + SPEED_JITTER-scaled AR(1))`` per point (cycle lengths vary by
    about 5 %), the signal is ``(1 + 0.15 AR(1)) * w(theta) + 0.25 AR(1)`` (amplitude
    modulation and baseline wander, correlation times in :data:`SPEED_JITTER` etc.) plus
    Gaussian noise of std :data:`NOISE`. :data:`GEN_TRAIN` points of TRAIN, then
    :data:`GEN_TEST` of TEST continue the same series (one continuous series cut in two); the
    anomaly is injected into TEST only, over ``length`` periods (one point for the spike),
    and exactly the changed points are labelled.

    The multivariate series has three correlated channels from the same phase: channel 0 is
    the signal above, channel 1 = ``amp * (0.8 w(theta - 2 pi / 6) + 0.3 cos(2 theta)) + 0.5
    baseline`` (a lagged, reshaped copy), channel 2 = ``0.5 * (channel 0 + channel 1)`` (clean
    parts); each with its own noise. The anomaly inverts channel 1's periodic part over the
    segment (each value stays in its normal range; only its relation to channels 0 and 2
    breaks).
    """
    seed, kind, periods, strength, _ = GENERATED[name]
    rng = np.random.default_rng(seed)
    period = int(rng.integers(PERIOD_RANGE[0], PERIOD_RANGE[1] + 1))
    phases = rng.uniform(0, 2 * np.pi, size=len(HARMONICS))
    n = GEN_TRAIN + GEN_TEST
    length = 1 if periods == 0 else int(round(periods * period))
    low, high = int(POSITION_RANGE[0] * GEN_TEST), int(POSITION_RANGE[1] * GEN_TEST) - length
    start = GEN_TRAIN + int(rng.integers(low, high + 1))
    segment = slice(start, start + length)
    sign = float(rng.choice([-1.0, 1.0]))
    speed, amplitude, baseline = (
        scale * _ar1(rng, n, tau * period)
        for scale, tau in (SPEED_JITTER, AMPLITUDE_JITTER, BASELINE_WANDER)
    )
    amplitude = 1 + amplitude
    noise_std = np.full(n, NOISE)
    if kind == "variance change":
        noise_std[segment] *= strength
    step = 2 * np.pi / period * (1 + speed)
    if kind == "frequency change":
        step[segment] *= strength
    theta = np.concatenate([[0.0], np.cumsum(step[:-1])])
    wave = _wave(theta, phases)
    if kind == "pattern change":
        peak = np.abs(wave[segment]).max()
        squared = np.tanh(strength * wave[segment] / peak)
        wave[segment] = squared / np.abs(squared).max() * peak
    clean = amplitude * wave + baseline
    if name == "gen_multivariate":
        periodic1 = amplitude * (
            0.8 * _wave(theta - 2 * np.pi / 6, phases) + 0.3 * np.cos(2 * theta)
        )
        ch1 = periodic1 + 0.5 * baseline
        ch2 = 0.5 * (clean + ch1)
        ch1_observed = ch1.copy()
        ch1_observed[segment] += (strength - 1) * periodic1[segment]
        channels = np.stack([clean, ch1_observed, ch2], axis=1)
        values = channels + rng.normal(0, 1, size=channels.shape) * noise_std[:, None]
        names = ("ch0", "ch1", "ch2")
    else:
        if kind == "spike":
            clean[start] += sign * strength
        elif kind == "level shift":
            clean[segment] += strength
        elif kind == "trend":
            ramp = 1 - np.abs(np.linspace(-1, 1, length))
            clean[segment] += strength * ramp
        values = (clean + rng.normal(0, 1, size=n) * noise_std)[:, None]
        names = ("value",)
    labels = np.zeros(n, dtype=int)
    labels[segment] = 1
    description = GENERATED[name][4]
    return Series(
        name,
        values[:GEN_TRAIN],
        values[GEN_TRAIN:],
        labels[GEN_TRAIN:],
        kind,
        f"generate({name!r}): seed {seed}, period {period}, TEST points "
        f"{start - GEN_TRAIN}-{start - GEN_TRAIN + length - 1}: {description}",
        channels=names,
        info={"seed": seed, "period": period, "start": start - GEN_TRAIN, "length": length},
    )


LOADERS: dict[str, Callable[[], Series]] = {
    "ucr135": load_ucr135,
    "aeon_ecg3": load_aeon_ecg3,
    "sktime_mitdb": load_sktime_mitdb,
    "sktime_yahoo": load_sktime_yahoo,
    **{name: (lambda name=name: generate(name)) for name in GENERATED},
}
