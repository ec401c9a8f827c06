"""The aliases and the promotion gate.

Every training run registers a new version and gives it the alias ``challenger``; the **promotion
gate** (:func:`decide_promotion`, applied by :func:`gate_new_version`) then moves ``champion`` to it
when the policy is ``auto`` and there is no champion yet, or when the new version beats the
champion on ``evaluate.metric`` by more than ``registry.promotion_margin``. A person promotes with
``anomaly promote VERSION`` (:func:`promote`) or by moving the alias in the MLflow UI; both are
honoured because scoring resolves the alias at each run.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from flows.registry.connection import connect_existing
from flows.registry.retry import RegistryError, with_retry
from flows.registry.versions import describe_versions, get_registered_model, version_numbers

if TYPE_CHECKING:
    from flows.config import RegistryParams, RetryParams

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "Promotion",
    "PromotionDecision",
    "aliases_of",
    "decide_promotion",
    "gate_new_version",
    "promote",
]

CHAMPION = "champion"
CHALLENGER = "challenger"

_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    metric: str
    new_value: float | None
    champion_version: int | None  # before the gate
    champion_value: float | None


@dataclass(frozen=True)
class Promotion:
    """What :func:`promote` did."""

    model_name: str
    alias: str
    version: int
    previous_version: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------ the gate
def decide_promotion(
    *,
    policy: str,
    metric: str,
    margin: float,
    new_version: int,
    new_value: float | None,
    champion_version: int | None,
    champion_value: float | None,
) -> PromotionDecision:
    """The promotion gate, a pure function (higher metric = better for roc_auc, pr_auc, f1)."""
    how = (
        f"to promote it anyway run `anomaly promote {new_version}` or move the alias "
        f"'{CHAMPION}' to version {new_version} in the MLflow UI"
    )

    def decision(promote: bool, reason: str) -> PromotionDecision:
        return PromotionDecision(
            promote, reason, metric, new_value, champion_version, champion_value
        )

    shown = f"{new_value:.6g}" if new_value is not None else "n/a"
    if policy == "manual":
        current = (
            f"champion stays on version {champion_version}"
            if champion_version is not None
            else "there is no champion yet, so scoring has no model until one is promoted"
        )
        return decision(
            False,
            f"promotion policy is manual: version {new_version} is challenger ({metric}={shown}); "
            f"{current}; promote it with `anomaly promote {new_version}` or by moving the alias "
            f"'{CHAMPION}' in the MLflow UI",
        )
    if policy != "auto":
        raise ValueError(f"registry.promotion must be 'auto' or 'manual', got {policy!r}")
    if champion_version is None:
        return decision(
            True, f"no '{CHAMPION}' yet: version {new_version} becomes champion ({metric}={shown})"
        )
    if new_value is None:
        return decision(
            False,
            f"version {new_version} has no {metric} (no labels to evaluate on?), so it cannot be "
            f"compared with champion version {champion_version}: champion stays; {how}",
        )
    if champion_value is None:
        return decision(
            False,
            f"champion version {champion_version} has no {metric} to compare with "
            f"({metric}={shown} for version {new_version}): champion stays; {how}",
        )
    if new_value > champion_value + margin:
        return decision(
            True,
            f"{metric} {new_value:.6g} beats champion version {champion_version}'s "
            f"{champion_value:.6g} by more than the margin {margin:g}: version {new_version} "
            "becomes champion",
        )
    return decision(
        False,
        f"{metric} {new_value:.6g} does not beat champion version {champion_version}'s "
        f"{champion_value:.6g} by more than the margin {margin:g}: version {new_version} stays "
        f"challenger; {how}",
    )


def _run_metric(client: MlflowClient, run_id: str | None, metric: str) -> float | None:
    if not run_id:
        return None
    try:
        value = client.get_run(run_id).data.metrics.get(metric)
    except MlflowException:
        return None
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def _champion_metric(client: MlflowClient, name: str, version: int, metric: str) -> float | None:
    mv = client.get_model_version(name, str(version))
    return _run_metric(client, mv.run_id, metric)


def aliases_of(client: MlflowClient, name: str) -> dict[str, int]:
    """``{alias: version}`` of registered model ``name``."""
    return {a: int(v) for a, v in client.get_registered_model(name).aliases.items()}


def _version_tags(registry: RegistryParams, decision: PromotionDecision) -> dict[str, str]:
    """What the gate decided, as tags of the new version (``promotion.*``)."""
    new_value, before, before_value = (
        decision.new_value,
        decision.champion_version,
        decision.champion_value,
    )
    return {
        "promotion.policy": registry.promotion,
        "promotion.decision": CHAMPION if decision.promote else CHALLENGER,
        "promotion.reason": decision.reason,
        "promotion.metric": decision.metric,
        "promotion.metric_value": "none" if new_value is None else repr(new_value),
        "promotion.margin": repr(float(registry.promotion_margin)),
        "promotion.champion_before": "none" if before is None else str(before),
        "promotion.champion_before_value": "none" if before_value is None else repr(before_value),
    }


def gate_new_version(
    client: MlflowClient,
    registry: RegistryParams,
    retries: RetryParams,
    *,
    version: int,
    run_id: str,
    metric: str,
) -> PromotionDecision:
    """Give the new ``version`` (registered from ``run_id``) the alias ``challenger``, compare its
    run's ``metric`` with the champion's, move ``champion`` to it when :func:`decide_promotion`
    says so, and tag the version with the decision (``promotion.*``).

    Trainings that share one registry (a tracking server) may gate at the same time, and MLflow
    has no compare-and-set for aliases. So ``challenger`` only ever moves to the newest version
    (a newer one's training keeps it; an older one that wrote last hands it back), and the
    champion is read again just before and just after it is moved: a version promoted
    meanwhile by another training is the one compared with, and stays unless this one beats it
    by the margin. What remains is a window of one request between the last read and the
    write."""
    name = registry.model_name
    _take_challenger(client, retries, name, version)
    new_value = _run_metric(client, run_id, metric)
    decision = _decide(client, registry, retries, version, new_value, metric)
    if decision.promote:
        again = _champion_now(client, retries, name)
        if again != decision.champion_version:  # promoted by another training meanwhile
            decision = _decide(client, registry, retries, version, new_value, metric)
    if decision.promote:
        _set_alias(client, retries, name, CHAMPION, version)
        now = _champion_now(client, retries, name)
        if now != version and now is not None:  # another training wrote after us
            decision = _decide(client, registry, retries, version, new_value, metric)
            if decision.promote:
                _set_alias(client, retries, name, CHAMPION, version)
    for key, value in _version_tags(registry, decision).items():
        with_retry(
            retries,
            f"tagging version {version}",
            client.set_model_version_tag,
            name,
            str(version),
            key,
            value,
        )
    return decision


def _set_alias(
    client: MlflowClient, retries: RetryParams, name: str, alias: str, version: int
) -> None:
    with_retry(retries, f"setting alias {alias!r} on version {version}",
               client.set_registered_model_alias, name, alias, str(version))


def _champion_now(client: MlflowClient, retries: RetryParams, name: str) -> int | None:
    aliases = with_retry(retries, f"reading the aliases of model {name!r}", aliases_of, client,
                         name)
    return aliases.get(CHAMPION)


def _take_challenger(client: MlflowClient, retries: RetryParams, name: str, version: int) -> None:
    """``challenger`` -> ``version`` unless a newer version exists (its training takes it); if
    one was registered while the alias was being set, it goes to the newest."""
    def newest() -> int:
        return max(with_retry(retries, f"listing the versions of model {name!r}",
                              version_numbers, client, name), default=version)

    if newest() > version:
        return
    _set_alias(client, retries, name, CHALLENGER, version)
    latest = newest()
    if latest > version:
        _set_alias(client, retries, name, CHALLENGER, latest)


def _decide(
    client: MlflowClient,
    registry: RegistryParams,
    retries: RetryParams,
    version: int,
    new_value: float | None,
    metric: str,
) -> PromotionDecision:
    """:func:`decide_promotion` against the champion as the registry has it now."""
    name = registry.model_name
    champion = _champion_now(client, retries, name)
    champion_value = None
    if champion is not None and champion != version:
        champion_value = with_retry(
            retries, f"reading the runs of champion version {champion}", _champion_metric,
            client, name, champion, metric,
        )
    if champion == version:  # this version is champion already (a settled race)
        return PromotionDecision(False, f"version {version} is champion", metric, new_value,
                                 champion, new_value)
    return decide_promotion(
        policy=registry.promotion, metric=metric, margin=float(registry.promotion_margin),
        new_version=version, new_value=new_value, champion_version=champion,
        champion_value=champion_value,
    )


# ------------------------------------------------------------------------- by a person
def _check_alias(alias: str) -> None:
    if not _ALIAS.match(alias) or alias.lower() == "latest" or re.match(r"^[vV]\d+$", alias):
        raise RegistryError(
            f"bad alias {alias!r}: letters, digits, '_' and '-', starting with a letter or '_'; "
            "not 'latest' nor 'v<number>'"
        )


def promote(
    registry: RegistryParams,
    retries: RetryParams,
    root: str | Path,
    version: int | str,
    alias: str = CHAMPION,
) -> Promotion:
    """Point ``alias`` at ``version`` (what ``anomaly promote VERSION`` does); the version gets
    the tag ``promotion.<alias>`` saying when (and which version had the alias before).

    Raises:
        RegistryError: the version (or the registered model) does not exist, or a bad alias.
    """
    name = registry.model_name
    try:
        number = int(str(version).strip().lstrip("vV"))
    except ValueError:
        raise RegistryError(f"version must be a number such as 3, got {version!r}") from None
    _check_alias(alias)
    client = connect_existing(registry, root)

    def _promote() -> Promotion:
        model = get_registered_model(client, name, client.tracking_uri)
        previous = model.aliases.get(alias)
        try:
            client.get_model_version(name, str(number))
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            raise RegistryError(
                f"model {name!r} has no version {number}; registered versions: "
                f"{describe_versions(version_numbers(client, name))}"
            ) from None
        client.set_registered_model_alias(name, alias, str(number))
        client.set_model_version_tag(
            name,
            str(number),
            f"promotion.{alias}",
            f"set by `anomaly promote` at {datetime.now(tz=UTC).isoformat(timespec='seconds')}"
            + (f" (was version {previous})" if previous is not None else ""),
        )
        return Promotion(name, alias, number, int(previous) if previous is not None else None)

    return with_retry(retries, f"promoting version {number} of {name!r} to {alias!r}", _promote)
