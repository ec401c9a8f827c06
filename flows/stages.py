"""The pipeline's stages in order: one name per step function (what DVC and the CLI call).

Importing this module imports no heavy library: each stage's module is loaded when it runs.
The register stage is wired here (:func:`register`): its step gathers files, the registry logs.
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
    "register": ("flows.stages", "register"),
}


def register(params: Params, root: Path) -> Any:
    """The register stage: :func:`flows.steps.reference.write_drift_reference` (a bounded
    sample of the training split, ``<data.snapshot_dir>/drift_reference.parquet``), then
    :func:`flows.steps.register.registration_inputs` (the files to log, that sample included),
    then :func:`flows.registry.log_and_register` (one MLflow run, a new version, the promotion
    gate), then :func:`flows.steps.register.record_registration` (``models/registration.json``).

    Returns the step's ``RegisterResult``. Raises ``StepInputError`` (a missing input, before
    the registry is touched) or ``RegistryError``.
    """
    from flows import registry
    from flows.steps.reference import write_drift_reference
    from flows.steps.register import record_registration, registration_inputs

    write_drift_reference(params, root)  # logged with the reports: the report's drift reference
    inputs = registration_inputs(params, root)
    registration = registry.log_and_register(
        params.registry,
        params.retries,
        root,
        model_path=inputs.model_path,
        metric=params.evaluate.metric,
        metrics=inputs.metrics,
        params_flat=inputs.params_flat,
        input_example=inputs.input_example,
        artifacts=inputs.artifacts,
        tags=inputs.tags,
        timestamp_column=params.data.timestamp_column,
    )
    return record_registration(params, root, registration, inputs)


def stage_function(name: str) -> Callable[[Params, Path], Any]:
    """The step function of stage ``name``; ValueError listing the stages for an unknown one."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    module, function = STAGES[name]
    return getattr(importlib.import_module(module), function)


def run_stage(name: str, params: Params, root: Path) -> Any:
    """Run one stage outside Prefect (what ``anomaly stage NAME`` and ``dvc repro`` do)."""
    return stage_function(name)(params, root)
