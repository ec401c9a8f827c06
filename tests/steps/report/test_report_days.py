"""Which day is reported, the day's batches from a ledger, and the anomaly-rate trend
(:mod:`flows.steps.report.days`)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from flows.config import ConfigError
from flows.steps.report import (
    anomaly_rate_trend,
    batches_of_day,
    collect_batches,
    count_rows,
    entry_day,
    parse_report_date,
)
from flows.steps.score import Ledger

DAY = date(2026, 5, 2)


# ------------------------------------------------------------------------------ dates
def test_parse_report_date_defaults_to_yesterday_utc_and_accepts_iso_days():
    assert parse_report_date(None, today=DAY) == date(2026, 5, 1)
    assert parse_report_date("2026-05-02", today=DAY) == DAY
    assert parse_report_date(" 2026-01-31 ", today=DAY) == date(2026, 1, 31)
    assert parse_report_date(date(2026, 4, 1), today=DAY) == date(2026, 4, 1)


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
        parse_report_date(value, today=DAY)
    assert info.value.keys == ["--date"]


def test_entry_day_is_the_utc_day_of_the_timestamp():
    assert entry_day("2026-05-01T23:59:59+00:00") == date(2026, 5, 1)
    assert entry_day("2026-05-02T00:00:00+00:00") == date(2026, 5, 2)
    assert entry_day("2026-05-01T22:30:00-02:00") == date(2026, 5, 2)
    assert entry_day("2026-05-02T01:30:00+02:00") == date(2026, 5, 1)
    assert entry_day("2026-05-02T23:59:59") == date(2026, 5, 2)  # naive = UTC
    assert entry_day("2026-05-02T10:00:00Z") == date(2026, 5, 2)
    assert entry_day("not a time") is None
    assert entry_day(None) is None


# ------------------------------------------------------------------------------ batches
def test_batches_of_day_takes_scored_and_quarantined_entries_by_utc_day_in_time_order(make_ledger):
    rows = batches_of_day(make_ledger(), DAY)

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
    assert batches_of_day(make_ledger(), date(2026, 4, 28)) == []
    assert batches_of_day({"batches": {}, "quarantined": []}, DAY) == []


def test_collect_batches_reads_the_ledger_and_counts_quarantined_rows_in_their_files(
    tmp_path, make_params, make_ledger
):
    params = make_params(tmp_path)
    ledger = Ledger(tmp_path / "scored")
    with ledger.locked() as txn:  # the scoring step's writes
        for sha, entry in make_ledger()["batches"].items():
            txn.record(sha, entry)
        for entry in make_ledger()["quarantined"]:
            txn.add_quarantine(entry)
    before = ledger.read()
    (tmp_path / "quarantine").mkdir()
    pd.DataFrame({"x": range(7)}).to_csv(tmp_path / "quarantine" / "bad.csv", index=False)
    # gone.csv is not there (fixed and removed by a person): its rows are unknown

    rows = collect_batches(params, tmp_path, DAY)

    by_name = {b.batch: b for b in rows}
    assert by_name["bad.csv"].rows == 7
    assert by_name["gone.csv"].rows is None
    assert by_name["midnight.csv"].rows == 200  # scored: from the ledger
    # read only
    assert ledger.read() == before
    assert before["batches"] == make_ledger()["batches"]
    assert collect_batches(make_params(tmp_path / "empty"), tmp_path / "empty", DAY) == []


def test_count_rows_of_csv_parquet_empty_and_unreadable_files(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"]})
    frame.to_csv(tmp_path / "b.csv", index=False)
    frame.to_csv(tmp_path / "b.csv.gz", index=False)
    frame.to_parquet(tmp_path / "b.parquet", index=False)
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "header.csv").write_text("a,b\n")
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1" + bytes(range(200)))
    (tmp_path / "notes.txt").write_text("1\n2\n")

    assert count_rows(tmp_path / "b.csv") == 3
    assert count_rows(tmp_path / "b.csv.gz") == 3
    assert count_rows(tmp_path / "b.parquet") == 3
    assert count_rows(tmp_path / "empty.csv") == 0
    assert count_rows(tmp_path / "header.csv") == 0
    assert count_rows(tmp_path / "corrupt.parquet") is None
    assert count_rows(tmp_path / "notes.txt") is None
    assert count_rows(tmp_path / "absent.csv") is None


# ------------------------------------------------------------------------------ trend
def test_anomaly_rate_trend_sums_rows_and_flagged_per_utc_day(make_ledger):
    trend = anomaly_rate_trend(make_ledger(), DAY, days=4)

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
    assert [p.date for p in anomaly_rate_trend(make_ledger(), DAY, days=1)] == ["2026-05-02"]
    with pytest.raises(ValueError, match="days must be >= 1"):
        anomaly_rate_trend(make_ledger(), DAY, days=0)


def test_batches_of_day_carry_out_of_range_rows_and_warnings(make_ledger):
    ledger = make_ledger()
    entry = ledger["batches"]["c" * 64]
    entry["out_of_range_rows"], entry["warnings"] = 12, ["column 'a': values between [0, 1]"]
    rows = {b.batch: b for b in batches_of_day(ledger, DAY)}
    assert rows["offset.parquet"].out_of_range_rows == 12
    assert rows["offset.parquet"].warnings == ["column 'a': values between [0, 1]"]
    assert rows["midnight.csv"].out_of_range_rows is None  # an entry from before the count
    assert rows["bad.csv"].out_of_range_rows is None and rows["bad.csv"].warnings == []
