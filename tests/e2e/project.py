"""Helpers of the end-to-end tests: a small real project folder and the CLI environment."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

#: Small, fast settings for every e2e run (real training, 3 epochs).
FAST = [
    "data.source=data/raw/sensors.csv",
    "data.label_column=anomaly",
    "train.epochs=3",
    "train.batch_size=64",
    "model.hidden_dims=[8, 4, 2]",
]


def sensor_frame(n: int = 1200, seed: int = 0, anomaly_rate: float = 0.05) -> pd.DataFrame:
    """Correlated sensor readings with obvious anomalies; column `anomaly` is the label."""
    rng = np.random.default_rng(seed)
    state = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "temp": 20 + 3 * state + rng.normal(scale=0.2, size=n),
            "pressure": 1 - 0.5 * state + rng.normal(scale=0.05, size=n),
            "flow": 5 + 2 * state + rng.normal(scale=0.2, size=n),
            "vibration": np.abs(rng.normal(scale=1.0, size=n)),
        }
    )
    label = np.zeros(n, dtype=int)
    bad = rng.choice(n, size=int(anomaly_rate * n), replace=False)
    label[bad] = 1
    df.loc[bad, "pressure"] += rng.choice([-1, 1], size=bad.size) * 2.5
    df.loc[bad, "vibration"] += 6
    df["anomaly"] = label
    return df


def sine_series(
    n: int,
    seed: int = 0,
    anomaly: tuple[int, int] | None = None,
    time_column: str = "timestamp",
    label_column: str = "anomaly",
) -> pd.DataFrame:
    """Three noisy sines ``s0``-``s2`` at 1-minute timestamps; in ``anomaly`` = (start, stop)
    points s0 freezes and s2 turns into a square wave (shape anomalies that stay inside the
    normal range, so validation passes); the label column marks them."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    frame = pd.DataFrame({time_column: pd.date_range("2024-01-01", periods=n, freq="min")})
    for k, (period, amplitude) in enumerate([(40, 1.0), (65, 2.0), (25, 0.5)]):
        frame[f"s{k}"] = amplitude * np.sin(2 * np.pi * i / period + k) + rng.normal(
            0, 0.05 * amplitude, n
        )
    label = np.zeros(n, dtype="int64")
    if anomaly is not None:
        a, b = anomaly
        label[a:b] = 1
        frame.loc[a : b - 1, "s0"] = 0.8
        frame.loc[a : b - 1, "s2"] = 0.45 * np.sign(np.sin(np.arange(b - a) * 2.5))
    frame[label_column] = label
    return frame


def make_project(root: Path, data: pd.DataFrame | None = None) -> Path:
    """A project folder: params.yaml, dvc.yaml, the default settings overridden by FAST."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(REPO / name, root / name)
    text = (root / "params.yaml").read_text()
    text = text.replace("source: builtin:shuttle", "source: data/raw/sensors.csv")
    text = text.replace("epochs: null", "epochs: 3").replace("batch_size: null", "batch_size: 64")
    text = text.replace("hidden_dims: [64, 32, 16]", "hidden_dims: [8, 4, 2]")
    (root / "params.yaml").write_text(text)
    (root / "data" / "raw").mkdir(parents=True, exist_ok=True)
    (data if data is not None else sensor_frame()).to_csv(root / "data/raw/sensors.csv", index=False)
    return root


def cli_env(root: Path) -> dict[str, str]:
    """Environment of a CLI subprocess: the venv on PATH, state inside ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        ANOMALY_PROJECT_ROOT=str(root),
        PREFECT_HOME=str(root / ".prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        MLFLOW_DISABLE_TELEMETRY="true",
        DVC_NO_ANALYTICS="1",
        DVC_SITE_CACHE_DIR=str(root / ".dvc" / "site-cache"),
        TF_CPP_MIN_LOG_LEVEL="3",
        MPLBACKEND="Agg",
    )
    return env


