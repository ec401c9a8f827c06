"""What a registered model takes: its input example and signature, its MLmodel metadata, and
batches cast to its signature (:func:`prepare_input`).

The signature is inferred from the first validation rows as the detector was trained on them
(integers ``long``, floats ``double``), so batches of the same source pass MLflow's schema check as
they are; :func:`prepare_input` casts the batches that read differently (whole numbers as int64 in
a CSV, an integer column with a gap as float64).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.pyfunc import PyFuncModel

__all__ = [
    "CONTEXT_ROWS_PARAM",
    "model_metadata",
    "model_signature",
    "prepare_example",
    "prepare_input",
]

#: The MLflow param of a sequence model's ``predict``: how many first input rows are context.
#: (flows/registry/pyfunc_model.py states it again: it runs where only the model's code is.)
CONTEXT_ROWS_PARAM = "context_rows"


def prepare_example(detector: Any, input_example: pd.DataFrame) -> pd.DataFrame:
    """The detector's feature columns of ``input_example``, integers as int64 and floats as
    float64, so the signature says ``long`` / ``double`` like the data the model was trained on
    (batches of the same source then pass MLflow's schema check as they are).

    Raises:
        ValueError: an empty example, or one lacking a feature column (named).
    """
    import pandas as pd

    if not isinstance(input_example, pd.DataFrame) or input_example.empty:
        raise ValueError("input_example must be a non-empty DataFrame (first validation rows)")
    features = [str(c) for c in detector.feature_names_in_]
    missing = [c for c in features if c not in input_example.columns]
    if missing:
        raise ValueError(
            f"input_example lacks the detector's feature column(s) {missing}; it has "
            f"{[str(c) for c in input_example.columns]}"
        )
    example = input_example[features].reset_index(drop=True)
    dtypes = {
        c: "int64"
        if pd.api.types.is_integer_dtype(example[c]) and not example[c].hasnans
        else "float64"
        for c in features
    }
    return example.astype(dtypes)


def model_signature(detector: Any, example: pd.DataFrame) -> ModelSignature:
    """``infer_signature(example, detector.score_frame(example))``, ``example`` as returned by
    :func:`prepare_example`. Sequence detectors: the example must hold at least ``window``
    consecutive points, and the signature declares the param ``context_rows`` (int, default 0).

    Raises:
        ValueError: a sequence detector's example is shorter than its window.
    """
    from mlflow.models import infer_signature

    signature_params = None
    if detector.is_sequence:
        if len(example) < detector.window_:
            raise ValueError(
                f"input_example has {len(example)} rows, but a sequence detector scores windows "
                f"of window={detector.window_} points: pass at least {detector.window_} "
                "consecutive points of the series"
            )
        signature_params = {CONTEXT_ROWS_PARAM: 0}
    with warnings.catch_warnings():  # is_anomaly is an int column by design; MLflow hints at NaN
        warnings.filterwarnings("ignore", message=r".*integer column", category=UserWarning)
        return infer_signature(example, detector.score_frame(example), params=signature_params)


def model_metadata(detector: Any, timestamp_column: str | None = None) -> dict[str, Any]:
    """The ``metadata`` of the MLmodel file: what a scoring process needs to know besides the
    signature. ``anomaly_kind`` (the detector's kind) and ``context_rows`` (0 for the tabular kinds;
    for a sequence detector its ``context_length``: keep that many last points of each batch and
    pass them first, with ``params={"context_rows": n}``, to score the next batch as one stream);
    sequence detectors add ``timestamp_column`` (what to sort a batch by; None if unknown) and
    ``window``."""
    metadata: dict[str, Any] = {
        "anomaly_kind": str(detector.kind),
        CONTEXT_ROWS_PARAM: int(detector.context_length) if detector.is_sequence else 0,
    }
    if detector.is_sequence:
        metadata["timestamp_column"] = timestamp_column
        metadata["window"] = int(detector.window_)
    return metadata


def prepare_input(model: PyFuncModel, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with numeric columns cast to the model signature's type where that loses nothing,
    ready for ``model.predict``.

    MLflow's schema enforcement refuses int64 -> double and float64 -> long ("Can not safely
    convert"), yet a CSV batch of whole numbers reads as int64 and one integer column with a gap
    reads as float64. Cast: integer / bool / float32 columns to float64 where the signature says
    ``double``; float columns holding only whole numbers (no NaN) to int64 where it says ``long``.
    Anything else is left for MLflow / the detector to reject with a message naming the column.
    """
    import numpy as np
    import pandas as pd

    schema = model.metadata.get_input_schema() if model.metadata is not None else None
    if schema is None or not schema.has_input_names():
        return frame
    cast: dict[str, str] = {}
    for spec in schema.inputs:
        column, kind = spec.name, getattr(spec.type, "name", None)
        if column not in frame.columns or not pd.api.types.is_numeric_dtype(frame[column]):
            continue
        series = frame[column]
        if kind == "double" and series.dtype != "float64":
            cast[column] = "float64"
        elif kind == "long" and series.dtype != "int64":
            if pd.api.types.is_integer_dtype(series) and not series.hasnans:
                cast[column] = "int64"
            elif pd.api.types.is_float_dtype(series):
                values = series.to_numpy(dtype="float64", na_value=np.nan)
                if np.isfinite(values).all() and (values == np.round(values)).all():
                    cast[column] = "int64"
    return frame.astype(cast) if cast else frame
