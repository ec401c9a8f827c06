"""Unit tests for anomaly_models.thresholds (pure numpy/scipy, fast)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from anomaly_models.thresholds import (
    METHODS,
    ThresholdResult,
    best_f1_threshold,
    calibrate_threshold,
    iqr_threshold,
    mean_std_threshold,
    median_mad_threshold,
    pot_threshold,
    quantile_threshold,
)

SCORES = [1.0, 2.0, 3.0, 4.0, 100.0]


# --------------------------------------------------------------------------- hand-computed values


def test_mean_std_by_hand():
    # mean = 110/5 = 22; squared deviations 441+400+361+324+6084 = 7610; var = 1522
    r = mean_std_threshold(SCORES, k=1.0)
    assert r.threshold == pytest.approx(22.0 + math.sqrt(1522.0))
    assert r.method == "mean_std"
    assert r.params == {"k": 1.0}
    assert r.false_alarm_rate == pytest.approx(0.2)  # only 100 > 61.01
    assert r.n_calibration == 5


def test_mean_std_default_k_uses_population_std():
    r = mean_std_threshold(SCORES)
    assert r.threshold == pytest.approx(22.0 + 3.0 * math.sqrt(1522.0))
    assert r.false_alarm_rate == 0.0  # 100 < 139.04


def test_median_mad_by_hand():
    # median 3; |x - 3| = 2,1,0,1,97 -> MAD 1; 3 + 3 * 1.4826 * 1
    r = median_mad_threshold(SCORES, k=3.0)
    assert r.threshold == pytest.approx(3.0 + 3.0 * 1.4826)
    assert r.params == {"k": 3.0, "scale": 1.4826}
    assert r.false_alarm_rate == pytest.approx(0.2)


def test_iqr_by_hand():
    # linear quartiles: Q1 at position 1 -> 2, Q3 at position 3 -> 4; 4 + 1.5 * 2 = 7
    r = iqr_threshold(SCORES)
    assert r.threshold == pytest.approx(7.0)
    assert r.params == {"k": 1.5}
    assert r.false_alarm_rate == pytest.approx(0.2)


def test_quantile_by_hand_and_matches_numpy():
    # position 0.9 * 4 = 3.6 -> 4 + 0.6 * (100 - 4) = 61.6
    r = quantile_threshold(SCORES, q=0.9)
    assert r.threshold == pytest.approx(61.6)
    assert r.false_alarm_rate == pytest.approx(0.2)
    r = quantile_threshold(SCORES, q=0.5)
    assert r.threshold == pytest.approx(3.0)
    assert r.false_alarm_rate == pytest.approx(0.4)  # strict ">": 3 is not flagged
    x = np.random.default_rng(1).normal(size=1001)
    for q in (0.01, 0.5, 0.99):
        assert quantile_threshold(x, q=q).threshold == pytest.approx(float(np.quantile(x, q)))


def test_quantile_false_alarm_rate_on_large_sample():
    x = np.random.default_rng(2).normal(size=10_000)
    r = quantile_threshold(x, q=0.99)
    assert r.false_alarm_rate == pytest.approx(0.01, abs=1e-3)


@pytest.mark.parametrize(
    "func", [quantile_threshold, mean_std_threshold, median_mad_threshold, iqr_threshold]
)
def test_constant_scores(func):
    r = func(np.full(7, 2.5))
    assert r.threshold == pytest.approx(2.5)
    assert r.false_alarm_rate == 0.0
    assert r.n_calibration == 7


def test_column_vector_is_accepted():
    r = quantile_threshold(np.asarray(SCORES).reshape(-1, 1), q=0.5)
    assert r.threshold == pytest.approx(3.0)
    assert r.n_calibration == 5


def test_k_zero_is_allowed():
    assert mean_std_threshold(SCORES, k=0).threshold == pytest.approx(22.0)


# --------------------------------------------------------------------------- best_f1


def test_best_f1_separable():
    scores = [0.1, 0.2, 0.3, 0.9, 1.0]
    labels = [0, 0, 0, 1, 1]
    r = best_f1_threshold(scores, labels)
    assert r.params["f1"] == 1.0
    assert 0.3 <= r.threshold < 0.9
    assert r.threshold == pytest.approx(0.3)  # the highest normal score stays unflagged
    assert r.false_alarm_rate == 0.0
    assert r.n_calibration == 5
    flagged = np.asarray(scores) > r.threshold
    assert flagged.tolist() == [bool(v) for v in labels]


def test_best_f1_non_separable():
    # cut:      <1    1     2     3     4     5     6
    # tp/fp:   3/3   3/2   3/1   2/1   2/0   1/0   0/0
    # f1:      .667  .75   .857  .667  .8    .5    0     -> cut 2, f1 = 6/7
    scores = [1, 2, 3, 4, 5, 6]
    labels = [0, 0, 1, 0, 1, 1]
    r = best_f1_threshold(scores, labels)
    assert r.threshold == pytest.approx(2.0)
    assert r.params["f1"] == pytest.approx(6 / 7)
    assert r.false_alarm_rate == pytest.approx(1 / 3)  # normals 1, 2, 4: only 4 > 2


def test_best_f1_can_flag_everything():
    # anomalies below the normals: flagging everything (f1 = 2*2/(2*2+1) = 0.8) beats any cut
    r = best_f1_threshold([1.0, 2.0, 3.0], [1, 1, 0])
    assert r.threshold < 1.0
    assert r.params["f1"] == pytest.approx(0.8)
    assert r.false_alarm_rate == 1.0


def test_best_f1_via_dispatcher():
    r = calibrate_threshold([0.1, 0.2, 0.9], method="best_f1", labels=[0, 0, 1])
    assert r.method == "best_f1"
    assert r.threshold == pytest.approx(0.2)
    assert r.params["f1"] == 1.0


# --------------------------------------------------------------------------- POT


def test_pot_exponential_matches_true_quantile():
    rng = np.random.default_rng(0)
    calib = rng.exponential(size=200_000)
    r = pot_threshold(calib, target_false_alarm_rate=1e-3, initial_quantile=0.98)
    true_q = -math.log(1e-3)  # 6.9078
    assert r.method == "pot"
    assert r.threshold == pytest.approx(true_q, rel=0.15)
    assert abs(r.params["gamma"]) < 0.1  # exponential tail: gamma = 0
    assert r.params["sigma"] == pytest.approx(1.0, rel=0.15)
    assert r.params["initial_threshold"] == pytest.approx(float(np.quantile(calib, 0.98)))
    assert r.params["target_false_alarm_rate"] == 1e-3
    assert r.n_calibration == 200_000
    fresh = rng.exponential(size=200_000)
    far = float(np.mean(fresh > r.threshold))
    assert 0.5e-3 < far < 1.6e-3
    assert 0.5e-3 < r.false_alarm_rate < 1.6e-3


def test_pot_threshold_follows_formula():
    x = np.random.default_rng(3).pareto(3.0, size=20_000)
    r = pot_threshold(x, target_false_alarm_rate=1e-4, initial_quantile=0.95)
    p = r.params
    ratio = 1e-4 * x.size / p["n_excesses"]
    expected = p["initial_threshold"] + p["sigma"] / p["gamma"] * (ratio ** (-p["gamma"]) - 1)
    assert p["gamma"] > 0  # heavy (Pareto) tail
    assert r.threshold == pytest.approx(expected)
    assert r.threshold > p["initial_threshold"]


def test_pot_gamma_zero_branch(monkeypatch):
    from scipy import stats

    monkeypatch.setattr(stats.genpareto, "fit", lambda data, floc=0.0: (0.0, 0.0, 2.0))
    x = np.arange(1000, dtype=float)
    r = pot_threshold(x, target_false_alarm_rate=1e-3, initial_quantile=0.9)
    t = float(np.quantile(x, 0.9))
    n_t = int(np.sum(x > t))
    assert r.threshold == pytest.approx(t - 2.0 * math.log(1e-3 * 1000 / n_t))


def test_pot_too_few_excesses():
    x = np.arange(100, dtype=float)  # 0.98 quantile leaves 2 excesses
    with pytest.raises(ValueError, match=r"got 2 out of 100.*lower initial_quantile"):
        pot_threshold(x)


def test_pot_target_not_beyond_initial_threshold():
    x = np.random.default_rng(4).exponential(size=1000)
    with pytest.raises(ValueError, match="target_false_alarm_rate=0.1"):
        pot_threshold(x, target_false_alarm_rate=0.1, initial_quantile=0.98)


# --------------------------------------------------------------------------- serialisation


@pytest.mark.parametrize(
    "result",
    [
        quantile_threshold(SCORES, q=0.9),
        median_mad_threshold(SCORES),
        best_f1_threshold([1, 2, 3, 4], [0, 0, 1, 1]),
        pot_threshold(np.random.default_rng(5).exponential(size=5000)),
    ],
    ids=["quantile", "median_mad", "best_f1", "pot"],
)
def test_round_trip_and_json(result):
    d = result.to_dict()
    text = json.dumps(d)
    back = ThresholdResult.from_dict(json.loads(text))
    assert back == result
    assert ThresholdResult.from_dict(d) == result
    assert type(d["threshold"]) is float
    assert type(d["false_alarm_rate"]) is float
    assert type(d["n_calibration"]) is int
    assert all(type(v) is float for v in d["params"].values())


def test_from_dict_errors():
    with pytest.raises(ValueError, match="threshold"):
        ThresholdResult.from_dict({"method": "quantile"})
    with pytest.raises(ValueError, match="'nope'"):
        ThresholdResult.from_dict({"method": "nope", "threshold": 1.0})
    with pytest.raises(ValueError, match=r"params\['k'\] = 'three'"):
        ThresholdResult.from_dict(
            {"method": "mean_std", "threshold": 1.0, "params": {"k": "three"}}
        )


# --------------------------------------------------------------------------- dispatcher


@pytest.mark.parametrize(
    ("method", "params", "func", "func_params"),
    [
        ("quantile", {"q": 0.9}, quantile_threshold, {"q": 0.9}),
        ("mean_std", {"k": 2.0}, mean_std_threshold, {"k": 2.0}),
        ("median_mad", {"k": 2.0}, median_mad_threshold, {"k": 2.0}),
        ("iqr", {"k": 3.0}, iqr_threshold, {"k": 3.0}),
        ("quantile", {}, quantile_threshold, {}),
    ],
)
def test_dispatcher_routes(method, params, func, func_params):
    r = calibrate_threshold(SCORES, method=method, **params)
    assert r == func(SCORES, **func_params)
    assert r.method == method


def test_dispatcher_routes_pot():
    x = np.random.default_rng(6).exponential(size=5000)
    r = calibrate_threshold(x, method="pot", target_false_alarm_rate=1e-3, initial_quantile=0.97)
    assert r == pot_threshold(x, target_false_alarm_rate=1e-3, initial_quantile=0.97)


def test_dispatcher_default_method_is_quantile():
    assert calibrate_threshold(SCORES).method == "quantile"
    assert set(METHODS) == {"quantile", "mean_std", "median_mad", "iqr", "best_f1", "pot"}


def test_dispatcher_labels_use_normal_scores_only():
    scores = [1.0, 2.0, 3.0, 4.0, 100.0, 200.0]
    labels = [0, 0, 0, 0, 1, 1]
    r = calibrate_threshold(scores, method="quantile", labels=labels, q=0.5)
    assert r.threshold == pytest.approx(2.5)  # median of [1, 2, 3, 4]
    assert r.n_calibration == 4
    assert r.false_alarm_rate == pytest.approx(0.5)  # 3 and 4 of the normals
    # without labels the anomalies would pull it up
    assert calibrate_threshold(scores, method="quantile", q=0.5).threshold == pytest.approx(3.5)
    r = calibrate_threshold(scores, method="mean_std", labels=labels, k=0.0)
    assert r.threshold == pytest.approx(2.5)


def test_dispatcher_unknown_method():
    with pytest.raises(ValueError, match=r"'zscore'.*quantile.*pot"):
        calibrate_threshold(SCORES, method="zscore")


def test_dispatcher_unknown_param():
    with pytest.raises(ValueError, match=r"\['kk'\].*'mean_std'.*accepted: \['k'\]"):
        calibrate_threshold(SCORES, method="mean_std", kk=3)
    with pytest.raises(ValueError, match=r"\['k'\].*'quantile'.*\['q'\]"):
        calibrate_threshold(SCORES, method="quantile", k=3)
    with pytest.raises(ValueError, match=r"\['q'\].*'best_f1'"):
        calibrate_threshold(SCORES, method="best_f1", labels=[0, 0, 0, 1, 1], q=0.5)


def test_dispatcher_best_f1_requires_labels():
    with pytest.raises(ValueError, match="requires labels"):
        calibrate_threshold(SCORES, method="best_f1")


def test_dispatcher_all_labels_anomalous():
    with pytest.raises(ValueError, match="normal"):
        calibrate_threshold(SCORES, method="quantile", labels=[1, 1, 1, 1, 1])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("scores", "match"),
    [
        ([], "empty"),
        ([[1.0, 2.0], [3.0, 4.0]], r"1-D.*\(2, 2\)"),
        (np.zeros((2, 2, 1)), r"1-D.*\(2, 2, 1\)"),
        ([1.0, float("nan"), 2.0, float("nan")], "2 NaN and 0 inf"),
        ([1.0, float("inf"), -float("inf")], "0 NaN and 2 inf"),
        (["a", "b"], "scores must be numeric"),
    ],
)
def test_bad_scores(scores, match):
    with pytest.raises(ValueError, match=match):
        quantile_threshold(scores)
    with pytest.raises(ValueError, match=match):
        calibrate_threshold(scores, method="mean_std")


@pytest.mark.parametrize("q", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_bad_q(q):
    with pytest.raises(ValueError, match=rf"q must be in \(0, 1\), got {q!r}"):
        quantile_threshold(SCORES, q=q)


def test_non_numeric_q():
    with pytest.raises(ValueError, match="q must be a number.*'high'"):
        calibrate_threshold(SCORES, method="quantile", q="high")


@pytest.mark.parametrize("func", [mean_std_threshold, median_mad_threshold, iqr_threshold])
@pytest.mark.parametrize("k", [-1.0, float("inf"), float("nan")])
def test_bad_k(func, k):
    with pytest.raises(ValueError, match=rf"k must be a finite number >= 0, got {k!r}"):
        func(SCORES, k=k)


@pytest.mark.parametrize("rate", [0.0, 1.0, 2.0])
def test_bad_target_false_alarm_rate(rate):
    x = np.random.default_rng(7).exponential(size=2000)
    with pytest.raises(
        ValueError, match=rf"target_false_alarm_rate must be in \(0, 1\), got {rate}"
    ):
        pot_threshold(x, target_false_alarm_rate=rate)


def test_bad_initial_quantile():
    with pytest.raises(ValueError, match=r"initial_quantile must be in \(0, 1\), got 1.0"):
        pot_threshold(np.arange(100.0), initial_quantile=1.0)


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        ([0, 1, 0], "got 3 labels for 5 scores"),
        ([0, 1, 2, 0, 1], r"0 \(normal\) or 1 \(anomaly\).*\[2\.0\]"),
        ([0, 1, float("nan"), 0, 1], r"1 other value.*nan"),
        ([[0, 1, 0, 1, 0]], r"1-D.*\(1, 5\)"),
    ],
)
def test_bad_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        best_f1_threshold(SCORES, labels)
    with pytest.raises(ValueError, match=match):
        calibrate_threshold(SCORES, method="quantile", labels=labels)


@pytest.mark.parametrize("labels", [[0, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
def test_best_f1_needs_both_classes(labels):
    n_pos = sum(labels)
    with pytest.raises(ValueError, match=f"got {5 - n_pos} normal and {n_pos} anomalous"):
        best_f1_threshold(SCORES, labels)


def test_labels_accept_bool_and_column_vector():
    r = best_f1_threshold(SCORES, np.array([False, False, False, False, True]).reshape(-1, 1))
    assert r.params["f1"] == 1.0
    assert r.threshold == pytest.approx(4.0)
