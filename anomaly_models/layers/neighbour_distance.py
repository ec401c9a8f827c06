"""NeighbourDistance: per-feature squared distance of each row to its nearest reference rows."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from anomaly_models.checks import check_positive_int


@keras.saving.register_keras_serializable(package="anomaly_models")
class NeighbourDistance(keras.layers.Layer):
    """The k-nearest-neighbour distance (PyOD's ``KNN`` with ``method="mean"`` on squared
    distances), split into one non-negative part per feature.

    For a row ``x`` the ``k`` reference rows nearest to it (Euclidean) are found; the output for
    feature ``j`` is the mean over those rows of ``(x_j - r_j) ** 2``. The output row sums to the
    mean squared distance to the ``k`` nearest reference rows, so a row far from every normal
    row scores high however far it is: the distance never saturates.

    The reference rows live in the non-trainable weight ``reference`` ``(num_reference,
    num_features)``, zeros until :meth:`set_reference` (the detector sets it after training to a
    sample of its preprocessed training rows; it is saved inside the ``.keras`` file, so the
    file holds those rows).

    Args:
        num_reference: Rows of the ``reference`` weight, ``m >= 2``.
        num_features: ``d``, the width of the rows.
        k: Neighbours averaged, ``1 <= k < m`` (``k + 1 <= m`` leaves room for
            ``exclude_nearest``).

    Input: ``(batch, d)`` float. Output: ``(batch, d)`` float, >= 0. Work and memory per call
    grow with ``batch * m``: call it on slices of at most :attr:`max_batch_rows` rows.

    The nearest rows are found in blocks (for ``m >= 256``): the reference is cut into blocks of
    ``ceil(sqrt(m))`` rows, the ``k`` blocks whose nearest row is nearest are kept, and the
    ``k`` nearest rows are chosen among theirs. That is exact: a block holding one of the ``k``
    nearest rows has its nearest row no farther, and at most ``k - 1`` other blocks can have a
    nearer one. It replaces a sort of ``m`` distances per row with one of ``m / sqrt(m)`` block
    minima and one of ``k sqrt(m)`` candidates, ~4x faster on CPU for ``m = 4096``.
    """

    def __init__(self, num_reference: int, num_features: int, k: int = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_reference = check_positive_int("num_reference", num_reference)
        if self.num_reference < 2:
            raise ValueError(
                f"`num_reference` must be at least 2 rows, received num_reference={num_reference!r}"
            )
        self.num_features = check_positive_int("num_features", num_features)
        self.k = check_positive_int("k", k)
        if self.k >= self.num_reference:
            raise ValueError(
                f"`k` must be smaller than num_reference={self.num_reference}, received k={k!r}"
            )
        self.reference = self.add_weight(
            shape=(self.num_reference, self.num_features),
            initializer="zeros",
            trainable=False,
            name="reference",
        )

    @property
    def max_batch_rows(self) -> int:
        """Rows per call that keep the ``(batch, m)`` distance matrix near 4 Mi floats (16 MB
        in float32: it stays in the CPU's caches, which measured ~2x faster than 4x that)."""
        return max(256, (1 << 22) // self.num_reference)

    def set_reference(self, rows: Any) -> None:
        """Store ``rows`` ``(num_reference, num_features)`` as the reference."""
        rows = ops.convert_to_numpy(rows)
        if tuple(rows.shape) != (self.num_reference, self.num_features):
            raise ValueError(
                f"reference rows must have shape {(self.num_reference, self.num_features)}, "
                f"received shape {tuple(rows.shape)}"
            )
        self.reference.assign(rows.astype(self.reference.dtype))

    def call(self, inputs: Any, exclude_nearest: bool = False) -> Any:
        """Per-feature parts of the distance; ``exclude_nearest=True`` skips each row's nearest
        reference row (leave-one-out, for rows that are themselves in the reference)."""
        x = ops.cast(inputs, self.compute_dtype)
        reference = ops.cast(self.reference, self.compute_dtype)
        skip = 1 if exclude_nearest else 0
        nearest = self._nearest(x, reference, self.k + skip)
        neighbours = ops.take(reference, nearest[:, skip:], axis=0)  # (batch, k, d)
        return ops.mean(ops.square(x[:, None, :] - neighbours), axis=1)

    def _nearest(self, x: Any, reference: Any, count: int) -> Any:
        """``(batch, count)`` indices of each row's ``count`` nearest reference rows, nearest
        first."""
        # |x - r|^2 = |x|^2 - 2 x.r + |r|^2 ranks the reference rows without |x|^2, the same for
        # all of a row's: the key is one product of [x, 1] and [-2 r, |r|^2]. The output is
        # computed from the exact differences of the chosen rows.
        m = self.num_reference
        x1 = ops.concatenate([x, ops.ones_like(x[:, :1])], axis=1)
        r1 = ops.concatenate(
            [-2.0 * reference, ops.sum(ops.square(reference), axis=1, keepdims=True)], axis=1
        )
        block = math.ceil(math.sqrt(m))
        blocks = math.ceil(m / block)
        if m < 256 or blocks < count:
            _, nearest = ops.top_k(-ops.matmul(x1, ops.transpose(r1)), k=count, sorted=True)
            return nearest
        if blocks * block > m:  # pad the last block with rows no row is near
            far = np.zeros((blocks * block - m, self.num_features + 1), dtype="float32")
            far[:, -1] = np.finfo("float32").max
            r1 = ops.concatenate([r1, ops.cast(far, r1.dtype)], axis=0)
        key = ops.reshape(ops.matmul(x1, ops.transpose(r1)), (-1, blocks, block))
        _, best = ops.top_k(-ops.min(key, axis=2), k=count, sorted=False)  # (batch, count)
        # the kept blocks as rows of the flattened (batch * blocks, block) key: one plain gather
        # (take_along_axis broadcasts its indices to the full block first: 2x slower)
        row = ops.arange(ops.shape(key)[0], dtype=best.dtype)[:, None]
        candidates = ops.take(ops.reshape(key, (-1, block)), row * blocks + best, axis=0)
        _, at = ops.top_k(-ops.reshape(candidates, (-1, count * block)), k=count, sorted=True)
        chosen = ops.take(ops.reshape(best, (-1,)), row * count + at // block, axis=0)
        return chosen * block + at % block

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (input_shape[0], self.num_features)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {"num_reference": self.num_reference, "num_features": self.num_features, "k": self.k}
        )
        return config
