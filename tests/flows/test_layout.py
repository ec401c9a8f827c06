"""flows.layout: the one catalog of artifact paths, and dvc.yaml declaring exactly those paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.config import load_params
from flows.layout import SPLIT_NAMES, Layout

REPO = Path(__file__).resolve().parents[2]


def declared(entries: list) -> list[str]:
    """File names of a dvc.yaml list: plain strings or one-key mappings with options."""
    return [e if isinstance(e, str) else next(iter(e)) for e in entries or []]


def test_dvc_yaml_declares_the_layout_of_the_default_settings() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    expected = Layout.of(load_params(REPO / "params.yaml"), REPO).stage_files()
    assert list(stages) == list(expected)  # the same stages, in pipeline order
    for name, files in expected.items():
        stage = stages[name]
        assert stage["cmd"] == f"anomaly stage {name}"
        assert declared(stage.get("deps")) == files["deps"], name
        outs = [*declared(stage.get("outs")), *declared(stage.get("metrics")),
                *declared(stage.get("plots"))]
        assert sorted(outs) == sorted(files["outs"]), name


def test_paths_follow_the_settings(tmp_path) -> None:
    params = load_params(REPO / "params.yaml", [
        "data.snapshot_dir=snap", "data.split_dir=/abs/splits", "scoring.scored_dir=out",
        "report.reports_dir=rep",
    ])
    layout = Layout.of(params, tmp_path)
    assert layout.snapshot == tmp_path / "snap/snapshot.parquet"
    assert layout.suite == tmp_path / "snap/expectation_suite.json"
    assert layout.split("validation") == Path("/abs/splits/validation.parquet")
    assert list(layout.splits) == list(SPLIT_NAMES)
    assert layout.scoring.scored == tmp_path / "out"
    assert layout.report_dir("2026-12-01") == tmp_path / "rep/2026-12-01"
    assert layout.version_suite(7) == tmp_path / "snap/suites/7.json"
    assert layout.drift_reference == tmp_path / "snap/drift_reference.parquet"
    assert layout.version_reference(7) == tmp_path / "snap/references/7.parquet"
    assert layout.relative(layout.model) == "models/model.keras"
    assert layout.relative("/elsewhere/x.csv") == "/elsewhere/x.csv"
    with pytest.raises(ValueError, match=r"unknown split 'holdout'; splits: train, validation, test"):
        layout.split("holdout")
