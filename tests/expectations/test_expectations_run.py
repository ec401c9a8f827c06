"""flows.expectations.run: validating a frame in the GX context, with and without Data Docs,
what GX records, and the Validator that looks GX's objects up once per suite."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from flows.expectations import Validator, build_suite, copy_suite, gx_context, validate_frame
from flows.expectations import run as run_module


def _stored_runs(gx_dir: Path) -> list[str]:
    """Run names of the validation results stored in the GX context at ``gx_dir``."""
    keys = gx_context(gx_dir).validation_results_store.list_keys()
    return sorted(k.run_id.run_name for k in keys)


@pytest.fixture
def lookups(monkeypatch) -> list[Path]:
    """The context folders the validations open a GX context for, in order (a spy)."""
    opened: list[Path] = []

    def spy(context_dir: Path):
        opened.append(Path(context_dir))
        return gx_context(context_dir)

    monkeypatch.setattr(run_module, "gx_context", spy)
    return opened


def test_data_docs_inside_the_context_dir(batch, suite, check, gx_dir) -> None:
    report = check(batch, suite, "docs")
    assert report.data_docs_index is not None and report.data_docs_index.name == "index.html"
    assert report.data_docs_index.is_file()
    assert report.data_docs_index.is_relative_to(gx_dir)
    assert report.data_docs_page is not None and report.data_docs_page.is_file()
    assert report.data_docs_page.is_relative_to(gx_dir)
    assert "docs" in report.data_docs_page.relative_to(gx_dir).parts  # named after the run


def test_without_docs_a_pass_builds_no_page_and_a_failure_does(batch, suite, tmp_path) -> None:
    gx_dir = tmp_path / "gx"
    passed = validate_frame(batch, suite, gx_dir, "quiet-pass", build_docs=False)
    assert passed.success
    # no Data Docs rebuild for a pass: no site at all yet (pages are <run name>/<time>/*.html)
    assert passed.data_docs_page is None
    assert not list(gx_dir.rglob("*.html"))
    bad = batch.copy()
    bad.loc[5, "b"] = np.nan  # a critical failure (a range warning rebuilds no page)
    warned = validate_frame(batch.assign(b=batch["b"] * 100), suite, gx_dir, "quiet-warn",
                            build_docs=False)
    assert warned.success and warned.warnings and warned.data_docs_page is None
    failed = validate_frame(bad, suite, gx_dir, "quiet-fail", build_docs=False)
    assert not failed.success and failed.failed
    assert failed.data_docs_page is not None and failed.data_docs_page.is_file()
    assert "quiet-fail" in failed.data_docs_page.parts  # pages are named after the run


def test_without_docs_each_call_is_stored_and_a_removed_gx_folder_is_recreated(
    batch, suite, tmp_path, lookups
) -> None:
    gx_dir = tmp_path / "gx"
    validator = Validator(gx_dir)
    for name in ("first", "second"):
        assert validator.validate(batch, suite, name, build_docs=False).success
    assert _stored_runs(gx_dir) == ["first", "second"]
    assert lookups == [gx_dir]  # the definition looked up by the first call is kept
    # a context whose folder was deleted meanwhile (a person cleaning up under a long-lived
    # `anomaly serve`) is set up again rather than failing every later batch
    shutil.rmtree(gx_dir)
    bad = batch.copy()
    bad.loc[5, "b"] = np.nan
    failed = validator.validate(bad, suite, "after-removal", build_docs=False)
    assert not failed.success and failed.failed[0].startswith("column 'b': must not be null")
    assert _stored_runs(gx_dir) == ["after-removal"]
    assert failed.data_docs_page is not None and failed.data_docs_page.is_file()
    assert lookups == [gx_dir, gx_dir]  # looked up again once, after the kept one failed


def test_a_validator_reuses_its_definition_and_one_off_calls_do_not(
    batch, suite, tmp_path, lookups
) -> None:
    gx_dir = tmp_path / "gx"
    validator = Validator(gx_dir)
    for name in ("a", "b", "c"):
        validator.validate(batch, suite, name, build_docs=False)
    assert len(lookups) == 1
    equal = copy_suite(suite)
    validator.validate(batch, equal, "equal suite", build_docs=False)
    assert len(lookups) == 1  # an equal suite (compared by its JSON) reuses it too
    for name in ("d", "e"):
        validate_frame(batch, suite, gx_dir, name, build_docs=False)
    assert len(lookups) == 3
    other = Validator(gx_dir)  # no state shared between Validators
    other.validate(batch, suite, "f", build_docs=False)
    assert len(lookups) == 4


def test_a_validator_keeps_the_most_recent_suites(
    train, features, make_params, batch, suite, tmp_path, lookups
) -> None:
    second = build_suite(train, features, make_params(), name="second")
    validator = Validator(tmp_path / "gx", kept=1)
    for s in (suite, second, suite):
        validator.validate(batch, s, s.name, build_docs=False)
    assert len(lookups) == 3  # one kept: switching suites looks up again
    validator.validate(batch, suite, "again", build_docs=False)
    assert len(lookups) == 3


def test_result_format_sets_how_much_gx_records(batch, suite, tmp_path) -> None:
    bad = batch.copy()
    bad.loc[5, "b"] = 1000.0
    recorded = {}
    for fmt in ("BASIC", "SUMMARY"):
        report = validate_frame(bad, suite, tmp_path / "gx", fmt, build_docs=False,
                                result_format=fmt)
        (failure,) = [r for r in report.raw["results"] if not r["success"]]
        recorded[fmt] = failure["result"]
        assert report.warnings == [report.warnings[0]]
        assert "1 of 100 rows outside" in report.warnings[0]
    assert recorded["BASIC"]["partial_unexpected_list"] == [1000.0]
    assert "partial_unexpected_index_list" not in recorded["BASIC"]
    assert recorded["SUMMARY"]["partial_unexpected_index_list"] == [5]
    assert recorded["SUMMARY"]["partial_unexpected_counts"] == [{"value": 1000.0, "count": 1}]
    with pytest.raises(ValueError, match=r"result_format must be one of .* got 'FULL'"):
        validate_frame(batch, suite, tmp_path / "gx", "x", result_format="FULL")
