"""Small real data sets that ship inside installed packages (scikit-learn, river), as the CSV
files a user would bring to ``anomaly train``: read offline from the packages' own files.

Labelled sets are cast ODDS-style as novelty problems: one class is normal (label 0), a small
seeded subsample of another class is the rare anomalies (label 1), the rest is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

LABEL = "anomaly"
ID = "id"


@dataclass(frozen=True)
class Bundled:
    """One data set of the matrix: how to build its frame, and what the frame must be."""

    name: str
    source: str  # package and file it is read from
    build: Callable[[], pd.DataFrame]
    labelled: bool
    rows: int
    features: int  # numeric feature columns (the label and any text id excluded)
    anomalies: int = 0
    text_id: bool = False
    integers: bool = False  # every feature column holds whole numbers


def _odds(normal: pd.DataFrame, rare: pd.DataFrame, n_rare: int, seed: int = 0) -> pd.DataFrame:
    """``normal`` (label 0) and a seeded subsample of ``n_rare`` rows of ``rare`` (label 1),
    shuffled (seeded) so that the anomalies are not all at the end of the file."""
    picked = rare.sample(n=n_rare, random_state=seed)
    frame = pd.concat([normal.assign(**{LABEL: 0}), picked.assign(**{LABEL: 1})])
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _with_text_id(frame: pd.DataFrame) -> pd.DataFrame:
    width = len(str(len(frame)))
    ids = [f"row-{i:0{width}d}" for i in range(1, len(frame) + 1)]
    return pd.concat([pd.DataFrame({ID: ids}), frame.reset_index(drop=True)], axis=1)


# --------------------------------------------------------------------------- scikit-learn
def wine() -> pd.DataFrame:
    """sklearn/datasets/data/wine_data.csv: the 13 measurements only, no label, nothing
    injected (the data of the issue report)."""
    from sklearn.datasets import load_wine

    return load_wine(as_frame=True).data


def iris() -> pd.DataFrame:
    """sklearn/datasets/data/iris.csv: 150 rows, the 4 measurements, no label, a text ``id``."""
    from sklearn.datasets import load_iris

    return _with_text_id(load_iris(as_frame=True).data)


def breast_cancer() -> pd.DataFrame:
    """sklearn/datasets/data/breast_cancer.csv, as ODDS' WBC: the 357 benign rows normal,
    21 of the 212 malignant rows the anomalies (378 rows, 30 features)."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    x, y = bunch.data, bunch.target  # target 0 = malignant, 1 = benign
    return _odds(x[y == 1], x[y == 0], 21)


def digits() -> pd.DataFrame:
    """sklearn/datasets/data/digits.csv.gz: 8x8 images, 64 integer pixel columns (0..16, several
    always 0); the digits 1-9 normal (1,619 rows), 30 of the 178 zeros the anomalies."""
    from sklearn.datasets import load_digits

    bunch = load_digits(as_frame=True)
    x, y = bunch.data.astype("int64"), bunch.target  # the file holds integers, loaded as floats
    return _odds(x[y != 0], x[y == 0], 30)


# --------------------------------------------------------------------------- river
def phishing() -> pd.DataFrame:
    """river/datasets/phishing.csv.gz (river.datasets.Phishing): the 702 legitimate pages normal,
    37 of the 548 phishing pages the anomalies (739 rows, 9 features)."""
    from river.datasets import Phishing

    frame = pd.read_csv(Phishing().path)
    x, y = frame.drop(columns="is_phishing"), frame["is_phishing"]
    return _odds(x[y == 0], x[y == 1], 37)


def bananas() -> pd.DataFrame:
    """river/datasets/banana.zip (river.datasets.Bananas, a libsvm file read by river): 2-d
    points, the 2,924 of class -1 normal, 150 of the 2,376 of class +1 the anomalies
    (3,074 rows; the columns keep river's names ``1`` and ``2``)."""
    from river.datasets import Bananas

    rows = list(Bananas())
    x = pd.DataFrame([features for features, _ in rows])
    y = pd.Series([bool(label) for _, label in rows])
    return _odds(x[~y], x[y], 150)


def shuttle() -> pd.DataFrame:
    """river/datasets/shuttle.csv.gz (river.datasets.Shuttle, already ODDS-style: 3,511
    anomalies in 49,097 rows, 9 integer features): as it is, plus a text ``id`` column. The
    largest data set bundled in the installed packages."""
    from river.datasets import Shuttle

    return _with_text_id(pd.read_csv(Shuttle().path))


DATASETS: list[Bundled] = [
    Bundled(
        "iris",
        "scikit-learn sklearn/datasets/data/iris.csv",
        iris,
        labelled=False,
        rows=150,
        features=4,
        text_id=True,
    ),
    Bundled(
        "wine",
        "scikit-learn sklearn/datasets/data/wine_data.csv",
        wine,
        labelled=False,
        rows=178,
        features=13,
    ),
    Bundled(
        "breast_cancer",
        "scikit-learn sklearn/datasets/data/breast_cancer.csv",
        breast_cancer,
        labelled=True,
        rows=378,
        features=30,
        anomalies=21,
    ),
    Bundled(
        "phishing",
        "river river/datasets/phishing.csv.gz",
        phishing,
        labelled=True,
        rows=739,
        features=9,
        anomalies=37,
    ),
    Bundled(
        "digits",
        "scikit-learn sklearn/datasets/data/digits.csv.gz",
        digits,
        labelled=True,
        rows=1649,
        features=64,
        anomalies=30,
        integers=True,
    ),
    Bundled(
        "bananas",
        "river river/datasets/banana.zip",
        bananas,
        labelled=True,
        rows=3074,
        features=2,
        anomalies=150,
    ),
    Bundled(
        "shuttle",
        "river river/datasets/shuttle.csv.gz",
        shuttle,
        labelled=True,
        rows=49_097,
        features=9,
        anomalies=3511,
        text_id=True,
        integers=True,
    ),
]


def write_csv(dataset: Bundled, folder: Path) -> Path:
    """The data set as ``<folder>/<name>.csv`` (checked against its description first)."""
    frame = dataset.build()
    n_features = frame.shape[1] - (LABEL in frame.columns) - (ID in frame.columns)
    assert (len(frame), n_features) == (dataset.rows, dataset.features), (dataset.name, frame.shape)
    assert (LABEL in frame.columns) == dataset.labelled
    if dataset.labelled:
        assert int(frame[LABEL].sum()) == dataset.anomalies
    if dataset.integers:
        features = frame.drop(columns=[c for c in (LABEL, ID) if c in frame.columns])
        assert all(pd.api.types.is_integer_dtype(t) for t in features.dtypes)
    assert np.isfinite(frame.select_dtypes("number").to_numpy(dtype="float64")).all()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dataset.name}.csv"
    frame.to_csv(path, index=False)
    return path
