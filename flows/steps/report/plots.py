"""The report's plots as PNG bytes: anomaly-rate trend, rows per batch, PSI per feature, and the
per-bin shares behind the PSI.

Drawn with matplotlib's object API (``Figure``, no pyplot): no global figure state, no GUI
backend, whatever ``MPLBACKEND`` says. PNGs carry no ``Software`` metadata (no matplotlib version
in the bytes).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from flows.steps.report.days import BatchRow, TrendPoint
from flows.steps.report.drift import PSI_DRIFT, PSI_WATCH, FeatureDrift
from flows.steps.report.summary import DataQualityReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_bins", "plot_psi", "plot_rows", "plot_trend", "render_plots"]

_GREEN, _RED, _AMBER, _BLUE, _GREY = "#2e7d32", "#c62828", "#ef8f00", "#1565c0", "#9e9e9e"


def _figure(width: float, height: float) -> Figure:
    # the object API without pyplot: no global state, no GUI backend, whatever MPLBACKEND says
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def plot_trend(trend: Sequence[TrendPoint], day: str) -> bytes:
    """Anomaly rate per day (line, %, gaps on days without rows) over scored rows (bars)."""
    fig = _figure(8, 3.2)
    ax = fig.add_subplot()
    x = np.arange(len(trend))
    rows = [p.rows for p in trend]
    bars = ax.twinx()
    bars.bar(x, rows, color=_GREY, alpha=0.3, width=0.7, label="rows scored")
    bars.set_ylabel("rows scored", color="#616161")
    ax.set_zorder(bars.get_zorder() + 1)
    ax.patch.set_visible(False)
    rate = [100 * p.rate if p.rate is not None else np.nan for p in trend]
    ax.plot(x, rate, marker="o", color=_BLUE, label="anomaly rate")
    for i, p in enumerate(trend):
        if p.date == day:
            ax.axvspan(i - 0.45, i + 0.45, color=_AMBER, alpha=0.15)
    ax.set_ylabel("flagged rows (%)")
    ax.set_ylim(bottom=0)
    ax.set_xticks(x, [p.date[5:] for p in trend], rotation=45, ha="right", fontsize=8)
    ax.set_title(f"Anomaly rate per day, {trend[0].date} to {trend[-1].date} (UTC)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def plot_rows(batches: Sequence[BatchRow]) -> bytes:
    """Rows per batch, stacked: scored (passed) and quarantined (failed); unknown rows as 0."""
    n = len(batches)
    fig = _figure(8, min(1.2 + 0.32 * n, 12))
    ax = fig.add_subplot()
    y = np.arange(n)
    scored = [(b.rows or 0) if b.status == "scored" else 0 for b in batches]
    quarantined = [(b.rows or 0) if b.status == "quarantined" else 0 for b in batches]
    ax.barh(y, scored, color=_GREEN, label="scored (passed)")
    ax.barh(y, quarantined, left=scored, color=_RED, label="quarantined (failed)")
    for i, b in enumerate(batches):
        if b.rows is None:
            ax.text(0, i, "  rows unknown", va="center", fontsize=8, color=_RED)
    ax.set_yticks(y, [_short(b.batch, 40) for b in batches], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("rows")
    fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    ax.set_title("Rows per batch", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def plot_psi(features: Sequence[FeatureDrift]) -> bytes:
    """PSI per feature, coloured by level, with the 0.1 and 0.2 lines."""
    fig = _figure(8, 3.2)
    ax = fig.add_subplot()
    colors = {"stable": _GREEN, "moderate": _AMBER, "drift": _RED}
    values = [f.psi or 0.0 for f in features]
    ax.bar(range(len(features)), values,
           color=[colors.get(f.level, _GREY) for f in features])
    ax.axhline(PSI_WATCH, color=_AMBER, ls="--", lw=1, label=f"{PSI_WATCH} moderate")
    ax.axhline(PSI_DRIFT, color=_RED, ls="--", lw=1, label=f"{PSI_DRIFT} drift")
    ax.set_xticks(range(len(features)), [_short(f.feature, 20) for f in features],
                  rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("PSI")
    ax.legend(fontsize=8)
    ax.set_title("Population stability index per feature (day vs the model version's training data)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def plot_bins(features: Sequence[FeatureDrift], top: int = 6) -> bytes:
    """Share of rows per training-decile bin, training vs day, for the ``top`` features with
    the highest PSI: what the PSI sums up."""
    shown = sorted((f for f in features if f.train_shares), key=lambda f: -(f.psi or 0))[:top]
    cols = min(3, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig = _figure(8, 2.4 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel()[len(shown):]:
        ax.set_visible(False)
    for ax, f in zip(axes.ravel(), shown, strict=False):
        x = np.arange(len(f.train_shares))
        ax.bar(x - 0.2, f.train_shares, width=0.4, color=_GREY, label="training")
        ax.bar(x + 0.2, f.day_shares, width=0.4,
               color=_RED if f.drifted else _BLUE, label="day")
        ax.set_title(f"{_short(f.feature, 24)}  PSI {f.psi:.3f}", fontsize=9)
        ax.set_xticks(x, [str(i + 1) for i in x], fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle("Share of rows per training-decile bin", fontsize=10)
    return _png(fig)


def render_plots(report: DataQualityReport) -> dict[str, bytes]:
    """The report's PNGs by name: ``trend`` always; ``rows`` when there are batches; ``psi`` and
    ``bins`` when drift was measured."""
    plots = {"trend": plot_trend(report.trend, report.date)}
    if report.batches:
        plots["rows"] = plot_rows(report.batches)
    if report.drift.available and report.drift.features:
        plots["psi"] = plot_psi(report.drift.features)
        plots["bins"] = plot_bins(report.drift.features)
    return plots


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
