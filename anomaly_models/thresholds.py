"""Threshold calibration: turn anomaly scores into a 0/1 decision.

Every detector in :mod:`anomaly_models` produces a 1-D array of anomaly scores where
**higher means more anomalous**. A threshold is calibrated once, on validation data that
training never saw, and stored with the model together with the method and its parameters
(:class:`ThresholdResult`).

Conventions used everywhere in the project
------------------------------------------
* A threshold is an **absolute number in the units of the score** (not a percentile, not a
  z-score): it can be compared directly with any future score of the same model.
* The flag rule is always ``score > threshold`` (strictly greater). A score equal to the
  threshold is *not* flagged.
* ``false_alarm_rate`` is the fraction of calibration scores above the threshold; when labels are
  given it is measured on the normal (label 0) scores only.

Which method to pick
--------------------
``quantile`` (default)
    Flag the top ``1 - q`` fraction of validation scores. Distribution-free and the easiest to
    reason about: choose ``q`` as "1 minus the alert rate you can afford". Needs enough
    validation scores to estimate the quantile (``q = 0.99`` wants a few hundred at least).
``mean_std``
    ``mean + k * std``. Classic "k sigma" rule; fine for roughly Gaussian scores, but both the mean
    and the std are pulled up by any anomalies left in the validation data.
``median_mad``
    ``median + k * 1.4826 * MAD``. The robust version of ``mean_std``: a few outliers in the
    validation data barely move it. A good choice when the validation split may be contaminated.
``iqr``
    ``Q3 + k * (Q3 - Q1)`` (Tukey's fences; ``k = 1.5`` "outlier", ``k = 3`` "far out"). Robust
    and makes no symmetry assumption; suited to skewed score distributions.
``best_f1``
    When validation labels exist: the cut that maximises F1 on them. Best in-sample quality,
    but it optimises on the labelled anomalies seen, so it can overfit small label sets.
``pot``
    Peaks over threshold (extreme-value theory, Siffer et al. 2017): fits a generalised Pareto
    distribution to the tail and extrapolates to a very small target false-alarm rate (e.g.
    ``1e-3`` or ``1e-4``) that an empirical quantile cannot estimate from the data at hand.

:data:`THRESHOLD_METHODS` is the one table of methods (:class:`ThresholdMethod`: the function, its
parameters with their defaults, whether it needs labels, the false-alarm rate it aims at);
:data:`METHODS` is the tuple of its names. Configuration should derive its choices and parameter
keys from the table.

:func:`calibrate_threshold` is the dispatcher used by the rest of the project. When it is given
labels for a method other than ``best_f1``, the threshold is computed from the normal scores only,
so anomalies in the validation split do not inflate it.

Only numpy and scipy are needed.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = [
    "METHODS",
    "THRESHOLD_METHODS",
    "ThresholdMethod",
    "MAD_SCALE",
    "ThresholdResult",
    "quantile_threshold",
    "mean_std_threshold",
    "median_mad_threshold",
    "iqr_threshold",
    "best_f1_threshold",
    "pot_threshold",
    "calibrate_threshold",
]

#: Consistency constant that makes the MAD an estimator of the standard deviation for
#: Gaussian data (1 / Phi^-1(3/4)).
MAD_SCALE = 1.4826

#: Minimum number of excesses over the initial threshold that POT needs for a GPD fit.
POT_MIN_EXCESSES = 10

_GAMMA_ZERO_TOL = 1e-8


# ---------------------------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThresholdResult:
    """A calibrated threshold with the method and parameters that produced it.

    Attributes:
        method: one of :data:`METHODS`.
        params: the method's parameters as used (and fitted values such as POT's ``gamma``).
        threshold: absolute cut in score units; ``score > threshold`` is flagged.
        false_alarm_rate: fraction of the calibration scores (of the normal ones when labels were
            given) that are ``> threshold``.
        n_calibration: number of scores the threshold was computed from.
    """

    method: str
    params: dict[str, float] = field(default_factory=dict)
    threshold: float = 0.0
    false_alarm_rate: float = 0.0
    n_calibration: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        # Store plain Python types so that equality, repr and JSON never see numpy scalars.
        object.__setattr__(self, "method", str(self.method))
        params: dict[str, float] = {}
        for key, value in dict(self.params).items():
            try:
                params[str(key)] = float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"ThresholdResult params must be numbers; params[{key!r}] = {value!r}"
                ) from None
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "false_alarm_rate", float(self.false_alarm_rate))
        object.__setattr__(self, "n_calibration", int(self.n_calibration))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (plain str/float/int)."""
        return {
            "method": self.method,
            "params": dict(self.params),
            "threshold": self.threshold,
            "false_alarm_rate": self.false_alarm_rate,
            "n_calibration": self.n_calibration,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ThresholdResult:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, dict):
            raise ValueError(f"ThresholdResult.from_dict expects a dict, got {type(d).__name__}")
        required = ("method", "threshold")
        missing = [key for key in required if key not in d]
        if missing:
            raise ValueError(
                f"ThresholdResult.from_dict: missing key(s) {missing}; got keys {sorted(d)}"
            )
        return cls(
            method=d["method"],
            params=dict(d.get("params") or {}),
            threshold=d["threshold"],
            false_alarm_rate=d.get("false_alarm_rate", 0.0),
            n_calibration=d.get("n_calibration", 0),
        )


# ---------------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------------


def _as_1d(values: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be numeric array-like, got {type(values).__name__}: {exc}"
        ) from exc
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (or shape (n, 1)), got shape {arr.shape}")
    return arr


def _check_scores(scores: Any) -> np.ndarray:
    arr = _as_1d(scores, "scores")
    if arr.size == 0:
        raise ValueError("scores is empty (shape (0,)); need at least one score")
    finite = np.isfinite(arr)
    if not finite.all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        raise ValueError(
            f"scores must be finite: found {n_nan} NaN and {n_inf} inf among {arr.size} values"
        )
    return arr


def _check_labels(labels: Any, n: int) -> np.ndarray:
    arr = _as_1d(labels, "labels")
    if arr.shape[0] != n:
        raise ValueError(
            f"labels must have the same length as scores: got {arr.shape[0]} labels for {n} scores"
        )
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        bad_values = np.unique(arr[bad])[:5].tolist()
        raise ValueError(
            f"labels must be 0 (normal) or 1 (anomaly); found {int(bad.sum())} other value(s), "
            f"e.g. {bad_values}"
        )
    return arr.astype(np.int64)


def _check_open_unit(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}") from None
    if not (0.0 < v < 1.0):  # also rejects NaN
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return v


def _check_k(value: Any, name: str = "k") -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number >= 0, got {value!r}") from None
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def _false_alarm_rate(scores: np.ndarray, threshold: float) -> float:
    return float(np.mean(scores > threshold)) if scores.size else 0.0


def _result(
    method: str, params: dict[str, float], threshold: float, scores: np.ndarray
) -> ThresholdResult:
    return ThresholdResult(
        method=method,
        params=params,
        threshold=float(threshold),
        false_alarm_rate=_false_alarm_rate(scores, threshold),
        n_calibration=int(scores.size),
    )


# ---------------------------------------------------------------------------------------------
# Methods
# ---------------------------------------------------------------------------------------------


def quantile_threshold(scores: Any, q: float = 0.99) -> ThresholdResult:
    """Empirical ``q``-quantile of the scores (numpy's default linear interpolation).

    About ``1 - q`` of the calibration scores end up flagged.
    """
    x = _check_scores(scores)
    q = _check_open_unit(q, "q")
    thr = float(np.quantile(x, q))
    return _result("quantile", {"q": q}, thr, x)


def mean_std_threshold(scores: Any, k: float = 3.0) -> ThresholdResult:
    """``mean + k * std`` with the population standard deviation (``ddof=0``)."""
    x = _check_scores(scores)
    k = _check_k(k)
    thr = float(np.mean(x) + k * np.std(x, ddof=0))
    return _result("mean_std", {"k": k}, thr, x)


def median_mad_threshold(scores: Any, k: float = 3.0) -> ThresholdResult:
    """``median + k * 1.4826 * MAD`` where ``MAD = median(|x - median(x)|)``.

    The MAD is *scaled* by 1.4826 (recorded as ``params["scale"]``) so that for Gaussian scores
    ``1.4826 * MAD`` estimates the standard deviation and ``k`` reads like ``mean_std``'s ``k``.
    """
    x = _check_scores(scores)
    k = _check_k(k)
    med = float(np.median(x))
    mad = float(np.median(np.abs(x - med)))
    thr = med + k * MAD_SCALE * mad
    return _result("median_mad", {"k": k, "scale": MAD_SCALE}, thr, x)


def iqr_threshold(scores: Any, k: float = 1.5) -> ThresholdResult:
    """Tukey's upper fence ``Q3 + k * (Q3 - Q1)`` (quartiles by numpy's linear interpolation)."""
    x = _check_scores(scores)
    k = _check_k(k)
    q1, q3 = (float(v) for v in np.quantile(x, [0.25, 0.75]))
    thr = q3 + k * (q3 - q1)
    return _result("iqr", {"k": k}, thr, x)


def best_f1_threshold(scores: Any, labels: Any) -> ThresholdResult:
    """The cut maximising the F1 score of ``score > cut`` against ``labels`` (1 = anomaly).

    Candidate cuts are the distinct score values (a cut at a value leaves that value unflagged)
    plus one just below the minimum (flag everything). Ties in F1 go to the highest cut, i.e. the
    fewest alarms. The achieved F1 is recorded as ``params["f1"]``; ``false_alarm_rate`` is
    measured on the label-0 scores.
    """
    x = _check_scores(scores)
    y = _check_labels(labels, x.size)
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            "best_f1 needs at least one normal (0) and one anomalous (1) label; "
            f"got {n_neg} normal and {n_pos} anomalous"
        )
    pos = np.sort(x[y == 1])
    neg = np.sort(x[y == 0])
    below_min = float(np.nextafter(x.min(), -np.inf))
    cuts = np.concatenate([[below_min], np.unique(x)])
    tp = n_pos - np.searchsorted(pos, cuts, side="right")
    fp = n_neg - np.searchsorted(neg, cuts, side="right")
    fn = n_pos - tp
    denom = 2 * tp + fp + fn  # > 0 because n_pos > 0
    f1 = 2 * tp / denom
    best = float(f1.max())
    # highest cut among the maxima (ties in floating point compared exactly: same counts -> same f1)
    idx = int(np.flatnonzero(f1 == best)[-1])
    thr = float(cuts[idx])
    return ThresholdResult(
        method="best_f1",
        params={"f1": best},
        threshold=thr,
        false_alarm_rate=_false_alarm_rate(neg, thr),
        n_calibration=int(x.size),
    )


def pot_threshold(
    scores: Any, target_false_alarm_rate: float = 0.001, initial_quantile: float = 0.98
) -> ThresholdResult:
    """Peaks-over-threshold threshold (Siffer et al., KDD 2017, the SPOT initialisation).

    1. ``t = quantile(scores, initial_quantile)``;
    2. fit a generalised Pareto distribution (``scipy.stats.genpareto``, ``loc`` fixed at 0) to the
       excesses ``scores[scores > t] - t``, giving shape ``gamma`` and scale ``sigma``;
    3. ``threshold = t + sigma / gamma * ((q * n / N_t) ** (-gamma) - 1)``, or
       ``t - sigma * log(q * n / N_t)`` when ``gamma`` is ~0, with ``q`` the target false-alarm
       rate, ``n`` the number of scores and ``N_t`` the number of excesses.

    Needs at least 10 excesses and ``q < N_t / n`` (the target must lie beyond the initial
    threshold). ``params`` records ``gamma``, ``sigma``, ``initial_threshold``,
    ``initial_quantile``, ``target_false_alarm_rate`` and ``n_excesses``.
    """
    from scipy import stats  # local import: scipy is only needed by this method

    x = _check_scores(scores)
    q = _check_open_unit(target_false_alarm_rate, "target_false_alarm_rate")
    q0 = _check_open_unit(initial_quantile, "initial_quantile")
    n = int(x.size)
    t = float(np.quantile(x, q0))
    excesses = x[x > t] - t
    n_t = int(excesses.size)
    if n_t < POT_MIN_EXCESSES:
        raise ValueError(
            f"pot needs at least {POT_MIN_EXCESSES} scores above the initial threshold "
            f"(initial_quantile={q0}, t={t:.6g}), got {n_t} out of {n}; "
            "lower initial_quantile or calibrate on more data"
        )
    ratio = q * n / n_t
    if ratio >= 1.0:
        raise ValueError(
            f"pot: target_false_alarm_rate={q} is not beyond the initial threshold "
            f"({n_t}/{n} = {n_t / n:.6g} of the scores exceed it); "
            "raise initial_quantile or lower target_false_alarm_rate"
        )
    gamma, _loc, sigma = stats.genpareto.fit(excesses, floc=0.0)
    gamma = float(gamma)
    sigma = float(sigma)
    if not (math.isfinite(gamma) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(
            f"pot: the generalised Pareto fit failed (gamma={gamma}, sigma={sigma}) on {n_t} "
            "excesses; try another initial_quantile or method"
        )
    if abs(gamma) < _GAMMA_ZERO_TOL:
        thr = t - sigma * math.log(ratio)
    else:
        thr = t + (sigma / gamma) * (ratio ** (-gamma) - 1.0)
    params = {
        "gamma": gamma,
        "sigma": sigma,
        "initial_threshold": t,
        "initial_quantile": q0,
        "target_false_alarm_rate": q,
        "n_excesses": float(n_t),
    }
    return _result("pot", params, thr, x)


# ---------------------------------------------------------------------------------------------
# Dispatcher
# ---------------------------------------------------------------------------------------------

def _quantile_nominal_rate(q: Any) -> float:
    # rounded so that e.g. q=0.99 gives 0.01, not 0.010000000000000009
    return round(1.0 - _check_open_unit(q, "q"), 12)


def _pot_nominal_rate(target_false_alarm_rate: Any, initial_quantile: Any) -> float:
    return _check_open_unit(target_false_alarm_rate, "target_false_alarm_rate")


@dataclass(frozen=True)
class ThresholdMethod:
    """One row of the table of threshold methods (:data:`THRESHOLD_METHODS`).

    Attributes:
        name: the ``method`` name given to :func:`calibrate_threshold` (one of :data:`METHODS`).
        function: the method's function, ``function(scores, [labels,] **parameters)`` ->
            :class:`ThresholdResult`.
        parameters: the method's parameters and their default values, read from the
            function's signature (``scores`` and ``labels`` left out), in signature order.
        needs_labels: True when the method requires 0/1 labels (``best_f1``).
        nominal_rate: ``nominal_rate(**parameters)`` -> the false-alarm rate the method aims
            at, or None when it aims at none (see :meth:`nominal_false_alarm_rate`).
    """

    name: str
    function: Callable[..., ThresholdResult]
    parameters: Mapping[str, float] = field(default_factory=dict)
    needs_labels: bool = False
    nominal_rate: Callable[..., float] | None = None

    @classmethod
    def from_function(
        cls,
        name: str,
        function: Callable[..., ThresholdResult],
        nominal_rate: Callable[..., float] | None = None,
    ) -> ThresholdMethod:
        """The row of ``function``: parameters and ``needs_labels`` from its signature."""
        signature = inspect.signature(function)
        parameters = {
            key: p.default
            for key, p in signature.parameters.items()
            if key not in ("scores", "labels")
        }
        return cls(
            name=name,
            function=function,
            parameters=MappingProxyType(parameters),
            needs_labels="labels" in signature.parameters,
            nominal_rate=nominal_rate,
        )

    def check_parameters(self, params: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` naming any key of ``params`` that this method does not take."""
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {unknown} for threshold method {self.name!r}; "
                f"accepted: {list(self.parameters) if self.parameters else 'none'}"
            )

    def nominal_false_alarm_rate(self, **params: Any) -> float | None:
        """The false-alarm rate this method aims at with ``params`` (defaults for the others).

        ``quantile``: ``1 - q`` (rounded to 12 decimals); ``pot``: ``target_false_alarm_rate``;
        None for the methods that aim at no rate (``mean_std``, ``median_mad``, ``iqr``,
        ``best_f1``). The rate actually measured on the calibration scores is
        :attr:`ThresholdResult.false_alarm_rate`.

        Raises:
            ValueError: a parameter the method does not take, or a rate parameter out of (0, 1).
        """
        self.check_parameters(params)
        if self.nominal_rate is None:
            return None
        return float(self.nominal_rate(**{**self.parameters, **params}))


#: The one table of threshold methods, keyed by name: the dispatcher, the documentation and the
#: pipeline's configuration (its ``threshold.method`` choices and parameter keys) derive from it.
THRESHOLD_METHODS: dict[str, ThresholdMethod] = {
    method.name: method
    for method in (
        ThresholdMethod.from_function("quantile", quantile_threshold, _quantile_nominal_rate),
        ThresholdMethod.from_function("mean_std", mean_std_threshold),
        ThresholdMethod.from_function("median_mad", median_mad_threshold),
        ThresholdMethod.from_function("iqr", iqr_threshold),
        ThresholdMethod.from_function("best_f1", best_f1_threshold),
        ThresholdMethod.from_function("pot", pot_threshold, _pot_nominal_rate),
    )
}

#: Names of the threshold methods, in table order.
METHODS: tuple[str, ...] = tuple(THRESHOLD_METHODS)


def calibrate_threshold(
    scores: Any, method: str = "quantile", labels: Any = None, **params: Any
) -> ThresholdResult:
    """Calibrate a threshold with the named method.

    Args:
        scores: 1-D anomaly scores of validation data (higher = more anomalous).
        method: one of :data:`METHODS` (the keys of :data:`THRESHOLD_METHODS`).
        labels: optional 0/1 labels (1 = anomaly). Required by ``best_f1``. For every other
            method the threshold is computed from the label-0 scores only, and
            ``false_alarm_rate``/``n_calibration`` refer to those.
        **params: the method's parameters (``q`` for quantile, ``k`` for mean_std/median_mad/iqr,
            ``target_false_alarm_rate``/``initial_quantile`` for pot; none for best_f1).

    Raises:
        ValueError: unknown method, unknown parameter, missing labels for ``best_f1``, or any
            invalid input.
    """
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"unknown threshold method {method!r}; expected one of {METHODS}")
    row = THRESHOLD_METHODS[method]
    row.check_parameters(params)
    if row.needs_labels:
        if labels is None:
            raise ValueError(
                f"threshold method {method!r} requires labels (0 = normal, 1 = anomaly)"
            )
        return row.function(scores, labels, **params)
    if labels is None:
        return row.function(scores, **params)
    x = _check_scores(scores)
    y = _check_labels(labels, x.size)
    normal = x[y == 0]
    if normal.size == 0:
        raise ValueError(
            f"labels mark all {x.size} scores as anomalies (1); threshold method {method!r} "
            "needs normal (0) scores to calibrate on"
        )
    return row.function(normal, **params)
