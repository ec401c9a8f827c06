"""Every code example of seeds 000, 001 and 002 runs with only the import path changed.

The examples live in ``tests/seed_examples/`` as extracted by ``extract.py`` (kerasfactory ->
anomaly_models, ``.h5`` -> ``.weights.h5``, nothing else). The blocks of one document run in
order in one namespace, as a reader pastes them into a notebook, and must print what the
seeds print.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "seed_examples"
SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"


def run_document(doc: str, tmp_path: Path, monkeypatch, setup: dict | None = None) -> tuple[str, dict]:
    monkeypatch.chdir(tmp_path)  # the examples save files into the working directory
    namespace: dict = {"__name__": f"seed_{doc}"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for path in sorted(EXAMPLES.glob(f"seed_{doc}_*.py")):
            namespace.update((setup or {}).get(path.name, {}))
            exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102
    return out.getvalue(), namespace


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed documents (../shared/seeds) are not beside this checkout")
def test_vendored_examples_equal_a_fresh_extraction():
    import importlib.util

    spec = importlib.util.spec_from_file_location("extract", EXAMPLES / "extract.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = module.extract(SEEDS)
    vendored = {p.name: p.read_text() for p in EXAMPLES.glob("seed_*.py")}
    assert fresh == vendored


@pytest.mark.parametrize("doc", ["000", "001"])
def test_numerical_anomaly_detection_seed(doc, tmp_path, monkeypatch):
    printed, ns = run_document(doc, tmp_path, monkeypatch)
    assert "Input shape: (32, 5)" in printed
    assert "Anomaly scores shape: (32, 5)" in printed
    assert "Outlier detection predictions shape: (100, 1)" in printed
    assert "Anomaly scores shape: (100, 15)" in printed
    # the seed defines these two and leaves the calls commented out: they must run too
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ns["analyze_anomaly_detection"]()
        ns["analyze_reconstruction"]()
    text = out.getvalue()
    assert text.count("Anomaly mean = ") == 3
    assert "Input shape: (50, 10)" in text and "Anomaly scores shape: (50, 10)" in text
    assert len(ns["create_anomaly_detection_network"]().outputs) == 5


@pytest.mark.slow
def test_autoencoder_seed(tmp_path, monkeypatch):
    # The seed's metrics example uses `test_labels` without defining it; a reader has their own.
    setup = {"seed_002_05.py": {"test_labels": np.random.default_rng(0).integers(0, 2, 100)}}
    printed, ns = run_document("002", tmp_path, monkeypatch, setup)
    assert "dict_keys(['reconstruction_error', 'anomaly', 'anomaly_score'])" in printed
    assert "Anomalies detected: " in printed and "Anomaly scores: [" in printed
    assert "Accuracy: " in printed and "Precision: " in printed and "Recall: " in printed
    assert (tmp_path / "autoencoder_model.keras").is_file()
    assert (tmp_path / "autoencoder_weights.weights.h5").is_file()
    assert ns["model"].threshold == 2.0 and ns["loaded_model"].median == ns["model"].median
    assert ns["reconstructions"].shape == (100, 32)
