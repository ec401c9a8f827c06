"""The registered model's code: an MLflow pyfunc around one ``AnomalyDetector`` ``.keras`` file.

Logged with MLflow's *models-from-code* (``python_model=<path of this file>``): MLflow copies this
file into the model and executes it at load time; nothing is pickled. The detector itself travels as
the artifact ``"detector"`` (the ``.keras`` file, which holds the preprocessing, the network, the
threshold and the feature names), and the ``anomaly_models`` package travels as a ``code_paths``
entry, so the model loads in any process with the pip requirements installed, whatever its current
folder (see :func:`flows.registry.log_pyfunc_model`).

``predict(DataFrame)`` returns ``AnomalyDetector.score_frame``: ``anomaly_score`` (float),
``is_anomaly`` (0/1 int) and one ``contribution_<feature>`` float column per feature, in the input's
row order and index. Input columns are checked by the detector: a missing feature column raises an
error naming it; extra columns are ignored.

Sequence detectors (``kind="lstm_autoencoder"``) score a series: the input rows are consecutive
time points in time order (columns = the value columns). The MLflow param ``context_rows`` (int,
default 0) says how many of the first input rows are *context*, the points just before the batch
(the end of the previous batch): they are not scored, and the output has one row per remaining
input row, ``score_frame(X.iloc[k:], context=X.iloc[:k])``. With at least ``context_rows`` =
the MLmodel metadata's ``context_rows`` (the detector's ``context_length``) the scores equal those
of the whole stream scored at once. Tabular detectors accept only ``context_rows=0`` (their
signature has no params; MLflow drops params it does not know).

This module imports only MLflow, pandas and ``anomaly_models`` (never the rest of ``flows``): it must
run where only the model's own code is available.
"""

import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import mlflow  # noqa: E402
import pandas as pd  # noqa: E402

DETECTOR_ARTIFACT = "detector"
CONTEXT_ROWS_PARAM = "context_rows"


def context_rows(params: dict | None, n_rows: int, sequence: bool) -> int:
    """The validated ``context_rows`` param: an int in ``[0, n_rows)`` (0 for tabular models)."""
    value = (params or {}).get(CONTEXT_ROWS_PARAM, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not float(value).is_integer():
        raise ValueError(f"params[{CONTEXT_ROWS_PARAM!r}] must be an integer, received {value!r}")
    k = int(value)
    if k < 0:
        raise ValueError(f"params[{CONTEXT_ROWS_PARAM!r}] must be >= 0, received {k}")
    if k and not sequence:
        raise ValueError(
            f"params[{CONTEXT_ROWS_PARAM!r}]={k}: this model scores each row on its own (a tabular "
            "detector); context rows are for sequence models only: pass 0"
        )
    if k and k >= n_rows:
        raise ValueError(
            f"params[{CONTEXT_ROWS_PARAM!r}]={k} but the input has {n_rows} rows: the first "
            f"{CONTEXT_ROWS_PARAM} rows are context, so at least one row must follow them"
        )
    return k


class AnomalyDetectorModel(mlflow.pyfunc.PythonModel):
    """DataFrame of feature columns in, DataFrame of scores out."""

    def __init__(self) -> None:
        self.detector = None

    def load_context(self, context: Any) -> None:
        from anomaly_models.detector import AnomalyDetector

        try:
            path = context.artifacts[DETECTOR_ARTIFACT]
        except KeyError:
            raise RuntimeError(
                f"this model has no {DETECTOR_ARTIFACT!r} artifact; it was not logged by "
                "flows.registry.log_pyfunc_model"
            ) from None
        self.detector = AnomalyDetector.load(path)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None):
        if self.detector is None:  # load_context was not called (not loaded through MLflow)
            self.load_context(context)
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        detector = self.detector
        if not detector.is_sequence:
            context_rows(params, len(model_input), sequence=False)
            return detector.score_frame(model_input)
        k = context_rows(params, len(model_input), sequence=True)
        features = [str(c) for c in detector.feature_names_in_]
        if all(c in model_input.columns for c in features):
            model_input = model_input[features]  # extra columns (a timestamp...) are ignored
        previous = model_input.iloc[:k] if k else None
        return detector.score_frame(model_input.iloc[k:], context=previous)


mlflow.models.set_model(AnomalyDetectorModel())
