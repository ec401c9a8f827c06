"""flows.expectations.context: the project's GX file context, run names, Data Docs paths."""

from __future__ import annotations

from pathlib import Path

from flows.expectations import file_url_to_path, gx_context, gx_context_dir, gx_run_name


def test_the_context_folder_is_gx_under_the_root(tmp_path) -> None:
    assert gx_context_dir(tmp_path) == tmp_path / "gx"


def test_a_file_context_is_created_with_progress_bars_off(tmp_path) -> None:
    ctx = gx_context(tmp_path / "gx")
    assert (tmp_path / "gx" / "great_expectations.yml").is_file()
    bars = ctx.variables.progress_bars
    assert (bars.get("globally") if isinstance(bars, dict) else bars.globally) is False
    again = gx_context(tmp_path / "gx")  # an existing context is opened as it is
    assert again.root_directory == ctx.root_directory


def test_run_names_keep_only_safe_characters() -> None:
    assert gx_run_name("day1.parquet rows 0-999") == "day1.parquet_rows_0-999"
    assert gx_run_name("a/b\\c:d") == "a_b_c_d"
    assert gx_run_name("..") == "batch"


def test_file_urls_become_paths() -> None:
    assert file_url_to_path("file:///tmp/gx/a%20b/index.html") == Path("/tmp/gx/a b/index.html")
    assert file_url_to_path("/plain/path.html") == Path("/plain/path.html")
    assert file_url_to_path("https://example.org/x.html") is None
    assert file_url_to_path(None) is None and file_url_to_path("") is None
