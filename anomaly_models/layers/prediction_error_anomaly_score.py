"""PredictionErrorAnomalyScore: one anomaly score per sequence from its prediction error."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

ERROR_METRICS = ("mae", "mse")
AGGREGATIONS = ("mean", "max")


@keras.saving.register_keras_serializable(package="anomaly_models")
class PredictionErrorAnomalyScore(keras.layers.Layer):
    """Score a sequence by how far a model's prediction is from the truth.

    For ``inputs = [y_true, y_pred]`` of shape ``(batch, T, F)``::

        e[b, t, f]  = |y_true - y_pred|          (error_metric="mae")
                    = (y_true - y_pred) ** 2     (error_metric="mse")
        step[b, t]  = mean over f of e[b, t, f]            error of each time step
        score[b, 0] = mean over t of step[b, t]            (aggregation="mean")
                    = max  over t of step[b, t]            (aggregation="max")

    So one large error at one step dominates the ``"max"`` score (seed 004: an error of +4 on one
    step of a univariate sample gives a max-MAE score of about 4.6 with N(0, 0.5) noise around it)
    and is diluted by ``T`` in the ``"mean"`` score. Inputs of shape ``(batch, T)`` are taken as one
    feature. Higher = more anomalous. The layer has no weights.

    Args:
        error_metric: ``"mae"`` or ``"mse"`` (element-wise absolute or squared error).
        aggregation: ``"mean"`` or ``"max"`` over time steps.
        **kwargs: Standard ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Input shape: ``[(batch, T, F), (batch, T, F)]``. Output shape: ``(batch, 1)``.
    """

    def __init__(self, error_metric: str = "mae", aggregation: str = "mean", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(error_metric, str) or error_metric.lower() not in ERROR_METRICS:
            raise ValueError(
                f"`error_metric` must be one of {ERROR_METRICS}, received error_metric={error_metric!r}"
            )
        if not isinstance(aggregation, str) or aggregation.lower() not in AGGREGATIONS:
            raise ValueError(
                f"`aggregation` must be one of {AGGREGATIONS}, received aggregation={aggregation!r}"
            )
        self.error_metric = error_metric.lower()
        self.aggregation = aggregation.lower()

    @staticmethod
    def _check_shapes(shapes: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        if not isinstance(shapes, (list, tuple)) or len(shapes) != 2:
            raise ValueError(
                "PredictionErrorAnomalyScore expects a list [y_true, y_pred], received "
                f"{type(shapes).__name__} {shapes!r}"[:300]
            )
        true_shape, pred_shape = (tuple(s) for s in shapes)
        if len(true_shape) not in (2, 3):
            raise ValueError(
                "PredictionErrorAnomalyScore expects y_true and y_pred of shape (batch, time, "
                f"features) or (batch, time), received y_true shape {true_shape}"
            )
        if len(true_shape) != len(pred_shape) or any(
            a is not None and b is not None and a != b
            for a, b in zip(true_shape, pred_shape, strict=True)
        ):
            raise ValueError(
                f"y_true and y_pred must have the same shape, received y_true shape {true_shape} "
                f"and y_pred shape {pred_shape}"
            )
        return true_shape, pred_shape

    def build(self, input_shape: Any) -> None:
        self._check_shapes(input_shape)

    def call(self, inputs: Any) -> Any:
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                "PredictionErrorAnomalyScore expects a list [y_true, y_pred], received "
                f"{type(inputs).__name__}"
            )
        y_true = ops.cast(inputs[0], self.compute_dtype)
        y_pred = ops.cast(inputs[1], self.compute_dtype)
        self._check_shapes([y_true.shape, y_pred.shape])
        error = y_true - y_pred
        elementwise = ops.abs(error) if self.error_metric == "mae" else ops.square(error)
        per_step = ops.mean(elementwise, axis=-1) if len(elementwise.shape) == 3 else elementwise
        if self.aggregation == "mean":
            score = ops.mean(per_step, axis=-1)
        else:
            score = ops.max(per_step, axis=-1)
        return ops.expand_dims(score, axis=-1)

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, ...]:
        return (tuple(input_shape[0])[0], 1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"error_metric": self.error_metric, "aggregation": self.aggregation})
        return config
