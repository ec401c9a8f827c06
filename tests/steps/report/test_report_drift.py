"""PSI / KS drift, the sampling that bounds it, and the day's drift against the training
snapshot (:mod:`flows.steps.report.drift`).

Expected values are computed by hand in the tests (PSI) or by the reference implementation
(scipy for KS).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from flows.steps.report import (
    BatchRow,
    drift_level,
    drift_of_day,
    feature_drift,
    is_drifted,
    ks_test,
    population_stability_index,
    quantile_edges,
    sample_parquet,
)
from flows.steps.report import drift as drift_module


# ------------------------------------------------------------------------------ drift
def test_psi_of_identical_distributions_is_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(size=5000)
    assert population_stability_index(x, x) == pytest.approx(0.0, abs=1e-12)
    assert population_stability_index(x, x[::-1].copy()) == pytest.approx(0.0, abs=1e-12)
    # another sample of the same distribution: only sampling noise, well under 0.1
    assert population_stability_index(x, rng.normal(size=5000)) < 0.02


def test_quantile_edges_are_the_training_deciles():
    np.testing.assert_allclose(
        quantile_edges(np.arange(100)), [9.9, 19.8, 29.7, 39.6, 49.5, 59.4, 69.3, 79.2, 89.1]
    )
    # ties merge: a feature that is mostly 0 has fewer bins
    np.testing.assert_allclose(quantile_edges([0] * 80 + list(range(1, 21))), [0, 0.2, 10.1])


def test_psi_of_shifted_distributions_matches_a_hand_computation():
    train = np.arange(100)  # deciles cut at 9.9, 19.8, ..., 89.1: 10 values per bin
    eps, n_bins = 1e-4, 10
    e = (0.1 + eps) / (1 + n_bins * eps)  # = 0.1 exactly: every training bin holds 10 %

    # shifted by 10: bin 1 empties, the last bin doubles (100..109 are above 89.1)
    empty, double = eps / (1 + n_bins * eps), (0.2 + eps) / (1 + n_bins * eps)
    by_hand = (empty - e) * math.log(empty / e) + (double - e) * math.log(double / e)
    assert by_hand == pytest.approx(0.7594, abs=1e-4)
    assert population_stability_index(train, np.arange(10, 110)) == pytest.approx(by_hand)

    # only the lower half: five bins at 20 %, five empty
    by_hand = 5 * (double - e) * math.log(double / e) + 5 * (empty - e) * math.log(empty / e)
    assert by_hand == pytest.approx(3.7969, abs=1e-4)
    assert population_stability_index(train, np.arange(50)) == pytest.approx(by_hand)

    # non-finite values are ignored on both sides
    noisy = np.concatenate([np.arange(50), [np.nan, np.inf, -np.inf]]).astype(float)
    assert population_stability_index(train, noisy) == pytest.approx(by_hand)


def test_feature_drift_reports_psi_ks_and_the_per_bin_shares():
    train = np.arange(100, dtype=float)
    day = np.arange(10, 110, dtype=float)

    f = feature_drift("x", train, day)

    assert f.psi == pytest.approx(population_stability_index(train, day))
    ref = ks_2samp(train, day)
    assert (f.ks_statistic, f.ks_pvalue) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    assert f.drifted and f.level == "drift"
    assert (f.train_rows, f.day_rows) == (100, 100)
    assert (f.train_mean, f.day_mean) == (pytest.approx(49.5), pytest.approx(59.5))
    assert len(f.edges) == 9 and len(f.train_shares) == len(f.day_shares) == 10
    assert sum(f.train_shares) == pytest.approx(1.0) and sum(f.day_shares) == pytest.approx(1.0)
    assert f.day_shares[0] < 0.001 and f.day_shares[-1] == pytest.approx(0.2, abs=1e-3)
    missing = feature_drift("y", train, [np.nan])
    assert missing.psi is None and not missing.drifted and missing.level == "n/a"


def test_ks_matches_scipy_and_ignores_non_finite_values():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=700), rng.normal(0.3, 1.2, size=400)
    ref = ks_2samp(a, b)
    assert ks_test(a, b) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    with_nan = np.concatenate([b, [np.nan, np.inf]])
    assert ks_test(a, with_nan) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))


def test_drift_rule_and_levels():
    assert is_drifted(0.25, 0.01, 0.9)  # PSI alone
    assert is_drifted(0.05, 0.15, 0.001)  # KS: significant and large enough
    assert not is_drifted(0.05, 0.05, 1e-12)  # significant but negligible (large samples)
    assert not is_drifted(0.05, 0.2, 0.02)  # large but not significant
    assert not is_drifted(0.2, None, None)  # 0.2 itself is not above the threshold
    assert not is_drifted(None, None, None)
    assert [drift_level(v) for v in (0.0, 0.0999, 0.1, 0.2, 0.2001, None, math.nan)] == [
        "stable", "stable", "moderate", "moderate", "drift", "n/a", "n/a"]


def test_allocation_stays_within_the_budget():
    assert drift_module._allocation([10, 20], 100) == [10, 20]  # the whole day fits
    # floors of min(size, 2000) first (1000 + 2000 + 2000), then the other 195,000 rows shared
    # in proportion to the rows above the floors: 98,000 and 298,000 of 396,000
    assert drift_module._allocation([1_000, 100_000, 300_000], 200_000) == [
        1_000, 2_000 + 195_000 * 98_000 // 396_000, 2_000 + 195_000 * 298_000 // 396_000]
    assert drift_module._allocation([1_000, 1_000], 600) == [300, 300]  # floors do not fit: proportional
    sizes = [7, 123_456, 999_999, 5]
    shares = drift_module._allocation(sizes, 200_000)
    assert sum(shares) <= 200_000
    # small files are taken whole, no file gives more rows than it has, and rounding each share
    # down leaves less than one row per file of the budget unused
    assert (shares[0], shares[3]) == (7, 5) and all(k <= n for k, n in zip(shares, sizes, strict=True))
    assert sum(shares) > 200_000 - len(sizes)


def test_sample_parquet_is_reproducible_and_bounded(tmp_path):
    frame = pd.DataFrame({"i": np.arange(200_000), "x": np.arange(200_000) * 0.5, "s": "t"})
    frame.to_parquet(tmp_path / "f.parquet", index=False, row_group_size=30_000)

    a = sample_parquet(tmp_path / "f.parquet", ["i", "x", "absent"], 1000,
                          np.random.default_rng(7))
    b = sample_parquet(tmp_path / "f.parquet", ["i", "x", "absent"], 1000,
                          np.random.default_rng(7))

    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["i", "x"] and len(a) == 1000 and a["i"].is_unique
    assert a["i"].is_monotonic_increasing  # rows kept in file order
    np.testing.assert_array_equal(a["x"], a["i"] * 0.5)  # whole rows, not shuffled columns
    assert a["i"].max() > 150_000  # drawn from the whole file, not its head
    everything = sample_parquet(tmp_path / "f.parquet", ["i"], 10**6, np.random.default_rng(0))
    assert len(everything) == 200_000


def test_drift_of_day_compares_scored_outputs_with_the_training_snapshot(tmp_path, make_params):
    params = make_params(tmp_path)
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"a": rng.normal(size=4000), "b": rng.uniform(size=4000), "y": 0})
    (tmp_path / "data" / "processed").mkdir(parents=True)
    train.to_parquet(tmp_path / "data" / "processed" / "train.parquet", index=False)
    (tmp_path / "scored").mkdir()
    same = train.sample(1000, random_state=1)
    shifted = train.sample(1000, random_state=2).assign(a=lambda d: d["a"] + 1.0)
    same.to_parquet(tmp_path / "scored" / "same.parquet", index=False)
    shifted.to_parquet(tmp_path / "scored" / "shifted.parquet", index=False)
    batches = [
        BatchRow("same.csv", "scored", "2026-05-02T01:00:00+00:00", rows=1000, flagged=0,
                    output="scored/same.parquet"),
        BatchRow("shifted.csv", "scored", "2026-05-02T02:00:00+00:00", rows=1000, flagged=0,
                    output="scored/shifted.parquet"),
        BatchRow("bad.csv", "quarantined", "2026-05-02T03:00:00+00:00"),
        BatchRow("lost.csv", "scored", "2026-05-02T04:00:00+00:00", rows=10, flagged=0,
                    output="scored/lost.parquet"),  # deleted since: left out, said so
    ]

    result = drift_of_day(params, tmp_path, batches)

    assert result.available
    assert result.note == "left out of the drift: lost.csv: its output scored/lost.parquet is missing"
    assert [f.feature for f in result.features] == ["a", "b"]  # the label is not a feature
    assert (result.training_rows, result.training_sample) == (4000, 4000)
    assert (result.day_rows, result.day_sample) == (2010, 2000)
    day = pd.concat([same, shifted])
    a = result.features[0]
    assert a.psi == pytest.approx(population_stability_index(train["a"], day["a"]))
    ref = ks_2samp(train["a"], day["a"])
    assert a.ks_statistic == pytest.approx(ref.statistic)
    assert result.drifted == ["a"] and result.max_psi == a.psi
    # per batch: only the shifted one drifted
    assert batches[0].drifted_features == [] and batches[0].max_psi < 0.05
    assert batches[1].drifted_features == ["a"] and batches[1].max_psi > 0.2
    assert batches[0].sample_rows == batches[1].sample_rows == 1000
    assert batches[2].max_psi is None and batches[3].max_psi is None

    # a bounded sample: the same result twice (fixed seed), at most max_rows rows
    small = drift_of_day(params, tmp_path, batches, max_rows=600)
    again = drift_of_day(params, tmp_path, batches, max_rows=600)
    assert small.day_sample == 600 == again.day_sample  # 300 per batch
    assert small.features[0].psi == again.features[0].psi


def test_drift_of_day_without_snapshot_or_scored_batches_says_why(tmp_path, make_params):
    params = make_params(tmp_path)
    scored = [BatchRow("b.csv", "scored", "2026-05-02T01:00:00+00:00", rows=5,
                          output="scored/b.parquet")]
    missing = drift_of_day(params, tmp_path, scored)
    assert not missing.available
    assert "data/processed/train.parquet is missing" in missing.note
    none = drift_of_day(params, tmp_path, [BatchRow("q.csv", "quarantined", "x")])
    assert not none.available and "no batch was scored" in none.note
