"""Registering a trained model: one MLflow run, a new version, the promotion gate.

:func:`log_and_register` logs the run's params, metrics, tags and artifacts and the pyfunc
(:mod:`flows.registry.package`), registers a new version of ``registry.model_name`` and hands it to
the gate (:func:`flows.registry.promotion.gate_new_version`). Calls that can fail transiently are
retried (``params.retries``); registering is idempotent across retries.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
from mlflow import MlflowClient

from flows.registry.connection import configure
from flows.registry.package import log_artifacts, log_pyfunc_model
from flows.registry.promotion import CHAMPION, aliases_of, gate_new_version
from flows.registry.retry import with_retry

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion

    from flows.config import RegistryParams, RetryParams

__all__ = ["Registration", "log_and_register", "metric_key"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    """What :func:`log_and_register` did."""

    run_id: str
    model_name: str
    version: int
    model_uri: str
    aliases: tuple[str, ...]
    promoted: bool
    reason: str
    champion_version: int | None = None  # after the gate
    previous_champion: int | None = None
    metric: str | None = None
    metric_value: float | None = None
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["aliases"] = list(self.aliases)
        return out


# ------------------------------------------------------------------------ run params, metrics
def metric_key(name: str) -> str:
    """``name`` as an MLflow metric key (letters, digits, ``_-. /``; at most 200 characters)."""
    return re.sub(r"[^A-Za-z0-9_\-. /]+", "_", name)[:200]


def _numeric_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{metric_key(str(key))}"  # column names can hold any character
        if isinstance(value, Mapping):
            out.update(_numeric_metrics(value, prefix=f"{name}."))
        elif isinstance(value, (int, float)) and math.isfinite(float(value)):
            out[name] = float(value)
        elif hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
            try:
                number = float(value.item())
            except (TypeError, ValueError):
                continue
            if math.isfinite(number):
                out[name] = number
    return out


def _param_values(params_flat: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in params_flat.items():
        text = "null" if value is None else str(value)
        out[str(key)] = text if len(text) <= 6000 else text[:5997] + "..."
    return out


def _log_run_data(
    tags: Mapping[str, str],
    params_flat: Mapping[str, Any],
    metrics: Mapping[str, float],
    artifacts: Sequence[str | Path],
) -> None:
    """Tags, params, metrics and artifacts of the active run (nothing to log is no error)."""
    if tags:
        mlflow.set_tags(dict(tags))
    if params_flat:
        mlflow.log_params(_param_values(params_flat))
    if metrics:
        mlflow.log_metrics(dict(metrics))
    log_artifacts(Path(a) for a in artifacts)


# -------------------------------------------------------------------------- registering
def _calibrated_detector(model_path: Path) -> Any:
    from anomaly_models.detector import AnomalyDetector

    if not model_path.is_file():
        raise FileNotFoundError(f"no model file at {model_path}")
    detector = AnomalyDetector.load(model_path)
    if not detector.is_calibrated:
        raise ValueError(
            f"the detector in {model_path} has no threshold; run the calibrate stage first "
            "(`anomaly stage calibrate`)"
        )
    return detector


def _register_version(
    client: MlflowClient, model_uri: str, name: str, run_id: str, tags: Mapping[str, str]
) -> ModelVersion:
    # Idempotent across retries: an earlier attempt may have created the version before failing.
    # One run registers one version, so a version of this run is the one we were creating.
    for mv in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"):
        return mv
    return mlflow.register_model(model_uri, name, tags=dict(tags))


def log_and_register(
    registry: RegistryParams,
    retries: RetryParams,
    root: str | Path,
    *,
    model_path: str | Path,
    metric: str,
    metrics: Mapping[str, Any],
    params_flat: Mapping[str, Any],
    input_example: pd.DataFrame,
    artifacts: Sequence[str | Path] = (),
    tags: Mapping[str, Any] | None = None,
    timestamp_column: str | None = None,
) -> Registration:
    """One MLflow run: params, metrics, artifacts, tags and the pyfunc; a new registered version
    with alias ``challenger``; then the promotion gate on ``champion``.

    Args:
        registry: ``params.registry`` (model name, experiment, promotion policy and margin).
        retries: ``params.retries`` (attempts and backoff of each registry call).
        model_path: the calibrated ``.keras`` detector.
        metric: what the gate compares (``params.evaluate.metric``), read from ``metrics``.
        metrics: evaluation metrics (nested dicts are flattened with ``.``; non-numbers skipped).
        params_flat: ``Params.flat()`` (or any flat dict) logged as run params.
        input_example: first rows of the validation split (the detector's feature columns are
            taken: integers as int64, the rest as float64; see
            :func:`~flows.registry.inputs.prepare_example`).
        artifacts: files and folders to log: ``*.png`` under ``plots/``, folders under their name
            (a GX ``local_site`` under ``data_docs/``), other files under ``reports/``.
        tags: lineage tags (snapshot hash, git commit, data source), set on the run and the version.
        timestamp_column: ``data.timestamp_column``, recorded in a sequence model's metadata.

    Raises:
        FileNotFoundError: no model file. ValueError: the detector has no threshold, or the
        example lacks feature columns. RegistryError: registering failed (after retries).
    """
    started = time.perf_counter()
    model_path = Path(model_path).resolve()
    detector = _calibrated_detector(model_path)
    name = registry.model_name
    clean_tags = {str(k): str(v) for k, v in (tags or {}).items() if v is not None}
    numeric = _numeric_metrics(metrics)

    client, experiment_id = configure(registry, retries, Path(root).resolve())
    run_name = f"register-{datetime.now(tz=UTC).strftime('%Y%m%d-%H%M%S')}"
    nested = mlflow.active_run() is not None  # e.g. inside a caller's parent run
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, nested=nested) as run:
        run_id = run.info.run_id
        _log_run_data(clean_tags, params_flat, numeric, artifacts)
        info = log_pyfunc_model(
            model_path, input_example, detector=detector, timestamp_column=timestamp_column
        )
        mv = with_retry(
            retries,
            f"registering a new version of model {name!r}",
            _register_version,
            client,
            info.model_uri,
            name,
            run_id,
            clean_tags,
        )
        version = int(mv.version)
        decision = gate_new_version(
            client, registry, retries, version=version, run_id=run_id, metric=metric
        )
        mlflow.set_tags(
            {
                "registry.model_name": name,
                "registry.version": str(version),
                "registry.promoted": str(decision.promote).lower(),
            }
        )
        after = with_retry(
            retries, f"reading the aliases of model {name!r}", aliases_of, client, name
        )

    aliases = tuple(sorted(a for a, v in after.items() if v == version))
    registration = Registration(
        run_id=run_id,
        model_name=name,
        version=version,
        model_uri=f"models:/{name}/{version}",
        aliases=aliases,
        promoted=decision.promote,
        reason=decision.reason,
        champion_version=after.get(CHAMPION),
        previous_champion=decision.champion_version,
        metric=metric,
        metric_value=decision.new_value,
        seconds=round(time.perf_counter() - started, 3),
    )
    _log.info(
        "registered %s version %d (%s): %s", name, version, ", ".join(aliases), decision.reason
    )
    return registration
