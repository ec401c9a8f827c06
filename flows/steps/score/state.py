"""What one scoring run keeps from batch to batch: the GX validator (with the validation
definitions it looked up) and the garbage collector's row count. The flow makes one per run and
passes it to every batch; nothing of it is process-wide."""

from __future__ import annotations

from dataclasses import dataclass, field

from flows.expectations import Validator, gx_context_dir
from flows.layout import ScoringDirs
from flows.steps.score.memory import GarbageCollector

__all__ = ["RunState"]


@dataclass
class RunState:
    """The state of one scoring run.

    Attributes:
        validator: validates chunks in the project's GX context (``<root>/gx``).
        collector: a full garbage collection every million rows of the run.
    """

    validator: Validator
    collector: GarbageCollector = field(default_factory=GarbageCollector)

    @classmethod
    def start(cls, dirs: ScoringDirs) -> RunState:
        """A fresh state for a run on the project of ``dirs``."""
        return cls(validator=Validator(gx_context_dir(dirs.root)))
