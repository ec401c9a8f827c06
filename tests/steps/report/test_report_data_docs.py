"""The Data Docs sub-site of the day's validations (:mod:`flows.steps.report.data_docs`)."""

from __future__ import annotations

from datetime import date

from flows.steps.report import BatchRow, build_data_docs

DAY = date(2026, 5, 2)


def test_data_docs_without_a_gx_project_or_batches_say_so(tmp_path, make_params):
    params = make_params(tmp_path)
    batch = BatchRow("b.csv", "scored", "2026-05-02T01:00:00+00:00")
    docs = build_data_docs(params, tmp_path, DAY, [batch], tmp_path)
    assert docs.index is None and "no Great Expectations project" in docs.note
    assert not (tmp_path / "gx").exists()  # only read: nothing created
