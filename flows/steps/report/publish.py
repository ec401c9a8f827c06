"""Writing a day's report folder: plots, page and report.json into a staging folder, swapped in
whole.

The folder is built under a hidden staging name next to it (``.<day>.staging-<pid>-<hex>``)
and swapped in by renames, so a reader (or a crash) never sees half a report, and a rerun
replaces the previous one. Staging folders of runs that died, and swapped-out old reports
(``.<day>.old-<hex>``), are removed by the next run.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from flows.io import atomic_write_json
from flows.layout import ReportFolder
from flows.steps.report.plots import render_plots
from flows.steps.report.render import render_html
from flows.steps.report.summary import DataQualityReport
from flows.steps.score import exclusive_lock

__all__ = ["publish", "remove_leftovers", "staging_folder", "write_report"]


def remove_leftovers(reports_dir: Path) -> None:
    """Staging folders of runs that died (their pid is gone) and swapped-out old reports."""
    for p in reports_dir.glob(".*.staging-*"):
        m = re.search(r"\.staging-(\d+)-", p.name)
        alive = True
        if m:
            try:
                os.kill(int(m.group(1)), 0)
            except ProcessLookupError:
                alive = False
            except PermissionError:
                pass
        if not alive:
            shutil.rmtree(p, ignore_errors=True)
    for p in reports_dir.glob(".*.old-*"):
        shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def staging_folder(reports_dir: Path, day: str) -> Iterator[Path]:
    """A new, empty staging folder for the report of ``day`` in ``reports_dir`` (created, and
    the leftovers of earlier runs removed, first); removed on exit unless it was published."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    remove_leftovers(reports_dir)
    staging = reports_dir / f".{day}.staging-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, final: Path, lock: Path) -> None:
    """Swap ``staging`` in as ``final`` (replacing a previous report of the day) by renames,
    under the exclusive ``lock`` file so that two runs for the same day do not interleave."""
    with exclusive_lock(lock):
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(final, old)
        os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_report(report: DataQualityReport, staging: Path) -> None:
    """Plots, page and report.json into ``staging`` (the report's paths point at its final
    folder; the files land in the staging one). Fills ``report.plots``."""
    images = render_plots(report)
    files, final = ReportFolder(staging), ReportFolder(report.folder)
    files.plots_dir.mkdir(parents=True, exist_ok=True)
    for name, png in images.items():
        files.plot(name).write_bytes(png)
        report.plots[name] = final.plot(name)
    files.html.write_text(render_html(report, images), encoding="utf-8")
    atomic_write_json(report.to_dict(), files.json)
