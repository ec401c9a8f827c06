"""TailRarity: how far into its feature's empirical tail each value lies (ECOD's idea)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from anomaly_models.checks import check_positive_int


@keras.saving.register_keras_serializable(package="anomaly_models")
class TailRarity(keras.layers.Layer):
    """Per feature, ``-log`` of the two-sided empirical tail probability of the value.

    With the reference values of feature ``j`` sorted, ``left`` is the fraction of them ``<= x_j``
    and ``right`` the fraction ``>= x_j`` (both over ``m + 1``); the output is
    ``-log(clip(min(left, right), 1 / (m + 1), 0.5))``: ``log 2`` (0.69) at the median, growing as
    the value moves into either tail, and ``log(m + 1)`` at or beyond the most extreme reference
    value. It needs no distribution assumption and ignores the scale of each feature (only the
    order of the values counts), as ECOD and COPOD do; unlike a distance it saturates beyond the
    reference range, so it is combined with one (see ``FeatureScoreNetwork``).

    The sorted values live in the non-trainable weight ``sorted_reference`` ``(num_reference,
    num_features)``, zeros until :meth:`set_reference` (saved inside the ``.keras`` file).

    Args:
        num_reference: ``m``, values per feature, >= 1.
        num_features: ``d``.

    Input: ``(batch, d)`` float. Output: ``(batch, d)`` float, in ``[log 2, log(m + 1)]``.
    """

    def __init__(self, num_reference: int, num_features: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_reference = check_positive_int("num_reference", num_reference)
        self.num_features = check_positive_int("num_features", num_features)
        self.sorted_reference = self.add_weight(
            shape=(self.num_reference, self.num_features),
            initializer="zeros",
            trainable=False,
            name="sorted_reference",
        )

    def set_reference(self, rows: Any) -> None:
        """Store the values of ``rows`` ``(num_reference, num_features)``, sorted per feature."""
        rows = np.asarray(ops.convert_to_numpy(rows))
        if rows.shape != (self.num_reference, self.num_features):
            raise ValueError(
                f"reference rows must have shape {(self.num_reference, self.num_features)}, "
                f"received shape {rows.shape}"
            )
        self.sorted_reference.assign(np.sort(rows, axis=0).astype(self.sorted_reference.dtype))

    def call(self, inputs: Any) -> Any:
        x = ops.cast(inputs, self.compute_dtype)
        reference = ops.cast(self.sorted_reference, self.compute_dtype)
        m = float(self.num_reference)
        parts = []
        for j in range(self.num_features):  # searchsorted takes one sorted 1-D sequence
            column, values = reference[:, j], x[:, j]
            at_most = ops.cast(ops.searchsorted(column, values, side="right"), self.compute_dtype)
            below = ops.cast(ops.searchsorted(column, values, side="left"), self.compute_dtype)
            tail = ops.minimum(at_most, m - below) / (m + 1.0)
            parts.append(-ops.log(ops.clip(tail, 1.0 / (m + 1.0), 0.5)))
        return ops.stack(parts, axis=1)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (input_shape[0], self.num_features)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"num_reference": self.num_reference, "num_features": self.num_features})
        return config
