"""Tabular protocol of shared/BENCHMARK.md on the Shuttle data: our detectors vs peers.

    python benchmarks/shuttle_tabular.py [--seeds 0 1 2 3 4] [--only NAME ...] [--write]

For each seed: stratified 60/20/20 split; fit on the normal rows of train (scaling fitted on them
too); threshold = 0.99 quantile of the validation's normal scores; ROC-AUC, PR-AUC (average
precision) and F1 at that threshold on test; fit wall time. Prints a Markdown table of the means;
``--write`` replaces the table between the markers in BENCHMARKS.md.
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
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._report import replace_section  # noqa: E402


def load_shuttle() -> tuple[pd.DataFrame, np.ndarray]:
    import river.datasets

    path = Path(river.datasets.__file__).parent / "shuttle.csv.gz"
    df = pd.read_csv(path)
    return df.drop(columns=["anomaly"]), df["anomaly"].to_numpy().astype(int)


def split(X: pd.DataFrame, y: np.ndarray, seed: int):
    X_tr, X_rest, y_tr, y_rest = train_test_split(X, y, train_size=0.6, stratify=y, random_state=seed)
    X_va, X_te, y_va, y_te = train_test_split(
        X_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=seed
    )
    return X_tr, y_tr, X_va, y_va, X_te, y_te


# A runner fits on normal rows and returns a scoring function (higher = more anomalous).
Runner = Callable[[pd.DataFrame, int], Callable[[pd.DataFrame], np.ndarray]]


def ours(**kwargs) -> Runner:
    def run(X_normal: pd.DataFrame, seed: int):
        from anomaly_models import AnomalyDetector

        det = AnomalyDetector(seed=seed, **kwargs).fit(X_normal)
        return det.score_samples

    return run


def sklearn_peer(make) -> Runner:
    def run(X_normal: pd.DataFrame, seed: int):
        scaler = StandardScaler().fit(X_normal)
        model = make(seed).fit(scaler.transform(X_normal))
        return lambda X: -model.score_samples(scaler.transform(X))

    return run


def pyod_peer(make) -> Runner:
    def run(X_normal: pd.DataFrame, seed: int):
        scaler = StandardScaler().fit(X_normal)
        model = make(seed)
        model.fit(scaler.transform(X_normal))
        return lambda X: model.decision_function(scaler.transform(X))

    return run


def runners() -> dict[str, Runner]:
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor

    table: dict[str, Runner] = {
        "AnomalyDetector(kind='autoencoder') [default until 2026-12-03]": ours(kind="autoencoder"),
        "AnomalyDetector(kind='feature')": ours(kind="feature"),
        "IsolationForest (defaults)": sklearn_peer(lambda s: IsolationForest(random_state=s)),
        "LOF (novelty=True, defaults)": sklearn_peer(lambda s: LocalOutlierFactor(novelty=True)),
    }
    try:  # optional `bench` extra
        from pyod.models.auto_encoder import AutoEncoder as PyodAE
        from pyod.models.ecod import ECOD

        table["PyOD ECOD"] = pyod_peer(lambda s: ECOD())
        table["PyOD AutoEncoder (20 epochs)"] = pyod_peer(
            lambda s: PyodAE(epoch_num=20, random_state=s, verbose=0)
        )
    except ImportError:
        print("pyod not installed (pip install -e '.[bench]'): skipping PyOD peers", file=sys.stderr)
    return table


def evaluate(runner: Runner, seed: int, X: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    X_tr, y_tr, X_va, y_va, X_te, y_te = split(X, y, seed)
    started = time.perf_counter()
    score = runner(X_tr[y_tr == 0], seed)
    fit_s = time.perf_counter() - started
    threshold = float(np.quantile(score(X_va[y_va == 0]), 0.99))
    s_te = score(X_te)
    return {
        "roc_auc": roc_auc_score(y_te, s_te),
        "pr_auc": average_precision_score(y_te, s_te),
        "f1": f1_score(y_te, (s_te > threshold).astype(int)),
        "fit_s": fit_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--only", nargs="*", help="substrings of the detector names to run")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    X, y = load_shuttle()
    rows = []
    for name, runner in runners().items():
        if args.only and not any(s in name for s in args.only):
            continue
        results = [evaluate(runner, seed, X, y) for seed in args.seeds]
        mean = {k: float(np.mean([r[k] for r in results])) for k in results[0]}
        low = {k: float(np.min([r[k] for r in results])) for k in results[0]}
        rows.append((name, mean, low))
        print(f"{name}: " + ", ".join(f"{k}={v:.4f}" for k, v in mean.items()), flush=True)
    lines = [
        f"Shuttle, tabular protocol, mean over seeds {args.seeds} (worst seed in brackets):",
        "",
        "| detector | ROC-AUC | PR-AUC | F1 | fit time |",
        "|---|---|---|---|---|",
    ]
    for name, m, lo in rows:
        lines.append(
            f"| {name} | {m['roc_auc']:.4f} ({lo['roc_auc']:.4f}) | {m['pr_auc']:.4f} "
            f"({lo['pr_auc']:.4f}) | {m['f1']:.3f} ({lo['f1']:.3f}) | {m['fit_s']:.1f} s |"
        )
    table = "\n".join(lines)
    print(table)
    if args.write:
        replace_section(ROOT / "BENCHMARKS.md", "shuttle-tabular", table)


if __name__ == "__main__":
    main()
