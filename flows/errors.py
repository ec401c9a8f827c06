"""The pipeline's error types for bad input (each names the problem and where it is)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["ConfigError", "DataError"]


class ConfigError(ValueError):
    """Invalid settings: the message names the dotted key(s) and the file."""

    def __init__(self, message: str, *, path: Path | None = None, keys: Sequence[str] = ()):
        super().__init__(message)
        self.path = path
        self.keys = list(keys)


class DataError(ValueError):
    """The input data cannot be used; the message names the problem and the file."""
