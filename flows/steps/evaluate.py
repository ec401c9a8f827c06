"""Step 6, evaluate: score the test split with the calibrated model; metrics and plots.

Inputs::

    <split_dir>/test.parquet, <split_dir>/split.json    (ingest)
    models/model.keras                                  (calibrate)

Outputs (fixed paths under the project root; every one is written on every run, with or without
labels, so DVC always finds its declared outs)::

    metrics.json                  for ``dvc metrics show``; with labels: roc_auc, pr_auc (average
                                  precision), precision, recall, f1 (at the threshold),
                                  threshold, n_test, n_anomalies, anomaly_rate, flagged_rate,
                                  false_alarm_rate; without labels: threshold, n_test,
                                  flagged_rate only
    plots/roc.csv                 fpr,tpr          (<= 2000 points; header only without labels)
    plots/pr.csv                  recall,precision (<= 2000 points; header only without labels)
    plots/scores.csv              score,label of the test rows (score only without labels;
                                  a fixed-seed sample of 10,000 rows when the split is larger)
    plots/score_histogram.png     normal vs anomalous test scores, log-scaled counts, threshold line
    plots/roc_curve.png           ROC curve with the operating point at the threshold
    plots/pr_curve.png            precision-recall curve with the operating point
    plots/top_contributions.png   heatmap: share of each feature in the score of the
                                  ``evaluate.top_flagged_rows`` highest-scoring test rows
    plots/series_flagged.png      sequence kinds: the test series, one panel per channel (at most
                                  6), flagged points in red, labelled anomalies shaded
    plots/reconstruction_error.png  sequence kinds: the per-point score (reconstruction error)
                                  over time with the threshold line, labelled anomalies shaded

Without labels the ROC / PR PNGs say that they need labels, and :attr:`EvaluateResult.plot_paths`
lists only the plots that carry information (those the register step logs as artifacts). The
two series plots exist for the sequence kinds only; for the tabular kinds they are written as
placeholders that say so (DVC declares them), and left out of ``plot_paths``.

Sequence kinds (``model.kind: lstm_autoencoder``): the test series is scored with the last
``context_length`` points of the validation split as context (test follows validation in time),
one score per point; every metric is per point. The series plots are the seed's: the series with
its flagged points, and the reconstruction error with the threshold. Series longer than
:data:`PLOT_POINTS` are drawn through the minimum and maximum of each of ``PLOT_POINTS / 2``
buckets (spikes stay visible); every flagged point is drawn.
Figures are drawn on matplotlib's Agg canvas (no pyplot, no display, no global state).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flows.config import Params
from flows.errors import DataError
from flows.io import atomic_save, atomic_write_json
from flows.layout import PLOT_DATA, PLOT_PNGS, PLOTS_DIR, SEQUENCE_PLOT_PNGS, Layout
from flows.steps.inputs import load_split, previous_points, require_file

__all__ = [
    "CURVE_POINTS",
    "DATA_FILES",
    "EvaluateResult",
    "PNG_FILES",
    "SCORES_ROWS",
    "SEQUENCE_PNG_FILES",
    "downsample",
    "evaluate",
]

log = logging.getLogger(__name__)

# The files of plots/ (relative to the root), in flows.layout's order.
DATA_FILES = ROC_CSV, PR_CSV, SCORES_CSV = tuple(f"{PLOTS_DIR}/{n}" for n in PLOT_DATA)
PNG_FILES = HISTOGRAM_PNG, ROC_PNG, PR_PNG, CONTRIBUTIONS_PNG = tuple(
    f"{PLOTS_DIR}/{n}" for n in PLOT_PNGS
)
#: The series plots: informative for the sequence kinds, placeholders for the others.
SEQUENCE_PNG_FILES = SERIES_PNG, SCORE_SERIES_PNG = tuple(
    f"{PLOTS_DIR}/{n}" for n in SEQUENCE_PLOT_PNGS
)

#: Most points drawn per line of the series plots (min / max per bucket beyond that).
PLOT_POINTS = 20_000
#: Most channels drawn in plots/series_flagged.png (one panel each).
MAX_CHANNEL_PANELS = 6
#: Most labelled anomaly spans shaded per panel.
MAX_SPANS = 500

#: Most points written per curve file.
CURVE_POINTS = 2000
#: Most rows written to plots/scores.csv.
SCORES_ROWS = 10_000

NO_LABELS_NOTE = (
    "no labels (data.label_column is null): metrics.json holds threshold, n_test and "
    "flagged_rate only; ROC-AUC, PR-AUC, precision, recall and F1 need labels"
)


@dataclass(frozen=True)
class EvaluateResult:
    """What :func:`evaluate` wrote and measured.

    ``plot_paths`` are the informative PNGs (for the register step to log); ``data_paths`` the
    CSV files for ``dvc plots``; ``outputs`` every file written.
    """

    metrics_path: Path
    plot_paths: list[Path]
    data_paths: list[Path]
    metrics: dict[str, Any] = field(default_factory=dict)
    has_labels: bool = True
    note: str | None = None
    outputs: list[Path] = field(default_factory=list)


# --------------------------------------------------------------------------- data helpers
def downsample(n: int, limit: int = CURVE_POINTS) -> np.ndarray:
    """At most ``limit`` evenly spaced indices into ``range(n)``, first and last included."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def _write_csv(path: Path, header: Sequence[str], columns: Sequence[np.ndarray]) -> Path:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh, lineterminator="\n")
            out.writerow(header)
            for row in zip(*columns, strict=True):
                out.writerow([v.item() if isinstance(v, np.generic) else v for v in row])

    return atomic_save(path, write)


def _float_or_none(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _label_metrics(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    flagged = scores > threshold
    both = 0 < int(y.sum()) < len(y)
    if both:
        roc_auc = _float_or_none(roc_auc_score(y, scores))
        pr_auc = _float_or_none(average_precision_score(y, scores))
    else:
        roc_auc = pr_auc = None  # undefined with one class; written as null
        log.warning(
            "the test split holds only %s rows: ROC-AUC and PR-AUC are undefined (null)",
            "anomalous" if y.all() else "normal",
        )
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, flagged.astype("int64"), average="binary", pos_label=1, zero_division=0
    )
    normal = y == 0
    return {
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "threshold": float(threshold),
        "n_test": len(y),
        "n_anomalies": int(y.sum()),
        "anomaly_rate": float(y.mean()),
        "flagged_rate": float(flagged.mean()),
        "false_alarm_rate": float(flagged[normal].mean()) if normal.any() else 0.0,
    }


# --------------------------------------------------------------------------- figures
def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig: Any, path: Path) -> Path:
    return atomic_save(path, lambda tmp: fig.savefig(tmp, format="png"))


def _histogram(scores: np.ndarray, y: np.ndarray | None, threshold: float, path: Path) -> Path:
    fig = _figure(7.5, 4.5)
    ax = fig.add_subplot()
    positive = scores[scores > 0]
    log_x = positive.size == scores.size and scores.max() / max(scores.min(), 1e-300) > 100
    if log_x:
        bins = np.geomspace(scores.min(), scores.max(), 61)
        ax.set_xscale("log")
    else:
        bins = np.linspace(scores.min(), scores.max() if scores.max() > scores.min() else scores.min() + 1, 61)
    if y is None:
        ax.hist(scores, bins=bins, color="tab:blue", alpha=0.8, label=f"test rows (n={scores.size})")
    else:
        for value, name, colour in ((0, "normal", "tab:blue"), (1, "anomalous", "tab:red")):
            part = scores[y == value]
            if part.size:
                ax.hist(part, bins=bins, color=colour, alpha=0.6, label=f"{name} (n={part.size})")
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1.5,
               label=f"threshold = {threshold:.4g}")
    ax.set_yscale("log")
    ax.set_xlabel("anomaly score" + (" (log scale)" if log_x else ""))
    ax.set_ylabel("test rows (log scale)")
    ax.set_title("Anomaly scores on the test split")
    ax.legend(loc="upper right")
    return _save_png(fig, path)


def _unavailable(title: str, path: Path) -> Path:
    fig = _figure(5.5, 5)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, f"{title}\nneeds labels\n(data.label_column is null)", ha="center",
            va="center", fontsize=12)
    return _save_png(fig, path)


def _roc(fpr: np.ndarray, tpr: np.ndarray, auc: float | None, point: tuple[float, float],
         path: Path) -> Path:
    fig = _figure(5.5, 5)
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, color="tab:blue", linewidth=2,
            label=f"ROC (AUC = {auc:.4f})" if auc is not None else "ROC")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.plot(*point, "o", color="black", label="at the threshold")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="false positive rate",
           ylabel="true positive rate (recall)", title="ROC curve, test split")
    ax.legend(loc="lower right")
    return _save_png(fig, path)


def _pr(recall: np.ndarray, precision: np.ndarray, ap: float | None, base: float,
        point: tuple[float, float], path: Path) -> Path:
    fig = _figure(5.5, 5)
    ax = fig.add_subplot()
    ax.plot(recall, precision, color="tab:red", linewidth=2,
            label=f"PR (AP = {ap:.4f})" if ap is not None else "PR")
    ax.axhline(base, color="grey", linestyle=":", label=f"anomaly rate = {base:.3g}")
    ax.plot(*point, "o", color="black", label="at the threshold")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="recall", ylabel="precision",
           title="Precision-recall curve, test split")
    ax.legend(loc="lower left")
    return _save_png(fig, path)


def _contributions(contrib: np.ndarray, scores: np.ndarray, y: np.ndarray | None,
                   threshold: float, features: list[str], top: int, path: Path) -> Path:
    order = np.argsort(-scores, kind="stable")[: min(top, scores.size)]
    rows = contrib[order]
    totals = rows.sum(axis=1, keepdims=True)
    share = np.divide(rows, totals, out=np.zeros_like(rows), where=totals > 0)
    k, d = share.shape
    fig = _figure(max(6.0, 1.0 + 0.7 * d + 3.0), max(3.0, 1.5 + 0.3 * k))
    ax = fig.add_subplot()
    image = ax.imshow(share, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(d), labels=features, rotation=45, ha="right")
    labels = []
    for i in order:
        tag = "" if y is None else (" anomaly" if y[i] == 1 else " normal")
        flag = "*" if scores[i] > threshold else " "
        labels.append(f"{flag}row {i}  score {scores[i]:.3g}{tag}")
    ax.set_yticks(range(k), labels=labels, fontsize=8)
    if k * d <= 300:
        for r in range(k):
            for c in range(d):
                ax.text(c, r, f"{share[r, c]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if share[r, c] < 0.6 else "black")
    ax.set_xlabel("feature")
    ax.set_title(f"Per-feature share of the score, top {k} test rows (* = flagged)")
    fig.colorbar(image, ax=ax, label="share of the row's anomaly score")
    return _save_png(fig, path)


def _placeholder(text: str, path: Path) -> Path:
    fig = _figure(5.5, 3)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=11)
    return _save_png(fig, path)


def envelope(n: int, values: np.ndarray, limit: int = PLOT_POINTS) -> np.ndarray:
    """Indices into ``range(n)`` to draw a line of ``n`` points with at most ``limit`` points:
    all of them when ``n <= limit``, else the minimum and maximum of each of ``limit // 2``
    consecutive buckets of ``values`` (``(n,)`` or ``(n, k)``: any column's extremes), in order."""
    if n <= limit:
        return np.arange(n)
    values = np.asarray(values, dtype="float64").reshape(n, -1)
    edges = np.linspace(0, n, max(1, limit // (2 * values.shape[1])) + 1).astype(np.int64)
    keep = [np.array([0, n - 1])]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi > lo:
            part = values[lo:hi]
            keep.append(lo + np.argmin(part, axis=0))
            keep.append(lo + np.argmax(part, axis=0))
    return np.unique(np.concatenate(keep))


def _spans(y: np.ndarray | None) -> list[tuple[int, int]]:
    """``[(first, last), ...]`` of the runs of label 1 (at most :data:`MAX_SPANS`)."""
    if y is None or not y.any():
        return []
    edges = np.diff(np.concatenate([[0], (y == 1).astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))[:MAX_SPANS]


def _shade(ax: Any, x: Any, spans: list[tuple[int, int]], label: bool) -> None:
    for i, (a, b) in enumerate(spans):
        ax.axvspan(x[a], x[b], color="tab:red", alpha=0.12, linewidth=0,
                   label="labelled anomaly" if label and i == 0 else None)


def _series_plot(x: Any, values: np.ndarray, channels: list[str], flagged: np.ndarray,
                 y: np.ndarray | None, threshold: float, xlabel: str, path: Path) -> Path:
    shown = channels[:MAX_CHANNEL_PANELS]
    n = len(values)
    fig = _figure(14, 1.0 + 2.1 * len(shown))
    axes = fig.subplots(len(shown), 1, sharex=True, squeeze=False)[:, 0]
    keep = envelope(n, values[:, : len(shown)])
    hits = np.flatnonzero(flagged)
    spans = _spans(y)
    for j, (ax, name) in enumerate(zip(axes, shown, strict=True)):
        ax.plot(x[keep], values[keep, j], color="tab:blue", linewidth=0.8, label="test series",
                zorder=1)
        if hits.size:
            ax.scatter(x[hits], values[hits, j], color="red", s=12, zorder=5,
                       label=f"flagged ({hits.size} points)")
        _shade(ax, x, spans, label=j == 0)
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
    more = f" (first {len(shown)} of {len(channels)} channels)" if len(channels) > len(shown) else ""
    axes[0].set_title(
        f"Test series with flagged points (score > threshold {threshold:.4g}){more}"
    )
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel(xlabel)
    return _save_png(fig, path)


def _score_plot(x: Any, scores: np.ndarray, y: np.ndarray | None, threshold: float,
                xlabel: str, path: Path) -> Path:
    fig = _figure(14, 4.5)
    ax = fig.add_subplot()
    keep = envelope(scores.size, scores)
    ax.plot(x[keep], scores[keep], color="orange", linewidth=0.9,
            label="anomaly score (reconstruction error per point)")
    ax.axhline(threshold, color="red", linestyle="--", linewidth=1.5,
               label=f"threshold ({threshold:.4g}); {int((scores > threshold).sum())} points above")
    _shade(ax, x, _spans(y), label=True)
    if scores.min() > 0 and scores.max() > 50 * threshold > 0:
        ax.set_yscale("log")  # a huge anomaly would flatten the normal scores and the threshold
        ax.set_ylabel("anomaly score (log scale)")
    else:
        ax.set_ylabel("anomaly score")
    ax.set_xlabel(xlabel)
    ax.set_title("Reconstruction error and anomaly threshold, test split")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return _save_png(fig, path)


def _sequence_plots(params: Params, root: Path, frame: Any, features: list[str],
                    scores: np.ndarray, y: np.ndarray | None, threshold: float) -> list[Path]:
    ts = params.data.timestamp_column
    if ts is not None and ts in frame.columns:
        x, xlabel = frame[ts].to_numpy(), f"time ({ts})"
    else:
        x, xlabel = np.arange(len(frame)), "point of the test split"
    values = frame[features].to_numpy(dtype="float64")
    flagged = scores > threshold
    return [
        _series_plot(x, values, features, flagged, y, threshold, xlabel, root / SERIES_PNG),
        _score_plot(x, scores, y, threshold, xlabel, root / SCORE_SERIES_PNG),
    ]


# --------------------------------------------------------------------------- the step
def evaluate(params: Params, root: Path) -> EvaluateResult:
    """Score the test split with ``models/model.keras``; write metrics.json, curves and plots."""
    from anomaly_models.detector import AnomalyDetector

    layout = Layout.of(params, root)
    root = layout.root
    model_path = require_file(layout.model, "calibrate")
    detector = AnomalyDetector.load(model_path)
    if detector.threshold_ is None:
        raise DataError(f"{model_path} has no threshold; run `anomaly stage calibrate`")
    threshold = float(detector.threshold_)
    split = load_split(params, root, "test")
    features = [str(c) for c in detector.feature_names_in_]
    # sequence kinds: the last validation points as context (None for the tabular kinds)
    context = previous_points(params, root, "test", detector)
    contrib = detector.feature_scores(split.frame[features], context=context)
    scores = contrib.sum(axis=1)
    y = split.y
    has_labels = y is not None

    written: list[Path] = []
    plots: list[Path] = []
    if has_labels:
        from sklearn.metrics import precision_recall_curve, roc_curve

        metrics = _label_metrics(y, scores, threshold)
        point_roc = (metrics["false_alarm_rate"], metrics["recall"])
        point_pr = (metrics["recall"], metrics["precision"])
        if 0 < metrics["n_anomalies"] < len(y):
            fpr, tpr, _ = roc_curve(y, scores)
            precision, recall, _ = precision_recall_curve(y, scores)
        else:
            fpr = tpr = precision = recall = np.empty(0)
        i = downsample(fpr.size)
        written.append(_write_csv(root / ROC_CSV, ["fpr", "tpr"], [fpr[i], tpr[i]]))
        # precision_recall_curve returns decreasing recall; write it increasing for plotting
        j = downsample(recall.size)[::-1]
        written.append(_write_csv(root / PR_CSV, ["recall", "precision"],
                                  [recall[j], precision[j]]))
        plots.append(_roc(fpr, tpr, metrics["roc_auc"], point_roc, root / ROC_PNG))
        plots.append(_pr(recall, precision, metrics["pr_auc"], metrics["anomaly_rate"],
                         point_pr, root / PR_PNG))
        note = None
    else:
        metrics = {
            "threshold": threshold,
            "n_test": int(scores.size),
            "flagged_rate": float(np.mean(scores > threshold)),
        }
        note = NO_LABELS_NOTE
        log.warning("evaluate: %s", note)
        written.append(_write_csv(root / ROC_CSV, ["fpr", "tpr"], [np.empty(0), np.empty(0)]))
        written.append(_write_csv(root / PR_CSV, ["recall", "precision"],
                                  [np.empty(0), np.empty(0)]))
        written.append(_unavailable("ROC curve", root / ROC_PNG))
        written.append(_unavailable("Precision-recall curve", root / PR_PNG))

    rows = np.arange(scores.size)
    if rows.size > SCORES_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows.size, SCORES_ROWS, replace=False))
    if has_labels:
        written.append(_write_csv(root / SCORES_CSV, ["score", "label"], [scores[rows], y[rows]]))
    else:
        written.append(_write_csv(root / SCORES_CSV, ["score"], [scores[rows]]))

    plots.insert(0, _histogram(scores, y, threshold, root / HISTOGRAM_PNG))
    plots.append(_contributions(contrib, scores, y, threshold, features,
                                params.evaluate.top_flagged_rows, root / CONTRIBUTIONS_PNG))
    if detector.is_sequence:
        plots.extend(_sequence_plots(params, root, split.frame, features, scores, y, threshold))
    else:  # declared DVC outs: say what they are for
        for rel in SEQUENCE_PNG_FILES:
            written.append(_placeholder(
                "series plots are drawn for sequence models\n(model.kind: lstm_autoencoder)",
                root / rel,
            ))
    metrics_path = atomic_write_json(metrics, layout.metrics)
    written.extend(plots)
    written.append(metrics_path)
    return EvaluateResult(
        metrics_path=metrics_path,
        plot_paths=plots,
        data_paths=[root / p for p in DATA_FILES],
        metrics=metrics,
        has_labels=has_labels,
        note=note,
        outputs=written,
    )
