"""Sequence protocol of shared/BENCHMARK.md on UCR anomaly series 135 (InternalBleeding16).

    python benchmarks/ucr_sequence.py [--seeds 0 1 2] [--epochs 60] [--window 64] [--write]

Reads ``../shared/data/135_UCR_Anomaly_InternalBleeding16_{TRAIN,TEST}.csv`` (relative to the
repository root). Protocol: z-normalize both parts with the TRAIN mean and std; cut windows of 64
points (stride 1); train ``LSTMAutoencoderAnomaly`` on the TRAIN windows (all normal); score every
TEST window; map window scores to points; report point ROC-AUC, average precision (PR-AUC), the UCR
hit (the arg-max point lies within 100 points of the labelled anomaly 4187-4198) and the wall time
of training + scoring. Two scorings of the same trained model are reported:

* ``window MSE, max``: each window's mean squared reconstruction error, each point the maximum
  over the windows covering it (the protocol as written). All points of the top window tie, so
  with 64-point windows and a 12-point anomaly PR-AUC cannot exceed about 12/64 = 0.19.
* ``point error, mean, smoothed``: the squared reconstruction error of each point inside each
  window, averaged over the windows covering the point, then a centred moving average over
  ``window // 4`` points. This localizes the anomaly instead of spreading it over a window.

The two peers of BENCHMARK.md (nearest-neighbour window distance to TRAIN windows, IsolationForest
on windows) are measured side by side in the same run. ``--write`` replaces the table between the
``ucr-sequence`` markers in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from anomaly_models.sequences import sliding_windows, window_scores_to_points  # noqa: E402
from benchmarks._report import replace_section  # noqa: E402

DATA_DIR = ROOT.parent / "shared" / "data"
SERIES = "135_UCR_Anomaly_InternalBleeding16"
HIT_MARGIN = 100


def load_series(data_dir: Path = DATA_DIR) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TRAIN values, TEST values, TEST labels (1 = anomaly)."""
    paths = [data_dir / f"{SERIES}_{part}.csv" for part in ("TRAIN", "TEST")]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(
            f"UCR series 135 not found: missing {missing}. Put "
            f"{SERIES}_TRAIN.csv and _TEST.csv (columns timestamp,value,is_anomaly) in {data_dir}; "
            "the series also ships inside the `aeon` package (BSD-3)."
        )
    train, test = (pd.read_csv(p).sort_values("timestamp") for p in paths)
    if train["is_anomaly"].any():
        raise SystemExit("the TRAIN part must be normal only, but it has labelled anomalies")
    return (
        train["value"].to_numpy(float),
        test["value"].to_numpy(float),
        test["is_anomaly"].to_numpy(int),
    )


def evaluate(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    anomaly = np.flatnonzero(labels)
    argmax = int(np.argmax(scores))
    return {
        "roc_auc": roc_auc_score(labels, scores),
        "pr_auc": average_precision_score(labels, scores),
        "hit": float(anomaly[0] - HIT_MARGIN <= argmax <= anomaly[-1] + HIT_MARGIN),
        "argmax": argmax,
    }


# A method trains on TRAIN windows and returns {scoring name: point scores of TEST}.
Method = Callable[[np.ndarray, np.ndarray, int, int, argparse.Namespace], dict[str, np.ndarray]]


def lstm_autoencoder(train, test, window, seed, args) -> dict[str, np.ndarray]:
    import keras

    from anomaly_models import LSTMAutoencoderAnomaly

    keras.backend.clear_session()  # a fresh graph per seed (no retracing warnings)
    keras.utils.set_random_seed(seed)
    X_train = sliding_windows(train, window).astype("float32")
    X_test = sliding_windows(test, window).astype("float32")
    model = LSTMAutoencoderAnomaly(
        latent_dim=args.latent, lstm_units=args.units, n_features=1, n_repeats=window
    )
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), loss="mse")
    model.fit(X_train, X_train, epochs=args.epochs, batch_size=args.batch_size, shuffle=True,
              verbose=0)
    step_errors = keras.ops.convert_to_numpy(model.compute_step_errors(X_test))  # (n_w, window)
    n = len(test)
    smooth = args.smooth or max(1, window // 4)
    point = window_scores_to_points(step_errors, n, window, reduce="mean")
    return {
        "window MSE, max over covering windows": window_scores_to_points(
            step_errors.mean(axis=1), n, window, reduce="max"
        ),
        f"point error, mean over covering windows, {smooth}-point moving average": (
            pd.Series(point).rolling(smooth, center=True, min_periods=1).mean().to_numpy()
        ),
    }


def nearest_neighbour(train, test, window, seed, args) -> dict[str, np.ndarray]:
    a = sliding_windows(train, window)[:, :, 0]
    b = sliding_windows(test, window)[:, :, 0]
    distances = np.empty(len(b))
    for start in range(0, len(b), 2048):
        chunk = b[start : start + 2048]
        squared = (chunk**2).sum(1)[:, None] + (a**2).sum(1)[None, :] - 2 * chunk @ a.T
        distances[start : start + 2048] = np.sqrt(np.clip(squared, 0, None).min(axis=1))
    return {"distance, max": window_scores_to_points(distances, len(test), window)}


def isolation_forest(train, test, window, seed, args) -> dict[str, np.ndarray]:
    from sklearn.ensemble import IsolationForest

    model = IsolationForest(random_state=seed).fit(sliding_windows(train, window)[:, :, 0])
    scores = -model.score_samples(sliding_windows(test, window)[:, :, 0])
    return {"max": window_scores_to_points(scores, len(test), window)}


METHODS: dict[str, Method] = {
    "LSTMAutoencoderAnomaly": lstm_autoencoder,
    "nearest-neighbour window distance to TRAIN windows": nearest_neighbour,
    "IsolationForest on windows": isolation_forest,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--latent", type=int, default=16, help="latent_dim of the autoencoder")
    parser.add_argument("--units", type=int, default=32, help="lstm_units of the autoencoder")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--smooth", type=int, default=0, help="moving-average length (0: window // 4)")
    parser.add_argument("--only", nargs="*", help="substrings of the method names to run")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()

    train_raw, test_raw, labels = load_series(args.data_dir)
    mean, std = train_raw.mean(), train_raw.std(ddof=1)
    train, test = (train_raw - mean) / std, (test_raw - mean) / std

    results: dict[str, list[dict[str, float]]] = {}
    for name, method in METHODS.items():
        if args.only and not any(s in name for s in args.only):
            continue
        for seed in args.seeds:
            started = time.perf_counter()
            scorings = method(train, test, args.window, seed, args)
            elapsed = time.perf_counter() - started
            for scoring, scores in scorings.items():
                row = {**evaluate(scores, labels), "time_s": elapsed}
                results.setdefault(f"{name}: {scoring}", []).append(row)
                print(
                    f"{name}: {scoring} [seed {seed}]: ROC-AUC {row['roc_auc']:.4f}, "
                    f"PR-AUC {row['pr_auc']:.4f}, arg-max {row['argmax']}, {elapsed:.1f} s",
                    flush=True,
                )

    config = (
        f"latent_dim={args.latent}, lstm_units={args.units}, {args.epochs} epochs, batch "
        f"{args.batch_size}, Adam {args.learning_rate:g}"
    )
    lines = [
        f"UCR series 135 (InternalBleeding16), sequence protocol, window {args.window} (z-normalized "
        f"with the TRAIN mean and std), mean over seeds {args.seeds}; LSTMAutoencoderAnomaly: "
        f"{config}; time = training + scoring (both scorings share one trained model):",
        "",
        "| detector | point ROC-AUC | PR-AUC | UCR hit | time |",
        "|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        roc = np.mean([r["roc_auc"] for r in rows])
        pr = np.mean([r["pr_auc"] for r in rows])
        hits = int(sum(r["hit"] for r in rows))
        argmaxes = ", ".join(str(r["argmax"]) for r in rows)
        lines.append(
            f"| {name} | {roc:.4f} | {pr:.3f} | {hits}/{len(rows)} (arg-max {argmaxes}) | "
            f"{np.mean([r['time_s'] for r in rows]):.1f} s |"
        )
    table = "\n".join(lines)
    print(table)
    if args.write:
        replace_section(ROOT / "BENCHMARKS.md", "ucr-sequence", table)


if __name__ == "__main__":
    main()
