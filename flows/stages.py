"""The pipeline's stages in order: one name per step function (what DVC and the CLI call).

Importing this module imports no heavy library: each stage's module is loaded when it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows.config import Params

#: stage name -> (module, function); the order is the pipeline's order.
STAGES: dict[str, tuple[str, str]] = {
    "ingest": ("flows.steps.ingest", "ingest"),
    "validate": ("flows.steps.validate", "validate"),
    "preprocess": ("flows.steps.preprocess", "preprocess"),
    "train": ("flows.steps.train", "train"),
    "calibrate": ("flows.steps.calibrate", "calibrate"),
    "evaluate": ("flows.steps.evaluate", "evaluate"),
    "register": ("flows.steps.register", "register"),
}


def stage_function(name: str) -> Callable[[Params, Path], Any]:
    """The step function of stage ``name``; ValueError listing the stages for an unknown one."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    module, function = STAGES[name]
    return getattr(importlib.import_module(module), function)


def run_stage(name: str, params: Params, root: Path) -> Any:
    """Run one stage outside Prefect (what ``anomaly stage NAME`` and ``dvc repro`` do)."""
    return stage_function(name)(params, root)
