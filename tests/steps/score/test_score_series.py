"""Time-series batches (flows.steps.score.series): time-order checks, the context between chunks
and batches (unit level, with a real tiny LSTM autoencoder and the real scoring step)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from flows.config import Params
from flows.steps.score import (
    BatchScorer,
    Ledger,
    ModelRef,
    RunState,
    ScoringOptions,
    SeriesCursor,
    SeriesOrderError,
    StreamContext,
    discover_batches,
    score_batch,
    timestamps_of,
)

CHANNELS = ["x", "y"]
WINDOW = 8
#: the quarantine reason of a batch shorter than the window with no context before it
TINY_REASON = (
    f"the model rejected rows 0-4: X has 5 points, fewer than window={WINDOW}: no complete "
    f"window fits. Score at least {WINDOW} points at once, or pass the previous points as "
    "`context`."
)


def series(n: int, start: str = "2026-01-01", seed: int = 0, freq: str = "1min") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return pd.DataFrame(
        {
            "ts": pd.date_range(start, periods=n, freq=freq, tz="UTC"),
            "x": np.sin(t / 5) + rng.normal(scale=0.05, size=n),
            "y": np.cos(t / 7) + rng.normal(scale=0.05, size=n),
        }
    )


def cursor(start=None, context_rows=3, ts="ts", batch="b.parquet") -> SeriesCursor:
    return SeriesCursor(features=CHANNELS, timestamp_column=ts, context_rows=context_rows,
                        start=start, batch=batch)


# ------------------------------------------------------------------------------ pure logic
def test_timestamps_of_numbers_dates_and_strings() -> None:
    t, kind = timestamps_of(pd.DataFrame({"ts": [1, 2, 5]}), "ts")
    assert kind == "number" and t.tolist() == [1.0, 2.0, 5.0]
    t, kind = timestamps_of(pd.DataFrame({"ts": ["2026-01-01 00:00:00", "2026-01-01 00:01:00"]}), "ts")
    assert kind == "datetime" and t[1] - t[0] == 60.0
    with pytest.raises(SeriesOrderError, match=r"neither numbers nor dates \(e.g. 'soon'\)"):
        timestamps_of(pd.DataFrame({"ts": ["soon", "later"]}), "ts")
    with pytest.raises(SeriesOrderError, match="empty at row 1"):
        timestamps_of(pd.DataFrame({"ts": [1.0, np.nan]}), "ts")


def test_unsorted_and_duplicated_timestamps_name_the_rows() -> None:
    frame = series(10)
    shuffled = frame.iloc[[0, 1, 2, 4, 3, 5, 6, 7, 8, 9]]
    with pytest.raises(SeriesOrderError, match=r"not increasing at rows 103-104 .*00:04:00.* then .*00:03:00"):
        cursor().context_for(shuffled, first_row=100)
    dup = frame.iloc[[0, 1, 1, 2]]
    with pytest.raises(SeriesOrderError, match=r"duplicated at rows 1-2"):
        cursor().context_for(dup, first_row=0)
    c = cursor()
    c.context_for(frame.iloc[:5], first_row=0)
    with pytest.raises(SeriesOrderError, match=r"not increasing at rows 4-5"):  # across chunks
        c.context_for(frame.iloc[2:6], first_row=5)


def test_chunks_and_batches_continue_with_the_last_points() -> None:
    frame = series(20)
    c = cursor(context_rows=3)
    assert c.context_for(frame.iloc[:10], 0) is None  # nothing before the first batch
    c.advance(frame.iloc[:10])
    ctx = c.context_for(frame.iloc[10:], 10)
    pd.testing.assert_frame_equal(ctx, frame.iloc[7:10][CHANNELS].reset_index(drop=True))
    c.advance(frame.iloc[10:])
    kept = c.finish()
    assert kept.batch == "b.parquet" and kept.rows[CHANNELS].to_numpy().tolist() == \
        frame.iloc[17:20][CHANNELS].to_numpy().tolist()
    # through the ledger's JSON and into the next batch
    kept = StreamContext.from_dict(json.loads(json.dumps(kept.to_dict())))
    nxt = series(25).iloc[20:]
    c2 = cursor(start=kept, batch="c.parquet")
    ctx = c2.context_for(nxt, 0)
    np.testing.assert_array_equal(ctx.to_numpy(), frame.iloc[17:20][CHANNELS].to_numpy())
    assert c2.continues and c2.notes == []


def test_a_gap_or_an_older_batch_starts_without_context() -> None:
    first = series(10)
    c = cursor()
    c.context_for(first, 0)
    c.advance(first)
    kept = c.finish()
    late = series(10, start="2026-01-01 01:00")  # 50 min after the last point, step 1 min
    c2 = cursor(start=kept)
    assert c2.context_for(late, 0) is None and not c2.continues
    assert "new stream: a gap of 3060 s" in c2.notes[0]
    old = series(10, start="2025-12-31")
    c3 = cursor(start=kept)
    assert c3.context_for(old, 0) is None
    c3.advance(old)
    assert c3.finish() is None  # a backfill does not replace the stream's context
    assert "not after the end of the previously scored batch b.parquet" in c3.notes[0]


def test_gaps_inside_a_batch_are_noted_with_their_rows() -> None:
    frame = series(30)
    frame.loc[12:, "ts"] += pd.Timedelta(minutes=10)
    c = cursor()
    c.context_for(frame, 0)
    c.advance(frame)
    c.finish()
    assert c.notes == ["1 gap(s) larger than 3 x the usual step before rows 12: scored across "
                       "them as one series"]


def test_without_a_timestamp_column_batches_follow_each_other() -> None:
    frame = series(10)
    c = cursor(ts=None)
    assert c.context_for(frame, 0) is None
    c.advance(frame)
    kept = c.finish()
    c2 = cursor(ts=None, start=StreamContext.from_dict(kept.to_dict()), batch="c2")
    assert c2.context_for(frame, 0) is not None and c2.continues
    c2.advance(frame.iloc[::-1].reset_index(drop=True))  # other values: its tail must move on
    kept2 = c2.finish()
    assert kept2.last_t > kept.last_t  # so the ledger replaces the stream's context with it
    c3 = cursor(ts=None, start=kept2, batch="c3")
    np.testing.assert_array_equal(c3.context_for(frame, 0).to_numpy(),
                                  frame.iloc[::-1][CHANNELS].to_numpy()[-3:])


# ------------------------------------------------------------------------------ with a model
@pytest.fixture(scope="module")
def detector():
    from anomaly_models import AnomalyDetector

    det = AnomalyDetector(kind="lstm_autoencoder", window=WINDOW, epochs=2, lstm_units=4,
                          latent_dim=2, batch_size=64, seed=0, smoothing=0)
    det.fit(series(400, seed=1)[CHANNELS])
    det.calibrate(series(200, seed=2)[CHANNELS], method="quantile", q=0.99)
    return det


def _scorer(det) -> BatchScorer:
    def predict(x: pd.DataFrame, params=None) -> pd.DataFrame:
        k = int((params or {}).get("context_rows", 0))
        return det.score_frame(x.iloc[k:], context=x.iloc[:k] if k else None)

    return BatchScorer(
        predict=predict, features=CHANNELS,
        model=ModelRef(name="seq", version=1, alias="champion", uri="models:/seq/1"),
        context_rows=det.context_length, timestamp_column="ts",
    )


def _options(tmp_path, chunk_rows: int) -> ScoringOptions:
    params = Params.model_validate({
        "data": {"source": "unused.csv", "label_column": None, "timestamp_column": "ts"},
        "scoring": {"incoming_dir": str(tmp_path / "incoming"), "scored_dir": str(tmp_path / "scored"),
                    "quarantine_dir": str(tmp_path / "quarantine"), "chunk_rows": chunk_rows},
    })
    return ScoringOptions.from_params(params, tmp_path)


@pytest.fixture(scope="module")
def suite(detector):
    from flows.expectations import build_suite

    params = Params.model_validate({"data": {"source": "x.csv", "label_column": None,
                                             "timestamp_column": "ts"}})
    return build_suite(series(400, seed=1), CHANNELS, params)


@pytest.mark.slow
def test_consecutive_batches_in_chunks_score_like_one_series(tmp_path, detector, suite) -> None:
    whole = series(300, seed=3)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    whole.iloc[:150].to_parquet(incoming / "2026-01-01T00.parquet", index=False)
    whole.iloc[150:].to_parquet(incoming / "2026-01-01T02.parquet", index=False)
    options = _options(tmp_path, chunk_rows=40)  # several chunks per batch
    scorer = _scorer(detector)
    state = RunState.start(options.dirs)  # one run, two batches

    results = [score_batch(p, scorer=scorer, suite=suite, options=options, state=state)
               for p in discover_batches(incoming)]

    assert [r.status for r in results] == ["scored", "scored"], [r.reason for r in results]
    first = pd.read_parquet(tmp_path / "scored" / "2026-01-01T00.parquet")
    second = pd.read_parquet(tmp_path / "scored" / "2026-01-01T02.parquet")
    assert len(first) == 150 and len(second) == 150  # one row per input point
    # the first batch alone, chunked, scores like the first batch in one piece
    np.testing.assert_allclose(first["anomaly_score"],
                               detector.score_samples(whole.iloc[:150][CHANNELS]), rtol=1e-5)
    # the second batch, continued from the first, scores like the same points of the whole series
    np.testing.assert_allclose(second["anomaly_score"],
                               detector.score_samples(whole[CHANNELS])[150:], rtol=1e-5)
    ledger = Ledger(tmp_path / "scored").read()
    entries = {e["batch"]: e for e in ledger["batches"].values()}
    assert entries["2026-01-01T02.parquet"]["context_from"] == "2026-01-01T00.parquet"
    assert entries["2026-01-01T00.parquet"]["context_from"] is None
    assert ledger["stream"]["batch"] == "2026-01-01T02.parquet"
    assert len(ledger["stream"]["values"]) == detector.context_length


@pytest.mark.slow
def test_an_unsorted_batch_is_quarantined_and_nothing_is_written(tmp_path, detector, suite) -> None:
    frame = series(100, seed=4)
    frame = frame.iloc[[*range(60), 61, 60, *range(62, 100)]]
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    frame.to_csv(incoming / "unsorted.csv", index=False)

    result = score_batch(incoming / "unsorted.csv", scorer=_scorer(detector), suite=suite,
                         options=_options(tmp_path, chunk_rows=1000))

    assert result.status == "quarantined"
    assert "timestamps not increasing at rows 60-61" in result.reason
    assert (tmp_path / "quarantine" / "unsorted.csv").read_bytes() == frame.to_csv(
        index=False).encode()
    assert not list((tmp_path / "scored").glob("*.parquet"))
    ledger = Ledger(tmp_path / "scored").read()
    assert "stream" not in ledger
    assert [(q["batch"], q["stage"], q["reason"]) for q in ledger["quarantined"]] == [
        ("unsorted.csv", "validate", result.reason)]


@pytest.mark.slow
def test_a_batch_shorter_than_the_window_scores_with_context_only(tmp_path, detector, suite) -> None:
    whole = series(120, seed=5)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    tiny = whole.iloc[:WINDOW - 3]
    tiny.to_parquet(incoming / "a_tiny.parquet", index=False)
    options = _options(tmp_path, chunk_rows=1000)
    result = score_batch(incoming / "a_tiny.parquet", scorer=_scorer(detector), suite=suite,
                         options=options)
    assert result.status == "quarantined"  # nothing before it: no window fits
    assert result.reason == TINY_REASON, result.reason

    whole.iloc[:100].to_parquet(incoming / "b_long.parquet", index=False)
    whole.iloc[100:104].to_parquet(incoming / "c_tiny.parquet", index=False)
    results = [score_batch(incoming / n, scorer=_scorer(detector), suite=suite,
                           options=options) for n in ("b_long.parquet", "c_tiny.parquet")]
    assert [r.status for r in results] == ["scored", "scored"], [r.reason for r in results]
    out = pd.read_parquet(tmp_path / "scored" / "c_tiny.parquet")
    np.testing.assert_allclose(out["anomaly_score"],
                               detector.score_samples(whole.iloc[:104][CHANNELS])[100:], rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.assign(z=f["x"] * 2), r"column\(s\) the model does not know: \['z'\]"),
        (lambda f: f.drop(columns="y"), r"missing column\(s\) \['y'\]"),
        (lambda f: f.assign(x=[np.nan, *f["x"][1:]]), r"'x'.*must not be null"),
    ],
    ids=["extra channel", "missing channel", "nan"],
)
def test_wrong_channels_or_nan_quarantine_a_series_batch(tmp_path, detector, suite, change, message):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    change(series(60, seed=6)).to_parquet(incoming / "bad.parquet", index=False)

    result = score_batch(incoming / "bad.parquet", scorer=_scorer(detector), suite=suite,
                         options=_options(tmp_path, chunk_rows=1000))

    assert result.status == "quarantined"
    assert pd.Series([result.reason]).str.contains(message, regex=True).all(), result.reason
    assert not list((tmp_path / "scored").glob("*.parquet"))
