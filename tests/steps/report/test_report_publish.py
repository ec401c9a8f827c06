"""Writing the report folder and swapping it in whole (:mod:`flows.steps.report.publish`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from flows.steps.report import publish, remove_leftovers, staging_folder, write_report


def test_write_report_puts_plots_page_and_json_in_staging_and_points_at_the_final_folder(
    busy_report, tmp_path
):
    staging = tmp_path / "staging"
    staging.mkdir()

    write_report(busy_report, staging)

    assert sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*")) == [
        "plots", "plots/bins.png", "plots/psi.png", "plots/rows.png", "plots/trend.png",
        "report.html", "report.json"]
    assert busy_report.plots["psi"] == busy_report.folder / "plots" / "psi.png"
    numbers = json.loads((staging / "report.json").read_text())
    assert numbers["plots"] == {n: f"plots/{n}.png" for n in ("trend", "rows", "psi", "bins")}
    assert (staging / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_publish_replaces_the_previous_report_of_the_day_whole(tmp_path):
    reports = tmp_path / "reports"
    final = reports / "2026-05-02"
    final.mkdir(parents=True)
    (final / "stale.txt").write_text("from an earlier run")

    with staging_folder(reports, "2026-05-02") as staging:
        assert staging.parent == reports and staging.name.startswith(".2026-05-02.staging-")
        (staging / "report.html").write_text("new")
        publish(staging, final, reports / ".lock")

    assert sorted(p.name for p in final.iterdir()) == ["report.html"]
    assert sorted(p.name for p in reports.iterdir()) == [".lock", "2026-05-02"]  # no old copy


def test_a_failed_run_leaves_no_staging_folder_and_the_next_removes_dead_ones(tmp_path):
    reports = tmp_path / "reports"
    with pytest.raises(RuntimeError, match="boom"), staging_folder(reports, "2026-05-02"):
        raise RuntimeError("boom")
    assert list(reports.iterdir()) == []

    # a staging folder of a process that is gone, one of a live process, a swapped-out report
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (reports / f".2026-05-01.staging-{dead}-0000aaaa").mkdir()
    (reports / f".2026-05-01.staging-{os.getpid()}-0000bbbb").mkdir()
    (reports / ".2026-04-30.old-0000cccc").mkdir()

    remove_leftovers(reports)

    assert [p.name for p in reports.iterdir()] == [f".2026-05-01.staging-{os.getpid()}-0000bbbb"]
