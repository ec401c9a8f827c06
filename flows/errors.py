"""The pipeline's error types for bad input (each names the problem and where it is).

``ConfigError`` (bad settings) lives in :mod:`flows.config`, next to the loader that raises it.
"""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """The input data cannot be used; the message names the problem and the file."""
