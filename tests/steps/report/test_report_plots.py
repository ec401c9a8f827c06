"""The report's plots (:mod:`flows.steps.report.plots`): which are drawn, and that they are PNGs."""

from __future__ import annotations

import io

from flows.steps.report import DriftResult, render_plots

PNG = b"\x89PNG\r\n\x1a\n"


def _size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels from the PNG's IHDR chunk."""
    data = io.BytesIO(png)
    data.seek(16)
    return int.from_bytes(data.read(4), "big"), int.from_bytes(data.read(4), "big")


def test_plots_follow_what_the_day_has(busy_report, make_report):
    full = render_plots(busy_report)
    assert sorted(full) == ["bins", "psi", "rows", "trend"]
    assert all(png.startswith(PNG) for png in full.values())
    assert _size(full["trend"]) == (800, 320)  # 8 x 3.2 inches at 100 dpi

    no_drift = render_plots(make_report(busy_report.batches, DriftResult(available=False)))
    assert sorted(no_drift) == ["rows", "trend"]
    # the same report draws the same pictures (no timestamps or versions in the files)
    assert no_drift["rows"] == full["rows"] and no_drift["trend"] == full["trend"]

    assert sorted(render_plots(make_report([], DriftResult(available=False)))) == ["trend"]
