"""The one loader of settings: ``params.yaml`` + ``--set`` overrides -> :class:`Params`.

``load_params()`` reads ``params.yaml`` (or another file), applies ``--set``-style overrides
(``"train.epochs=5"``), and validates everything before any work starts. Every problem - a
missing file, a YAML syntax error, an unknown key, a wrong type, an impossible value, a malformed
override, a renamed key - raises :class:`~flows.errors.ConfigError` whose message names the
dotted key and the file::

    invalid settings in /repo/params.yaml:
      - train.epochs: Input should be greater than 0 (got -1)

Nothing here touches the environment at import time; entry points call
:func:`configure_environment` themselves.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from flows.config.sections import RENAMED_THRESHOLD_KEYS, Params, ThresholdParams
from flows.errors import ConfigError

__all__ = ["PARAMS_FILE", "ROOT_ENV_VAR", "configure_environment", "load_params", "project_root"]

PARAMS_FILE = "params.yaml"
ROOT_ENV_VAR = "ANOMALY_PROJECT_ROOT"


# --------------------------------------------------------------------------- paths and env
def project_root() -> Path:
    """The project root: ``$ANOMALY_PROJECT_ROOT`` when set, else the current directory."""
    env = os.environ.get(ROOT_ENV_VAR)
    return Path(env).expanduser().resolve() if env else Path.cwd().resolve()


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
        if model is ThresholdParams and part in RENAMED_THRESHOLD_KEYS and part not in names:
            raise ConfigError(
                f"bad override {text!r}: threshold.{part} was renamed: write "
                f"{RENAMED_THRESHOLD_KEYS[part]} (the parameter's name in anomaly_models.thresholds)",
                keys=[key],
            )
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
