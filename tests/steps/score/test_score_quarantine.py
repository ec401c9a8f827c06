"""A bad chunk quarantines the whole batch: the file byte for byte, its report, nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from flows.steps.score import Ledger, score_batch


@pytest.mark.slow
def test_a_bad_chunk_quarantines_the_whole_batch_and_writes_nothing(
    tmp_path, model, make_options, make_scorer, make_batch
):
    detector, suite, _ = model
    options = make_options(tmp_path, 1000)
    batch = make_batch(3000, seed=4)
    batch.loc[2345, "b"] = np.nan  # in the third chunk
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    batch.to_parquet(incoming / "late.parquet", index=False)
    original = (incoming / "late.parquet").read_bytes()

    result = score_batch(incoming / "late.parquet", scorer=make_scorer(detector), suite=suite,
                         options=options)

    assert result.status == "quarantined"
    assert "'b'" in result.reason and "null" in result.reason
    assert (tmp_path / "quarantine" / "late.parquet").read_bytes() == original
    report = json.loads((tmp_path / "quarantine" / "late.parquet.report.json").read_text())
    assert report["rows"] == [2000, 2999] and report["stage"] == "validate"
    assert report["model"]["version"] == 7
    assert not list((tmp_path / "scored").glob("*.parquet"))
    assert not list((tmp_path / "scored").glob("*.tmp"))
    assert Ledger(tmp_path / "scored").read()["batches"] == {}


@pytest.mark.slow
def test_a_batch_given_from_elsewhere_is_copied_to_quarantine_and_kept(
    tmp_path, model, make_options, make_scorer, make_batch
):
    detector, suite, _ = model
    options = make_options(tmp_path, 1000)
    path = tmp_path / "outside" / "bad.csv"
    path.parent.mkdir()
    make_batch(500, seed=10).drop(columns="c").to_csv(path, index=False)

    result = score_batch(path, scorer=make_scorer(detector), suite=suite, options=options)

    assert result.status == "quarantined"
    assert result.reason == "missing column(s) ['c'] that the model needs"
    assert path.read_bytes() == (tmp_path / "quarantine" / "bad.csv").read_bytes()
    report = json.loads((tmp_path / "quarantine" / "bad.csv.report.json").read_text())
    assert report["original_kept"] is True and report["source"] == "outside/bad.csv"
    assert report["quarantined_to"] == "quarantine/bad.csv" and report["reason"] == result.reason
    assert result.quarantined_to == "quarantine/bad.csv"
    assert result.report == "quarantine/bad.csv.report.json"
    assert sorted(p.name for p in (tmp_path / "quarantine").iterdir()) == [
        "bad.csv", "bad.csv.report.json"]  # no temporary file left
