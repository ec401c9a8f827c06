"""Memory over a scoring run: collecting the reference cycles that GX and pandas leave per chunk.

Python seldom runs a full collection by itself: without one every :data:`GC_EVERY_ROWS` rows, a
10M-row batch peaked at 1.7 GB instead of 1.3 GB.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import pyarrow as pa

__all__ = ["GC_EVERY_ROWS", "GarbageCollector"]

#: A garbage collection after this many rows scored in one run.
GC_EVERY_ROWS = 1_000_000


class GarbageCollector:
    """Counts the rows scored in one scoring run (one per run: the flow makes it and passes it to
    every batch) and runs a full collection every ``every_rows`` of them.

    The objects that existed before a batch (TensorFlow's, the model's: about a million) are
    frozen while it is scored (:meth:`frozen`), so a collection only walks what the batch
    created: well under 0.1 s instead of ~0.6 s.
    """

    def __init__(self, every_rows: int = GC_EVERY_ROWS) -> None:
        self.every_rows = every_rows
        self.rows = 0  # scored since the last collection

    def scored(self, rows: int) -> None:
        """``rows`` more rows scored: collect (and hand Arrow's free memory back) when due."""
        self.rows += rows
        if self.rows >= self.every_rows:
            self.rows = 0
            gc.collect()
            pa.default_memory_pool().release_unused()

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Move every object alive now to the collector's permanent generation for the duration
        (``gc.freeze``), so collections skip them; they are handed back afterwards
        (``gc.unfreeze``) and collected as usual from then on."""
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
