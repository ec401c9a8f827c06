"""The drift reference registered with each model version: downloaded once from the version's run
(:data:`~flows.registry.package.DRIFT_REFERENCE_ARTIFACT`) and cached at
``<data.snapshot_dir>/references/<version>.parquet`` (:meth:`flows.layout.Layout.version_reference`),
where the data-quality report reads it (:mod:`flows.steps.reference` describes the file).

The cached copy records the model name, version and run id in its metadata
(``registered_model``); a cached file of another run (a re-created registry) is downloaded again.
:func:`fetch_references` is what the report calls: for each version, the cached file or the
sentence saying why there is none (no such version, registered before references were logged,
an unreadable artifact, an unreachable registry), so a missing reference is a note on the page.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from flows.layout import Layout
from flows.registry.connection import connect_existing
from flows.registry.package import DRIFT_REFERENCE_ARTIFACT, download_artifact, run_has_artifact
from flows.registry.retry import RegistryError, is_transient
from flows.registry.versions import VersionNotFound, get_version
from flows.steps.reference import reference_metadata, restamp_reference

if TYPE_CHECKING:
    from flows.config import Params
    from flows.registry.versions import VersionInfo

__all__ = [
    "ReferenceUnavailable",
    "fetch_reference",
    "fetch_references",
    "reference_cache_path",
]


class ReferenceUnavailable(RegistryError):
    """The version has no usable drift reference; the message says why."""


def reference_cache_path(params: Params, root: str | Path, version: int) -> Path:
    """``<data.snapshot_dir>/references/<version>.parquet``."""
    return Layout.of(params, root).version_reference(version)


def _cached(path: Path, wanted: dict[str, object]) -> bool:
    """Whether ``path`` is a readable reference of exactly this model name, version and run."""
    if not path.is_file():
        return False
    try:
        registered = reference_metadata(path).get("registered_model") or {}
    except Exception:  # unreadable or not a reference: download again
        return False
    return {k: registered.get(k) for k in wanted} == wanted


def fetch_reference(params: Params, root: str | Path, info: VersionInfo) -> Path:
    """The drift reference of model version ``info`` (the run artifact
    :data:`flows.registry.DRIFT_REFERENCE_ARTIFACT`), cached at :func:`reference_cache_path`.

    Raises:
        ReferenceUnavailable: the version has no run, its run has no reference artifact (it was
            registered before references were logged), or the artifact is not a readable
            reference.
        RegistryError: the registry or its artifact store is unreachable.
    """
    path = reference_cache_path(params, root, info.version)
    wanted: dict[str, object] = {
        "name": info.name,
        "version": int(info.version),
        "run_id": info.run_id,
    }
    if _cached(path, wanted):
        return path
    what = f"model version {info.version}"
    if not info.run_id:
        raise ReferenceUnavailable(
            f"{what} has no run, so no drift reference (it was not registered by the pipeline)"
        )
    if not run_has_artifact(
        params.registry, params.retries, root, info.run_id, DRIFT_REFERENCE_ARTIFACT
    ):
        raise ReferenceUnavailable(
            f"{what} has no drift reference (registered before references were logged: "
            f"{DRIFT_REFERENCE_ARTIFACT} is not among the artifacts of run {info.run_id})"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".download-") as tmp:
        local = download_artifact(
            params.registry, params.retries, root, info.run_id, DRIFT_REFERENCE_ARTIFACT, tmp
        )
        try:
            restamp_reference(
                local, path, registered_model={**wanted, "artifact": DRIFT_REFERENCE_ARTIFACT}
            )
        except (OSError, ValueError, TypeError, pa.ArrowException) as exc:
            raise ReferenceUnavailable(
                f"the drift reference of {what} ({DRIFT_REFERENCE_ARTIFACT} of run "
                f"{info.run_id}) is unreadable: {exc}"
            ) from exc
    return path


def fetch_references(
    params: Params, root: str | Path, versions: Iterable[int]
) -> dict[int, Path | str]:
    """For each model version: its cached drift reference (:func:`fetch_reference`), or the
    sentence saying why there is none. When the registry is unreachable (no database, or a
    transient error on every retry) every version gets that sentence, tried once. No versions:
    the registry is not touched."""
    wanted = sorted({int(v) for v in versions})
    if not wanted:
        return {}
    try:
        connect_existing(params.registry, root)
    except RegistryError as exc:
        return dict.fromkeys(wanted, f"the registry is unreachable ({exc})")
    out: dict[int, Path | str] = {}
    for version in wanted:
        try:
            info = get_version(params.registry, params.retries, root, version)
            out[version] = fetch_reference(params, root, info)
        except (ReferenceUnavailable, VersionNotFound) as exc:
            out[version] = str(exc)
        except RegistryError as exc:
            if exc.__cause__ is not None and is_transient(exc.__cause__):
                return {
                    **out,
                    **dict.fromkeys(wanted[len(out) :], f"the registry is unreachable ({exc})"),
                }
            out[version] = (
                f"the drift reference of model version {version} could not be fetched ({exc})"
            )
    return out
