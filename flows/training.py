"""The Prefect training flow: the stages of flows/stages.py chained as tasks.

The flow only wires steps: every piece of work is a plain step function in ``flows/steps``,
the same ones ``dvc repro`` runs through ``anomaly stage NAME``. With no ``PREFECT_API_URL``
Prefect starts its temporary local API by itself; pointing ``PREFECT_API_URL`` at a server runs
the same flow there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.config import Params, load_params, project_root
from flows.runtime import quiet_user_error_tracebacks
from flows.stages import STAGES, stage_function


def _summary(name: str, result: Any) -> str:
    metrics = getattr(result, "metrics", None) or {}
    shown = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in list(metrics.items())[:8]
    )
    return f"{name}: {shown}" if shown else f"{name}: done"


def _stage_task(name: str):
    function = stage_function(name)
    return task(name=name, cache_policy=NO_CACHE, log_prints=True)(function)


@flow(name="training", log_prints=True, validate_parameters=False)
def training_flow(
    params_file: str | None = None,
    overrides: Sequence[str] = (),
    root: str | None = None,
    params: Params | None = None,
) -> dict[str, Any]:
    """ingest -> validate -> preprocess -> train -> calibrate -> evaluate -> register.

    Args:
        params_file: params.yaml to read (default: the project's).
        overrides: ``dotted.key=value`` settings for this run only.
        root: project root (default: ``ANOMALY_PROJECT_ROOT`` or the current folder).
        params: already-loaded settings (then ``params_file`` / ``overrides`` are ignored).

    Returns:
        ``{stage name: step result}``; the register result says which version and aliases.
    """
    quiet_user_error_tracebacks()
    logger = get_run_logger()
    project = Path(root) if root else project_root()
    settings = params if params is not None else load_params(params_file, overrides)
    results: dict[str, Any] = {}
    for name in STAGES:
        results[name] = _stage_task(name)(settings, project)
        logger.info(_summary(name, results[name]))
    registration = results["register"].registration
    create_markdown_artifact(
        key="training-summary",
        markdown="\n".join(f"- {_summary(n, r)}" for n, r in results.items())
        + f"\n\nregistered: {registration.model_name} version {registration.version}, "
        f"aliases {', '.join(registration.aliases)}: {registration.reason}",
        description="What the training run produced",
    )
    return results
