"""The settings the scoring step takes, built once at the flow boundary from ``params``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flows.layout import ScoringDirs
from flows.steps.score.series import DEFAULT_MAX_GAP_STEPS

if TYPE_CHECKING:
    from flows.config import Params

__all__ = ["ScoringOptions"]


@dataclass(frozen=True)
class ScoringOptions:
    """What :func:`~flows.steps.score.score_batch` needs of the settings.

    Attributes:
        dirs: the scoring folders, absolute (``scoring.incoming_dir``, ``scored_dir``,
            ``quarantine_dir``).
        chunk_rows: rows read, validated, scored and written at a time (``scoring.chunk_rows``).
        passthrough_columns: columns carried through to the output unvalidated
            (``scoring.passthrough_columns``).
        max_gap_steps: for sequence models, a time step larger than this many median steps is a
            gap (``data.gap_factor``).
    """

    dirs: ScoringDirs
    chunk_rows: int
    passthrough_columns: tuple[str, ...] = ()
    max_gap_steps: float = DEFAULT_MAX_GAP_STEPS

    @classmethod
    def from_params(cls, params: Params, root: str | Path) -> ScoringOptions:
        return cls(
            dirs=ScoringDirs.from_params(params, root),
            chunk_rows=params.scoring.chunk_rows,
            passthrough_columns=tuple(params.scoring.passthrough_columns),
            max_gap_steps=params.data.gap_factor,
        )
