"""Step 2, validate: a Great Expectations suite built from the training split checks every split.

The suite describes the model's input as seen in training: the columns (the timestamp column when
set, plus the feature columns; the label column is not part of it and is dropped from a batch
before validation), and for each feature column a numeric type, no nulls (up to
``validate.max_null_fraction``), finite values, and values within the training range widened by
``validate.range_margin`` on each side (for at least ``validate.range_mostly`` of the rows); plus
a row count >= 1 and any expectations declared in ``validate.expectations``.

For the sequence kinds (``model.kind: lstm_autoencoder``) the data is an ordered series: the
suite also expects the timestamp column to be not null and **strictly increasing** (sorted, no
duplicated timestamps; check ``time_order``), and every value column to hold no null at all,
whatever ``validate.max_null_fraction`` says (a window with a missing value has no score). A
training series with NaN or non-numbers therefore fails with a line naming the column and the
rows (ingest already rejects both; the suite is what scoring checks new batches with).

The suite is saved as JSON (``<snapshot_dir>/expectation_suite.json``) so that scoring validates
new batches against exactly what the model was trained on (:func:`load_suite` +
:func:`validate_frame`).

Great Expectations runs in a **file context** in ``<root>/gx`` (a standard GX project folder:
suite, validation definition and checkpoint JSON, validation results under ``gx/uncommitted/``),
and its Data Docs site is ``gx/uncommitted/data_docs/local_site/index.html``. Nothing is written
outside the project; progress bars are off.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from flows.config import ConfigError, Params, resolve
from flows.steps.ingest import (
    SPLIT_NAMES,
    DataError,
    atomic_write_json,
    feature_columns,
    jsonable,
    read_table,
    split_paths,
)

if TYPE_CHECKING:
    import great_expectations as gx

__all__ = [
    "GX_DIR",
    "NUMERIC_TYPES",
    "REPORT_FILE",
    "SUITE_FILE",
    "SUITE_NAME",
    "ValidateResult",
    "ValidationFailed",
    "ValidationReport",
    "build_suite",
    "file_url_to_path",
    "gx_context",
    "gx_context_dir",
    "gx_run_name",
    "load_suite",
    "quick_check",
    "save_suite",
    "validate",
    "validate_frame",
]

GX_DIR = "gx"
SUITE_FILE = "expectation_suite.json"
REPORT_FILE = "validation_report.json"
SUITE_NAME = "training_data"
DATA_DOCS_SITE = "local_site"
_DATASOURCE, _ASSET, _BATCH_DEF = "pipeline_pandas", "dataframe", "whole_dataframe"

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


class ValidationFailed(DataError):
    """A data batch failed its expectations; ``reports`` holds the details per batch."""

    def __init__(
        self,
        message: str,
        reports: dict[str, ValidationReport] | None = None,
        data_docs_index: Path | None = None,
    ) -> None:
        super().__init__(message)
        self.reports = reports or {}
        self.data_docs_index = data_docs_index


@dataclass
class ValidationReport:
    """Outcome of validating one batch against a suite."""

    batch_name: str
    success: bool
    n_expectations: int
    failed: list[str]
    data_docs_index: Path | None
    data_docs_page: Path | None = None
    n_failed: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def summary(self) -> str:
        head = f"batch {self.batch_name!r}: " + (
            f"all {self.n_expectations} expectations passed"
            if self.success
            else f"{self.n_failed} of {self.n_expectations} expectations failed"
        )
        return "\n".join([head, *(f"  - {line}" for line in self.failed)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_name": self.batch_name,
            "success": self.success,
            "n_expectations": self.n_expectations,
            "n_failed": self.n_failed,
            "failed": list(self.failed),
        }


@dataclass
class ValidateResult:
    """What :func:`validate` wrote, and the reports of the three splits."""

    success: bool
    suite_path: Path
    report_path: Path
    data_docs_index: Path | None
    reports: dict[str, ValidationReport]
    metrics: dict[str, float | int] = field(default_factory=dict)


# --------------------------------------------------------------------------- GX plumbing
def _gx() -> Any:
    import great_expectations as gx

    return gx


def gx_context_dir(root: Path) -> Path:
    """The GX project folder of the pipeline: ``<root>/gx``."""
    return Path(root) / GX_DIR


def gx_context(context_dir: Path) -> Any:
    """The file context in ``context_dir`` (created on first use), with progress bars off."""
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context_dir = Path(context_dir)
    context_dir.mkdir(parents=True, exist_ok=True)
    ctx = gx.get_context(mode="file", context_root_dir=str(context_dir))
    bars = ctx.variables.progress_bars
    globally = bars.get("globally") if isinstance(bars, dict) else getattr(bars, "globally", None)
    if globally is not False:
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        ctx.variables.save()
    return ctx


def _batch_definition(ctx: Any) -> Any:
    try:
        ds = ctx.data_sources.get(_DATASOURCE)
    except (KeyError, ValueError, LookupError):
        ds = ctx.data_sources.add_pandas(_DATASOURCE)
    try:
        asset = ds.get_asset(_ASSET)
    except LookupError:
        asset = ds.add_dataframe_asset(_ASSET)
    try:
        return asset.get_batch_definition(_BATCH_DEF)
    except (KeyError, LookupError):
        return asset.add_batch_definition_whole_dataframe(_BATCH_DEF)


def _checkpoint(ctx: Any, suite: Any, build_docs: bool = True) -> Any:
    """The context's checkpoint for ``suite`` (suite, validation definition and checkpoint named
    after it), reused as stored when the stored suite is identical: GX's ``add_or_update`` of a
    suite compares expectations pairwise and costs seconds on every call. Without
    ``build_docs`` the checkpoint (``<suite>__no_docs``) runs no Data Docs action."""
    gx = _gx()
    name = suite.name
    checkpoint_name = name if build_docs else f"{name}__no_docs"
    wanted = _suite_dict(suite)
    try:
        if _suite_dict(ctx.suites.get(name)) == wanted:
            ctx.validation_definitions.get(checkpoint_name)
            return ctx.checkpoints.get(checkpoint_name)
    except Exception:  # not stored yet (GX raises different errors per store): create below
        pass
    local = ctx.suites.add_or_update(_copy_suite(suite))
    vd = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=checkpoint_name, data=_batch_definition(ctx), suite=local)
    )
    actions = [gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")] if build_docs else []
    return ctx.checkpoints.add_or_update(
        gx.Checkpoint(
            name=checkpoint_name,
            validation_definitions=[vd],
            actions=actions,
            result_format={"result_format": "SUMMARY"},
        )
    )


def file_url_to_path(url: str | None) -> Path | None:
    if not url:
        return None
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme in ("file", "") else None


def _suite_dict(suite: Any) -> dict[str, Any]:
    """The suite as a JSON dict without GX's random ids (so the file is deterministic)."""
    d = suite.to_json_dict()
    d.pop("id", None)
    for exp in d.get("expectations", []):
        exp.pop("id", None)
        exp.pop("rendered_content", None)
    return jsonable(d)


def _copy_suite(suite: Any) -> Any:
    from great_expectations.core import ExpectationSuite

    d = _suite_dict(suite)
    return ExpectationSuite(
        name=d["name"],
        expectations=d.get("expectations", []),
        meta=d.get("meta") or {},
        notes=d.get("notes"),
    )


# --------------------------------------------------------------------------- suite
def _bounds(values: pd.Series, margin: float) -> tuple[float, float] | None:
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    lo, hi = float(v.min()), float(v.max())
    span = hi - lo
    pad = margin * span if span > 0 else margin * max(abs(hi), 1.0)
    return lo - pad, hi + pad


def build_suite(
    train_df: pd.DataFrame,
    feature_cols: list[str],
    params: Params,
    name: str = SUITE_NAME,
) -> gx.ExpectationSuite:
    """The expectation suite of the training data (see the module docstring).

    Raises:
        ConfigError: an expectation of ``validate.expectations`` that GX does not know
            (naming ``validate.expectations[i].type``) or whose arguments it rejects.
    """
    _gx()  # GX must be imported before its expectation registry is filled
    import great_expectations.expectations as gxe
    from great_expectations.core import ExpectationSuite
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.registry import get_expectation_impl

    vp = params.validate
    label, ts = params.data.label_column, params.data.timestamp_column
    sequence = params.model.is_sequence
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
        "max_null_fraction": 0.0 if sequence else vp.max_null_fraction,
        "model_kind": params.model.kind,
        "built_by": "flows.steps.validate.build_suite",
    }
    # collected first, then handed to the constructor: ExpectationSuite.add_expectation needs an
    # active data context in GX 1.x, the constructor does not
    expectations: list[Any] = []

    def add(expectation: Any, check: str) -> None:
        expectation.meta = {**(expectation.meta or {}), "check": check}
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

    for i, spec in enumerate(vp.expectations):
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
            expectation = impl(**spec.kwargs, meta=dict(spec.meta))
        except Exception as exc:  # GX's pydantic (v1) validation errors and TypeErrors
            reason = " ".join(str(exc).split())
            raise ConfigError(
                f"validate.expectations[{i}].kwargs: {spec.type} rejects {spec.kwargs}: {reason}",
                path=params.source_file,
                keys=[f"validate.expectations[{i}].kwargs"],
            ) from None
        add(expectation, "user")
    return ExpectationSuite(name=name, expectations=expectations, meta=meta)


def save_suite(suite: gx.ExpectationSuite, path: str | Path) -> Path:
    """Write the suite as JSON (no random ids: the same suite gives the same bytes)."""
    return atomic_write_json(_suite_dict(suite), Path(path))


def load_suite(path: str | Path) -> gx.ExpectationSuite:
    """Read a suite written by :func:`save_suite`."""
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"expectation suite not found: {path} (run the validate step)") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read expectation suite {path}: {exc}") from exc
    if not isinstance(d, dict) or "name" not in d or "expectations" not in d:
        raise DataError(f"{path} is not an expectation suite (no name / expectations)")
    _gx()
    from great_expectations.core import ExpectationSuite

    try:
        suite = ExpectationSuite(
            name=d["name"],
            expectations=d["expectations"],
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


# --------------------------------------------------------------------------- readable results
def _fmt(v: Any) -> str:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.6g}"
    return repr(v)


def _examples(res: dict[str, Any], limit: int = 5) -> str:
    values = res.get("partial_unexpected_list") or []
    if not values:
        return ""
    shown = []
    for v in values:
        text = _fmt(v)
        if text not in shown:
            shown.append(text)
        if len(shown) >= limit:
            break
    return f" (examples: {', '.join(shown)})"


def _exception_text(result: Any) -> str | None:
    info = result.exception_info or {}
    infos = [info] if "raised_exception" in info else list(info.values())
    for i in infos:
        if isinstance(i, dict) and i.get("raised_exception"):
            msg = str(i.get("exception_message") or "error").strip().splitlines()
            return msg[0] if msg else "error"
    return None


def _describe(result: Any) -> str:
    cfg = result.expectation_config
    kw = dict(cfg.kwargs)
    res = dict(result.result or {})
    check = (cfg.meta or {}).get("check")
    col = kw.get("column")
    where = f"column {col!r}" if col is not None else "table"
    n = res.get("element_count")
    k = res.get("unexpected_count")
    counted = f"{k} of {n} rows" if k is not None and n is not None else None

    if check == "numeric" or cfg.type == "expect_column_values_to_be_in_type_list":
        what = "must be numeric"
    elif check == "time_order":
        what = "must be strictly increasing (a series sorted by time, no duplicated timestamps)"
    elif check == "finite":
        what = "values must be finite"
    elif check == "range" or cfg.type == "expect_column_values_to_be_between":
        what = f"values between [{_fmt(kw.get('min_value'))}, {_fmt(kw.get('max_value'))}]"
    elif check == "not_null" or cfg.type == "expect_column_values_to_not_be_null":
        what = "must not be null"
    else:
        args = ", ".join(f"{a}={v!r}" for a, v in kw.items() if a != "column")
        what = f"{cfg.type}({args})"

    error = _exception_text(result)
    if error is not None:
        return f"{where}: {what}: could not be evaluated: {error}"

    if cfg.type == "expect_table_columns_to_match_set":
        mism = (res.get("details") or {}).get("mismatched") or {}
        parts = []
        if mism.get("missing"):
            parts.append(f"missing column(s) {sorted(map(str, mism['missing']))}")
        if mism.get("unexpected"):
            parts.append(f"unexpected column(s) {sorted(map(str, mism['unexpected']))}")
        expected = ", ".join(map(str, kw.get("column_set") or []))
        return f"table columns: {'; '.join(parts) or 'do not match'} (expected exactly: {expected})"
    if cfg.type == "expect_table_row_count_to_be_between":
        return f"table: row count must be >= {kw.get('min_value')}: observed {res.get('observed_value')}"
    if check == "numeric" and "observed_value" in res:
        return f"{where}: {what}: observed dtype {res['observed_value']!r}"
    if check == "numeric":
        return f"{where}: {what}: {counted or 'some rows'} hold non-numbers{_examples(res)}"
    if check == "finite":
        return f"{where}: {what}: {counted or 'some rows'} are infinite{_examples(res)}"
    if check == "time_order":
        rows = res.get("partial_unexpected_index_list") or []
        at = f", at rows {', '.join(map(str, rows[:5]))}" if rows else ""
        return (
            f"{where}: {what}: {counted or 'some rows'} are not after the previous row"
            f"{at}{_examples(res)}"
        )
    if check == "range" or cfg.type == "expect_column_values_to_be_between":
        share = ""
        mostly = kw.get("mostly")
        if mostly is not None and mostly < 1 and res.get("unexpected_percent") is not None:
            share = (
                f", {res['unexpected_percent']:.3g}% (at most {100 * (1 - mostly):.3g}% allowed)"
            )
        return f"{where}: {what}: {counted or 'some rows'} outside{share}{_examples(res)}"
    if check == "not_null" or cfg.type == "expect_column_values_to_not_be_null":
        mostly = kw.get("mostly")
        allowed = f" (at most {100 * (1 - mostly):.3g}% allowed)" if mostly and mostly < 1 else ""
        return f"{where}: {what}: {counted or 'some rows'} are null{allowed}"
    observed = res.get("observed_value")
    detail = (
        f"{counted} unexpected{_examples(res)}"
        if counted is not None
        else f"observed {_fmt(observed) if not isinstance(observed, (list, dict)) else observed}"
    )
    return f"{where}: {what}: {detail}"


def _check_of(result: Any) -> str | None:
    return (result.expectation_config.meta or {}).get("check")


def _non_numbers(values: pd.Series, limit: int = 3) -> str:
    present = values[values.notna()]
    bad = present[pd.to_numeric(present, errors="coerce").isna()]
    shown = list(dict.fromkeys(repr(v) for v in bad.head(1000).tolist()))[:limit]
    return f" (e.g. {', '.join(shown)})" if shown else ""


def _failures(vr: Any, frame: pd.DataFrame, column_order: list[str]) -> list[str]:
    """One readable line per failed expectation: table-level first, then per column in the
    suite's column order. A missing column gets one line instead of one per expectation; a
    non-numeric column gets its type failure only (its range checks cannot mean anything)."""
    table: list[str] = []
    by_column: dict[str, list[Any]] = {}
    for result in vr.results:
        if result.success:
            continue
        col = result.expectation_config.kwargs.get("column")
        if col is None:
            table.append(_describe(result))
        else:
            by_column.setdefault(str(col), []).append(result)
    lines = table
    order = [c for c in column_order if c in by_column] + [
        c for c in by_column if c not in column_order
    ]
    for col in order:
        results = by_column[col]
        if col not in frame.columns:
            lines.append(
                f"column {col!r}: missing from the data "
                f"({len(results)} expectation(s) on it could not run)"
            )
            continue
        type_failures = [r for r in results if _check_of(r) == "numeric"]
        if type_failures:
            first = type_failures[0]
            examples = "observed_value" in (first.result or {})  # dtype-level: show some values
            lines.append(_describe(first) + (_non_numbers(frame[col]) if examples else ""))
            continue
        lines.extend(_describe(r) for r in results)
    return lines


# --------------------------------------------------------------------------- quick check
# The expectation types (and arguments) that build_suite writes, evaluated with numpy by
# quick_check. Anything else in a suite (declared in validate.expectations, or an argument such
# as row_condition) makes quick_check answer None: GX must decide.
_QUICK_KWARGS: dict[str, set[str]] = {
    "expect_table_columns_to_match_set": {"column_set", "exact_match"},
    "expect_table_row_count_to_be_between": {"min_value", "max_value"},
    "expect_column_values_to_not_be_null": {"column", "mostly"},
    "expect_column_values_to_be_in_type_list": {"column", "type_list"},
    "expect_column_values_to_be_between": {"column", "min_value", "max_value", "mostly"},
    "expect_column_values_to_be_increasing": {"column", "strictly", "mostly"},
}
_QUICK_FALSE_KWARGS = {"strict_min", "strict_max", "row_condition", "condition_parser"}


@dataclass(frozen=True)
class _Numbers:
    """A numeric column as the quick check needs it, computed once for all its expectations.
    ``values``: floats as float64 (bounds such as +-float64 max overflow in a float32 array: an
    infinity would then compare equal to the bound and pass), integers as they are (numpy
    compares them with float bounds like pandas does). ``low``/``high``: the smallest and
    largest non-null value (None when there is none)."""

    values: np.ndarray
    nulls: int
    low: float | None
    high: float | None

    @classmethod
    def of(cls, series: pd.Series) -> _Numbers:
        if series.dtype.kind == "f":
            values = series.to_numpy(dtype=np.float64, copy=False)
            nulls = int(np.isnan(values).sum())
            if nulls == len(values):
                return cls(values, nulls, None, None)
            return cls(values, nulls, float(np.nanmin(values)), float(np.nanmax(values)))
        values = series.to_numpy(copy=False)
        if len(values) == 0:
            return cls(values, 0, None, None)
        return cls(values, 0, float(values.min()), float(values.max()))


def _quick_one(
    kind: str, kw: dict[str, Any], frame: pd.DataFrame, seen: dict[str, _Numbers]
) -> bool | None:
    """One expectation: True = passes, False = fails, None = not decidable here. ``seen``:
    the numeric columns converted so far."""
    if kind == "expect_table_columns_to_match_set":
        wanted, present = set(kw["column_set"] or ()), set(frame.columns)
        return wanted == present if kw.get("exact_match", True) is not False else wanted <= present
    if kind == "expect_table_row_count_to_be_between":
        lo, hi = kw.get("min_value"), kw.get("max_value")
        return (lo is None or len(frame) >= lo) and (hi is None or len(frame) <= hi)
    column = kw.get("column")
    if column not in frame.columns:
        return False
    dtype = frame[column].dtype
    if dtype.kind == "M":  # datetimes (a timestamp column): nulls and time order only
        return _quick_datetime(kind, kw, frame[column])
    if dtype.kind not in "iuf":  # objects, strings, nullable dtypes: GX's own rules
        return None
    if kind == "expect_column_values_to_be_in_type_list":
        return dtype.name in set(kw.get("type_list") or ())
    numbers = seen.get(column)
    if numbers is None:
        numbers = seen[column] = _Numbers.of(frame[column])
    array, nulls = numbers.values, numbers.nulls
    if kind == "expect_column_values_to_be_increasing":
        return None if nulls else _quick_increasing(np.diff(array), kw)
    mostly = 1.0 if kw.get("mostly") is None else kw["mostly"]
    if kind == "expect_column_values_to_not_be_null":
        return len(array) == 0 or (len(array) - nulls) / len(array) >= mostly
    # expect_column_values_to_be_between: over the non-null values, like GX's map expectations
    nonnull = len(array) - nulls
    if nonnull == 0:
        return True  # vacuously, as in GX
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if any(
        b is not None and (isinstance(b, bool) or not isinstance(b, (int, float))) for b in (lo, hi)
    ):
        return None  # dates, text...: GX's business
    if (lo is None or numbers.low >= lo) and (hi is None or numbers.high <= hi):
        return True  # every value inside (the usual case: no pass over the rows)
    with np.errstate(invalid="ignore"):
        outside = np.zeros(len(array), dtype=bool)
        if lo is not None:
            outside |= array < lo
        if hi is not None:
            outside |= array > hi
    return (nonnull - int(outside.sum())) / nonnull >= mostly


def _quick_increasing(steps: np.ndarray, kw: dict[str, Any]) -> bool:
    """GX's column_values.increasing over non-null values: the first value always passes."""
    n = steps.size + 1
    unexpected = int((steps <= 0).sum() if kw.get("strictly") else (steps < 0).sum())
    mostly = 1.0 if kw.get("mostly") is None else kw["mostly"]
    return (n - unexpected) / n >= mostly


def _quick_datetime(kind: str, kw: dict[str, Any], values: pd.Series) -> bool | None:
    nulls = int(values.isna().sum())
    if kind == "expect_column_values_to_not_be_null":
        mostly = 1.0 if kw.get("mostly") is None else kw["mostly"]
        return len(values) == 0 or (len(values) - nulls) / len(values) >= mostly
    if kind == "expect_column_values_to_be_increasing" and nulls == 0:
        if len(values) == 0:
            return True
        stamps = pd.DatetimeIndex(values).asi8  # integers in the column's unit, UTC if tz-aware
        return _quick_increasing(np.diff(stamps), kw)
    return None


def quick_check(df: pd.DataFrame, suite: gx.ExpectationSuite) -> bool | None:
    """Whether ``df`` passes ``suite``, decided with numpy in milliseconds, or None.

    Scoring validates every chunk of a batch; Great Expectations costs ~0.6 s per call whatever
    the chunk size, more than scoring the chunk. This evaluates the expectation types that
    :func:`build_suite` writes with GX's semantics (``mostly`` over the non-null values for
    ranges, nulls and infinities as GX counts them). It is used only to let a chunk *pass*:
    False (a failure) or None (a suite or a column it cannot judge: user expectations,
    non-numpy dtypes) sends the chunk to GX, whose result is the one recorded and reported.
    """
    label = (suite.meta or {}).get("label_column")
    frame = df.drop(columns=[label]) if label is not None and label in df.columns else df
    seen: dict[str, _Numbers] = {}
    for expectation in suite.expectations:
        kind = expectation.expectation_type
        kw = dict(expectation.configuration.kwargs)
        allowed = _QUICK_KWARGS.get(kind)
        if allowed is None:
            return None
        flags = [kw.pop(k, None) for k in _QUICK_FALSE_KWARGS]
        if any(flags) or set(kw) - allowed or any(isinstance(v, dict) for v in kw.values()):
            return None  # conditions, strict bounds, suite parameters: GX's business
        verdict = _quick_one(kind, kw, frame, seen)
        if verdict is not True:
            return verdict
    return True


# --------------------------------------------------------------------------- validation
def gx_run_name(batch_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", batch_name).strip("._") or "batch"


@dataclass(frozen=True)
class _QuietDefinition:
    """What a validation without Data Docs needs, kept between calls: the suite it was looked
    up for (the object, and its JSON), the GX context and the suite's validation definition."""

    suite: Any
    suite_json: dict[str, Any]
    context: Any
    definition: Any


#: ``(context folder, suite name)`` -> the :class:`_QuietDefinition` of the validations run
#: without Data Docs (scoring): GX re-reads its config and looks the suite, the validation
#: definition and the checkpoint up in its stores at every call, ~0.07 s of a ~0.4 s
#: validation, while a scoring process validates batch after batch with one suite. The most
#: recent :data:`_QUIET_KEPT` are kept.
_QUIET_DEFINITIONS: dict[tuple[str, str], _QuietDefinition] = {}
_QUIET_KEPT = 4
RESULT_FORMATS = ("BOOLEAN_ONLY", "BASIC", "SUMMARY", "COMPLETE")


def _run_quiet(
    frame: pd.DataFrame, suite: Any, context_dir: Path, result_format: str, run_id: Any
) -> tuple[Any, Any, Any]:
    """Run the validation definition of ``suite``'s ``<suite>__no_docs`` checkpoint on ``frame``
    (the result is stored in the context): ``(context, definition, result)``.

    The context and definition are kept for the next call with the same suite: the same object
    (a scoring run loads its suite once; suites are not changed after loading) or an equal one
    (its JSON, ~15 ms to build, is compared only for another object). A kept definition that
    fails to run (its stores changed or were deleted) is looked up again once."""
    key = (str(Path(context_dir).resolve()), suite.name)

    def run(kept: _QuietDefinition) -> tuple[Any, Any, Any]:
        try:
            result = kept.definition.run(
                batch_parameters={"dataframe": frame},
                result_format={"result_format": result_format},
                run_id=run_id,
            )
        except Exception:
            _QUIET_DEFINITIONS.pop(key, None)
            raise
        return kept.context, kept.definition, result

    kept = _QUIET_DEFINITIONS.get(key)
    if kept is not None and (kept.suite is suite or kept.suite_json == _suite_dict(suite)):
        try:
            return run(kept)
        except Exception:
            pass  # looked up again below; a second failure is raised
    ctx = gx_context(Path(context_dir))
    definition = _checkpoint(ctx, suite, build_docs=False).validation_definitions[0]
    kept = _QuietDefinition(suite, _suite_dict(suite), ctx, definition)
    _QUIET_DEFINITIONS.pop(key, None)
    _QUIET_DEFINITIONS[key] = kept
    while len(_QUIET_DEFINITIONS) > _QUIET_KEPT:  # the oldest first (insertion order)
        _QUIET_DEFINITIONS.pop(next(iter(_QUIET_DEFINITIONS)))
    return run(kept)


def validate_frame(
    df: pd.DataFrame,
    suite: gx.ExpectationSuite,
    context_dir: Path,
    batch_name: str,
    build_docs: bool = True,
    result_format: str = "SUMMARY",
) -> ValidationReport:
    """Validate ``df`` against ``suite`` in the GX file context at ``context_dir``.

    The suite's label column (``meta.label_column``), when present in ``df``, is dropped first:
    the suite describes model inputs, and scoring batches usually have no label. The result is
    stored in the context and its Data Docs site is updated. With ``build_docs=False`` the site
    is rebuilt only when the validation fails (rebuilding costs ~0.6 s and grows with the number
    of stored results: too much for every batch of a scoring run), and the suite's validation
    definition is run directly, looked up once per process.

    ``result_format``: how much GX records per expectation (``SUMMARY``: counts, up to 20
    unexpected values with their counts and row positions; ``BASIC``: counts and up to 20
    unexpected values, ~25 % cheaper).
    """
    _gx()
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    if result_format not in RESULT_FORMATS:
        raise ValueError(f"result_format must be one of {RESULT_FORMATS}, got {result_format!r}")
    label = (suite.meta or {}).get("label_column")
    frame = df.drop(columns=[label]) if label is not None and label in df.columns else df
    run_id = RunIdentifier(run_name=gx_run_name(batch_name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GX's deprecation chatter about its own internals
        if build_docs:
            ctx = gx_context(Path(context_dir))
            checkpoint = _checkpoint(ctx, suite, build_docs=True)
            checkpoint.result_format = {"result_format": result_format}
            result = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)
            (vri, vr), *_ = result.run_results.items()
        else:
            ctx, definition, vr = _run_quiet(frame, suite, context_dir, result_format, run_id)
            vri = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=definition.suite.name),
                run_id=vr.meta["run_id"],
                batch_identifier=vr.batch_id,
            )

    index = page = None
    try:
        if not build_docs and not vr.success:  # a failure gets its page: people will open it
            ctx.build_data_docs(site_names=[DATA_DOCS_SITE])
        urls = ctx.get_docs_sites_urls(site_name=DATA_DOCS_SITE)
        index = file_url_to_path(urls[0]["site_url"]) if urls else None
        urls = ctx.get_docs_sites_urls(resource_identifier=vri, site_name=DATA_DOCS_SITE)
        page = file_url_to_path(urls[0]["site_url"]) if urls else None
    except Exception:  # Data Docs are a convenience: never fail a validation on them
        pass

    return ValidationReport(
        batch_name=batch_name,
        success=bool(vr.success),
        n_expectations=len(vr.results),
        failed=_failures(vr, frame, list((suite.meta or {}).get("columns") or [])),
        data_docs_index=index,
        data_docs_page=page,
        n_failed=sum(1 for r in vr.results if not r.success),
        raw=jsonable(vr.to_json_dict()),
    )


def validate(params: Params, root: Path) -> ValidateResult:
    """Build the suite from ``train.parquet``, validate the three splits, save suite and report.

    Writes ``<snapshot_dir>/expectation_suite.json`` and ``<snapshot_dir>/validation_report.json``
    (also when validation fails), and updates the Data Docs under ``<root>/gx``.

    Raises:
        ValidationFailed: a split failed; the message lists the failed expectations and the Data
            Docs path.
        DataError: the split files are missing (run ingest first).
        ConfigError: a bad entry in ``validate.expectations``.
    """
    root = Path(root)
    paths = split_paths(params, root)
    for name, p in paths.items():
        if not p.exists():
            raise DataError(f"{name} split not found: {p} (run the ingest step first)")
    frames = {name: read_table(p) for name, p in paths.items()}
    train = frames["train"]
    features = feature_columns(train, params, source=str(paths["train"]))
    suite = build_suite(train, features, params)

    context_dir = gx_context_dir(root)
    reports = {
        name: validate_frame(frames[name], suite, context_dir, batch_name=name)
        for name in SPLIT_NAMES
    }
    success = all(r.success for r in reports.values())
    index = next((r.data_docs_index for r in reports.values() if r.data_docs_index), None)

    out_dir = resolve(root, params.data.snapshot_dir)
    suite_path = save_suite(suite, out_dir / SUITE_FILE)

    def rel(p: Path | None) -> str | None:
        if p is None:
            return None
        try:
            return p.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return str(p)

    n_expectations = len(suite.expectations)
    report = {
        "success": success,
        "suite": rel(suite_path),
        "n_expectations": n_expectations,
        "data_docs_index": rel(index),
        "batches": {name: r.to_dict() for name, r in reports.items()},
    }
    report_path = atomic_write_json(report, out_dir / REPORT_FILE)
    metrics: dict[str, float | int] = {"n_expectations": n_expectations}
    for name, r in reports.items():
        metrics[f"{name}_failed_expectations"] = r.n_failed

    if not success:
        summaries = "\n".join(r.summary() for r in reports.values() if not r.success)
        pages = [f"{r.batch_name}: {r.data_docs_page}" for r in reports.values() if not r.success]
        raise ValidationFailed(
            "data validation failed (Great Expectations suite built from the training split):\n"
            f"{summaries}\n"
            f"Data Docs: {index}\n"
            + "".join(f"  {p}\n" for p in pages if p.split(": ", 1)[1] != "None")
            + f"Report: {report_path}",
            reports=reports,
            data_docs_index=index,
        )
    return ValidateResult(
        success=success,
        suite_path=suite_path,
        report_path=report_path,
        data_docs_index=index,
        reports=reports,
        metrics=metrics,
    )
