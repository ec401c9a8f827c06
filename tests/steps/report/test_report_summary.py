"""The report as data: totals, the headline and report.json (:mod:`flows.steps.report.summary`)."""

from __future__ import annotations

import json

from flows.steps.report import DriftResult


def test_headline_and_numbers_of_a_day_with_batches_and_drift(busy_report):
    report = busy_report

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
    # paths relative to the report folder, the folder relative to the project
    assert (numbers["folder"], numbers["html"]) == ("data/reports/2026-05-02", "report.html")
    assert numbers["data_docs"] == {"index": None, "validations": 0, "note": "no validations"}
    assert [b["batch"] for b in numbers["batches"]][:2] == ["midnight.csv", "offset.parquet"]
    assert numbers["batches"][0]["rate"] == 10 / 200 and numbers["batches"][0]["passed"]
    assert (report.flagged, report.rate) == (14, 14 / 553)


def test_a_day_without_batches_has_a_headline_that_says_so(make_report):
    report = make_report([], DriftResult(available=False, note="no batch was scored"))

    assert report.headline() == (
        "data-quality report 2026-05-02: no batches scored or quarantined on this day "
        "-> data/reports/2026-05-02/report.html"
    )
    assert (report.rows_scored, report.rows_quarantined, report.rate) == (0, 0, None)
    assert report.to_dict()["totals"]["rows_quarantined"] == 0
