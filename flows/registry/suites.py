"""The GX suite registered with each model version: downloaded once from the version's run
(:data:`~flows.registry.package.SUITE_ARTIFACT`) and cached at
``<data.snapshot_dir>/suites/<version>.json`` (:meth:`flows.layout.Layout.version_suite`), where
scoring and the report read it."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from flows.io import atomic_write_json
from flows.layout import Layout

if TYPE_CHECKING:
    from flows.config import Params
    from flows.registry.versions import VersionInfo

__all__ = ["fetch_suite", "suite_cache_path"]


def suite_cache_path(params: Params, root: str | Path, version: int) -> Path:
    """``<data.snapshot_dir>/suites/<version>.json``."""
    return Layout.of(params, root).version_suite(version)


def _suite_name(model: str, version: int) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", f"{model}_v{version}")


def fetch_suite(params: Params, root: str | Path, info: VersionInfo) -> Path:
    """The GX suite registered with model version ``info`` (the run artifact
    :data:`flows.registry.SUITE_ARTIFACT`), cached at :func:`suite_cache_path`.

    The cached copy is named ``<model>_v<version>`` (one GX checkpoint per version) and records
    the model name, version and run id in ``meta.registered_model``; a cached file for another
    run (a re-created registry) is downloaded again.

    Raises:
        RegistryError: the version has no run or its run has no suite artifact.
    """
    from flows import registry
    from flows.expectations import load_suite

    path = suite_cache_path(params, root, info.version)
    wanted = {"name": info.name, "version": int(info.version), "run_id": info.run_id}
    if path.is_file():
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
            meta = (cached.get("meta") or {}).get("registered_model") or {}
            if {k: meta.get(k) for k in wanted} == wanted:
                return path
        except (OSError, ValueError):
            pass  # unreadable cache: download again
    if not info.run_id:
        raise registry.RegistryError(
            f"{info.model_uri} has no run, so no expectation suite to validate batches with; "
            "register versions with the pipeline (`anomaly train`)"
        )
    if not registry.run_has_artifact(
        params.registry, params.retries, root, info.run_id, registry.SUITE_ARTIFACT
    ):
        raise registry.RegistryError(
            f"{info.model_uri} has no expectation suite ({registry.SUITE_ARTIFACT} is not among "
            f"the artifacts of run {info.run_id}), so scoring cannot validate batches against it; "
            "register versions with the pipeline (`anomaly train`), or move the alias to one that was"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".download-") as tmp:
        local = registry.download_artifact(
            params.registry, params.retries, root, info.run_id, registry.SUITE_ARTIFACT, tmp
        )
        try:
            suite = json.loads(Path(local).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise registry.RegistryError(
                f"the expectation suite of {info.model_uri} ({registry.SUITE_ARTIFACT} of run "
                f"{info.run_id}) is unreadable: {exc}"
            ) from exc
    suite["name"] = _suite_name(info.name, info.version)
    suite.setdefault("meta", {})
    suite["meta"]["registered_model"] = {**wanted, "artifact": registry.SUITE_ARTIFACT}
    atomic_write_json(suite, path)
    load_suite(path)  # fails now, with the path, if GX cannot load it
    return path
