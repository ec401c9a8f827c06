"""Everything MLflow: tracking set-up, the pyfunc package, registration, aliases, the promotion gate.

The modules, one job each (this file only re-exports their public names)::

    retry.py         RegistryError, which errors are transient, the one retry helper
    connection.py    tracking / registry URIs, the experiment, configure_mlflow
    inputs.py        the model's input example, signature and metadata; prepare_input for batches
    package.py       the pyfunc (pip requirements, code paths) and the run's other artifacts
    pyfunc_model.py  the registered model's own code (models-from-code; imports no flows module)
    versions.py      reading the registry: versions, the version behind an alias, its pyfunc
    promotion.py     the aliases champion / challenger, the promotion gate, `anomaly promote`
    register.py      log_and_register: one run, a new version, the gate
    report_logging.py  the data-quality report's run: its metrics and its folder as artifacts
    suites.py        the GX suite registered with a version, downloaded and cached for scoring
    references.py    the drift reference registered with a version, downloaded and cached for
                     the data-quality report
    scorer.py        the scoring step's BatchScorer around a registered pyfunc

Every function takes the part of the settings it uses: ``params.registry`` (RegistryParams) and,
where it calls the registry, ``params.retries`` (RetryParams: transient failures are retried
``retries.attempts`` times with exponential backoff from ``retries.delay_seconds``; then
:class:`RegistryError`).
"""

from __future__ import annotations

from flows.registry.connection import (
    artifact_location,
    configure_mlflow,
    tracking_uri,
)
from flows.registry.inputs import CONTEXT_ROWS_PARAM, model_metadata, prepare_input
from flows.registry.package import (
    DRIFT_REFERENCE_ARTIFACT,
    PYFUNC_MODEL_FILE,
    SUITE_ARTIFACT,
    download_artifact,
    log_pyfunc_model,
    pip_requirements,
    run_has_artifact,
)
from flows.registry.promotion import (
    CHALLENGER,
    CHAMPION,
    Promotion,
    PromotionDecision,
    decide_promotion,
    promote,
)
from flows.registry.references import (
    ReferenceUnavailable,
    fetch_reference,
    fetch_references,
    reference_cache_path,
)
from flows.registry.register import Registration, log_and_register, metric_key
from flows.registry.report_logging import log_report_run, report_metrics
from flows.registry.retry import RegistryError, is_transient
from flows.registry.suites import fetch_suite, suite_cache_path
from flows.registry.versions import (
    VersionInfo,
    VersionNotFound,
    get_version,
    list_versions,
    load_champion_pyfunc,
    resolve_alias,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "CONTEXT_ROWS_PARAM",
    "DRIFT_REFERENCE_ARTIFACT",
    "PYFUNC_MODEL_FILE",
    "SUITE_ARTIFACT",
    "Promotion",
    "PromotionDecision",
    "ReferenceUnavailable",
    "Registration",
    "RegistryError",
    "VersionInfo",
    "VersionNotFound",
    "artifact_location",
    "configure_mlflow",
    "decide_promotion",
    "download_artifact",
    "run_has_artifact",
    "fetch_reference",
    "fetch_references",
    "fetch_suite",
    "get_version",
    "is_transient",
    "list_versions",
    "load_champion_pyfunc",
    "log_and_register",
    "log_pyfunc_model",
    "log_report_run",
    "metric_key",
    "model_metadata",
    "pip_requirements",
    "prepare_input",
    "promote",
    "reference_cache_path",
    "report_metrics",
    "resolve_alias",
    "suite_cache_path",
    "tracking_uri",
]
