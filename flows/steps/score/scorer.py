"""The model as the scoring step sees it: a function from feature rows to score columns.

:class:`BatchScorer` wraps any ``predict`` (a registered pyfunc's: built by
:func:`flows.registry.scorer.pyfunc_scorer`; or a detector's own ``score_frame`` in tests), so this
module knows nothing of MLflow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from flows.columns import parse_timestamps

__all__ = ["SCORE_COLUMNS", "BatchScorer", "ModelRef", "is_input_error"]

#: The columns every model returns (besides ``contribution_<feature>``, usually).
SCORE_COLUMNS = ("anomaly_score", "is_anomaly")


@dataclass(frozen=True)
class ModelRef:
    """The model version a batch is scored with (written into every output row)."""

    name: str
    version: int
    alias: str | None = None
    uri: str | None = None
    run_id: str | None = None

    def describe(self) -> str:
        alias = f" (@{self.alias})" if self.alias else ""
        return f"{self.name} version {self.version}{alias}"


def is_input_error(exc: BaseException) -> bool:
    """Errors of a model rejecting its input (schema enforcement, the detector's checks).
    MLflow's are recognised by their class name, so nothing of MLflow is imported here."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return isinstance(exc, (ValueError, TypeError)) or "MlflowException" in names


class BatchScorer:
    """Turns a frame of input rows into the score columns.

    Args:
        predict: DataFrame of feature columns -> DataFrame with ``anomaly_score``, ``is_anomaly``
            and (usually) ``contribution_<feature>`` columns, one row per input row.
        features: the columns the model takes (from the signature); the others are passed through.
        model: the version, recorded in the output.
        prepare: optional cast of the feature frame before ``predict``
            (:func:`flows.registry.prepare_input` for a pyfunc).
        context_rows: for a sequence model, how many points before a batch it takes as context
            (the detector's ``context_length``: ``window - 1`` + half the smoothing);
            ``predict(frame, params={"context_rows": k})`` then scores the last
            ``len(frame) - k`` rows of ``frame``. 0 for row-by-row models.
        timestamp_column: the column that orders a sequence model's series (None: row order).
    """

    def __init__(
        self,
        predict: Callable[..., pd.DataFrame],
        features: Sequence[str],
        model: ModelRef,
        prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
        context_rows: int = 0,
        timestamp_column: str | None = None,
    ) -> None:
        if not features:
            raise ValueError("BatchScorer needs the model's feature columns")
        self.predict = predict
        self.features = list(features)
        self.model = model
        self.prepare = prepare
        self.context_rows = int(context_rows)
        self.timestamp_column = timestamp_column

    @property
    def is_sequence(self) -> bool:
        return self.context_rows > 0

    def normalize(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A CSV chunk typed like the training data: feature columns cast for the model, and the
        timestamp column of a sequence model parsed as dates when it holds date strings (as
        ingest parses them; left as text when it does not parse, for validation to reject).
        Other columns are untouched."""
        out = frame
        ts = self.timestamp_column
        column = frame[ts] if ts is not None and ts in frame.columns else None
        if column is not None and not (
            pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column)
        ):  # text (object or pandas' str dtype)
            try:
                parsed = parse_timestamps(column)
            except (ValueError, TypeError):
                parsed = None
            if parsed is not None:
                out = frame.copy()
                out[ts] = parsed
        if self.prepare is None:
            return out
        present = [c for c in self.features if c in out.columns]
        if not present:
            return out
        cast = self.prepare(out[present])
        changed = [c for c in present if cast[c].dtype != out[c].dtype]
        if not changed:
            return out
        out = out.copy() if out is frame else out
        for c in changed:
            out[c] = cast[c]
        return out

    def __call__(self, frame: pd.DataFrame, context: pd.DataFrame | None = None) -> pd.DataFrame:
        """Score columns for the rows of ``frame`` (one output row per row). ``context``: the
        points before ``frame`` (sequence models; their feature columns), or None."""
        x = frame[self.features]
        if self.prepare is not None:
            x = self.prepare(x)
        if self.is_sequence:
            k = 0 if context is None else len(context)
            if k:
                before = context[self.features]
                if self.prepare is not None:
                    before = self.prepare(before)
                x = pd.concat([before.astype(x.dtypes.to_dict()), x], ignore_index=True)
            out = self.predict(x, params={"context_rows": k})
        else:
            out = self.predict(x)
        if not isinstance(out, pd.DataFrame):
            out = pd.DataFrame(out)
        missing = [c for c in SCORE_COLUMNS if c not in out.columns]
        if missing:
            raise RuntimeError(f"{self.model.describe()} returned no column(s) {missing}")
        if len(out) != len(frame):
            raise RuntimeError(
                f"{self.model.describe()} returned {len(out)} rows for {len(frame)} input rows"
            )
        return out.reset_index(drop=True)
