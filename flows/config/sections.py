"""The typed sections of ``params.yaml`` (pydantic models): one class per top-level key.

Every key has a default equal to the shipped ``params.yaml``; unknown keys are errors. The
choices of ``model.kind`` and ``threshold.method`` and the threshold parameters' names and
defaults come from the library's tables (:mod:`anomaly_models.kinds`,
:data:`anomaly_models.thresholds.THRESHOLD_METHODS`).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    field_validator,
    model_validator,
)

from anomaly_models.kinds import KINDS, SEQUENCE_KINDS
from anomaly_models.thresholds import METHODS, THRESHOLD_METHODS

#: Great Expectations' failure severities (``FailureSeverity``), most severe first. Only a
#: ``critical`` failure refuses training or quarantines a batch.
SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")

__all__ = [
    "RENAMED_THRESHOLD_KEYS",
    "SEQUENCE_KINDS",
    "SEVERITIES",
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
]


# --------------------------------------------------------------------------- field types
PositiveInt = Annotated[int, Field(gt=0, strict=True)]
NonNegativeInt = Annotated[int, Field(ge=0, strict=True)]
OpenFraction = Annotated[float, Field(gt=0, lt=1, strict=True)]  # in (0, 1)
NonEmptyStr = Annotated[str, Field(min_length=1)]

_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?LW#]+$")
_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly"}
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def _check_cron(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if text in _CRON_MACROS:
        return text
    fields = text.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ValueError(
            "expected a cron expression of 5 fields 'minute hour day month weekday', "
            "e.g. '0 2 * * *', or one of " + ", ".join(sorted(_CRON_MACROS))
        )
    return text


class _Section(BaseModel):
    """Base of every settings model: unknown keys are errors; numbers given for text are kept
    as text (``--set registry.model_name=2024`` names a model "2024")."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, validate_assignment=True)


# --------------------------------------------------------------------------- sections
class DataParams(_Section):
    source: NonEmptyStr = "builtin:shuttle"
    label_column: NonEmptyStr | None = "anomaly"
    timestamp_column: NonEmptyStr | None = None
    feature_columns: list[NonEmptyStr] | None = None
    snapshot_dir: NonEmptyStr = "data/interim"
    split_dir: NonEmptyStr = "data/processed"
    # sequence kinds only: a step between consecutive timestamps larger than gap_factor times
    # the median step is a gap; on_gap says what ingest does with it
    gap_factor: Annotated[float, Field(gt=1, strict=True)] = 3.0
    on_gap: Literal["error", "warn"] = "error"

    @field_validator("feature_columns")
    @classmethod
    def _features_unique(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("must list at least one column, or be null (= every numeric column)")
        dupes = sorted({c for c in value if value.count(c) > 1})
        if dupes:
            raise ValueError(f"columns listed twice: {dupes}")
        return value

    @model_validator(mode="after")
    def _roles_distinct(self) -> DataParams:
        if self.label_column is not None and self.label_column == self.timestamp_column:
            raise ValueError(
                f"label_column and timestamp_column are both {self.label_column!r}; "
                "they must be different columns"
            )
        for role in ("label_column", "timestamp_column"):
            name = getattr(self, role)
            if name is not None and self.feature_columns and name in self.feature_columns:
                raise ValueError(
                    f"feature_columns contains the {role.replace('_', ' ')} {name!r}; "
                    "labels and timestamps are never features"
                )
        return self


class SplitParams(_Section):
    validation_fraction: OpenFraction = 0.2
    test_fraction: OpenFraction = 0.2
    seed: NonNegativeInt = 0

    @model_validator(mode="after")
    def _leaves_training_rows(self) -> SplitParams:
        total = self.validation_fraction + self.test_fraction
        if total >= 1:
            raise ValueError(
                "validation_fraction + test_fraction must be < 1 so rows remain for training "
                f"(got {self.validation_fraction} + {self.test_fraction} = {total:g})"
            )
        return self

    @property
    def train_fraction(self) -> float:
        return 1.0 - self.validation_fraction - self.test_fraction


class ExpectationSpec(_Section):
    """One user-declared Great Expectations check, e.g.
    ``{type: expect_column_values_to_be_between, kwargs: {column: f1, min_value: 0}}``."""

    type: Annotated[str, Field(pattern=r"^expect_[a-z0-9_]+$")]
    kwargs: dict[str, Any] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)
    #: GX's severity: ``critical`` (the data contract: a failure refuses training and
    #: quarantines a batch), ``warning`` or ``info`` (recorded and reported, never refused).
    severity: Literal[SEVERITIES] = "critical"  # type: ignore[valid-type]


class ValidateParams(_Section):
    range_margin: Annotated[float, Field(ge=0, strict=True)] = 0.1
    #: The level of the training-range *warning*: it is raised when fewer than this share of a
    #: column's rows lie inside the range (a warning never refuses training or a batch).
    range_mostly: Annotated[float, Field(gt=0, le=1, strict=True)] = 0.999
    max_null_fraction: Annotated[float, Field(ge=0, lt=1, strict=True)] = 0.0
    expectations: list[ExpectationSpec] = Field(default_factory=list)


class ModelParams(_Section):
    kind: Literal[KINDS] = "ensemble"  # type: ignore[valid-type]
    hidden_dims: Annotated[list[PositiveInt], Field(min_length=1)] = Field(
        default_factory=lambda: [64, 32, 16]
    )
    scaling: Literal["robust", "standard"] = "robust"
    tail_compression: StrictBool = True
    reconstruction_weight: Annotated[float, Field(ge=0, le=1, strict=True)] = 0.5
    distribution_weight: Annotated[float, Field(ge=0, le=1, strict=True)] = 0.5
    window: Annotated[int, Field(ge=2, strict=True)] = 32
    stride: PositiveInt = 1
    point_aggregation: Literal["mean", "max"] | None = None
    smoothing: NonNegativeInt | None = None
    lstm_units: PositiveInt = 32
    latent_dim: PositiveInt = 16
    n_neighbors: PositiveInt = 5
    reference_rows: Annotated[int, Field(ge=2, strict=True)] = 4096

    @model_validator(mode="after")
    def _some_weight(self) -> ModelParams:
        if self.reconstruction_weight == 0 and self.distribution_weight == 0:
            raise ValueError("reconstruction_weight and distribution_weight cannot both be 0")
        if self.stride > self.window:
            raise ValueError(
                f"model.stride ({self.stride}) must be at most model.window ({self.window}), "
                "else the training windows skip points"
            )
        return self

    @property
    def is_sequence(self) -> bool:
        """True for the kinds that score the points of an ordered series."""
        return self.kind in SEQUENCE_KINDS


class TrainParams(_Section):
    epochs: PositiveInt | None = None  # None: the library's rule of the training rows
    batch_size: PositiveInt | None = None
    # None: the library's default of the kind (3e-3 tabular, 1e-3 lstm_autoencoder)
    learning_rate: Annotated[float, Field(gt=0, le=10, strict=True)] | None = None
    seed: NonNegativeInt = 0
    validation_fraction: Annotated[float, Field(ge=0, le=0.5, strict=True)] = 0.1
    patience: PositiveInt = 5


def _library_default(method: str, parameter: str) -> float:
    """A threshold method's default, as the library's table states it."""
    return float(THRESHOLD_METHODS[method].parameters[parameter])


class QuantileThreshold(_Section):
    q: OpenFraction = _library_default("quantile", "q")


class MeanStdThreshold(_Section):
    k: Annotated[float, Field(gt=0, strict=True)] = _library_default("mean_std", "k")


class MedianMadThreshold(_Section):
    k: Annotated[float, Field(gt=0, strict=True)] = _library_default("median_mad", "k")


class IqrThreshold(_Section):
    k: Annotated[float, Field(gt=0, strict=True)] = _library_default("iqr", "k")


class PotThreshold(_Section):
    target_false_alarm_rate: OpenFraction = _library_default("pot", "target_false_alarm_rate")
    initial_quantile: OpenFraction = _library_default("pot", "initial_quantile")


#: Keys of ``threshold`` before the sections took the library's parameter names -> the key now.
RENAMED_THRESHOLD_KEYS = {
    "quantile": "threshold.quantile.q",
    "k": "threshold.mean_std.k / threshold.median_mad.k",
    "iqr_k": "threshold.iqr.k",
    "target_false_alarm_rate": "threshold.pot.target_false_alarm_rate",
    "pot_initial_quantile": "threshold.pot.initial_quantile",
}


class ThresholdParams(_Section):
    """``method`` and one section per method holding its parameters, named as
    :func:`anomaly_models.thresholds.calibrate_threshold` names them (``best_f1`` has none)."""

    method: Literal[METHODS] = "quantile"  # type: ignore[valid-type]
    quantile: QuantileThreshold = Field(default_factory=QuantileThreshold)
    mean_std: MeanStdThreshold = Field(default_factory=MeanStdThreshold)
    median_mad: MedianMadThreshold = Field(default_factory=MedianMadThreshold)
    iqr: IqrThreshold = Field(default_factory=IqrThreshold)
    pot: PotThreshold = Field(default_factory=PotThreshold)

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for old, new in RENAMED_THRESHOLD_KEYS.items():
                # a number where a section (dict, or a section object on assignment) belongs
                if isinstance(data.get(old), (int, float, str)):
                    raise ValueError(
                        f"threshold.{old} was renamed: write {new} (the parameter's name in "
                        "anomaly_models.thresholds)"
                    )
        return data

    def method_parameters(self) -> dict[str, float]:
        """The keyword arguments of ``calibrate_threshold`` for ``method``."""
        section = getattr(self, self.method, None)
        return {} if section is None else section.model_dump()


class EvaluateParams(_Section):
    metric: Literal["roc_auc", "pr_auc", "f1"] = "pr_auc"
    top_flagged_rows: PositiveInt = 20


class RegistryParams(_Section):
    model_name: NonEmptyStr = "anomaly-detector"
    tracking_uri: NonEmptyStr | None = None
    artifact_dir: NonEmptyStr = "mlartifacts"
    experiment_name: NonEmptyStr = "anomaly-pipeline"
    promotion: Literal["auto", "manual"] = "auto"
    promotion_margin: Annotated[float, Field(ge=0, strict=True)] = 0.0


class ScoringParams(_Section):
    alias: NonEmptyStr = "champion"
    incoming_dir: NonEmptyStr = "data/incoming"
    scored_dir: NonEmptyStr = "data/scored"
    quarantine_dir: NonEmptyStr = "data/quarantine"
    chunk_rows: PositiveInt = 250_000
    passthrough_columns: list[NonEmptyStr] = Field(default_factory=list)
    executor: Literal["local", "processes", "dask"] = "local"
    workers: Annotated[int, Field(ge=1, le=1024, strict=True)] = 2
    dask_address: NonEmptyStr | None = None
    batches_per_task: Annotated[int, Field(ge=1, le=10_000, strict=True)] = 16
    rows_per_task: Annotated[int, Field(ge=1_000, strict=True)] = 250_000
    gx_every_batch: StrictBool = True
    ledger_url: NonEmptyStr | None = None

    @field_validator("dask_address")
    @classmethod
    def _dask_address(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+$", value):
            raise ValueError(
                "a Dask scheduler address like tcp://10.0.0.5:8786 (scheme://host:port)"
            )
        return value

    @field_validator("ledger_url")
    @classmethod
    def _ledger_url(cls, value: str | None) -> str | None:
        from flows.steps.score.ledger_db import check_ledger_url

        return None if value is None else check_ledger_url(value)

    @field_validator("alias")
    @classmethod
    def _alias_name(cls, value: str) -> str:
        if not _ALIAS.match(value) or value.lower() == "latest":
            raise ValueError(
                "an MLflow alias is letters, digits, '_' and '-', starting with a letter or '_', "
                "and not 'latest'"
            )
        return value


class RetryParams(_Section):
    """How often a call to a service (the MLflow registry, a Prefect task) is tried again when it
    fails for a reason that can pass (unreachable, locked, timed out); never for bad input."""

    # in-process calls to the registry: tries in all, and the wait before the 2nd (doubling)
    attempts: PositiveInt = 3
    delay_seconds: Annotated[float, Field(ge=0, le=600)] = 0.5
    # Prefect task retries of the scoring and report flows, on top of the attempts above
    task_retries: NonNegativeInt = 2
    task_delay_seconds: Annotated[float, Field(ge=0, le=3600)] = 2.0


class ReportParams(_Section):
    reports_dir: NonEmptyStr = "data/reports"
    trend_days: PositiveInt = 14


class SchedulesParams(_Section):
    # minutes; fractions allowed (0.5 = every 30 s)
    scoring_interval_minutes: Annotated[float, Field(gt=0)] = 15
    report_cron: str | None = "0 2 * * *"
    retrain_cron: str | None = None
    timezone: NonEmptyStr = "UTC"
    # the Prefect work pool (type process) of `anomaly deploy` / `anomaly worker`
    work_pool: NonEmptyStr = "anomaly"

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r} (e.g. 'UTC', 'Europe/Berlin')") from exc
        return value

    @field_validator("report_cron", "retrain_cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return _check_cron(value)


with warnings.catch_warnings():
    # `validate` is the section's name in params.yaml; as a field it shadows the deprecated
    # classmethod BaseModel.validate, which pydantic warns about. `params.validate` is the section.
    warnings.filterwarnings("ignore", message=r'Field name "validate"', category=UserWarning)

    class Params(_Section):
        """All settings; one attribute per top-level section of ``params.yaml``."""

        data: DataParams = Field(default_factory=DataParams)
        split: SplitParams = Field(default_factory=SplitParams)
        validate: ValidateParams = Field(default_factory=ValidateParams)  # type: ignore[assignment]
        model: ModelParams = Field(default_factory=ModelParams)
        train: TrainParams = Field(default_factory=TrainParams)
        threshold: ThresholdParams = Field(default_factory=ThresholdParams)
        evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
        registry: RegistryParams = Field(default_factory=RegistryParams)
        scoring: ScoringParams = Field(default_factory=ScoringParams)
        report: ReportParams = Field(default_factory=ReportParams)
        schedules: SchedulesParams = Field(default_factory=SchedulesParams)
        retries: RetryParams = Field(default_factory=RetryParams)

        _source_file: Path | None = PrivateAttr(default=None)

        @property
        def source_file(self) -> Path | None:
            """The file these settings were loaded from (None when built in code)."""
            return self._source_file

        def to_dict(self) -> dict[str, Any]:
            """Plain nested dict with the key names of ``params.yaml``."""
            return self.model_dump(mode="json")

        def flat(self) -> dict[str, Any]:
            """``{"train.epochs": 20, "model.hidden_dims": [64, 32, 8], ...}``, e.g. for MLflow."""
            return {
                f"{section}.{key}": value
                for section, values in self.to_dict().items()
                for key, value in values.items()
            }
