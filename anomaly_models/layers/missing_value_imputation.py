"""MissingValueImputation: replace NaN entries by per-feature fill values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="anomaly_models")
class MissingValueImputation(keras.layers.Layer):
    """Replace NaN in a ``(batch, d)`` float input by ``fill_values[j]`` for feature ``j``.

    Used by the preprocessing model so that a missing numeric value gets the training median
    instead of poisoning the normalization. Infinite values are left as they are: they are
    errors in the data, not missing values, and the detector rejects them.

    Args:
        fill_values: One finite fill value per feature (e.g. training medians).
    """

    def __init__(self, fill_values: Sequence[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        values = np.asarray(fill_values, dtype="float64").reshape(-1)
        if values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError(
                "`fill_values` must be a non-empty list of finite numbers, "
                f"received fill_values={list(fill_values)!r}"
            )
        self.fill_values = [float(v) for v in values]

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        if input_shape[-1] is not None and input_shape[-1] != len(self.fill_values):
            raise ValueError(
                f"MissingValueImputation has {len(self.fill_values)} fill values but the input has "
                f"{input_shape[-1]} features (input_shape={tuple(input_shape)})"
            )

    def call(self, inputs: Any) -> Any:
        inputs = ops.cast(inputs, self.compute_dtype)
        fill = ops.convert_to_tensor(np.asarray(self.fill_values), dtype=self.compute_dtype)
        return ops.where(ops.isnan(inputs), fill, inputs)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["fill_values"] = list(self.fill_values)
        return config
