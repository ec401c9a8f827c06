"""Typed settings of the pipeline: the models of ``params.yaml`` and the one loader.

* :mod:`flows.config.sections`: one pydantic model per top-level key of ``params.yaml``;
* :mod:`flows.config.loading`: :func:`load_params` (file + ``--set`` overrides, every problem a
  :class:`ConfigError` naming the dotted key and the file), :func:`project_root`,
  :func:`configure_environment`.

Every key has a default equal to the shipped ``params.yaml``, so a user file may set only what it
changes. Nothing here touches the environment at import time.
"""

from flows.config.loading import (
    PARAMS_FILE,
    ROOT_ENV_VAR,
    configure_environment,
    load_params,
    project_root,
)
from flows.config.sections import (
    RENAMED_THRESHOLD_KEYS,
    SEQUENCE_KINDS,
    SEVERITIES,
    DataParams,
    EvaluateParams,
    ExpectationSpec,
    ModelParams,
    Params,
    RegistryParams,
    ReportParams,
    RetryParams,
    SchedulesParams,
    ScoringParams,
    SplitParams,
    ThresholdParams,
    TrainParams,
    ValidateParams,
)
from flows.errors import ConfigError
from flows.io import resolve

__all__ = [
    "PARAMS_FILE",
    "RENAMED_THRESHOLD_KEYS",
    "ROOT_ENV_VAR",
    "SEQUENCE_KINDS",
    "SEVERITIES",
    "ConfigError",
    "DataParams",
    "EvaluateParams",
    "ExpectationSpec",
    "ModelParams",
    "Params",
    "RegistryParams",
    "ReportParams",
    "RetryParams",
    "SchedulesParams",
    "ScoringParams",
    "SplitParams",
    "ThresholdParams",
    "TrainParams",
    "ValidateParams",
    "configure_environment",
    "load_params",
    "project_root",
    "resolve",
]
