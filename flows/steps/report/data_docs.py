"""A Great Expectations Data Docs site of one day's validations only, for the report folder.

The project's GX context (``<root>/gx``) keeps every validation ever run, one per scored chunk:
its own site grows without bound. :func:`build_data_docs` copies the day's validation results and
their suites through GX's store API into a temporary file context, builds that site and copies it
into the report folder (``data_docs/``). The project's context is only read, under the lock that
scoring holds while it writes to it.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from flows.config import Params
from flows.expectations import (
    DATA_DOCS_SITE,
    file_url_to_path,
    gx_context,
    gx_context_dir,
    gx_run_name,
)
from flows.layout import REPORT_DATA_DOCS_DIR, Layout, ReportFolder
from flows.steps.report.days import BatchRow
from flows.steps.score import exclusive_lock

__all__ = ["VALIDATION_SLACK", "DataDocs", "build_data_docs"]

#: A validation stored up to this long before the day's start or after its end still belongs to
#: a batch of the day (a batch scored at 23:59 is validated after midnight; a quarantine entry is
#: written after its validation).
VALIDATION_SLACK = timedelta(hours=1)


@dataclass
class DataDocs:
    """The Data Docs site of the day's validations, copied into the report folder."""

    index: Path | None  # <report folder>/data_docs/index.html, None when not built
    validations: int = 0
    note: str | None = None
    pages: dict[str, tuple[int, int, str | None]] = field(default_factory=dict)
    """batch name -> (validations, failed validations, page relative to the report folder)"""


def build_data_docs(
    params: Params, root: str | Path, day: date, batches: Sequence[BatchRow], out_dir: Path
) -> DataDocs:
    """Build a Data Docs site with only the day's validations into ``out_dir/data_docs``.

    The project's GX context (``<root>/gx``) keeps every validation ever run, one per scored
    chunk: its own site grows without bound. Instead the day's validation results (run name =
    a batch of the day, as scoring names them: ``<batch>`` or ``<batch> rows a-b``; run time
    within the day, give or take :data:`VALIDATION_SLACK`) and their suites are copied through
    GX's store API into a temporary file context, whose site is built and copied. The project's
    context is only read, under the lock scoring holds while it writes to it.

    GX's pages take their CSS and JavaScript from public CDNs: offline they render unstyled and
    the index's (JavaScript) list of validations stays empty, while each validation page is
    plain HTML; hence ``pages``, which the report links per batch.
    """
    root = Path(root).resolve()
    context_dir = gx_context_dir(root)
    if not (context_dir / "great_expectations.yml").is_file():
        return DataDocs(None, note=f"no Great Expectations project at {context_dir}: nothing "
                        "has been validated yet")
    names = {gx_run_name(b.batch): b.batch for b in batches}
    if not names:
        return DataDocs(None, note="no batches on this day, so no validations to show")
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC) - VALIDATION_SLACK
    end = start + timedelta(days=1) + 2 * VALIDATION_SLACK

    def batch_of(run_name: str | None) -> str | None:
        if not run_name:
            return None
        if run_name in names:
            return names[run_name]
        head, sep, _ = run_name.rpartition("_rows_")
        return names.get(head) if sep else None

    lock = Layout.of(params, root).scoring.gx_lock
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GX's deprecation chatter about its own internals
        with exclusive_lock(lock) if lock.parent.is_dir() else contextlib.nullcontext():
            chosen, suites = _stored_validations(gx_context(context_dir), batch_of, start, end)
        if not chosen:
            return DataDocs(None, note="no Great Expectations validations are stored for the "
                            "batches of this day (e.g. only batches rejected while reading)")
        return _build_site(chosen, suites, out_dir)


def _stored_validations(
    ctx: Any, batch_of: Callable[[str | None], str | None], start: datetime, end: datetime
) -> tuple[list[tuple[Any, Any, str]], dict[str, Any]]:
    """The validation results of ``ctx`` run for a batch of the day within [start, end), as
    (key, result, batch), and their suites by name."""
    store = ctx.validation_results_store
    chosen: list[tuple[Any, Any, str]] = []  # (key, result, batch)
    for key in store.list_keys():
        run_id = getattr(key, "run_id", None)
        run_time = getattr(run_id, "run_time", None)
        batch = batch_of(getattr(run_id, "run_name", None))
        if batch is None or run_time is None:
            continue
        t = run_time if run_time.tzinfo else run_time.replace(tzinfo=UTC)
        if start <= t < end:
            chosen.append((key, store.get(key), batch))
    suites = {}
    for key, _, _ in chosen:
        name = key.expectation_suite_identifier.name
        if name not in suites:
            with contextlib.suppress(Exception):  # a deleted suite: results still render
                suites[name] = ctx.suites.get(name)
    return chosen, suites


def _build_site(
    chosen: list[tuple[Any, Any, str]], suites: dict[str, Any], out_dir: Path
) -> DataDocs:
    """Copy ``chosen`` and ``suites`` into a temporary file context, build its site and copy it
    to ``out_dir/data_docs``; each batch's page is its first failed validation, else its first."""
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".gx-") as tmp:
        sub = gx_context(Path(tmp) / "gx")
        for suite in suites.values():
            sub.suites.add(suite)
        for key, value, _ in chosen:
            sub.validation_results_store.set(key, value)
        built = sub.build_data_docs(site_names=[DATA_DOCS_SITE])
        index = file_url_to_path(built.get(DATA_DOCS_SITE))
        if index is None or not index.is_file():
            return DataDocs(None, note="Great Expectations built no Data Docs site")
        site = index.parent
        pages: dict[str, tuple[int, int, str | None]] = {}
        for key, value, batch in sorted(chosen, key=lambda c: c[0].run_id.run_time):
            urls = sub.get_docs_sites_urls(resource_identifier=key, site_name=DATA_DOCS_SITE)
            page = file_url_to_path(urls[0]["site_url"]) if urls else None
            rel = (Path(REPORT_DATA_DOCS_DIR) / page.relative_to(site)).as_posix() if page else None
            n, failed, shown = pages.get(batch, (0, 0, None))
            ok = bool(getattr(value, "success", True))
            # link the first failed validation of a batch, else its first one
            if shown is None or (not ok and failed == 0):
                shown = rel
            pages[batch] = (n + 1, failed + (not ok), shown)
        target = ReportFolder(out_dir).data_docs_dir
        shutil.copytree(site, target)
    return DataDocs(target / "index.html", validations=len(chosen), pages=pages)
