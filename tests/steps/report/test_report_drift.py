"""PSI / KS drift, the sampling that bounds it, and the day's drift against the drift references
of the model versions that scored it (:mod:`flows.steps.report.drift`).

Expected values are computed by hand in the tests (PSI) or by the reference implementation
(scipy for KS).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from flows.steps.reference import write_drift_reference
from flows.steps.report import (
    BatchRow,
    compute_drift,
    drift_level,
    drift_of_day,
    feature_drift,
    is_drifted,
    ks_test,
    population_stability_index,
    quantile_edges,
    reference_versions,
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


def _reference(root, params, train, version):
    """The drift reference of ``train`` as the register stage writes it, cached for
    ``version`` where the report finds it; the working copy's split is deleted afterwards (the
    report must not need it)."""
    import shutil

    processed = root / "data" / "processed"
    processed.mkdir(parents=True, exist_ok=True)
    train.to_parquet(processed / "train.parquet", index=False)
    written = write_drift_reference(params, root)
    cached = root / "data" / "interim" / "references" / f"{version}.parquet"
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(written, cached)
    shutil.rmtree(processed)
    return cached


def _scored(root, name, frame, version):
    (root / "scored").mkdir(exist_ok=True)
    frame.to_parquet(root / "scored" / f"{name}.parquet", index=False)
    return BatchRow(f"{name}.csv", "scored", "2026-05-02T01:00:00+00:00", rows=len(frame),
                    flagged=0, model_version=version, output=f"scored/{name}.parquet")


def test_drift_of_day_compares_scored_outputs_with_the_versions_reference(tmp_path, make_params):
    params = make_params(tmp_path)
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"a": rng.normal(size=4000), "b": rng.uniform(size=4000), "y": 0})
    reference = _reference(tmp_path, params, train, 1)
    same = train.sample(1000, random_state=1)
    shifted = train.sample(1000, random_state=2).assign(a=lambda d: d["a"] + 1.0)
    batches = [
        _scored(tmp_path, "same", same, 1),
        _scored(tmp_path, "shifted", shifted, 1),
        BatchRow("bad.csv", "quarantined", "2026-05-02T03:00:00+00:00"),
        BatchRow("lost.csv", "scored", "2026-05-02T04:00:00+00:00", rows=10, flagged=0,
                 model_version=1, output="scored/lost.parquet"),  # deleted since: said so
    ]
    assert reference_versions(batches) == [1]

    result = drift_of_day(tmp_path, batches, {1: reference})

    assert result.available
    assert result.note == "left out of the drift: lost.csv: its output scored/lost.parquet is missing"
    assert [f.feature for f in result.features] == ["a", "b"]  # the label is not a feature
    assert (result.reference_version, result.reference) == (1, "data/interim/references/1.parquet")
    assert result.training_split == "data/processed/train.parquet"
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
    small = drift_of_day(tmp_path, batches, {1: reference}, max_rows=600)
    again = drift_of_day(tmp_path, batches, {1: reference}, max_rows=600)
    assert small.day_sample == 600 == again.day_sample  # 300 per batch
    assert small.features[0].psi == again.features[0].psi
    assert small.training_sample == 600 and small.training_rows == 4000


def test_each_batch_against_its_own_version_and_the_day_against_the_main_one(
    tmp_path, make_params
):
    """Two versions trained on different data scored one day: each batch is compared with its
    own version's reference, the day with the reference of the version that scored most rows."""
    params = make_params(tmp_path)
    rng = np.random.default_rng(5)
    old = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.uniform(size=3000), "y": 0})
    new = old.assign(a=old["a"] + 3.0)  # version 2 was trained on shifted data
    references = {1: _reference(tmp_path, params, old, 1), 2: _reference(tmp_path, params, new, 2)}
    like_old = old.sample(1000, random_state=1)
    like_new = new.sample(1500, random_state=2)
    batches = [_scored(tmp_path, "v1", like_old, 1), _scored(tmp_path, "v2", like_new, 2)]

    result = drift_of_day(tmp_path, batches, references)

    # per batch: like its own training data, no drift
    assert batches[0].drifted_features == [] and batches[1].drifted_features == []
    assert batches[0].max_psi < 0.05 and batches[1].max_psi < 0.05
    # the day: every row against version 2's reference (it scored 1,500 of 2,500 rows)
    assert result.available and result.reference_version == 2
    expected = compute_drift(new[["a", "b"]], pd.concat([like_old, like_new]), ["a", "b"])
    assert [f.psi for f in result.features] == pytest.approx([f.psi for f in expected])
    assert result.drifted == ["a"]  # the rows of version 1 are far from version 2's data
    assert result.note == (
        "the day's batches were scored by model versions 1, 2: the day's rows are compared "
        "with the drift reference of version 2, which scored most of them (1,500 of 2,500 "
        "rows); each batch with its own version's")


def test_drift_of_day_says_why_it_was_not_measured(tmp_path, make_params):
    params = make_params(tmp_path)
    train = pd.DataFrame({"a": np.arange(500.0), "y": 0})
    reference = _reference(tmp_path, params, train, 2)
    no_reference = ("model version 1 has no drift reference (registered before references were "
                    "logged: reports/drift_reference.parquet is not among the artifacts of run r1)")
    big, small = _scored(tmp_path, "big", train, 1), _scored(tmp_path, "small", train.head(50), 2)

    # the version that scored most rows has no reference: no day drift, said once; the batch
    # of the other version still gets its own
    result = drift_of_day(tmp_path, [big, small], {1: no_reference, 2: reference})
    assert not result.available and result.reference_version == 1 and result.features == []
    assert result.note == f"{no_reference}: drift not measured"
    assert big.max_psi is None and small.sample_rows == 50
    assert small.max_psi == pytest.approx(population_stability_index(train["a"], train["a"][:50]))
    # the other way round: the day is measured, the batch without a reference says why
    other = drift_of_day(tmp_path, [_scored(tmp_path, "few", train.head(50), 1),
                                    _scored(tmp_path, "many", train, 2)],
                         {1: no_reference, 2: reference})
    assert other.available and other.reference_version == 2
    assert other.note.endswith(f"; no per-batch drift for few.csv: {no_reference}")

    # an unreachable registry (the flow passes its sentence), an unreadable cached reference
    unreachable = "the registry is unreachable (no MLflow database at /x/mlflow.db)"
    assert drift_of_day(tmp_path, [small], {2: unreachable}).note == (
        f"{unreachable}: drift not measured")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    note = drift_of_day(tmp_path, [small], {2: broken}).note
    assert note.startswith("the drift reference of model version 2 (broken.parquet) is "
                           "unreadable: ") and note.endswith(": drift not measured")
    assert drift_of_day(tmp_path, [small], {}).note == (
        "the drift reference of model version 2 was not fetched: drift not measured")

    # a batch the ledger names no version for: no drift of its own, the day against the others
    unknown = _scored(tmp_path, "unknown", train.head(10), None)
    mixed = drift_of_day(tmp_path, [small, unknown], {2: reference})
    assert mixed.available and mixed.day_sample == 60
    assert mixed.note == ("no per-batch drift for unknown.csv: the ledger does not say which "
                          "model version scored it, so it has no drift reference")
    alone = drift_of_day(tmp_path, [unknown], {})
    assert not alone.available and "does not say which model version" in alone.note

    # no scored batch; no readable output
    none = drift_of_day(tmp_path, [BatchRow("q.csv", "quarantined", "x")], {2: reference})
    assert not none.available and none.note == "no batch was scored on this day: nothing to compare"
    lost = BatchRow("b.csv", "scored", "x", rows=5, model_version=2, output="scored/b.parquet")
    assert drift_of_day(tmp_path, [lost], {2: reference}).note == (
        "no scored output of the day could be read: b.csv: its output scored/b.parquet is missing")
    assert not (tmp_path / "data" / "processed").exists()  # never needed
