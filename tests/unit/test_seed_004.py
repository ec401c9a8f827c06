"""Every code example of seed 004 (fusionlab-learn's anomaly-detection exercise) runs.

The blocks live in ``tests/seed_examples/seed_004_*.py`` as extracted by ``extract.py``
(``fusionlab.nn.anomaly_detection`` / ``fusionlab.nn.utils`` -> ``anomaly_models``, nothing else).
They run in order in one namespace, as a reader pastes them into a notebook, with matplotlib's
non-interactive Agg backend (``plt.show()`` draws nothing). Exercise 1 trains the LSTM autoencoder
on a sine wave with two injected anomalies and must flag them.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import keras
import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "seed_examples"


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    paths = sorted(EXAMPLES.glob("seed_004_*.py"))
    assert len(paths) == 12, [p.name for p in paths]
    keras.utils.set_random_seed(0)  # the seed leaves weight init unseeded; a reader's run varies
    workdir = tmp_path_factory.mktemp("seed_004")
    namespace: dict = {"__name__": "seed_004"}
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)  # the first block creates an output folder in the working directory
        with contextlib.redirect_stdout(out):
            for path in paths:
                exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102
    plt.close("all")
    return out.getvalue(), namespace, workdir


def test_prints_the_shapes_the_seed_shows(seed_run):
    printed, _, workdir = seed_run
    assert "Created sequences for autoencoder. X_train shape: (381, 20, 1)" in printed
    assert "Reconstruction errors shape: (381,)" in printed
    assert "Input features shape for scorer: (16, 64)" in printed
    assert "Output anomaly scores shape: (16, 1)" in printed
    assert "Input y_true shape: (4, 10, 1)" in printed
    assert "Input y_pred shape: (4, 10, 1)" in printed
    assert printed.count("Output anomaly scores shape: (4, 1)") == 2
    assert "Training finished." in printed and "Final training loss (MSE): " in printed
    assert (workdir / "anomaly_detection_exercise_outputs").is_dir()


def test_exercise_1_flags_the_injected_periods(seed_run):
    _, ns, _ = seed_run
    flagged = np.flatnonzero(ns["df_exercise"]["Is_Anomaly"].to_numpy())
    # The seed maps each window's error to the window's last point: windows touching the
    # anomalies at points 50-59 and 150-154 end at points 50-78 and 150-173.
    first = (flagged >= 45) & (flagged < 85)
    second = (flagged >= 145) & (flagged < 180)
    assert first.any() and second.any(), flagged
    assert (first | second).mean() >= 0.8, flagged
    assert len(flagged) == 19  # 5 % of the 381 window errors lie above the 95th percentile


def test_exercise_3_scores_are_the_step_errors_aggregated(seed_run):
    _, ns, _ = seed_run
    y_true, y_pred = ns["y_true_ex3"].numpy(), ns["y_pred_ex3_np"]
    per_step = np.abs(y_true - y_pred).mean(axis=-1)
    mean_scores = ns["anomaly_scores_mean_ex3"].numpy()
    max_scores = ns["anomaly_scores_max_ex3"].numpy()
    np.testing.assert_allclose(mean_scores[:, 0], per_step.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(max_scores[:, 0], per_step.max(axis=1), rtol=1e-6)
    assert int(np.argmax(max_scores[:, 0])) == 1  # the sample with the injected +4 error
    assert max_scores[1, 0] == pytest.approx(abs(y_pred[1, 3, 0] - y_true[1, 3, 0]), rel=1e-6)
