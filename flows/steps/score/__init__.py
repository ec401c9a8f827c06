"""Scoring step: new data batches -> validated with the model version's GX suite -> scored.

Plain functions, no Prefect and no MLflow (the flow in :mod:`flows.scoring` wires them and builds
the :class:`BatchScorer` of a registered pyfunc with :func:`flows.registry.scorer.pyfunc_scorer`;
tests and benchmarks call them directly). One batch is one file of a format in
:data:`flows.io.TABLE_FORMATS`: CSV (``.csv``, ``.csv.gz``, ``.csv.bz2``, ``.csv.zip``,
``.csv.xz``, ``.csv.zst``) or Parquet (``.parquet``, ``.pq``).

Layout (folders from ``params.scoring``, all inside the project by default; every path here is
one of :class:`flows.layout.ScoringDirs`)::

    data/incoming/<batch>.csv                 new batches (discovered in sorted name order)
    data/incoming/_done/<batch>.csv           inputs that were scored (or were duplicates of a
                                              scored batch): kept, never deleted
    data/scored/<stem>.parquet                input columns + anomaly_score, is_anomaly,
                                              contribution_<feature> + model_name, model_version,
                                              model_alias, scored_at (UTC)
    data/scored/_ledger.db                    the ledger (SQLite, WAL; or the PostgreSQL database of
                                              scoring.ledger_url): one row per scored batch, keyed
                                              by the sha256 of the file's bytes
    data/scored/_gx.lock                      fcntl.flock lock file of GX's file stores
    data/scored/_locks/<sha256>.lock          per-batch claim while a run scores that batch (a
                                              SQLite ledger; PostgreSQL: an advisory lock)
    data/quarantine/<batch>.csv               a batch that could not be read or failed validation
    data/quarantine/<batch>.csv.report.json   why: a one-line reason, every failed expectation,
                                              the model version and suite it was checked against
    <data.snapshot_dir>/suites/<version>.json the GX suite of each model version (cached from the
                                              version's run artifact by flows.registry.suites)

Modules, in the order a batch meets them:

    options     ScoringOptions: the settings the step takes, built once by the flow
    batches     which files are batches, their names, the per-batch claim
    ledger      the ledger (SQLAlchemy), its transactions and claims; exclusive_lock
    ledger_db   the ledger's tables and what differs between SQLite and PostgreSQL
    batch       score_batch: claim -> chunk loop -> record scored or quarantined; recover;
                score_batch_in_parts: the same for a large Parquet batch split over workers
    parts       the row ranges of a batch scored in parts, and their merge
    loop        the chunk loop: read -> check -> score -> write, with three helper threads
    chunks      reading a batch in chunks (CSV, compressed CSV, Parquet)
    check       per-chunk validation (columns, quick check, GX) and the failures' rank
    ranges      out_of_range: per row, the features outside the training range
    scorer      BatchScorer: the model as a function of feature rows; ModelRef
    series      time order and context across chunks and batches (sequence models)
    output      the score and model columns, Parquet encodings, writing the scored file
    quarantine  the quarantined file and its report
    results     BatchResult, ScoringSummary, BatchRejected
    state       RunState: what a run keeps between batches (GX validator, garbage collector)
    memory      GarbageCollector: collections every million rows of a run

**Exactly once**: see :mod:`flows.steps.score.batch`.

**Bad input** never stops the run nor loses data: a batch that cannot be read (missing, empty,
corrupt, or compressed with a codec whose package is not installed), lacks a feature column, or
fails a *critical* expectation of the suite (the data contract: columns, numeric types, nulls
beyond ``validate.max_null_fraction``, infinite values) is moved to the quarantine folder with its
report (a file
given by path from outside the incoming folder is *copied* there and left where it was); the
other batches go on. A column the model does not take is a problem too (a renamed column, a file
meant for another model), unless it is listed in ``scoring.passthrough_columns`` (ids,
timestamps...): those are carried through to the output unvalidated. The label column of
training, when a batch has it, is dropped from validation and kept.

**Extreme values are not bad input.** Values outside the training range fail only the suite's
*warnings*: the batch is scored, each row gets ``out_of_range`` (how many of its features lie
outside the range, :mod:`.ranges`), and the ledger entry carries ``out_of_range_rows``, the
count per feature and GX's warning lines. An allowed NaN is imputed by the model (the training
median), not rejected.

**Chunks.** A batch is read ``scoring.chunk_rows`` rows at a time (:mod:`.chunks`). Each chunk is
validated (:mod:`.check`), scored and written with a ``pyarrow.parquet.ParquetWriter``, so a batch
of any size scores in bounded memory. A batch with a chunk that fails is quarantined whole;
nothing of it is written.

Output column types: Parquet inputs keep their Arrow types; CSV inputs have the model's numeric
feature columns cast by the scorer's ``prepare`` (for a pyfunc :func:`flows.registry.prepare_input`:
whole numbers -> float64 where the signature says double), so that every chunk of a CSV writes
the same schema. A CSV whose other columns change type between chunks in a way that cannot be
cast is quarantined with that message.
"""

from flows.layout import ScoringDirs
from flows.steps.score.batch import PartsScorer, recover, score_batch, score_batch_in_parts
from flows.steps.score.batches import discover_batches, expand_paths, free_path
from flows.steps.score.check import ChunkChecker, check_not_scored, failure_rank, validate_chunk
from flows.steps.score.chunks import ChunkReader, iter_chunks, rechunk
from flows.steps.score.ledger import (
    LEDGER_FORMAT,
    Claim,
    Ledger,
    LedgerTxn,
    LedgerUnavailable,
    exclusive_lock,
    iso_time,
)
from flows.steps.score.loop import SEQUENCE_CHUNK_FACTOR, score_to_file
from flows.steps.score.memory import GC_EVERY_ROWS, GarbageCollector
from flows.steps.score.options import ScoringOptions
from flows.steps.score.output import META_SHA, MODEL_COLUMNS, ScoredFileWriter, output_sha
from flows.steps.score.parts import BatchPart, PartResult, part_spans, score_part
from flows.steps.score.quarantine import quarantine
from flows.steps.score.ranges import OUT_OF_RANGE, RangeCounter
from flows.steps.score.results import STATUSES, BatchRejected, BatchResult, ScoringSummary
from flows.steps.score.scorer import SCORE_COLUMNS, BatchScorer, ModelRef, is_input_error
from flows.steps.score.series import SeriesCursor, SeriesOrderError, StreamContext, timestamps_of
from flows.steps.score.state import RunState

__all__ = [
    "GC_EVERY_ROWS",
    "LEDGER_FORMAT",
    "META_SHA",
    "MODEL_COLUMNS",
    "OUT_OF_RANGE",
    "SCORE_COLUMNS",
    "SEQUENCE_CHUNK_FACTOR",
    "STATUSES",
    "BatchPart",
    "BatchRejected",
    "BatchResult",
    "BatchScorer",
    "ChunkChecker",
    "ChunkReader",
    "Claim",
    "GarbageCollector",
    "Ledger",
    "LedgerTxn",
    "LedgerUnavailable",
    "ModelRef",
    "PartResult",
    "PartsScorer",
    "RangeCounter",
    "RunState",
    "ScoredFileWriter",
    "ScoringDirs",
    "ScoringOptions",
    "ScoringSummary",
    "SeriesCursor",
    "SeriesOrderError",
    "StreamContext",
    "check_not_scored",
    "discover_batches",
    "exclusive_lock",
    "expand_paths",
    "failure_rank",
    "free_path",
    "is_input_error",
    "iso_time",
    "iter_chunks",
    "output_sha",
    "part_spans",
    "quarantine",
    "recover",
    "rechunk",
    "score_batch",
    "score_batch_in_parts",
    "score_part",
    "score_to_file",
    "timestamps_of",
    "validate_chunk",
]
