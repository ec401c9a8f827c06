"""The Great Expectations file context of a project and its Data Docs site.

Great Expectations runs in a **file context** in ``<root>/gx`` (a standard GX project folder:
suite, validation definition and checkpoint JSON, validation results under ``gx/uncommitted/``),
and its Data Docs site is ``gx/uncommitted/data_docs/local_site/index.html``
(:attr:`flows.layout.Layout.gx_dir`, :attr:`~flows.layout.Layout.data_docs_site`). Nothing is
written outside the project; progress bars are off.

GX itself is imported on first use (:func:`import_gx`), not when this module is imported: it
takes seconds, and the CLI and the stage table must stay quick to load.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from flows.layout import DATA_DOCS_SITE, GX_DIR

__all__ = [
    "DATA_DOCS_SITE",
    "data_docs_paths",
    "file_url_to_path",
    "gx_context",
    "gx_context_dir",
    "gx_run_name",
    "import_gx",
]


def import_gx() -> Any:
    """The ``great_expectations`` module (imported here, on first use)."""
    import great_expectations as gx

    return gx


def gx_context_dir(root: Path) -> Path:
    """The GX project folder of the pipeline: ``<root>/gx``."""
    return Path(root) / GX_DIR


def gx_context(context_dir: Path) -> Any:
    """The file context in ``context_dir`` (created on first use), with progress bars off."""
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context_dir = Path(context_dir)
    context_dir.mkdir(parents=True, exist_ok=True)
    ctx = gx.get_context(mode="file", context_root_dir=str(context_dir))
    bars = ctx.variables.progress_bars
    globally = bars.get("globally") if isinstance(bars, dict) else getattr(bars, "globally", None)
    if globally is not False:
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        ctx.variables.save()
    return ctx


def gx_run_name(batch_name: str) -> str:
    """The GX run name of a batch: its name with anything but ``[A-Za-z0-9_.-]`` as ``_``."""
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", batch_name).strip("._") or "batch"


def file_url_to_path(url: str | None) -> Path | None:
    """The local path of a ``file://`` URL (or of a plain path); None for other schemes."""
    if not url:
        return None
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme in ("file", "") else None


def data_docs_paths(
    ctx: Any, result_id: Any, rebuild: bool = False
) -> tuple[Path | None, Path | None]:
    """``(index, page)``: the Data Docs site's ``index.html`` and the page of the validation
    result ``result_id`` (a ``ValidationResultIdentifier``), None where GX names none. With
    ``rebuild`` the site is built first. Data Docs are a convenience: any error of GX's here
    gives None, never a failed validation."""
    index = page = None
    try:
        if rebuild:
            ctx.build_data_docs(site_names=[DATA_DOCS_SITE])
        urls = ctx.get_docs_sites_urls(site_name=DATA_DOCS_SITE)
        index = file_url_to_path(urls[0]["site_url"]) if urls else None
        urls = ctx.get_docs_sites_urls(resource_identifier=result_id, site_name=DATA_DOCS_SITE)
        page = file_url_to_path(urls[0]["site_url"]) if urls else None
    except Exception:  # Data Docs are a convenience: never fail a validation on them
        pass
    return index, page
