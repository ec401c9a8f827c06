"""Typed settings of the pipeline: the models of ``params.yaml`` and the one loader.

``load_params()`` reads ``params.yaml`` (or another file), applies ``--set``-style overrides
(``"train.epochs=5"``), and validates everything before any work starts. Every problem - a
missing file, a YAML syntax error, an unknown key, a wrong type, an impossible value, a malformed
override - raises :class:`ConfigError` whose message names the dotted key and the file::

    invalid settings in /repo/params.yaml:
      - train.epochs: Input should be greater than 0 (got -1)

Every key has a default equal to the shipped ``params.yaml``, so a user file may set only what it
changes. Nothing here touches the environment at import time; entry points call
:func:`configure_environment` themselves.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "PARAMS_FILE",
    "SEQUENCE_KINDS",
    "ConfigError",
    "DataParams",
    "EvaluateParams",
    "ExpectationSpec",
    "ModelParams",
    "Params",
    "RegistryParams",
    "ReportParams",
    "SchedulesParams",
    "ScoringParams",
    "SplitParams",
    "ThresholdParams",
    "TrainParams",
    "ValidateParams",
    "configure_environment",
    "load_params",
    "local_run_settings",
    "project_root",
    "resolve",
]

PARAMS_FILE = "params.yaml"
ROOT_ENV_VAR = "ANOMALY_PROJECT_ROOT"
#: model.kind values that score ordered series (one score per time point).
SEQUENCE_KINDS = ("lstm_autoencoder",)


class ConfigError(ValueError):
    """Invalid settings: the message names the dotted key(s) and the file."""

    def __init__(self, message: str, *, path: Path | None = None, keys: Sequence[str] = ()):
        super().__init__(message)
        self.path = path
        self.keys = list(keys)


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


class ValidateParams(_Section):
    range_margin: Annotated[float, Field(ge=0, strict=True)] = 0.1
    range_mostly: Annotated[float, Field(gt=0, le=1, strict=True)] = 0.999
    max_null_fraction: Annotated[float, Field(ge=0, lt=1, strict=True)] = 0.0
    expectations: list[ExpectationSpec] = Field(default_factory=list)


class ModelParams(_Section):
    kind: Literal["autoencoder", "feature", "lstm_autoencoder"] = "autoencoder"
    hidden_dims: Annotated[list[PositiveInt], Field(min_length=1)] = Field(
        default_factory=lambda: [64, 32, 16]
    )
    scaling: Literal["robust", "standard"] = "robust"
    tail_compression: StrictBool = True
    reconstruction_weight: Annotated[float, Field(ge=0, le=1, strict=True)] = 0.5
    distribution_weight: Annotated[float, Field(ge=0, le=1, strict=True)] = 0.5
    window: Annotated[int, Field(ge=2, strict=True)] = 32
    stride: PositiveInt = 1
    point_aggregation: Literal["mean", "max"] = "mean"
    smoothing: NonNegativeInt | None = None
    lstm_units: PositiveInt = 32
    latent_dim: PositiveInt = 16

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
    epochs: PositiveInt = 30
    batch_size: PositiveInt = 1024
    learning_rate: Annotated[float, Field(gt=0, le=10, strict=True)] = 0.003
    seed: NonNegativeInt = 0
    validation_fraction: Annotated[float, Field(ge=0, le=0.5, strict=True)] = 0.1
    patience: PositiveInt = 5


class ThresholdParams(_Section):
    method: Literal["quantile", "mean_std", "median_mad", "iqr", "best_f1", "pot"] = "quantile"
    quantile: OpenFraction = 0.99
    k: Annotated[float, Field(gt=0, strict=True)] = 3.0
    iqr_k: Annotated[float, Field(gt=0, strict=True)] = 1.5
    target_false_alarm_rate: OpenFraction = 0.001
    pot_initial_quantile: OpenFraction = 0.98


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

    @field_validator("alias")
    @classmethod
    def _alias_name(cls, value: str) -> str:
        if not _ALIAS.match(value) or value.lower() == "latest":
            raise ValueError(
                "an MLflow alias is letters, digits, '_' and '-', starting with a letter or '_', "
                "and not 'latest'"
            )
        return value


class ReportParams(_Section):
    reports_dir: NonEmptyStr = "data/reports"
    trend_days: PositiveInt = 14


class SchedulesParams(_Section):
    # minutes; fractions allowed (0.5 = every 30 s)
    scoring_interval_minutes: Annotated[float, Field(gt=0)] = 15
    report_cron: str | None = "0 2 * * *"
    retrain_cron: str | None = None
    timezone: NonEmptyStr = "UTC"

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


# --------------------------------------------------------------------------- paths and env
def project_root() -> Path:
    """The project root: ``$ANOMALY_PROJECT_ROOT`` when set, else the current directory."""
    env = os.environ.get(ROOT_ENV_VAR)
    return Path(env).expanduser().resolve() if env else Path.cwd().resolve()


def resolve(root: str | Path, path: str | Path) -> Path:
    """A path from params: absolute (after ``~`` expansion) as given, else relative to ``root``."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(root) / p


def configure_environment(root: str | Path) -> None:
    """Keep every tool local and quiet: set, when not already set, the variables that put Prefect's
    home, DVC's site cache, Keras' and Matplotlib's config inside ``root`` and turn telemetry off.

    Called by entry points (CLI, flows, tests), never at import time. Variables already present in
    the environment win, so pointing at real services (``PREFECT_API_URL``, ``MLFLOW_TRACKING_URI``)
    or other folders needs no code change.
    """
    root = Path(root).resolve()
    defaults = {
        "PREFECT_HOME": str(root / ".prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Prefect's temporary API needs 8-17 s to start on 2 busy cores; the default 20 s
        # limit then fails a run for nothing.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(root / ".dvc" / "site-cache"),
        "GX_ANALYTICS_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "KERAS_HOME": str(root / ".cache" / "keras"),
        "MPLCONFIGDIR": str(root / ".cache" / "matplotlib"),
        "MPLBACKEND": "Agg",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)


@contextlib.contextmanager
def local_run_settings() -> Iterator[None]:
    """Prefect settings for flows run from this process (the CLI, the benchmarks).

    Without a Prefect server (``PREFECT_API_URL`` unset) Prefect starts a temporary API that
    lives exactly as long as this process, so flow-run heartbeats (every 180 s by default,
    for a server to notice crashed runs) have no reader; yet stopping their thread makes every
    run wait for up to a second. They are switched off for such runs. Against a server
    (``anomaly serve``, or any ``PREFECT_API_URL``) nothing changes.
    """
    from prefect.settings import get_current_settings, temporary_settings

    if get_current_settings().api.url:
        yield
        return
    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        yield


# --------------------------------------------------------------------------- loading
class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (YAML would keep the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} appears twice (first on line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


def _key(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<top level>"


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class in ``annotation`` (also inside ``X | None``), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is not None:
        for arg in get_args(annotation):
            found = _submodel(arg)
            if found is not None and get_origin(annotation) is not list:
                return found
    return None


def _field_names(model: type[BaseModel]) -> dict[str, str]:
    """{params.yaml key: attribute name} of a model."""
    return {(f.alias or name): name for name, f in model.model_fields.items()}


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The settings model that holds the key at ``loc`` (None if not a model path)."""
    model: type[BaseModel] | None = Params
    i = 0
    while i < len(loc) - 1 and model is not None:
        part = loc[i]
        names = _field_names(model)
        if part not in names:
            return None
        annotation = model.model_fields[names[part]].annotation
        if get_origin(annotation) is list and i + 1 < len(loc) - 1 and isinstance(loc[i + 1], int):
            model = _submodel(get_args(annotation)[0])
            i += 2
            continue
        model = _submodel(annotation)
        i += 1
    return model


def _format_error(err: dict[str, Any], overrides: dict[str, str]) -> tuple[str, str]:
    loc = tuple(err.get("loc", ()))
    key = _key(loc)
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "extra_forbidden":
        parent = _model_at(loc)
        allowed = sorted(_field_names(parent)) if parent is not None else []
        where = _key(loc[:-1]) if loc[:-1] else "the top level"
        msg = f"unknown key (allowed in {where}: {', '.join(allowed)})"
    elif kind == "missing":
        msg = "required key is missing"
    elif "input" in err and not (kind == "value_error" and isinstance(err["input"], dict)):
        msg = f"{msg} (got {_short(err['input'])})"
    for okey, text in overrides.items():
        if key == okey or key.startswith((okey + ".", okey + "[")) or okey.startswith(key + "."):
            msg += f" [from override {text!r}]"
            break
    return key, msg


def _parse_override(text: str) -> tuple[list[str], Any]:
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(
            f"bad override {text!r}: expected KEY=VALUE with a dotted key of params.yaml, "
            "e.g. train.epochs=5",
            keys=[str(text)],
        )
    key, _, raw = text.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not key or any(not p or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", p) for p in parts):
        raise ConfigError(
            f"bad override {text!r}: {key!r} is not a dotted key of params.yaml "
            "(e.g. train.epochs)",
            keys=[key],
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"bad override {text!r}: {key}: value is not valid YAML ({problem})", keys=[key]
        ) from exc
    # check the key against the models (not the file, which may omit defaulted keys)
    model: type[BaseModel] | None = Params
    for i, part in enumerate(parts):
        if model is None:
            raise ConfigError(
                f"bad override {text!r}: {'.'.join(parts[:i])} is a value, not a section; "
                f"{key} does not exist",
                keys=[key],
            )
        names = _field_names(model)
        if part not in names:
            where = ".".join(parts[:i]) or "the top level"
            raise ConfigError(
                f"bad override {text!r}: unknown key {key} "
                f"(allowed in {where}: {', '.join(sorted(names))})",
                keys=[key],
            )
        model = _submodel(model.model_fields[names[part]].annotation)
    return parts, value


def _set_dotted(tree: dict[str, Any], parts: list[str], value: Any) -> None:
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    last = parts[-1]
    if isinstance(value, dict) and isinstance(node.get(last), dict):
        merged = dict(node[last])
        merged.update(value)
        node[last] = merged
    else:
        node[last] = value


def load_params(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Params:
    """Read, override and validate the settings.

    Args:
        path: the YAML file; default ``params.yaml`` in :func:`project_root`.
        overrides: ``"dotted.key=value"`` strings; the value is parsed as YAML, so
            ``"train.epochs=5"`` is an int, ``"data.label_column=null"`` is None and
            ``"model.hidden_dims=[16,8]"`` a list. Unknown keys are errors.

    Raises:
        ConfigError: naming the file and every bad key.
    """
    file = Path(path).expanduser() if path is not None else project_root() / PARAMS_FILE
    file = file.resolve()
    if isinstance(overrides, str):  # a lone "k=v" would otherwise iterate per character
        overrides = [overrides]
    if not file.is_file():
        what = "is a folder, not a file" if file.is_dir() else "not found"
        raise ConfigError(f"params file {what}: {file}", path=file)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read params file {file}: {exc}", path=file) from exc
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"YAML syntax error in {file}{where}: {problem}", path=file) from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{file}: the top level must be a mapping of sections (data:, split:, ...), "
            f"got {type(raw).__name__}",
            path=file,
        )

    applied: dict[str, str] = {}
    for text_override in overrides:
        try:
            parts, value = _parse_override(text_override)
        except ConfigError as exc:
            raise ConfigError(f"{exc} [params file: {file}]", path=file, keys=exc.keys) from None
        _set_dotted(raw, parts, value)
        applied[".".join(parts)] = text_override

    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        problems = [_format_error(dict(e), applied) for e in exc.errors(include_url=False)]
        lines = "\n".join(f"  - {k}: {m}" for k, m in problems)
        raise ConfigError(
            f"invalid settings in {file}:\n{lines}", path=file, keys=[k for k, _ in problems]
        ) from None
    params._source_file = file
    return params
