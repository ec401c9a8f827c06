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

This module imports only MLflow, pandas and ``anomaly_models`` (never the rest of ``flows``): it must
run where only the model's own code is available.
"""

import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import mlflow  # noqa: E402
import pandas as pd  # noqa: E402

DETECTOR_ARTIFACT = "detector"


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
        return self.detector.score_frame(model_input)


mlflow.models.set_model(AnomalyDetectorModel())
