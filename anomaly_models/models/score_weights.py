"""The ``training_scores`` weight that both score networks carry (the fitted detector's
``training_scores_``, saved inside the ``.keras`` file)."""

from __future__ import annotations

from typing import Any

__all__ = ["training_scores_weight"]


def training_scores_weight(layer: Any, count: int) -> Any:
    """A non-trainable float64 ``(count,)`` weight named ``training_scores`` on ``layer``, or
    None when ``count`` is 0: files written without this weight have no variable for it, and
    the number of variables must match theirs to load."""
    if not count:
        return None
    return layer.add_weight(
        shape=(count,), initializer="zeros", dtype="float64", trainable=False,
        name="training_scores",
    )
