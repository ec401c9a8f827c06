"""The expectation suite: built from the training split and ``params.validate``, saved as JSON.

The suite describes the model's input as seen in training: the columns (the timestamp column when
set, plus the feature columns; the label column is not part of it and is dropped from a batch
before validation, :func:`model_inputs`), and for each feature column a numeric type, no nulls
(up to ``validate.max_null_fraction``), finite values, and values within the training range
widened by ``validate.range_margin`` on each side (for at least ``validate.range_mostly`` of the
rows); plus a row count >= 1 and any expectations declared in ``validate.expectations``. Each
built-in expectation names its check in ``meta.check`` (columns, row_count, not_null,
time_order, numeric, finite, range; ``user`` for the declared ones): the readable failure lines
of :mod:`flows.expectations.results` and the quick check go by it.

Every expectation carries GX's own ``severity`` (:data:`CHECK_SEVERITY`): the data contract
(columns, types, nulls, finite values, row count, time order) is ``critical``; the training range
is a ``warning``. Only critical failures refuse a training split or quarantine a batch; warnings
are recorded and reported. Declared expectations are critical unless their ``severity`` says
otherwise.

For the sequence kinds (``model.kind: lstm_autoencoder``) the data is an ordered series: the
suite also expects the timestamp column to be not null and **strictly increasing** (sorted, no
duplicated timestamps; check ``time_order``), and every value column to hold no null at all,
whatever ``validate.max_null_fraction`` says (a window with a missing value has no score). A
training series with NaN or non-numbers therefore fails with a line naming the column and the
rows (ingest already rejects both; the suite is what scoring checks new batches with).

The suite is saved as JSON (``<snapshot_dir>/expectation_suite.json``, without GX's random ids:
the same suite gives the same bytes) so that scoring validates new batches against exactly what
the model was trained on (:func:`load_suite`, then :mod:`flows.expectations.run`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from flows.config import ConfigError, Params
from flows.errors import DataError
from flows.expectations.context import import_gx
from flows.io import atomic_write_json, jsonable

if TYPE_CHECKING:
    import great_expectations as gx

__all__ = [
    "CHECK_SEVERITY",
    "NUMERIC_TYPES",
    "SUITE_NAME",
    "build_suite",
    "copy_suite",
    "load_suite",
    "model_inputs",
    "range_bounds",
    "save_suite",
    "severity_of",
    "suite_json",
]

SUITE_NAME = "training_data"

# dtype names accepted by expect_column_values_to_be_in_type_list for a numeric column: numpy's
# and pandas' nullable ones (GX resolves "Int64Dtype" etc. through the pandas namespace).
NUMERIC_TYPES = [
    *(f"int{b}" for b in (8, 16, 32, 64)),
    *(f"uint{b}" for b in (8, 16, 32, 64)),
    *(f"float{b}" for b in (16, 32, 64)),
    *(f"Int{b}Dtype" for b in (8, 16, 32, 64)),
    *(f"UInt{b}Dtype" for b in (8, 16, 32, 64)),
    "Float32Dtype",
    "Float64Dtype",
    # Python's own numbers, for object-dtype columns (GX then checks value by value)
    "int",
    "float",
]
_FLOAT_MAX = float(np.finfo(np.float64).max)  # "finite" = within +-float64 max (inf is outside)

#: The severity of each built-in check: the data contract is ``critical`` (a failure refuses
#: training and quarantines a batch); the training-range profile is a ``warning``: rows outside
#: the range are what a detector exists to flag, so they are scored and marked, never refused.
CHECK_SEVERITY: dict[str, str] = {
    "columns": "critical",
    "row_count": "critical",
    "not_null": "critical",
    "time_order": "critical",
    "numeric": "critical",
    "finite": "critical",
    "range": "warning",
}


def model_inputs(df: pd.DataFrame, suite: gx.ExpectationSuite) -> pd.DataFrame:
    """``df`` without the suite's label column (``meta.label_column``) when it has one: the
    suite describes model inputs, and scoring batches usually have no label."""
    label = (suite.meta or {}).get("label_column")
    return df.drop(columns=[label]) if label is not None and label in df.columns else df


# --------------------------------------------------------------------------- building
def _bounds(values: pd.Series, margin: float) -> tuple[float, float] | None:
    """The finite values' ``[min, max]`` widened by ``margin`` times its span on each side (by
    ``margin`` times ``max(|max|, 1)`` when all values are equal); None without finite values."""
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    lo, hi = float(v.min()), float(v.max())
    span = hi - lo
    pad = margin * span if span > 0 else margin * max(abs(hi), 1.0)
    return lo - pad, hi + pad


def _built_in_expectations(
    train_df: pd.DataFrame, feature_cols: list[str], columns: list[str], params: Params
) -> list[Any]:
    """The expectations every suite has (see the module docstring), in the suite's order."""
    import great_expectations.expectations as gxe

    vp = params.validate
    ts = params.data.timestamp_column
    sequence = params.model.is_sequence
    expectations: list[Any] = []

    def add(expectation: Any, check: str) -> None:
        expectation.meta = {**(expectation.meta or {}), "check": check}
        expectation.severity = CHECK_SEVERITY[check]
        expectations.append(expectation)

    add(gxe.ExpectTableColumnsToMatchSet(column_set=columns, exact_match=True), "columns")
    add(gxe.ExpectTableRowCountToBeBetween(min_value=1), "row_count")
    if ts is not None:
        add(gxe.ExpectColumnValuesToNotBeNull(column=ts), "not_null")
        if sequence:  # a series: sorted by time, one row per time point
            add(gxe.ExpectColumnValuesToBeIncreasing(column=ts, strictly=True), "time_order")
    # a series may hold no NaN at all: a window containing one has no meaningful score
    not_null_mostly = 1.0 if sequence else 1.0 - vp.max_null_fraction
    for c in feature_cols:
        add(gxe.ExpectColumnValuesToBeInTypeList(column=c, type_list=NUMERIC_TYPES), "numeric")
        add(gxe.ExpectColumnValuesToNotBeNull(column=c, mostly=not_null_mostly), "not_null")
        add(
            gxe.ExpectColumnValuesToBeBetween(
                column=c, min_value=-_FLOAT_MAX, max_value=_FLOAT_MAX
            ),
            "finite",
        )
        bounds = _bounds(train_df[c], vp.range_margin) if c in train_df.columns else None
        if bounds is not None:
            add(
                gxe.ExpectColumnValuesToBeBetween(
                    column=c, min_value=bounds[0], max_value=bounds[1], mostly=vp.range_mostly
                ),
                "range",
            )
    return expectations


def _user_expectations(params: Params) -> list[Any]:
    """The expectations of ``validate.expectations``, each with ``meta.check = "user"``.

    Raises:
        ConfigError: an unknown expectation type, or arguments GX rejects (naming the key).
    """
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.registry import get_expectation_impl

    expectations: list[Any] = []
    for i, spec in enumerate(params.validate.expectations):
        try:
            impl = get_expectation_impl(spec.type)
        except ExpectationNotFoundError:
            raise ConfigError(
                f"validate.expectations[{i}].type: unknown Great Expectations expectation "
                f"{spec.type!r} (use the snake_case name of a GX expectation class, e.g. "
                "expect_column_values_to_be_between)",
                path=params.source_file,
                keys=[f"validate.expectations[{i}].type"],
            ) from None
        try:
            expectation = impl(**spec.kwargs, meta=dict(spec.meta), severity=spec.severity)
        except Exception as exc:  # GX's pydantic (v1) validation errors and TypeErrors
            reason = " ".join(str(exc).split())
            raise ConfigError(
                f"validate.expectations[{i}].kwargs: {spec.type} rejects {spec.kwargs}: {reason}",
                path=params.source_file,
                keys=[f"validate.expectations[{i}].kwargs"],
            ) from None
        expectation.meta = {**(expectation.meta or {}), "check": "user"}
        expectations.append(expectation)
    return expectations


def build_suite(
    train_df: pd.DataFrame,
    feature_cols: list[str],
    params: Params,
    name: str = SUITE_NAME,
) -> gx.ExpectationSuite:
    """The expectation suite of the training data (see the module docstring).

    ``params``: ``validate`` (margins, null fraction, declared expectations), ``data`` (label
    and timestamp column) and ``model.kind`` (a sequence kind adds the time-order checks).

    Raises:
        DataError: a feature column is not in ``train_df``.
        ConfigError: an expectation of ``validate.expectations`` that GX does not know
            (naming ``validate.expectations[i].type``) or whose arguments it rejects.
    """
    import_gx()  # GX must be imported before its expectation registry is filled
    from great_expectations.core import ExpectationSuite

    vp = params.validate
    label, ts = params.data.label_column, params.data.timestamp_column
    columns = [c for c in train_df.columns if c in set(feature_cols) or c == ts]
    missing = [c for c in feature_cols if c not in train_df.columns]
    if missing:
        raise DataError(f"feature column(s) {missing} not in the training data")
    meta = {
        "columns": columns,
        "feature_columns": list(feature_cols),
        "label_column": label,
        "timestamp_column": ts,
        "built_from_rows": len(train_df),
        "range_margin": vp.range_margin,
        "range_mostly": vp.range_mostly,
        "max_null_fraction": 0.0 if params.model.is_sequence else vp.max_null_fraction,
        "model_kind": params.model.kind,
        "built_by": "flows.expectations.build_suite",
    }
    # collected first, then handed to the constructor: ExpectationSuite.add_expectation needs an
    # active data context in GX 1.x, the constructor does not
    expectations = [
        *_built_in_expectations(train_df, feature_cols, columns, params),
        *_user_expectations(params),
    ]
    return ExpectationSuite(name=name, expectations=expectations, meta=meta)


# --------------------------------------------------------------------------- JSON
def suite_json(suite: Any) -> dict[str, Any]:
    """The suite as a JSON dict without GX's random ids (so the file is deterministic)."""
    d = suite.to_json_dict()
    d.pop("id", None)
    for exp in d.get("expectations", []):
        exp.pop("id", None)
        exp.pop("rendered_content", None)
    return jsonable(d)


def copy_suite(suite: Any) -> Any:
    """A new ``ExpectationSuite`` equal to ``suite`` (no ids: GX gives the copy its own)."""
    from great_expectations.core import ExpectationSuite

    d = suite_json(suite)
    return ExpectationSuite(
        name=d["name"],
        expectations=d.get("expectations", []),
        meta=d.get("meta") or {},
        notes=d.get("notes"),
    )


def save_suite(suite: gx.ExpectationSuite, path: str | Path) -> Path:
    """Write the suite as JSON (no random ids: the same suite gives the same bytes)."""
    return atomic_write_json(suite_json(suite), Path(path))


def load_suite(path: str | Path) -> gx.ExpectationSuite:
    """Read a suite written by :func:`save_suite`.

    Raises:
        DataError: the file is missing, is not JSON, is not a suite, or holds expectations GX
            cannot load (GX would log and drop them).
    """
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"expectation suite not found: {path} (run the validate step)") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read expectation suite {path}: {exc}") from exc
    if not isinstance(d, dict) or "name" not in d or "expectations" not in d:
        raise DataError(f"{path} is not an expectation suite (no name / expectations)")
    import_gx()
    from great_expectations.core import ExpectationSuite

    expectations = [_with_severity(e) for e in d["expectations"]]
    try:
        suite = ExpectationSuite(
            name=d["name"],
            expectations=expectations,
            meta=d.get("meta") or {},
            notes=d.get("notes"),
        )
    except Exception as exc:
        raise DataError(f"invalid expectation suite {path}: {exc}") from exc
    if len(suite.expectations) != len(d["expectations"]):  # GX logs and drops invalid ones
        raise DataError(
            f"invalid expectation suite {path}: {len(d['expectations']) - len(suite.expectations)}"
            " expectation(s) could not be loaded"
        )
    return suite


def _with_severity(expectation: Any) -> Any:
    """A suite entry written before severities (no ``severity`` key) gets its built-in check's
    severity, so a version registered earlier warns about ranges instead of quarantining."""
    if not isinstance(expectation, dict) or "severity" in expectation:
        return expectation
    check = (expectation.get("meta") or {}).get("check")
    return {**expectation, "severity": CHECK_SEVERITY.get(check, "critical")}


# --------------------------------------------------------------------------- reading
def severity_of(expectation_config: Any) -> str:
    """``"critical"``, ``"warning"`` or ``"info"``: GX's severity of an expectation (or of an
    expectation configuration in a validation result)."""
    severity = getattr(expectation_config, "severity", None)
    return str(getattr(severity, "value", severity) or "critical")


def range_bounds(suite: Any) -> dict[str, tuple[float, float]]:
    """``{column: (min, max)}`` of the suite's training-range checks (``meta.check == "range"``):
    the training range widened by ``validate.range_margin``, what ``out_of_range`` counts."""
    bounds: dict[str, tuple[float, float]] = {}
    for expectation in suite.expectations:
        if (expectation.meta or {}).get("check") != "range":
            continue
        kw = expectation.configuration.kwargs
        bounds[str(kw["column"])] = (float(kw["min_value"]), float(kw["max_value"]))
    return bounds
