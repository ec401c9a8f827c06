"""Reading GX validation results: one readable line per failed expectation, and the
:class:`ValidationReport` of a batch.

The lines go by the check each built-in expectation names in ``meta.check`` (see
:mod:`flows.expectations.suite`): ``column 'b': values between [9.1, 20.9]: 1 of 100 rows
outside (examples: 1000)``. They are what the validate step's error, scoring's quarantine
reports and the data-quality report show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flows.expectations.suite import severity_of
from flows.io import jsonable

__all__ = ["ValidationReport", "failure_lines", "has_critical_failure", "report_of"]


@dataclass
class ValidationReport:
    """Outcome of validating one batch against a suite.

    ``success``: no *critical* expectation failed (GX's own ``success`` is False for a failed
    warning too). ``failed``: one readable line per failed critical expectation
    (:func:`failure_lines`); ``warnings``: the same for failed warning/info expectations, and
    ``warning_rows``: per column, the rows they found unexpected (``{"table": n}`` for table
    checks). ``raw``: GX's result as strict JSON; ``data_docs_index`` / ``data_docs_page``: the
    site's index and the batch's page, None where GX built none.
    """

    batch_name: str
    success: bool
    n_expectations: int
    failed: list[str]
    data_docs_index: Path | None
    data_docs_page: Path | None = None
    n_failed: int = 0
    warnings: list[str] = field(default_factory=list)
    warning_rows: dict[str, int] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n_warnings(self) -> int:
        """Failed expectations of severity warning or info."""
        return len(self.warnings)

    def summary(self) -> str:
        head = f"batch {self.batch_name!r}: " + (
            f"all {self.n_expectations} expectations passed"
            if self.success and not self.warnings
            else f"{self.n_failed} of {self.n_expectations} expectations failed"
            if not self.success
            else f"no critical expectation failed of {self.n_expectations}"
        )
        lines = [head, *(f"  - {line}" for line in self.failed)]
        if self.warnings:
            lines.append(f"  {self.n_warnings} warning(s), not refused:")
            lines.extend(f"  - {line}" for line in self.warnings)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_name": self.batch_name,
            "success": self.success,
            "n_expectations": self.n_expectations,
            "n_failed": self.n_failed,
            "failed": list(self.failed),
            "n_warnings": self.n_warnings,
            "warnings": list(self.warnings),
            "warning_rows": dict(self.warning_rows),
        }


def _is_critical(result: Any) -> bool:
    return severity_of(result.expectation_config) == "critical"


def has_critical_failure(vr: Any) -> bool:
    """Whether a critical expectation failed in GX's validation result ``vr``."""
    return any(not r.success and _is_critical(r) for r in vr.results)


def _unexpected_rows(results: list[Any]) -> dict[str, int]:
    """Per column (``table`` for table checks): the most rows one failed result found."""
    rows: dict[str, int] = {}
    for r in results:
        column = str(r.expectation_config.kwargs.get("column") or "table")
        n = int((r.result or {}).get("unexpected_count") or 0)
        rows[column] = max(rows.get(column, 0), n)
    return rows


def report_of(
    vr: Any,
    frame: pd.DataFrame,
    suite: Any,
    batch_name: str,
    data_docs: tuple[Path | None, Path | None] = (None, None),
) -> ValidationReport:
    """The report of GX's validation result ``vr`` of ``frame`` (the model inputs validated)
    against ``suite``; ``data_docs``: ``(index, page)``. Failed results are split by severity:
    critical ones decide ``success``, the others are warnings (left out on a column that has a
    critical failure)."""
    index, page = data_docs
    order = list((suite.meta or {}).get("columns") or [])
    failed = [r for r in vr.results if not r.success]
    critical = [r for r in failed if _is_critical(r)]
    refused = {r.expectation_config.kwargs.get("column") for r in critical}
    # a column that broke the contract (missing, text, inf) needs no range warning as well
    warned = [
        r for r in failed
        if not _is_critical(r) and r.expectation_config.kwargs.get("column") not in refused
    ]
    return ValidationReport(
        batch_name=batch_name,
        success=not critical,
        n_expectations=len(vr.results),
        failed=failure_lines(critical, frame, order),
        data_docs_index=index,
        data_docs_page=page,
        n_failed=len(critical),
        warnings=failure_lines(warned, frame, order),
        warning_rows=_unexpected_rows(warned),
        raw=jsonable(vr.to_json_dict()),
    )


# --------------------------------------------------------------------------- one expectation
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


def _what(cfg: Any, check: str | None, kw: dict[str, Any]) -> str:
    """What the expectation asks, in words."""
    if check == "numeric" or cfg.type == "expect_column_values_to_be_in_type_list":
        return "must be numeric"
    if check == "time_order":
        return "must be strictly increasing (a series sorted by time, no duplicated timestamps)"
    if check == "finite":
        return "values must be finite"
    if check == "range" or cfg.type == "expect_column_values_to_be_between":
        return f"values between [{_fmt(kw.get('min_value'))}, {_fmt(kw.get('max_value'))}]"
    if check == "not_null" or cfg.type == "expect_column_values_to_not_be_null":
        return "must not be null"
    args = ", ".join(f"{a}={v!r}" for a, v in kw.items() if a != "column")
    return f"{cfg.type}({args})"


def _describe(result: Any) -> str:
    """One readable line for a failed expectation result."""
    cfg = result.expectation_config
    kw = dict(cfg.kwargs)
    res = dict(result.result or {})
    check = (cfg.meta or {}).get("check")
    col = kw.get("column")
    where = f"column {col!r}" if col is not None else "table"
    n = res.get("element_count")
    k = res.get("unexpected_count")
    counted = f"{k} of {n} rows" if k is not None and n is not None else None
    what = _what(cfg, check, kw)

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


# --------------------------------------------------------------------------- a whole result
def _check_of(result: Any) -> str | None:
    return (result.expectation_config.meta or {}).get("check")


def _non_numbers(values: pd.Series, limit: int = 3) -> str:
    present = values[values.notna()]
    bad = present[pd.to_numeric(present, errors="coerce").isna()]
    shown = list(dict.fromkeys(repr(v) for v in bad.head(1000).tolist()))[:limit]
    return f" (e.g. {', '.join(shown)})" if shown else ""


def failure_lines(results: Any, frame: pd.DataFrame, column_order: list[str]) -> list[str]:
    """One readable line per failed expectation among ``results`` (GX's expectation results,
    or a whole validation result) of ``frame``: table-level first, then per column in the
    suite's column order. A missing column gets one line instead of one per expectation; a
    non-numeric column gets its type failure only (its range checks cannot mean anything)."""
    table: list[str] = []
    by_column: dict[str, list[Any]] = {}
    for result in getattr(results, "results", results):
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
