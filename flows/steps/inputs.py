"""What the model steps read: one split with its feature columns, and the files of earlier steps.

Plain functions, no Prefect, no MLflow; paths come from :class:`flows.layout.Layout`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flows.columns import normal_rows
from flows.config import Params
from flows.errors import DataError
from flows.io import read_table
from flows.layout import Layout

__all__ = ["PREVIOUS_SPLIT", "SplitData", "load_split", "previous_points", "require_file"]


def require_file(path: Path, produced_by: str) -> Path:
    """``path`` when it is a file, else :class:`FileNotFoundError` naming the step to run."""
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"{path} not found: it is written by the {produced_by} step; "
            f"run `anomaly stage {produced_by}` first"
        )
    return Path(path)


@dataclass(frozen=True)
class SplitData:
    """One split as the model steps see it."""

    name: str
    path: Path
    frame: pd.DataFrame  # every column of the split file
    feature_columns: list[str]
    label_column: str | None  # None when data.label_column is null (no labels)

    @property
    def X(self) -> pd.DataFrame:  # noqa: N802 - the usual name of a feature matrix
        return self.frame[self.feature_columns]

    @property
    def y(self) -> np.ndarray | None:
        if self.label_column is None:
            return None
        return self.frame[self.label_column].to_numpy(dtype="int64")

    def normal(self) -> pd.DataFrame:
        """Feature columns of the rows a detector is fitted on (label 0, or all rows)."""
        return normal_rows(self.frame, self.label_column)[self.feature_columns]


def load_split(params: Params, root: Path, name: str) -> SplitData:
    """Read split ``name`` (train | validation | test) and the feature columns of ``split.json``.

    Raises:
        FileNotFoundError: the split was not written yet (run ingest).
        DataError: ``split.json`` is unreadable, or the split lacks a feature column or the
            label column of ``data.label_column``.
    """
    layout = Layout.of(params, root)
    meta_path = require_file(layout.split_meta, "ingest")
    path = require_file(layout.split(name), "ingest")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        features = [str(c) for c in meta["feature_columns"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"cannot read the feature columns from {meta_path}: {exc}") from exc
    frame = read_table(path)
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path} lacks feature column(s) {missing} listed in {meta_path}; rerun ingest"
        )
    label = params.data.label_column
    if label is not None and label not in frame.columns:
        raise DataError(
            f"{path} lacks the label column {label!r} (data.label_column); the split was written "
            "with other settings: rerun ingest"
        )
    return SplitData(name=name, path=path, frame=frame, feature_columns=features, label_column=label)


#: The split just before each scored split in time (sequence kinds split contiguously).
PREVIOUS_SPLIT = {"validation": "train", "test": "validation"}


def previous_points(params: Params, root: Path, name: str, detector: Any) -> pd.DataFrame | None:
    """For a sequence detector: the last ``detector.context_length`` points (value columns) of
    the split before split ``name`` in time, the context that scores ``name``'s first points as
    in one continuous stream. None for the tabular kinds, or for the train split.
    """
    if not getattr(detector, "is_sequence", False) or name not in PREVIOUS_SPLIT:
        return None
    previous = load_split(params, root, PREVIOUS_SPLIT[name])
    features = [str(c) for c in detector.feature_names_in_]
    return previous.frame[features].iloc[max(0, len(previous.frame) - detector.context_length) :]
