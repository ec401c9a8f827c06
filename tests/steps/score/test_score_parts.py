"""A large Parquet batch scored in parts (flows/steps/score/parts.py and
score_batch_in_parts): the row ranges, reading one range, and the whole protocol with the parts
scored in this process (on Dask workers: tests/e2e/test_scoring_executors.py)."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.expectations import ValidationReport
from flows.steps.score import (
    BatchRejected,
    Ledger,
    RunState,
    iter_chunks,
    part_spans,
    score_batch,
    score_batch_in_parts,
    score_part,
)

pytestmark = pytest.mark.timeout(300)


def _parquet(path, frame, row_group_size=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path,
                   row_group_size=row_group_size)
    return path


def _numbers(n):
    return pd.DataFrame({"i": np.arange(n, dtype="int64"), "x": np.arange(n) * 0.5})


def test_spans_start_on_row_groups_when_the_file_has_enough_of_them(tmp_path):
    path = _parquet(tmp_path / "b.parquet", _numbers(10_000), row_group_size=1000)

    spans = part_spans(path, 2500)

    assert len(spans) == 4
    assert spans[0][0] == 0 and spans[-1][1] == 10_000
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))  # contiguous
    assert all(start % 1000 == 0 for start, _ in spans)  # row-group boundaries
    assert all(1000 <= stop - start <= 4000 for start, stop in spans)


def test_spans_of_a_file_with_one_row_group_are_equal_and_at_least_min_parts(tmp_path):
    path = _parquet(tmp_path / "b.parquet", _numbers(10_000))
    assert pq.read_metadata(path).num_row_groups == 1

    assert part_spans(path, 2500) == [(0, 2500), (2500, 5000), (5000, 7500), (7500, 10_000)]
    assert part_spans(path, 5000, min_parts=4) == [(0, 2500), (2500, 5000), (5000, 7500),
                                                  (7500, 10_000)]


def test_small_csv_and_unreadable_batches_are_not_split(tmp_path):
    small = _parquet(tmp_path / "small.parquet", _numbers(2500))
    csv = tmp_path / "big.csv"
    _numbers(10_000).to_csv(csv, index=False)
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 not really")

    assert part_spans(small, 2500, min_parts=4) is None
    assert part_spans(csv, 1000) is None
    assert part_spans(corrupt, 1000) is None


@pytest.mark.parametrize("row_group_size", [1000, None])
def test_a_span_reads_exactly_its_rows(tmp_path, row_group_size):
    numbers = _numbers(10_000)
    path = _parquet(tmp_path / "b.parquet", numbers, row_group_size=row_group_size)

    chunks = list(iter_chunks(path, 1000, span=(1500, 7300)))

    got = pa.concat_tables(chunks).to_pandas()
    pd.testing.assert_frame_equal(got, numbers.iloc[1500:7300].reset_index(drop=True))
    assert [c.num_rows for c in chunks] == [1000] * 5 + [800]


def test_a_rejection_pickles_with_everything_its_quarantine_report_needs():
    report = ValidationReport(batch_name="b rows 0-9", success=False, n_expectations=3,
                              failed=["column 'a' must be finite"], data_docs_index=None)
    rejection = BatchRejected("failed validation: column 'a' must be finite", stage="validate",
                              problems=["column 'a' must be finite"], report=report, rows=(0, 9))

    back = pickle.loads(pickle.dumps(rejection))

    assert (back.reason, back.stage, back.problems, back.rows) == (
        rejection.reason, "validate", ["column 'a' must be finite"], (0, 9))
    assert back.report == report


def _in_process(scorer, suite, options):
    """Parts scored one after the other here: the code a worker runs, without the workers."""
    state = RunState.start(options.dirs)

    def score_parts(parts):
        return [score_part(p, scorer=scorer, suite=suite, options=options, state=state,
                           gx_first=p.index == 0) for p in parts]

    return score_parts


@pytest.mark.slow
def test_a_batch_scored_in_parts_equals_the_batch_scored_whole(
    tmp_path, model, make_options, make_scorer, make_batch
):
    detector, suite, _ = model
    scorer = make_scorer(detector)
    batch = make_batch(5000)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    for root in (whole, parts):
        _parquet(root / "incoming" / "big.parquet", batch, row_group_size=700)
    options = make_options(parts, 600)
    spans = part_spans(parts / "incoming" / "big.parquet", 1200)
    assert len(spans) == 5

    expected = score_batch(whole / "incoming" / "big.parquet", scorer=scorer, suite=suite,
                           options=make_options(whole, 600))
    got = score_batch_in_parts(parts / "incoming" / "big.parquet", spans=spans,
                               model=scorer.model, options=options,
                               score_parts=_in_process(scorer, suite, options))

    assert got.status == expected.status == "scored", got.reason
    assert (got.rows, got.flagged) == (expected.rows, expected.flagged) == (5000, expected.flagged)
    assert got.notes == ["scored in 5 parts"]
    a = pd.read_parquet(whole / "scored" / "big.parquet").drop(columns="scored_at")
    b = pd.read_parquet(parts / "scored" / "big.parquet").drop(columns="scored_at")
    pd.testing.assert_frame_equal(b, a, rtol=1e-6, atol=1e-9)
    assert pd.read_parquet(parts / "scored" / "big.parquet")["scored_at"].nunique() == 1
    (entry,) = Ledger(parts / "scored").read()["batches"].values()
    assert (entry["rows"], entry["flagged"], entry["parts"]) == (5000, expected.flagged, 5)
    assert entry["out_of_range_rows"] == expected.out_of_range_rows
    assert sorted(p.name for p in (parts / "scored").iterdir() if not p.name.startswith("_")) == [
        "big.parquet"]  # no part file left
    assert (parts / "incoming" / "_done" / "big.parquet").exists()

    # the same bytes again: skipped, as for any batch
    shutil.copy(parts / "incoming" / "_done" / "big.parquet", parts / "incoming" / "big.parquet")
    again = score_batch_in_parts(parts / "incoming" / "big.parquet", spans=spans,
                                 model=scorer.model, options=options,
                                 score_parts=_in_process(scorer, suite, options))
    assert again.status == "skipped" and again.reason.startswith("already scored")


@pytest.mark.slow
def test_bad_rows_in_one_part_quarantine_the_whole_batch(
    tmp_path, model, make_options, make_scorer, make_batch
):
    detector, suite, _ = model
    scorer = make_scorer(detector)
    batch = make_batch(5000)
    batch.loc[4321, "a"] = np.inf  # in the fourth of five parts
    path = _parquet(tmp_path / "incoming" / "big.parquet", batch)
    options = make_options(tmp_path, 600)

    result = score_batch_in_parts(path, spans=part_spans(path, 1000), model=scorer.model,
                                  options=options, score_parts=_in_process(scorer, suite, options))

    assert result.status == "quarantined"
    assert "'a'" in result.reason and "finite" in result.reason, result.reason
    assert (tmp_path / "quarantine" / "big.parquet").exists()
    assert not (tmp_path / "scored" / "big.parquet").exists()
    assert not list((tmp_path / "scored").glob("*.tmp"))
    state = Ledger(tmp_path / "scored").read()
    assert state["batches"] == {} and state["in_progress"] == {}
    (record,) = state["quarantined"]
    assert record["batch"] == "big.parquet" and record["stage"] == "validate"
    report = json.loads((tmp_path / "quarantine" / "big.parquet.report.json").read_text())
    first, last = report["rows"]
    assert 4000 <= first <= 4321 <= last < 5000  # rows numbered as in the batch


@pytest.mark.slow
def test_a_part_that_fails_leaves_the_batch_for_the_next_run(
    tmp_path, model, make_options, make_scorer, make_batch
):
    detector, suite, _ = model
    scorer = make_scorer(detector)
    path = _parquet(tmp_path / "incoming" / "big.parquet", make_batch(5000))
    options = make_options(tmp_path, 600)
    spans = part_spans(path, 1000)
    scored_before_the_loss = []

    def a_worker_lost(parts):  # the first part scored, then its worker is gone
        _in_process(scorer, suite, options)(parts[:1])
        scored_before_the_loss.append(parts[0].tmp.exists())
        raise RuntimeError("worker tcp://127.0.0.1:1 lost")

    with pytest.raises(RuntimeError, match="worker .* lost"):
        score_batch_in_parts(path, spans=spans, model=scorer.model, options=options,
                             score_parts=a_worker_lost)

    assert scored_before_the_loss == [True]
    assert path.exists()  # still in incoming
    assert not list((tmp_path / "scored").glob("*.parquet*"))  # no output, no part file
    assert Ledger(tmp_path / "scored").read()["in_progress"] == {}
    rerun = score_batch_in_parts(path, spans=spans, model=scorer.model, options=options,
                                 score_parts=_in_process(scorer, suite, options))
    assert rerun.status == "scored" and rerun.rows == 5000
