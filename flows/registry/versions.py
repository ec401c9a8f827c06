"""Reading the registry: the registered versions, the version behind an alias, its pyfunc.

Scoring resolves the alias at each run (:func:`resolve_alias`, :func:`load_champion_pyfunc`), so a
version promoted with ``anomaly promote VERSION`` or in the MLflow UI scores from the next run on.
These calls create nothing: with no database at a SQLite URI they fail, saying to train first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from flows.registry.connection import connect_existing, safe_uri
from flows.registry.retry import RegistryError, with_retry

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.pyfunc import PyFuncModel

    from flows.config import RegistryParams, RetryParams

__all__ = [
    "HEADLINE_METRICS",
    "VersionInfo",
    "VersionNotFound",
    "describe_versions",
    "get_registered_model",
    "get_version",
    "list_versions",
    "load_champion_pyfunc",
    "resolve_alias",
    "version_numbers",
]

#: The run metrics :func:`list_versions` gives a column of their own (None when absent).
HEADLINE_METRICS = ("roc_auc", "pr_auc", "f1", "threshold")


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version (what scoring needs to load and record it)."""

    name: str
    version: int
    run_id: str | None
    source: str
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    status: str = "READY"
    created: str | None = None  # ISO 8601, UTC
    alias: str | None = None  # the alias it was resolved through, if any

    @property
    def model_uri(self) -> str:
        """``models:/NAME/VERSION``: pins this version even if the alias moves meanwhile."""
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["aliases"] = list(self.aliases)
        out["model_uri"] = self.model_uri
        return out

    @classmethod
    def of(
        cls, mv: ModelVersion, alias: str | None = None, aliases: Iterable[str] = ()
    ) -> VersionInfo:
        """From MLflow's ``ModelVersion``; ``aliases`` are added to the version's own."""
        created = None
        if getattr(mv, "creation_timestamp", None):
            created = datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC).isoformat(
                timespec="seconds"
            )
        return cls(
            name=mv.name,
            version=int(mv.version),
            run_id=mv.run_id,
            source=mv.source,
            aliases=tuple(sorted(set(mv.aliases or ()) | set(aliases))),
            tags=dict(mv.tags or {}),
            status=str(mv.status),
            created=created,
            alias=alias,
        )


def version_numbers(client: MlflowClient, name: str) -> list[int]:
    """The version numbers of registered model ``name``, ascending."""
    return sorted(int(mv.version) for mv in client.search_model_versions(f"name = '{name}'"))


def describe_versions(numbers: Sequence[int]) -> str:
    """``"1, 2, 3"``, or ``"none"`` (for messages)."""
    return ", ".join(str(n) for n in numbers) if numbers else "none"


def get_registered_model(client: MlflowClient, name: str, uri: str) -> Any:
    """MLflow's ``RegisteredModel`` ``name``.

    Raises:
        RegistryError: there is no such registered model (the message says how to make one).
    """
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise RegistryError(
                f"no registered model {name!r} in {safe_uri(uri)}; train and register one first "
                "(`anomaly train`, or `dvc repro`), or check registry.model_name and "
                "MLFLOW_TRACKING_URI"
            ) from None
        raise


def _resolve(client: MlflowClient, name: str, alias: str) -> VersionInfo:
    model = get_registered_model(client, name, client.tracking_uri)
    aliases = {a: int(v) for a, v in model.aliases.items()}
    if alias not in aliases:
        numbers = version_numbers(client, name)
        if not numbers:
            raise RegistryError(
                f"model {name!r} has no registered version yet; train one (`anomaly train`)"
            )
        raise RegistryError(
            f"no version of model {name!r} has alias {alias!r}; promote one with "
            f"`anomaly promote VERSION` (alias {alias!r}: `anomaly promote VERSION --alias {alias}`)"
            f" or in the MLflow UI; registered versions: {describe_versions(numbers)}"
        )
    version = aliases[alias]
    mv = client.get_model_version(name, str(version))
    return VersionInfo.of(mv, alias=alias, aliases=[a for a, v in aliases.items() if v == version])


def resolve_alias(
    registry: RegistryParams, retries: RetryParams, root: str | Path, alias: str
) -> VersionInfo:
    """The version behind ``alias`` (scoring passes ``scoring.alias``), read from the registry now.

    Raises:
        RegistryError: no such registered model, no version with that alias (the message says
            how to promote one and lists the versions), or the registry is unreachable.
    """
    client = connect_existing(registry, root)
    return with_retry(
        retries,
        f"resolving models:/{registry.model_name}@{alias}",
        _resolve,
        client,
        registry.model_name,
        alias,
    )


class VersionNotFound(RegistryError):
    """The registry (reachable) has no such model version; the message lists those it has."""


def _get_version(client: MlflowClient, name: str, version: int) -> VersionInfo:
    try:
        mv = client.get_model_version(name, str(int(version)))
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        try:
            numbers = version_numbers(client, name)
        except MlflowException:
            numbers = []
        raise VersionNotFound(
            f"model {name!r} has no version {int(version)} in {safe_uri(client.tracking_uri)} "
            f"(registered versions: {describe_versions(numbers)})"
        ) from None
    return VersionInfo.of(mv)


def get_version(
    registry: RegistryParams, retries: RetryParams, root: str | Path, version: int
) -> VersionInfo:
    """Version ``version`` of ``registry.model_name``, read from the registry now (what the
    data-quality report needs to fetch the drift reference of the version a ledger entry names).

    Raises:
        VersionNotFound: the registry has no such version (or no such model).
        RegistryError: the registry is unreachable (after the retries) or has no database.
    """
    client = connect_existing(registry, root)
    return with_retry(
        retries,
        f"reading models:/{registry.model_name}/{int(version)}",
        _get_version,
        client,
        registry.model_name,
        version,
    )


def load_champion_pyfunc(
    registry: RegistryParams, retries: RetryParams, root: str | Path, alias: str
) -> tuple[PyFuncModel, VersionInfo]:
    """Resolve ``alias`` (scoring passes ``scoring.alias``) now and load that version's pyfunc.

    The model is loaded by its version URI (``models:/NAME/VERSION``), so the version returned
    is the one that scores even if the alias moves meanwhile.
    """
    info = resolve_alias(registry, retries, root, alias)
    model = with_retry(
        retries, f"loading {info.model_uri}", mlflow.pyfunc.load_model, info.model_uri
    )
    return model, info


def _version_row(mv: ModelVersion, aliases: Iterable[str], metrics: dict[str, float]) -> dict:
    info = VersionInfo.of(mv, aliases=aliases)
    row: dict[str, Any] = {
        "version": info.version,
        "aliases": list(info.aliases),
        "created": info.created,
        "status": info.status,
        "run_id": info.run_id,
    }
    for key in HEADLINE_METRICS:
        row[key] = metrics.get(key)
    row["metrics"] = metrics
    row["decision"] = info.tags.get("promotion.decision")
    row["reason"] = info.tags.get("promotion.reason")
    return row


def list_versions(
    registry: RegistryParams, retries: RetryParams, root: str | Path
) -> list[dict[str, Any]]:
    """Every registered version, oldest first: ``version``, ``aliases``, ``created`` (ISO, UTC),
    ``status``, ``run_id``, headline metrics ``roc_auc``, ``pr_auc``, ``f1``, ``threshold`` (None
    when absent), all run ``metrics``, the gate's ``decision`` and ``reason``.

    Raises:
        RegistryError: no such registered model, or the registry is unreachable.
    """
    name = registry.model_name
    client = connect_existing(registry, root)

    def _list() -> list[dict[str, Any]]:
        model = get_registered_model(client, name, client.tracking_uri)
        by_version: dict[int, list[str]] = {}
        for a, v in model.aliases.items():
            by_version.setdefault(int(v), []).append(a)
        rows = []
        run_metrics: dict[str, dict[str, float]] = {}
        versions = sorted(
            client.search_model_versions(f"name = '{name}'"), key=lambda m: int(m.version)
        )
        for mv in versions:
            if mv.run_id and mv.run_id not in run_metrics:
                try:
                    run_metrics[mv.run_id] = dict(client.get_run(mv.run_id).data.metrics)
                except MlflowException:
                    run_metrics[mv.run_id] = {}
            metrics = run_metrics.get(mv.run_id or "", {})
            rows.append(_version_row(mv, by_version.get(int(mv.version), ()), metrics))
        return rows

    return with_retry(retries, f"listing the versions of model {name!r}", _list)
