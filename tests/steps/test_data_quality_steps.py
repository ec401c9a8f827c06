"""The data-quality report's step functions without Prefect or MLflow: dates, the day's batches
from a ledger, the anomaly-rate trend, PSI / KS drift, sampling, and the rendered page.

Expected values are computed by hand in the tests (PSI) or by the reference implementation
(scipy for KS).
"""

from __future__ import annotations

import json
import math
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from flows import data_quality as dq
from flows.config import ConfigError, Params

DAY = date(2026, 5, 2)


def _params(tmp_path: Path) -> Params:
    return Params.model_validate(
        {
            "data": {"source": "unused.csv", "label_column": "y"},
            "scoring": {
                "incoming_dir": str(tmp_path / "incoming"),
                "scored_dir": str(tmp_path / "scored"),
                "quarantine_dir": str(tmp_path / "quarantine"),
            },
        }
    )


def _ledger() -> dict:
    """Entries around the day's UTC boundaries (2026-05-02)."""
    return {
        "format": 1,
        "batches": {
            "a" * 64: {"batch": "late.csv", "rows": 100, "flagged": 4, "model_version": 1,
                       "output": "scored/late.parquet",
                       "scored_at": "2026-05-01T23:59:59+00:00"},  # the day before
            "b" * 64: {"batch": "midnight.csv", "rows": 200, "flagged": 10, "model_version": 2,
                       "output": "scored/midnight.parquet",
                       "scored_at": "2026-05-02T00:00:00+00:00"},
            "c" * 64: {"batch": "offset.parquet", "rows": 300, "flagged": 3, "model_version": 2,
                       "output": "scored/offset.parquet",
                       # 22:30 at UTC-2 is 00:30 UTC on the 2nd
                       "scored_at": "2026-05-01T22:30:00-02:00"},
            "d" * 64: {"batch": "naive.csv", "rows": 50, "flagged": 0, "model_version": 2,
                       "output": "scored/naive.parquet",
                       "scored_at": "2026-05-02T23:59:59"},  # no offset: taken as UTC
            "e" * 64: {"batch": "next.csv", "rows": 10, "flagged": 10, "model_version": 2,
                       "output": "scored/next.parquet",
                       "scored_at": "2026-05-03T00:00:00+00:00"},  # the day after
            "f" * 64: {"batch": "old.csv", "rows": 1000, "flagged": 1, "model_version": 1,
                       "output": "scored/old.parquet",
                       "scored_at": "2026-04-29T12:00:00+00:00"},
        },
        "in_progress": {},
        "quarantined": [
            {"batch": "bad.csv", "reason": "missing column(s) ['x']", "stage": "validate",
             "quarantined_to": "quarantine/bad.csv", "report": "quarantine/bad.csv.report.json",
             "model_version": 2, "at": "2026-05-02T08:00:00+00:00"},
            {"batch": "gone.csv", "reason": "empty file (0 bytes): gone.csv", "stage": "read",
             "quarantined_to": "quarantine/gone.csv", "report": "quarantine/gone.csv.report.json",
             "model_version": 2, "at": "2026-05-02T09:00:00+00:00"},
            {"batch": "older.csv", "reason": "x", "quarantined_to": "quarantine/older.csv",
             "at": "2026-04-30T09:00:00+00:00"},
        ],
    }


# ------------------------------------------------------------------------------ dates
def test_parse_report_date_defaults_to_yesterday_utc_and_accepts_iso_days():
    assert dq.parse_report_date(None, today=DAY) == date(2026, 5, 1)
    assert dq.parse_report_date("2026-05-02", today=DAY) == DAY
    assert dq.parse_report_date(" 2026-01-31 ", today=DAY) == date(2026, 1, 31)
    assert dq.parse_report_date(date(2026, 4, 1), today=DAY) == date(2026, 4, 1)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("2026/05/01", r"--date: expected a day as YYYY-MM-DD.*'2026/05/01'"),
        ("20260501", r"--date: expected .*'20260501'"),
        ("yesterday", r"--date: expected .*'yesterday'"),
        ("", r"--date: expected .*''"),
        ("2026-02-30", r"--date: '2026-02-30' is not a calendar date"),
        ("2026-13-01", r"--date: '2026-13-01' is not a calendar date"),
        ("2026-05-03", r"--date: '2026-05-03' is in the future \(today is 2026-05-02 UTC\)"),
    ],
)
def test_parse_report_date_errors_name_the_option_and_the_value(value, match):
    with pytest.raises(ConfigError, match=match) as info:
        dq.parse_report_date(value, today=DAY)
    assert info.value.keys == ["--date"]


def test_entry_day_is_the_utc_day_of_the_timestamp():
    assert dq.entry_day("2026-05-01T23:59:59+00:00") == date(2026, 5, 1)
    assert dq.entry_day("2026-05-02T00:00:00+00:00") == date(2026, 5, 2)
    assert dq.entry_day("2026-05-01T22:30:00-02:00") == date(2026, 5, 2)
    assert dq.entry_day("2026-05-02T01:30:00+02:00") == date(2026, 5, 1)
    assert dq.entry_day("2026-05-02T23:59:59") == date(2026, 5, 2)  # naive = UTC
    assert dq.entry_day("2026-05-02T10:00:00Z") == date(2026, 5, 2)
    assert dq.entry_day("not a time") is None
    assert dq.entry_day(None) is None


# ------------------------------------------------------------------------------ batches
def test_batches_of_day_takes_scored_and_quarantined_entries_by_utc_day_in_time_order():
    rows = dq.batches_of_day(_ledger(), DAY)

    assert [(b.batch, b.status) for b in rows] == [
        ("midnight.csv", "scored"),  # 00:00:00
        ("offset.parquet", "scored"),  # 00:30:00 UTC
        ("bad.csv", "quarantined"),  # 08:00
        ("gone.csv", "quarantined"),  # 09:00
        ("naive.csv", "scored"),  # 23:59:59
    ]
    midnight = rows[0]
    assert (midnight.rows, midnight.flagged, midnight.model_version) == (200, 10, 2)
    assert midnight.rate == pytest.approx(10 / 200) and midnight.passed
    assert midnight.output == "scored/midnight.parquet" and midnight.sha256 == "b" * 64
    bad = rows[2]
    assert not bad.passed and bad.rows is None and bad.flagged is None and bad.rate is None
    assert bad.reason == "missing column(s) ['x']" and bad.stage == "validate"
    assert bad.quarantined_to == "quarantine/bad.csv"
    assert dq.batches_of_day(_ledger(), date(2026, 4, 28)) == []
    assert dq.batches_of_day({"batches": {}, "quarantined": []}, DAY) == []


def test_collect_batches_reads_the_ledger_and_counts_quarantined_rows_in_their_files(tmp_path):
    params = _params(tmp_path)
    (tmp_path / "scored").mkdir()
    (tmp_path / "scored" / "_ledger.json").write_text(json.dumps(_ledger()))
    (tmp_path / "quarantine").mkdir()
    pd.DataFrame({"x": range(7)}).to_csv(tmp_path / "quarantine" / "bad.csv", index=False)
    # gone.csv is not there (fixed and removed by a person): its rows are unknown

    rows = dq.collect_batches(params, tmp_path, DAY)

    by_name = {b.batch: b for b in rows}
    assert by_name["bad.csv"].rows == 7
    assert by_name["gone.csv"].rows is None
    assert by_name["midnight.csv"].rows == 200  # scored: from the ledger
    assert json.loads((tmp_path / "scored" / "_ledger.json").read_text()) == _ledger()  # read only
    assert dq.collect_batches(_params(tmp_path / "empty"), tmp_path / "empty", DAY) == []


def test_count_rows_of_csv_parquet_empty_and_unreadable_files(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"]})
    frame.to_csv(tmp_path / "b.csv", index=False)
    frame.to_csv(tmp_path / "b.csv.gz", index=False)
    frame.to_parquet(tmp_path / "b.parquet", index=False)
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "header.csv").write_text("a,b\n")
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1" + bytes(range(200)))
    (tmp_path / "notes.txt").write_text("1\n2\n")

    assert dq.count_rows(tmp_path / "b.csv") == 3
    assert dq.count_rows(tmp_path / "b.csv.gz") == 3
    assert dq.count_rows(tmp_path / "b.parquet") == 3
    assert dq.count_rows(tmp_path / "empty.csv") == 0
    assert dq.count_rows(tmp_path / "header.csv") == 0
    assert dq.count_rows(tmp_path / "corrupt.parquet") is None
    assert dq.count_rows(tmp_path / "notes.txt") is None
    assert dq.count_rows(tmp_path / "absent.csv") is None


# ------------------------------------------------------------------------------ trend
def test_anomaly_rate_trend_sums_rows_and_flagged_per_utc_day():
    trend = dq.anomaly_rate_trend(_ledger(), DAY, days=4)

    assert [p.date for p in trend] == ["2026-04-29", "2026-04-30", "2026-05-01", "2026-05-02"]
    assert [(p.batches, p.rows, p.flagged, p.quarantined) for p in trend] == [
        (1, 1000, 1, 0),
        (0, 0, 0, 1),
        (1, 100, 4, 0),
        (3, 200 + 300 + 50, 10 + 3 + 0, 2),
    ]
    # the day's rate is flagged / rows of the day, not the mean of the batches' rates
    assert trend[3].rate == pytest.approx(13 / 550)
    assert trend[0].rate == pytest.approx(0.001)
    assert trend[1].rate is None  # no scored rows that day
    assert [p.date for p in dq.anomaly_rate_trend(_ledger(), DAY, days=1)] == ["2026-05-02"]
    with pytest.raises(ValueError, match="days must be >= 1"):
        dq.anomaly_rate_trend(_ledger(), DAY, days=0)


# ------------------------------------------------------------------------------ drift
def test_psi_of_identical_distributions_is_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(size=5000)
    assert dq.population_stability_index(x, x) == pytest.approx(0.0, abs=1e-12)
    assert dq.population_stability_index(x, x[::-1].copy()) == pytest.approx(0.0, abs=1e-12)
    # another sample of the same distribution: only sampling noise, well under 0.1
    assert dq.population_stability_index(x, rng.normal(size=5000)) < 0.02


def test_quantile_edges_are_the_training_deciles():
    np.testing.assert_allclose(
        dq.quantile_edges(np.arange(100)), [9.9, 19.8, 29.7, 39.6, 49.5, 59.4, 69.3, 79.2, 89.1]
    )
    # ties merge: a feature that is mostly 0 has fewer bins
    np.testing.assert_allclose(dq.quantile_edges([0] * 80 + list(range(1, 21))), [0, 0.2, 10.1])


def test_psi_of_shifted_distributions_matches_a_hand_computation():
    train = np.arange(100)  # deciles cut at 9.9, 19.8, ..., 89.1: 10 values per bin
    eps, n_bins = 1e-4, 10
    e = (0.1 + eps) / (1 + n_bins * eps)  # = 0.1 exactly: every training bin holds 10 %

    # shifted by 10: bin 1 empties, the last bin doubles (100..109 are above 89.1)
    empty, double = eps / (1 + n_bins * eps), (0.2 + eps) / (1 + n_bins * eps)
    by_hand = (empty - e) * math.log(empty / e) + (double - e) * math.log(double / e)
    assert by_hand == pytest.approx(0.7594, abs=1e-4)
    assert dq.population_stability_index(train, np.arange(10, 110)) == pytest.approx(by_hand)

    # only the lower half: five bins at 20 %, five empty
    by_hand = 5 * (double - e) * math.log(double / e) + 5 * (empty - e) * math.log(empty / e)
    assert by_hand == pytest.approx(3.7969, abs=1e-4)
    assert dq.population_stability_index(train, np.arange(50)) == pytest.approx(by_hand)

    # non-finite values are ignored on both sides
    noisy = np.concatenate([np.arange(50), [np.nan, np.inf, -np.inf]]).astype(float)
    assert dq.population_stability_index(train, noisy) == pytest.approx(by_hand)


def test_feature_drift_reports_psi_ks_and_the_per_bin_shares():
    train = np.arange(100, dtype=float)
    day = np.arange(10, 110, dtype=float)

    f = dq.feature_drift("x", train, day)

    assert f.psi == pytest.approx(dq.population_stability_index(train, day))
    ref = ks_2samp(train, day)
    assert (f.ks_statistic, f.ks_pvalue) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    assert f.drifted and f.level == "drift"
    assert (f.train_rows, f.day_rows) == (100, 100)
    assert (f.train_mean, f.day_mean) == (pytest.approx(49.5), pytest.approx(59.5))
    assert len(f.edges) == 9 and len(f.train_shares) == len(f.day_shares) == 10
    assert sum(f.train_shares) == pytest.approx(1.0) and sum(f.day_shares) == pytest.approx(1.0)
    assert f.day_shares[0] < 0.001 and f.day_shares[-1] == pytest.approx(0.2, abs=1e-3)
    missing = dq.feature_drift("y", train, [np.nan])
    assert missing.psi is None and not missing.drifted and missing.level == "n/a"


def test_ks_matches_scipy_and_ignores_non_finite_values():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=700), rng.normal(0.3, 1.2, size=400)
    ref = ks_2samp(a, b)
    assert dq.ks_test(a, b) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    with_nan = np.concatenate([b, [np.nan, np.inf]])
    assert dq.ks_test(a, with_nan) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))


def test_drift_rule_and_levels():
    assert dq.is_drifted(0.25, 0.01, 0.9)  # PSI alone
    assert dq.is_drifted(0.05, 0.15, 0.001)  # KS: significant and large enough
    assert not dq.is_drifted(0.05, 0.05, 1e-12)  # significant but negligible (large samples)
    assert not dq.is_drifted(0.05, 0.2, 0.02)  # large but not significant
    assert not dq.is_drifted(0.2, None, None)  # 0.2 itself is not above the threshold
    assert not dq.is_drifted(None, None, None)
    assert [dq.drift_level(v) for v in (0.0, 0.0999, 0.1, 0.2, 0.2001, None, math.nan)] == [
        "stable", "stable", "moderate", "moderate", "drift", "n/a", "n/a"]


def test_allocation_stays_within_the_budget():
    assert dq._allocation([10, 20], 100) == [10, 20]  # the whole day fits
    # floors of min(size, 2000) first (1000 + 2000 + 2000), then the other 195,000 rows shared
    # in proportion to the rows above the floors: 98,000 and 298,000 of 396,000
    assert dq._allocation([1_000, 100_000, 300_000], 200_000) == [
        1_000, 2_000 + 195_000 * 98_000 // 396_000, 2_000 + 195_000 * 298_000 // 396_000]
    assert dq._allocation([1_000, 1_000], 600) == [300, 300]  # floors do not fit: proportional
    assert sum(dq._allocation([7, 123_456, 999_999, 5], 200_000)) <= 200_000


def test_sample_parquet_is_reproducible_and_bounded(tmp_path):
    frame = pd.DataFrame({"i": np.arange(200_000), "x": np.arange(200_000) * 0.5, "s": "t"})
    frame.to_parquet(tmp_path / "f.parquet", index=False, row_group_size=30_000)

    a = dq.sample_parquet(tmp_path / "f.parquet", ["i", "x", "absent"], 1000,
                          np.random.default_rng(7))
    b = dq.sample_parquet(tmp_path / "f.parquet", ["i", "x", "absent"], 1000,
                          np.random.default_rng(7))

    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["i", "x"] and len(a) == 1000 and a["i"].is_unique
    assert a["i"].is_monotonic_increasing  # rows kept in file order
    np.testing.assert_array_equal(a["x"], a["i"] * 0.5)  # whole rows, not shuffled columns
    assert a["i"].max() > 150_000  # drawn from the whole file, not its head
    everything = dq.sample_parquet(tmp_path / "f.parquet", ["i"], 10**6, np.random.default_rng(0))
    assert len(everything) == 200_000


def test_drift_of_day_compares_scored_outputs_with_the_training_snapshot(tmp_path):
    params = _params(tmp_path)
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
        dq.BatchRow("same.csv", "scored", "2026-05-02T01:00:00+00:00", rows=1000, flagged=0,
                    output="scored/same.parquet"),
        dq.BatchRow("shifted.csv", "scored", "2026-05-02T02:00:00+00:00", rows=1000, flagged=0,
                    output="scored/shifted.parquet"),
        dq.BatchRow("bad.csv", "quarantined", "2026-05-02T03:00:00+00:00"),
        dq.BatchRow("lost.csv", "scored", "2026-05-02T04:00:00+00:00", rows=10, flagged=0,
                    output="scored/lost.parquet"),  # deleted since: left out, said so
    ]

    result = dq.drift_of_day(params, tmp_path, batches)

    assert result.available
    assert result.note == "left out of the drift: lost.csv: its output scored/lost.parquet is missing"
    assert [f.feature for f in result.features] == ["a", "b"]  # the label is not a feature
    assert (result.training_rows, result.training_sample) == (4000, 4000)
    assert (result.day_rows, result.day_sample) == (2010, 2000)
    day = pd.concat([same, shifted])
    a = result.features[0]
    assert a.psi == pytest.approx(dq.population_stability_index(train["a"], day["a"]))
    ref = ks_2samp(train["a"], day["a"])
    assert a.ks_statistic == pytest.approx(ref.statistic)
    assert result.drifted == ["a"] and result.max_psi == a.psi
    # per batch: only the shifted one drifted
    assert batches[0].drifted_features == [] and batches[0].max_psi < 0.05
    assert batches[1].drifted_features == ["a"] and batches[1].max_psi > 0.2
    assert batches[0].sample_rows == batches[1].sample_rows == 1000
    assert batches[2].max_psi is None and batches[3].max_psi is None

    # a bounded sample: the same result twice (fixed seed), at most max_rows rows
    small = dq.drift_of_day(params, tmp_path, batches, max_rows=600)
    again = dq.drift_of_day(params, tmp_path, batches, max_rows=600)
    assert small.day_sample == 600 == again.day_sample  # 300 per batch
    assert small.features[0].psi == again.features[0].psi


def test_drift_of_day_without_snapshot_or_scored_batches_says_why(tmp_path):
    params = _params(tmp_path)
    scored = [dq.BatchRow("b.csv", "scored", "2026-05-02T01:00:00+00:00", rows=5,
                          output="scored/b.parquet")]
    missing = dq.drift_of_day(params, tmp_path, scored)
    assert not missing.available
    assert "data/processed/train.parquet is missing" in missing.note
    none = dq.drift_of_day(params, tmp_path, [dq.BatchRow("q.csv", "quarantined", "x")])
    assert not none.available and "no batch was scored" in none.note


def test_data_docs_without_a_gx_project_or_batches_say_so(tmp_path):
    params = _params(tmp_path)
    batch = dq.BatchRow("b.csv", "scored", "2026-05-02T01:00:00+00:00")
    docs = dq.build_data_docs(params, tmp_path, DAY, [batch], tmp_path)
    assert docs.index is None and "no Great Expectations project" in docs.note
    assert not (tmp_path / "gx").exists()  # only read: nothing created


# ------------------------------------------------------------------------------ the page
def _report(tmp_path: Path, batches: list[dq.BatchRow], drift: dq.DriftResult) -> dq.DataQualityReport:
    folder = tmp_path / "data" / "reports" / DAY.isoformat()
    return dq.DataQualityReport(
        date=DAY.isoformat(), root=tmp_path, folder=folder, html=folder / "report.html",
        json_path=folder / "report.json", data_docs_index=None, batches=batches, drift=drift,
        trend=dq.anomaly_rate_trend(_ledger(), DAY, 5), data_docs_note="no validations",
        generated_at="2026-05-03T02:00:00+00:00",
    )


def test_the_page_is_self_contained_with_tables_and_decodable_plots(tmp_path):
    batches = dq.batches_of_day(_ledger(), DAY)
    batches[2].rows = 7
    batches.append(dq.BatchRow("<b>x</b>.csv", "scored", "2026-05-02T10:00:00+00:00", rows=3,
                               flagged=1))
    drift = dq.DriftResult(available=True, training_snapshot="data/processed/train.parquet",
                           training_rows=100, training_sample=100, day_rows=553, day_sample=553,
                           features=[dq.feature_drift("x", np.arange(100), np.arange(10, 110)),
                                     dq.feature_drift("y", np.arange(100), np.arange(100))])
    report = _report(tmp_path, batches, drift)

    images = dq.render_plots(report)
    page = dq.render_html(report, images)

    assert sorted(images) == ["bins", "psi", "rows", "trend"]
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in images.values())
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == 4 == page.count("<img ")
    # nothing fetched from anywhere: no http(s) URL, no external stylesheet or script
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<link" not in page and "<script src" not in page
    for table in ("batches", "drift", "trend"):
        assert f'<table id="{table}">' in page
    assert '<tr data-batch="midnight.csv">' in page and ">200<" in page
    assert "&lt;b&gt;x&lt;/b&gt;.csv" in page and "<b>x</b>.csv" not in page  # escaped
    assert '<tr data-feature="x">' in page and "drift" in page

    assert report.headline() == (
        "data-quality report 2026-05-02: 6 batches (4 passed, 2 failed/quarantined), "
        "553 rows scored, 2.53% flagged; drift in 1 of 2 features (x) "
        "-> data/reports/2026-05-02/report.html"
    )
    numbers = report.to_dict()
    assert numbers["totals"]["rows_scored"] == 553 and numbers["totals"]["quarantined"] == 2
    assert numbers["totals"]["rows_quarantined"] is None  # gone.csv: unknown
    assert numbers["drift"]["drifted_features"] == ["x"]
    json.dumps(numbers, allow_nan=False)  # strict JSON


def test_a_day_without_batches_renders_a_page_that_says_so(tmp_path):
    report = _report(tmp_path, [], dq.DriftResult(available=False, note="no batch was scored"))

    images = dq.render_plots(report)
    page = dq.render_html(report, images)

    assert sorted(images) == ["trend"]
    assert 'id="no-batches"' in page and "No batches were scored or quarantined" in page
    assert "no batch was scored" in page
    assert report.headline() == (
        "data-quality report 2026-05-02: no batches scored or quarantined on this day "
        "-> data/reports/2026-05-02/report.html"
    )
    assert report.metrics() == {"batches": 0, "scored": 0, "quarantined": 0, "rows": 0,
                                "flagged": 0, "rows_quarantined": 0}
