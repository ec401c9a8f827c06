"""TailCompression: ``asinh`` applied elementwise, to tame heavy-tailed standardized features."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="anomaly_models")
class TailCompression(keras.layers.Layer):
    """``y = asinh(x)``: linear near 0 (|x| < 1), logarithmic in the tails, sign kept.

    Sensor and transaction features often have rare, huge but *normal* values. On standardized
    inputs those dominate a squared reconstruction error and outrank real anomalies that sit
    only a few scale units away from the bulk. Compressing the tails keeps every value ordered
    and invertible while putting both kinds of deviation on a comparable scale.

    Input and output shape: any; output dtype float.
    """

    def call(self, inputs: Any) -> Any:
        return ops.arcsinh(ops.cast(inputs, self.compute_dtype))

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return input_shape
