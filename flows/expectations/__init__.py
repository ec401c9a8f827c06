"""Great Expectations for the pipeline: the suite built from the training split, the quick
check, running a validation, and reading its results.

=====================  ==============================================================
module                 job
=====================  ==============================================================
``context``            the GX file context ``<root>/gx`` and its Data Docs site
``suite``              building the suite from the training split and ``params.validate``;
                       its JSON (save, load)
``quick_check``        the numpy pre-check that lets a chunk pass without GX
``run``                validating a frame against a suite (:class:`Validator`: one per
                       scoring run, keeps GX's objects between batches)
``results``            :class:`ValidationReport` and the readable failure lines
=====================  ==============================================================

Importing this package does not import GX (it takes seconds): each function does on first use.
The validate step (:mod:`flows.steps.validate`), scoring and the data-quality report use it.
"""

from __future__ import annotations

from flows.expectations.context import (
    DATA_DOCS_SITE,
    data_docs_paths,
    file_url_to_path,
    gx_context,
    gx_context_dir,
    gx_run_name,
    import_gx,
)
from flows.expectations.quick_check import quick_check
from flows.expectations.results import (
    ValidationReport,
    failure_lines,
    has_critical_failure,
    report_of,
)
from flows.expectations.run import (
    KEPT_DEFINITIONS,
    RESULT_FORMATS,
    Validator,
    checkpoint,
    validate_frame,
)
from flows.expectations.suite import (
    CHECK_SEVERITY,
    NUMERIC_TYPES,
    SUITE_NAME,
    build_suite,
    copy_suite,
    load_suite,
    model_inputs,
    range_bounds,
    save_suite,
    severity_of,
    suite_json,
)

__all__ = [
    "CHECK_SEVERITY",
    "DATA_DOCS_SITE",
    "KEPT_DEFINITIONS",
    "NUMERIC_TYPES",
    "RESULT_FORMATS",
    "SUITE_NAME",
    "ValidationReport",
    "Validator",
    "build_suite",
    "checkpoint",
    "copy_suite",
    "data_docs_paths",
    "failure_lines",
    "file_url_to_path",
    "gx_context",
    "gx_context_dir",
    "gx_run_name",
    "has_critical_failure",
    "import_gx",
    "load_suite",
    "model_inputs",
    "quick_check",
    "range_bounds",
    "report_of",
    "save_suite",
    "severity_of",
    "suite_json",
    "validate_frame",
]
