"""Preprocessing models built from a DataFrame profile.

``DataAnalyzer(df).create_preprocessing_model()`` (or ``build_preprocessing_model(df)``) returns a
Keras model with one named input per column (a dict of ``(batch, 1)`` tensors keyed by the column
name) and one output, ``(batch, n_out)`` float32:

* numeric columns: NaN replaced by the column's median, then scaled: ``scaling="standard"``
  (default) uses the mean and standard deviation, ``scaling="robust"`` the median and the
  interquartile range (falling back to the standard deviation, then 1, when that is 0); with
  ``tail_compression=True`` the scaled values then go through ``asinh`` (``TailCompression``);
* categorical columns (strings, booleans, pandas categories): one-hot over the most frequent
  ``max_categories`` values plus one slot for values not seen in the profile.

Numeric features come first, in column order, then the one-hot blocks. The model is made of
built-in layers plus ``MissingValueImputation``, so it saves inside a ``.keras`` file and reloads
with ``safe_mode=True``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pandas as pd

from anomaly_models.layers.missing_value_imputation import MissingValueImputation
from anomaly_models.layers.tail_compression import TailCompression


@dataclass
class ColumnProfile:
    """What the analyzer learned about one column."""

    name: str
    kind: str  # "numeric" | "categorical"
    dtype: str
    n_missing: int
    mean: float | None = None
    std: float | None = None
    median: float | None = None
    iqr: float | None = None
    min: float | None = None
    max: float | None = None
    categories: list[str] = field(default_factory=list)


def is_numeric_column(series: pd.Series) -> bool:
    """True for int/float columns; booleans count as categories, not numbers."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def profile_dataframe(df: pd.DataFrame, max_categories: int = 50) -> dict[str, ColumnProfile]:
    """Profile every column of ``df`` (numeric statistics or the most frequent categories)."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"expected a pandas DataFrame, received {type(df).__name__}")
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise ValueError(f"cannot profile an empty DataFrame (shape {df.shape})")
    profiles: dict[str, ColumnProfile] = {}
    for column in df.columns:
        series = df[column]
        name = str(column)
        if is_numeric_column(series):
            values = series.to_numpy(dtype="float64", na_value=np.nan)
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                raise ValueError(f"numeric column {name!r} has no finite value to profile")
            profiles[name] = ColumnProfile(
                name=name, kind="numeric", dtype=str(series.dtype),
                n_missing=int(np.isnan(values).sum()), mean=float(finite.mean()),
                std=float(finite.std()), median=float(np.median(finite)),
                iqr=float(np.subtract(*np.percentile(finite, [75, 25]))),
                min=float(finite.min()), max=float(finite.max()),
            )
        else:
            counts = series.dropna().astype(str).value_counts()
            profiles[name] = ColumnProfile(
                name=name, kind="categorical", dtype=str(series.dtype),
                n_missing=int(series.isna().sum()),
                categories=[str(c) for c in counts.index[:max_categories]],
            )
    return profiles


def _input_name(column: str, taken: set[str]) -> str:
    """A Keras-safe layer name for a column (Keras rejects '/' and friends), unique."""
    base = re.sub(r"[^A-Za-z0-9_.\-]", "_", column) or "column"
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def build_preprocessing_model(
    df: pd.DataFrame,
    max_categories: int = 50,
    profiles: dict[str, ColumnProfile] | None = None,
    name: str = "preprocessing",
    scaling: str = "standard",
    tail_compression: bool = False,
) -> keras.Model:
    """Build the preprocessing model for the columns of ``df`` (see the module docstring)."""
    if scaling not in ("standard", "robust"):
        raise ValueError(f"`scaling` must be 'standard' or 'robust', received scaling={scaling!r}")
    profiles = profiles if profiles is not None else profile_dataframe(df, max_categories)
    taken: set[str] = set()
    inputs: dict[str, Any] = {}
    numeric = [p for p in profiles.values() if p.kind == "numeric"]
    categorical = [p for p in profiles.values() if p.kind == "categorical"]
    for p in profiles.values():
        inputs[p.name] = keras.Input(
            shape=(1,), name=_input_name(p.name, taken),
            dtype="float32" if p.kind == "numeric" else "string",
        )
    blocks = []
    if numeric:
        stacked = (
            keras.layers.Concatenate(name="numeric_columns")([inputs[p.name] for p in numeric])
            if len(numeric) > 1 else inputs[numeric[0].name]
        )
        imputed = MissingValueImputation([p.median for p in numeric], name="impute_median")(stacked)
        if scaling == "standard":
            centre = [p.mean for p in numeric]
            scale = [p.std if p.std else 1.0 for p in numeric]
        else:
            centre = [p.median for p in numeric]
            scale = [p.iqr or p.std or 1.0 for p in numeric]
        scaled = keras.layers.Normalization(
            mean=np.array(centre), variance=np.square(scale), name=f"{scaling}_scaling"
        )(imputed)
        if tail_compression:
            scaled = TailCompression(name="tail_compression")(scaled)
        blocks.append(scaled)
    for p in categorical:
        lookup = keras.layers.StringLookup(
            vocabulary=p.categories or ["<none>"], output_mode="one_hot", num_oov_indices=1,
            name=f"onehot_{inputs[p.name].name}",
        )
        blocks.append(lookup(inputs[p.name]))
    output = blocks[0] if len(blocks) == 1 else keras.layers.Concatenate(name="features")(blocks)
    with warnings.catch_warnings():
        # Keys are the real column names on purpose; tensor names are their Keras-safe versions.
        warnings.filterwarnings("ignore", message="When providing `inputs` as a dict")
        return keras.Model(inputs=inputs, outputs=output, name=name)


def frame_to_inputs(df: pd.DataFrame, model: keras.Model) -> dict[str, np.ndarray]:
    """The dict a preprocessing model takes, from a DataFrame with (at least) its columns.

    Raises ``ValueError`` naming the missing columns.
    """
    names = list(model.input.keys())
    columns = {str(c): c for c in df.columns}
    missing = [n for n in names if n not in columns]
    if missing:
        raise ValueError(
            f"input is missing column(s) {missing}; the model expects {names}"
        )
    out: dict[str, np.ndarray] = {}
    for n, spec in model.input.items():
        series = df[columns[n]]
        if spec.dtype == "string":
            # missing categories become "" (out of vocabulary), never the text "nan"
            text = series.astype(object).where(series.notna(), "").astype(str)
            out[n] = text.to_numpy(dtype=object).reshape(-1, 1)
        else:
            out[n] = series.to_numpy(dtype="float32", na_value=np.nan).reshape(-1, 1)
    return out


#: Rows per call of :func:`apply_in_batches`: bounds the memory of one eager forward pass.
PREDICT_BATCH = 8192


def apply_in_batches(function: Any, inputs: Any, batch_rows: int = PREDICT_BATCH) -> Any:
    """``function(inputs)`` computed ``batch_rows`` rows at a time, as NumPy.

    Args:
        function: a Keras callable on a slice of ``inputs`` (e.g. a preprocessing model on the
            dict of columns, or ``FeatureScoreNetwork.reference_parts`` on features); it returns
            one tensor or a tuple of tensors.
        inputs: the dict of columns, each ``(n, 1)`` (see :func:`frame_to_inputs`), or one
            ``(n, ...)`` array.
        batch_rows: rows per call.

    Returns:
        The outputs of the calls, concatenated along the first axis: ``(n, ...)``, or a tuple
        of such arrays when ``function`` returns a tuple.
    """
    is_dict = isinstance(inputs, dict)
    n = len(next(iter(inputs.values()))) if is_dict else len(inputs)
    parts = []
    for start in range(0, n, batch_rows):
        stop = start + batch_rows
        batch = {k: v[start:stop] for k, v in inputs.items()} if is_dict else inputs[start:stop]
        output = function(batch)
        if isinstance(output, tuple):
            parts.append(tuple(keras.ops.convert_to_numpy(o) for o in output))
        else:
            parts.append(keras.ops.convert_to_numpy(output))
    if parts and isinstance(parts[0], tuple):
        return tuple(np.concatenate(column) for column in zip(*parts, strict=True))
    return np.concatenate(parts)


class DataAnalyzer:
    """Profile a DataFrame and build the matching Keras preprocessing model.

    Example::

        analyzer = DataAnalyzer(df)
        analyzer.analyze()            # {column: ColumnProfile}
        model = analyzer.create_preprocessing_model()
        features = model(frame_to_inputs(df, model))   # (n, n_out) float32
    """

    def __init__(self, df: pd.DataFrame, max_categories: int = 50) -> None:
        if not isinstance(df, pd.DataFrame):
            raise ValueError(f"DataAnalyzer expects a pandas DataFrame, received {type(df).__name__}")
        self.df = df
        self.max_categories = max_categories
        self.profiles_: dict[str, ColumnProfile] | None = None

    def analyze(self) -> dict[str, ColumnProfile]:
        """Profile the columns (cached)."""
        if self.profiles_ is None:
            self.profiles_ = profile_dataframe(self.df, self.max_categories)
        return self.profiles_

    def create_preprocessing_model(
        self, name: str = "preprocessing", scaling: str = "standard", tail_compression: bool = False
    ) -> keras.Model:
        """The preprocessing model for the analysed DataFrame (options as ``build_preprocessing_model``)."""
        return build_preprocessing_model(
            self.df, self.max_categories, profiles=self.analyze(), name=name,
            scaling=scaling, tail_compression=tail_compression,
        )
