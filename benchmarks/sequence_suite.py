"""Sequence benchmark suite (issue 13, item 3): the LSTM autoencoder against three peers on 11
labelled series (4 that ship inside packages, 7 generated).

    python benchmarks/sequence_suite.py [--series NAME ...] [--detectors NAME ...]
        [--seeds 0 1 2] [--epochs N] [--workdir .cache/sequence_suite] [--refresh] [--write]
        [--list]

Protocol (shared/BENCHMARK.md, sequence): fit on the normal TRAIN part, score every TEST point;
point ROC-AUC, PR-AUC (average precision), the UCR hit (the arg-max point lies within
``hit_margin`` points, 100 as in the UCR archive unless the series says otherwise, of a
labelled anomaly region) and the wall time of fit + scoring. The series and the generator are
in :mod:`benchmarks.sequence_sets`.

Detectors:

* ``ours``: ``AnomalyDetector(kind="lstm_autoencoder", seed=seed, verbose=0)``, the library's
  defaults otherwise (``--epochs`` overrides the epochs for a quick check; such runs are cached
  and labelled apart), fitted on the raw TRAIN series, ``score_samples`` on the raw TEST series.
* ``nn``: nearest-neighbour window distance to the TRAIN windows, ``iforest``: IsolationForest
  (scikit-learn defaults, ``random_state=0``) on windows; both ``benchmarks/ucr_sequence.py``'s
  functions, on the series z-normalized per channel with the TRAIN mean / std, window scores to
  points by the maximum over the covering windows.
* ``discord``: the matrix-profile discord (``stumpy.stump``; ``stumpy.mstump`` for several
  channels, its all-channel profile): the self-join matrix profile of TRAIN followed by TEST,
  i.e. each TEST window's z-normalized distance to its nearest non-trivial neighbour anywhere in
  the series; windows that lie wholly in TEST score, points by the maximum.

The peers' window is the series' period as the discord anchor uses it on the UCR archive, chosen
from the TRAIN part only (:func:`benchmarks.sequence_sets.train_period`). The peers are
deterministic and run once; ``ours`` runs once per seed.

Every (series, detector, seed) result is cached as JSON under ``--workdir`` (the key includes the
detector's constructor parameters, so a changed library default recomputes ``ours``, and a row
whose series data differ (``Series.fingerprint``) is recomputed;
``--refresh`` recomputes anyway). ``--write`` writes ``benchmarks/results/suite_sequence.json`` and
the section between the ``sequence-suite`` markers of BENCHMARKS.md, from the results asked for.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from anomaly_models.sequences import window_scores_to_points  # noqa: E402
from benchmarks import sequence_sets  # noqa: E402
from benchmarks._report import replace_section  # noqa: E402
from benchmarks.sequence_sets import LOADERS, Series, hit_zone, train_period  # noqa: E402
from benchmarks.ucr_sequence import evaluate as ucr_evaluate  # noqa: E402
from benchmarks.ucr_sequence import isolation_forest, nearest_neighbour  # noqa: E402

PROTOCOL = "sequence-v1"  # cache folder name: bump when the protocol or a peer changes
DEFAULT_WORKDIR = ROOT / ".cache" / "sequence_suite"
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "suite_sequence.json"
DEFAULT_SEEDS = (0, 1, 2)

DETECTORS: dict[str, str] = {  # key -> label in the tables
    "ours": "AnomalyDetector(kind='lstm_autoencoder') [ours]",
    "nn": "nearest-neighbour window distance",
    "iforest": "IsolationForest on windows",
    "discord": "matrix-profile discord (stumpy)",
}
PEERS = ("nn", "iforest", "discord")


# ------------------------------------------------------------------------------------ scoring


def evaluate(scores: np.ndarray, series: Series) -> dict[str, float]:
    """ROC-AUC, PR-AUC and arg-max of ``benchmarks/ucr_sequence.py``; the hit is the arg-max
    within ``series.hit_margin`` points of any labelled region (the same as there for one
    region)."""
    row = ucr_evaluate(scores, series.labels)
    row["hit"] = float(hit_zone(series)[row["argmax"]])
    return row


def znormalize(series: Series) -> tuple[np.ndarray, np.ndarray]:
    mean, std = series.train.mean(axis=0), series.train.std(axis=0, ddof=1)
    std = np.where(std > 0, std, 1.0)
    return (series.train - mean) / std, (series.test - mean) / std


def run_ours(series: Series, seed: int, epochs: int | None) -> tuple[np.ndarray, dict]:
    import keras

    from anomaly_models import AnomalyDetector

    keras.backend.clear_session()
    extra = {} if epochs is None else {"epochs": epochs}
    detector = AnomalyDetector(kind="lstm_autoencoder", seed=seed, verbose=0, **extra)
    columns = list(series.channels)
    detector.fit(pd.DataFrame(series.train, columns=columns))
    scores = detector.score_samples(pd.DataFrame(series.test, columns=columns))
    info = {
        "window": int(getattr(detector, "window_", None) or detector.window),
        "point_aggregation": detector.point_aggregation_,
        "smoothing": int(detector.smoothing_),
        "epochs_run": len(detector.history_.get("loss", [])),
        "epochs_max": int(detector.epochs_),
    }
    return scores, info


def run_discord(train: np.ndarray, test: np.ndarray, window: int) -> np.ndarray:
    import stumpy

    full = np.concatenate([train, test])
    if full.shape[1] == 1:
        profile = stumpy.stump(full[:, 0], window)[:, 0].astype(float)
    else:
        profile = stumpy.mstump(full.T, window)[0][-1]  # the profile over all channels
    window_scores = profile[len(train) :]  # windows that start in TEST (and so lie in it)
    window_scores = np.where(np.isfinite(window_scores), window_scores, np.nanmax(window_scores))
    return window_scores_to_points(window_scores, len(test), window)


def warm_up_stumpy() -> None:
    """Compile stumpy's numba kernels once, so that no timed run includes compilation."""
    import stumpy

    rng = np.random.default_rng(0)
    stumpy.stump(rng.normal(size=64), 8)
    stumpy.mstump(rng.normal(size=(2, 64)), 8)


def run_peer(name: str, series: Series, window: int) -> np.ndarray:
    train, test = znormalize(series)
    if name == "nn":
        return next(iter(nearest_neighbour(train, test, window, 0, None).values()))
    if name == "iforest":
        return next(iter(isolation_forest(train, test, window, 0, None).values()))
    if name == "discord":
        return run_discord(train, test, window)
    raise ValueError(name)


# -------------------------------------------------------------------------------------- cache


def ours_fingerprint(epochs: int | None) -> str:
    """Constructor parameters of the detector ``ours`` builds (so a changed default reruns)."""
    from anomaly_models import AnomalyDetector

    extra = {} if epochs is None else {"epochs": epochs}
    params = AnomalyDetector(kind="lstm_autoencoder", seed=0, verbose=0, **extra).get_params()
    params.pop("seed")
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def cache_path(workdir: Path, series: str, detector: str, seed: int | None, tag: str) -> Path:
    name = f"{detector}-{tag}-seed{seed}" if detector == "ours" else detector
    return workdir / PROTOCOL / series / f"{name}.json"


def detector_key(detector: str, epochs: int | None) -> str:
    return detector if detector != "ours" or epochs is None else f"ours (epochs={epochs})"


def run_one(series: Series, detector: str, seed: int | None, epochs: int | None) -> dict:
    window, found = train_period(series)
    started = time.perf_counter()
    info: dict = {"window": window}
    if detector == "ours":
        scores, info = run_ours(series, seed, epochs)
    else:
        scores = run_peer(detector, series, window)
    elapsed = time.perf_counter() - started
    row = {**evaluate(scores, series), "seconds": elapsed, **info}
    return {
        "series": series.name,
        "detector": detector_key(detector, epochs),
        "seed": seed,
        "period_found": found,
        "data_sha": series.fingerprint,
        **row,
    }


# ------------------------------------------------------------------------------------- report


def series_table(loaded: dict[str, Series], rows: list[dict]) -> list[str]:
    windows: dict[str, set[int]] = {}
    for r in rows:
        if r["detector"].startswith("ours"):
            windows.setdefault(r["series"], set()).add(r["window"])
    lines = [
        "| series | source | channels | TRAIN / TEST points | anomaly type | labelled regions "
        "(points) | peers' window (TRAIN period) | ours' window | hit margin (share of TEST "
        "that hits) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in loaded.items():
        regions = s.regions()
        sizes = ", ".join(str(b - a + 1) for a, b in regions)
        window, found = train_period(s)
        ours = ", ".join(str(w) for w in sorted(windows.get(name, ()))) or "-"
        lines.append(
            f"| {name} | {s.source} | {s.n_channels} | {len(s.train):,} / {len(s.test):,} | "
            f"{s.anomaly_type} | {len(regions)} ({sizes}) | "
            f"{window}{'' if found else ' (no period: fallback)'} | {ours} | "
            f"{s.hit_margin} ({hit_zone(s).mean():.1%}) |"
        )
    return lines


def summarize(rows: list[dict], series_names: list[str], detectors: list[str]) -> dict:
    """Per (series, detector): means over seeds; per detector: mean PR-AUC / ROC-AUC over the
    series and the hits (of all runs, seeds included)."""
    cells: dict[str, dict[str, dict]] = {}
    for s in series_names:
        for d in detectors:
            runs = [r for r in rows if r["series"] == s and r["detector"] == d]
            if runs:
                cells.setdefault(s, {})[d] = {
                    "roc_auc": float(np.mean([r["roc_auc"] for r in runs])),
                    "pr_auc": float(np.mean([r["pr_auc"] for r in runs])),
                    "pr_auc_runs": [r["pr_auc"] for r in runs],
                    "hits": int(sum(r["hit"] for r in runs)),
                    "runs": len(runs),
                    "argmax": [r["argmax"] for r in runs],
                    "seconds": float(np.mean([r["seconds"] for r in runs])),
                    "seeds": [r["seed"] for r in runs],
                }
    totals = {}
    for d in detectors:
        done = [cells[s][d] for s in series_names if d in cells.get(s, {})]
        if done:
            totals[d] = {
                "series": len(done),
                "mean_pr_auc": float(np.mean([c["pr_auc"] for c in done])),
                "mean_roc_auc": float(np.mean([c["roc_auc"] for c in done])),
                "hits": int(sum(c["hits"] for c in done)),
                "runs": int(sum(c["runs"] for c in done)),
                "series_hit_by_majority": int(sum(c["hits"] * 2 > c["runs"] for c in done)),
                "seconds": float(sum(c["seconds"] for c in done)),
            }
    return {"cells": cells, "totals": totals}


def results_table(summary: dict, series_names: list[str], detectors: list[str]) -> list[str]:
    lines = [
        "| series | detector | point ROC-AUC | PR-AUC | UCR hit (arg-max) | fit + score s |",
        "|---|---|---|---|---|---|",
    ]
    for s in series_names:
        for d in detectors:
            c = summary["cells"].get(s, {}).get(d)
            if c is None:
                continue
            per_seed = ""
            if c["runs"] > 1:
                per_seed = " (" + " / ".join(f"{v:.3f}" for v in c["pr_auc_runs"]) + ")"
            argmax = ", ".join(str(a) for a in c["argmax"])
            label = DETECTORS.get(d, DETECTORS["ours"] + d[4:])
            lines.append(
                f"| {s} | {label} | {c['roc_auc']:.3f} | {c['pr_auc']:.3f}{per_seed} | "
                f"{c['hits']}/{c['runs']} ({argmax}) | {c['seconds']:.1f} |"
            )
    lines += [
        "",
        "| detector | series | mean point ROC-AUC | mean PR-AUC | UCR hits (runs) | "
        "series hit by most runs | total fit + score s (seed mean) |",
        "|---|---|---|---|---|---|---|",
    ]
    for d, t in summary["totals"].items():
        label = DETECTORS.get(d, DETECTORS["ours"] + d[4:])
        lines.append(
            f"| {label} | {t['series']} | {t['mean_roc_auc']:.3f} | {t['mean_pr_auc']:.3f} | "
            f"{t['hits']}/{t['runs']} | {t['series_hit_by_majority']}/{t['series']} | "
            f"{t['seconds']:.0f} |"
        )
    return lines


# --------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", nargs="+", default=list(LOADERS), choices=list(LOADERS))
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=list(DETECTORS))
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=list(DEFAULT_SEEDS),
        help="seeds of ours (the peers are deterministic and run once)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="override ours' epochs for a quick check (default: library default)",
    )
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--refresh", action="store_true", help="recompute cached results")
    parser.add_argument(
        "--write",
        action="store_true",
        help="write benchmarks/results/suite_sequence.json and BENCHMARKS.md",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--list", action="store_true", help="list the series and exit")
    args = parser.parse_args()

    loaded = {name: LOADERS[name]() for name in args.series}
    if args.list:
        print("\n".join(series_table(loaded, [])))
        return

    tag = ours_fingerprint(args.epochs) if "ours" in args.detectors else ""
    if tag:
        tag = f"{tag}" if args.epochs is None else f"{tag}-e{args.epochs}"
    if "discord" in args.detectors:
        warm_up_stumpy()
    # peers first (seconds), then ours seed by seed, so that a partial run covers every series
    jobs = [(s, d, None) for d in args.detectors if d != "ours" for s in args.series]
    if "ours" in args.detectors:
        jobs += [(s, "ours", seed) for seed in args.seeds for s in args.series]
    rows: list[dict] = []
    started = time.perf_counter()
    for series_name, detector, seed in jobs:
        path = cache_path(args.workdir, series_name, detector, seed, tag)
        row = json.loads(path.read_text()) if path.is_file() and not args.refresh else None
        if row is None or row.get("data_sha") != loaded[series_name].fingerprint:
            row = run_one(loaded[series_name], detector, seed, args.epochs)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(row, indent=1, default=float))
            print(
                f"{series_name} {row['detector']} seed {seed}: ROC-AUC {row['roc_auc']:.3f}, "
                f"PR-AUC {row['pr_auc']:.3f}, hit {row['hit']:.0f} (arg-max {row['argmax']}), "
                f"window {row['window']}, {row['seconds']:.1f} s",
                flush=True,
            )
        rows.append(row)
    wall = time.perf_counter() - started

    detectors = [detector_key(d, args.epochs) for d in args.detectors]
    summary = summarize(rows, args.series, detectors)
    seeds = ", ".join(str(s) for s in args.seeds)
    ours_config = (
        "library defaults (only seed and verbose=0 set)"
        if args.epochs is None
        else f"epochs={args.epochs} (NOT the default), otherwise library defaults"
    )
    lines = [
        f"{len(args.series)} series (`benchmarks/sequence_sets.py`), sequence protocol of "
        "shared/BENCHMARK.md: fit on TRAIN, one score per TEST point. Ours: "
        f"`AnomalyDetector(kind='lstm_autoencoder')`, {ours_config}, seeds {seeds}, means over "
        "the seeds (per-seed PR-AUC in brackets). Peers (deterministic, one run): window = the "
        "TRAIN part's dominant period (`train_period`), z-normalized with the TRAIN mean/std. "
        "Hit = arg-max within the series' hit margin of a labelled region. Time = fit + scoring "
        "on 2 shared CPU cores (stumpy compiled before timing).",
        "",
        "Series:",
        "",
        *series_table(loaded, rows),
        "",
        "Results:",
        "",
        *results_table(summary, args.series, detectors),
    ]
    table = "\n".join(lines)
    print(table)
    print(f"wall time of this invocation (cached results not recomputed): {wall:.0f} s")
    if args.write:
        payload = {
            "protocol": PROTOCOL,
            "ours": ours_config,
            "ours_fingerprint": tag,
            "seeds": args.seeds,
            "series": {
                name: {
                    "source": s.source,
                    "anomaly_type": s.anomaly_type,
                    "channels": list(s.channels),
                    "train_points": len(s.train),
                    "test_points": len(s.test),
                    "regions": s.regions(),
                    "hit_margin": s.hit_margin,
                    "peers_window": train_period(s)[0],
                    "period_found": train_period(s)[1],
                    **s.info,
                }
                for name, s in loaded.items()
            },
            "generator": {
                "train": sequence_sets.GEN_TRAIN,
                "test": sequence_sets.GEN_TEST,
                "noise": sequence_sets.NOISE,
                "harmonics": sequence_sets.HARMONICS,
                "period_range": sequence_sets.PERIOD_RANGE,
                "position_range": sequence_sets.POSITION_RANGE,
            },
            "runs": rows,
            "summary": summary,
            "machine": {
                "platform": platform.platform(),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            },
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1, default=float) + "\n")
        replace_section(ROOT / "BENCHMARKS.md", "sequence-suite", table)


if __name__ == "__main__":
    main()
