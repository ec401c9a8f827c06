"""The scoring flow end to end: real Prefect (temporary API), MLflow (SQLite registry with a model
trained and registered by the real training flow), Great Expectations and Keras.

One small project is trained once for the module; each test scores into its own incoming /
scored / quarantine folders (``--set scoring.*_dir=...``), so tests share the registry only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.steps.score import Ledger
from tests.e2e.project import BIN, cli_env, make_project

# e2e: real services and trainings; the global limit of pyproject.toml is too short for them
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

FEATURES = ["temp", "pressure", "flow", "vibration"]
SCORE_COLUMNS = ["anomaly_score", "is_anomaly", *(f"contribution_{f}" for f in FEATURES),
                 "out_of_range"]
MODEL_COLUMNS = ["model_name", "model_version", "model_alias", "scored_at"]


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def project(tmp_path_factory, prefect_api):
    """A trained project: registered version 1 (champion); its detector kept as v1.keras."""
    from flows.config import load_params
    from flows.training import training_flow

    root = make_project(tmp_path_factory.mktemp("scoring"))
    results = training_flow(params=load_params(root / "params.yaml"), root=str(root))
    assert results["register"].version == 1
    shutil.copy(root / "models" / "model.keras", root / "v1.keras")
    return root


@pytest.fixture
def folders(tmp_path):
    """Per-test incoming / scored / quarantine folders (outside the project)."""
    dirs = {name: tmp_path / name for name in ("incoming", "scored", "quarantine")}
    dirs["incoming"].mkdir()
    return dirs


def overrides(folders, *extra: str) -> list[str]:
    return [
        f"scoring.incoming_dir={folders['incoming']}",
        f"scoring.scored_dir={folders['scored']}",
        f"scoring.quarantine_dir={folders['quarantine']}",
        *extra,
    ]


def settings(project, folders, *extra: str):
    from flows.config import load_params

    return load_params(project / "params.yaml", overrides(folders, *extra))


def good_rows(project, n: int, seed: int) -> pd.DataFrame:
    """Feature rows resampled from the training split: inside the suite's ranges by design."""
    train = pd.read_parquet(project / "data" / "processed" / "train.parquet")
    return train[FEATURES].sample(n, replace=True, random_state=seed).reset_index(drop=True)


def score(project, folders, *extra: str, paths=None):
    from flows.scoring import scoring_flow

    return scoring_flow(paths=paths, params=settings(project, folders, *extra), root=str(project))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def ledger(folders) -> dict:
    return Ledger(folders["scored"]).read()


def no_leftovers(folders) -> None:
    for name in ("scored", "quarantine"):
        if folders[name].exists():
            assert not list(folders[name].rglob("*.tmp")), list(folders[name].rglob("*.tmp"))


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def scored_files(folders) -> list[str]:
    return sorted(p.name for p in folders["scored"].glob("*.parquet"))


def subprocess_env(project) -> dict[str, str]:
    """The CLI's environment, talking to this session's Prefect API (no second temporary API)."""
    from prefect.settings import PREFECT_API_URL

    env = cli_env(project)
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    return env


def start_score(project, folders, *extra: str) -> subprocess.Popen:
    args = [str(BIN / "anomaly"), "score"]
    for o in overrides(folders, *extra):
        args += ["--set", o]
    return subprocess.Popen(args, cwd=project, env=subprocess_env(project), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


# ------------------------------------------------------------------------------ tests
def test_scores_csv_and_parquet_batches_with_the_champion_then_skips_them(project, folders):
    from anomaly_models import AnomalyDetector

    b1 = good_rows(project, 500, seed=1)
    b2 = good_rows(project, 700, seed=2).assign(site="plant-a")  # a passthrough column: kept
    b1.to_csv(folders["incoming"] / "b1.csv", index=False)
    b2.to_parquet(folders["incoming"] / "b2.parquet", index=False)

    summary = score(project, folders, "scoring.passthrough_columns=[site]")

    assert [(b.batch, b.status) for b in summary.batches] == [("b1.csv", "scored"),
                                                              ("b2.parquet", "scored")]
    assert summary.model_version == 1 and summary.model_alias == "champion"
    assert summary.mlflow_run_id
    detector = AnomalyDetector.load(project / "v1.keras")
    for name, batch in (("b1", b1), ("b2", b2)):
        out = pd.read_parquet(folders["scored"] / f"{name}.parquet")
        assert list(out.columns) == [*batch.columns, *SCORE_COLUMNS, *MODEL_COLUMNS]
        pd.testing.assert_frame_equal(out[list(batch.columns)], batch, check_dtype=False)
        expected = detector.score_frame(batch[FEATURES])
        np.testing.assert_allclose(out["anomaly_score"], expected["anomaly_score"], rtol=1e-6)
        np.testing.assert_array_equal(out["is_anomaly"], expected["is_anomaly"])
        assert set(out["model_name"]) == {"anomaly-detector"}
        assert set(out["model_version"]) == {1} and set(out["model_alias"]) == {"champion"}
        assert str(out["scored_at"].dt.tz) == "UTC"
    entries = ledger(folders)["batches"]
    assert sorted(e["batch"] for e in entries.values()) == ["b1.csv", "b2.parquet"]
    assert {e["rows"] for e in entries.values()} == {500, 700}
    by_batch = {e["batch"]: e for e in entries.values()}
    for b in summary.batches:  # each entry: its counts, model version, output and archived input
        e = by_batch[b.batch]
        assert (e["rows"], e["flagged"], e["model_version"], e["model_alias"], e["chunks"]) == (
            b.rows, b.flagged, 1, "champion", 1)
        assert e["sha256"] == b.sha256 and Path(e["output"]).name == Path(b.output).name
        assert Path(e["archived"]).name == b.batch
    assert sorted(p.name for p in (folders["incoming"] / "_done").iterdir()) == [
        "b1.csv", "b2.parquet"]
    pd.testing.assert_frame_equal(pd.read_csv(folders["incoming"] / "_done" / "b1.csv"), b1,
                                  check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_parquet(folders["incoming"] / "_done" / "b2.parquet"),
                                  b2)
    assert not list(folders["incoming"].glob("*.*"))

    # per-batch counts in MLflow, tagged with the model version
    import mlflow

    run = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}").get_run(summary.mlflow_run_id)
    assert run.data.tags["model.version"] == "1"
    assert run.data.metrics["b1.csv/rows"] == 500 and run.data.metrics["b2.parquet/rows"] == 700
    assert run.data.metrics["b1.csv/flagged"] == summary.batches[0].flagged

    # a rerun scores nothing new; the same file given by path, or the same content under another
    # name, is skipped through the ledger
    mtimes = {p.name: p.stat().st_mtime_ns for p in folders["scored"].glob("*.parquet")}
    assert score(project, folders).batches == []
    shutil.copy(folders["incoming"] / "_done" / "b1.csv", folders["incoming"] / "b1-copy.csv")
    again = score(project, folders, paths=[str(folders["incoming"] / "_done" / "b2.parquet")])
    assert [(b.batch, b.status) for b in again.batches] == [("b2.parquet", "skipped")]
    again = score(project, folders)
    assert [(b.batch, b.status) for b in again.batches] == [("b1-copy.csv", "skipped")]
    assert "same content as b1.csv" in again.batches[0].reason
    assert {p.name: p.stat().st_mtime_ns for p in folders["scored"].glob("*.parquet")} == mtimes
    assert len(ledger(folders)["batches"]) == 2
    no_leftovers(folders)


def _bad_batches(project) -> dict[str, tuple[object, str]]:
    """name -> (content: DataFrame or bytes, regex the quarantine reason must match)."""
    good = good_rows(project, 300, seed=9)
    text = good.astype({"flow": object})
    text.loc[17, "flow"] = "twelve"
    nan = good.copy()
    nan.loc[5, "pressure"] = np.nan
    inf = good.copy()
    inf.loc[6, "vibration"] = np.inf
    return {
        "missing_column.csv": (good.drop(columns="temp"), r"missing column\(s\) \['temp'\]"),
        "extra_column.parquet": (good.assign(operator="x"),
                                 r"column\(s\) the model does not know: \['operator'\].*"
                                 r"scoring\.passthrough_columns"),
        "renamed_column.parquet": (good.rename(columns={"flow": "flow_rate"}),
                                   r"missing column\(s\) \['flow'\].*'flow_rate'.*renamed"),
        "text_in_numeric.csv": (text, r"'flow'.*must be numeric"),
        "nan.parquet": (nan, r"'pressure'.*must not be null"),
        "inf.parquet": (inf, r"'vibration'.*finite"),
        "empty.csv": (b"", r"empty file \(0 bytes\)"),
        "header_only.csv": (b"temp,pressure,flow,vibration\n", r"empty file \(a header but 0 rows\)"),
        "corrupt.parquet": (b"PAR1" + bytes(range(256)) * 4, r"cannot read corrupt.parquet as Parquet"),
    }


def test_bad_batches_are_quarantined_with_reports_and_no_row_is_lost(project, folders):
    bad = _bad_batches(project)
    good = {"ok.csv": good_rows(project, 250, seed=3),
            "passthrough_column.parquet": good_rows(project, 260, seed=4).assign(note="kept")}
    originals: dict[str, bytes] = {}
    for name, content in [*((n, c) for n, (c, _) in bad.items()), *good.items()]:
        path = folders["incoming"] / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif name.endswith(".csv"):
            content.to_csv(path, index=False)
        else:
            content.to_parquet(path, index=False)
        originals[name] = path.read_bytes()

    summary = score(project, folders, "scoring.passthrough_columns=[note]")

    status = {b.batch: b for b in summary.batches}
    assert sorted(b.batch for b in summary.scored) == sorted(good)
    assert sorted(b.batch for b in summary.quarantined) == sorted(bad)
    for name, (_, pattern) in bad.items():
        result = status[name]
        assert pd.Series([result.reason]).str.contains(pattern, regex=True).all(), (name, result.reason)
        # the file itself, byte for byte, and its report
        assert (folders["quarantine"] / name).read_bytes() == originals[name]
        report = json.loads((folders["quarantine"] / f"{name}.report.json").read_text())
        assert report["reason"] == result.reason and report["problems"]
        assert report["model"]["version"] == 1 and report["sha256"]
    # zero rows lost: every input row is in exactly one of scored / quarantine
    for name, frame in good.items():
        out = pd.read_parquet(folders["scored"] / name.replace(".csv", ".parquet"))
        assert len(out) == len(frame)
        pd.testing.assert_frame_equal(out[list(frame.columns)], frame, check_dtype=False)
    assert not list(folders["incoming"].glob("*.*"))
    assert sorted(p.name for p in (folders["incoming"] / "_done").iterdir()) == sorted(good)
    quarantined = ledger(folders)["quarantined"]
    assert len(quarantined) == len(bad)
    assert {q["batch"]: q["reason"] for q in quarantined} == {
        name: status[name].reason for name in bad}
    assert {q["quarantined_to"].split("/")[-1] for q in quarantined} == set(bad)
    assert sorted(e["batch"] for e in ledger(folders)["batches"].values()) == sorted(good)
    assert "QUARANTINED" in summary.state_message()
    no_leftovers(folders)


def test_rows_far_outside_the_training_range_are_scored_marked_and_flagged(project, folders):
    """The rows a detector exists for: 2 % of a batch with one feature (a different one per
    row) 100x beyond anything in training is scored, not quarantined; those rows carry
    ``out_of_range`` and come out flagged by the default model; the ledger and the result say
    how many rows were outside, with GX's warning."""
    train = pd.read_parquet(project / "data" / "processed" / "train.parquet")
    batch = good_rows(project, 500, seed=21)
    far = list(range(0, 500, 50))
    for i, row in enumerate(far):
        feature = FEATURES[i % len(FEATURES)]
        batch.loc[row, feature] = 100 * float(train[feature].abs().max())
    batch.to_parquet(folders["incoming"] / "burst.parquet", index=False)

    summary = score(project, folders)

    (result,) = summary.batches
    assert result.status == "scored", result.reason
    out = pd.read_parquet(folders["scored"] / "burst.parquet")
    expected = np.zeros(500, dtype="int64")
    expected[far] = 1
    np.testing.assert_array_equal(out["out_of_range"], expected)
    assert out.loc[far, "is_anomaly"].all(), out.loc[far, ["anomaly_score", "is_anomaly"]]
    assert result.out_of_range_rows == len(far)
    (entry,) = ledger(folders)["batches"].values()
    assert entry["out_of_range_rows"] == len(far)
    assert entry["out_of_range"] == {f: (len(far) + 3 - i) // 4 for i, f in enumerate(FEATURES)}
    assert entry["warnings"] and all("values between" in w for w in entry["warnings"])
    assert not folders["quarantine"].exists() or not any(folders["quarantine"].iterdir())
    import mlflow

    run = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}").get_run(summary.mlflow_run_id)
    assert run.data.metrics["burst.parquet/out_of_range_rows"] == len(far)
    assert run.data.metrics["out_of_range_rows"] == len(far)


def _gx_recorded(project, names) -> set[str]:
    """Which of ``names`` (batch names) have a GX validation stored in the project's context."""
    from flows.expectations.context import gx_context, gx_run_name

    store = gx_context(project / "gx").validation_results_store
    runs = {getattr(getattr(k, "run_id", None), "run_name", None) for k in store.list_keys()}
    return {n for n in names if gx_run_name(n) in runs}


def test_batches_scored_in_groups_with_gx_on_the_first_of_each_group_when_asked(
    project, folders
):
    """``scoring.batches_per_task=3`` and ``scoring.gx_every_batch=false``: six batches in two
    tasks, each scored once on its own (its output, its ledger entry); GX records the first
    batch of each group and the batch the quick check does not pass (an inf: quarantined with
    GX's reason); the others are checked by the quick check only, yet their out-of-range rows
    are still counted. With the default ``gx_every_batch`` every batch is GX-validated."""
    from anomaly_models import AnomalyDetector

    train = pd.read_parquet(project / "data" / "processed" / "train.parquet")
    batches = {f"grp{i}.parquet": good_rows(project, 300, seed=80 + i) for i in range(5)}
    batches["grp1.parquet"].loc[7, "temp"] = 100 * float(train["temp"].abs().max())
    bad = good_rows(project, 200, seed=90)
    bad.loc[3, "pressure"] = np.inf
    for name, frame in batches.items():
        frame.to_parquet(folders["incoming"] / name, index=False)
    bad.to_parquet(folders["incoming"] / "grp9-inf.parquet", index=False)

    summary = score(project, folders, "scoring.batches_per_task=3",
                    "scoring.gx_every_batch=false")

    assert [(b.batch, b.status) for b in summary.batches] == [
        *((n, "scored") for n in batches), ("grp9-inf.parquet", "quarantined")]
    assert "'pressure'" in summary.quarantined[0].reason, summary.quarantined[0].reason
    assert "must be finite" in summary.quarantined[0].reason, summary.quarantined[0].reason
    detector = AnomalyDetector.load(project / "v1.keras")
    for name, frame in batches.items():
        out = pd.read_parquet(folders["scored"] / name)
        expected = detector.score_frame(frame[FEATURES])
        np.testing.assert_allclose(out["anomaly_score"], expected["anomaly_score"], rtol=1e-6)
    entries = {e["batch"]: e for e in ledger(folders)["batches"].values()}
    assert sorted(entries) == sorted(batches)
    assert entries["grp1.parquet"]["out_of_range_rows"] == 1
    assert entries["grp1.parquet"]["warnings"] == []  # GX did not see it: no warning lines
    assert [q["batch"] for q in ledger(folders)["quarantined"]] == ["grp9-inf.parquet"]
    assert _gx_recorded(project, [*batches, "grp9-inf.parquet"]) == {
        "grp0.parquet", "grp3.parquet", "grp9-inf.parquet"}

    # the default: GX validates (and records) every batch, groups or not
    again = {f"grp-every{i}.parquet": good_rows(project, 100, seed=95 + i) for i in range(3)}
    for name, frame in again.items():
        frame.to_parquet(folders["incoming"] / name, index=False)
    summary = score(project, folders, "scoring.batches_per_task=3")
    assert [(b.batch, b.status) for b in summary.batches] == [(n, "scored") for n in again]
    assert _gx_recorded(project, again) == set(again)
    no_leftovers(folders)


def test_missing_alias_fails_with_how_to_promote_and_touches_nothing(project, folders):
    from flows.registry import RegistryError

    good_rows(project, 50, seed=5).to_csv(folders["incoming"] / "b.csv", index=False)
    before = snapshot(folders["incoming"])
    started = time.perf_counter()
    with pytest.raises(RegistryError, match=r"has alias 'staging'.*anomaly promote VERSION"):
        score(project, folders, "scoring.alias=staging")
    assert time.perf_counter() - started < 60  # not retried: retrying cannot create an alias
    assert snapshot(folders["incoming"]) == before
    assert not folders["scored"].exists() and not folders["quarantine"].exists()


def test_unreachable_registry_is_retried_then_fails_clearly_and_touches_nothing(
    project, folders, monkeypatch
):
    from flows.registry import RegistryError

    with socket.socket() as s:  # a local port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    good_rows(project, 50, seed=6).to_parquet(folders["incoming"] / "b.parquet", index=False)
    before = snapshot(folders["incoming"])
    # the retries of params.yaml: 2 attempts per registry call, 1 task retry 0.1 s later
    retries = ("retries.attempts=2", "retries.delay_seconds=0.05", "retries.task_retries=1",
               "retries.task_delay_seconds=0.1")
    with pytest.raises(RegistryError, match=r"(?s)failed after 2 attempts.*reachable"):
        score(project, folders, *retries)
    assert snapshot(folders["incoming"]) == before
    assert not folders["scored"].exists() and not folders["quarantine"].exists()


@pytest.mark.parametrize("ledger_db", ["sqlite", "postgresql"])
def test_two_concurrent_cli_runs_score_each_batch_exactly_once(project, folders, ledger_db,
                                                               request):
    url = request.getfixturevalue("postgres_url") if ledger_db == "postgresql" else None
    extra = [f"scoring.ledger_url={url}"] if url else []
    names = [f"part-{i}.csv" for i in range(6)]
    for i, name in enumerate(names):
        good_rows(project, 200 + i, seed=20 + i).to_csv(folders["incoming"] / name, index=False)
    good_rows(project, 100, seed=30).drop(columns="vibration").to_csv(
        folders["incoming"] / "part-9-bad.csv", index=False)

    runs = [start_score(project, folders, *extra) for _ in range(2)]
    outputs = [run.communicate(timeout=400) for run in runs]

    codes = sorted(run.returncode for run in runs)
    assert codes == [0, 3], outputs  # exit 3 = the run that quarantined the bad batch
    lines = [line for out, _ in outputs for line in out.splitlines()]
    print(*(f"run {i}: {out}" for i, (out, _) in enumerate(outputs)), sep="\n")  # who did what
    for name in names:
        assert sum(line.startswith("scored") and f" {name}:" in line for line in lines) == 1, lines
    assert sum(line.startswith("quarantined") for line in lines) == 1
    _, bad_err = next(o for o, run in zip(outputs, runs, strict=True) if run.returncode == 3)
    assert "part-9-bad.csv" in bad_err and "['vibration']" in bad_err
    assert scored_files(folders) == sorted(n.replace(".csv", ".parquet") for n in names)
    state = Ledger(folders["scored"], url).read()
    assert sorted(e["batch"] for e in state["batches"].values()) == names
    for i, name in enumerate(names):
        assert len(pd.read_parquet(folders["scored"] / name.replace(".csv", ".parquet"))) == 200 + i
    assert state["in_progress"] == {} and len(state["quarantined"]) == 1
    assert (folders["scored"] / "_ledger.db").exists() == (url is None)
    no_leftovers(folders)


def _wait_for(condition, process: subprocess.Popen, timeout: float = 300) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def _complete_outputs_only(folders, rows: dict[str, int]) -> None:
    """Every <batch>.parquet present is whole: readable, with all rows of its batch."""
    for path in folders["scored"].glob("*.parquet"):
        assert len(pd.read_parquet(path)) == rows[path.stem], path


def test_sigkill_mid_run_then_rerun_scores_each_batch_exactly_once(project, folders):
    rows = {f"batch-{i}": 1500 + i for i in range(4)}
    for i, (stem, n) in enumerate(rows.items()):
        good_rows(project, n, seed=40 + i).to_parquet(folders["incoming"] / f"{stem}.parquet",
                                                      index=False)
    chunked = "scoring.chunk_rows=400"  # several chunks per batch: a window to kill in

    # 1. killed while the first output is being written (only its .tmp exists; the ledger's own
    #    the claim is in the ledger by then)
    run = start_score(project, folders, chunked)
    hit = _wait_for(lambda: any(folders["scored"].glob("*.parquet.tmp")), run)
    os.kill(run.pid, signal.SIGKILL)
    _, err = run.communicate(timeout=60)
    assert hit, f"the run ended before writing anything: {err[-3000:]}"
    assert scored_files(folders) == []  # no partial <batch>.parquet, only the .tmp
    assert ledger(folders)["in_progress"]  # the dead run's claim

    # 2. killed again right after its first complete output appeared
    run = start_score(project, folders, chunked)
    _wait_for(lambda: any(folders["scored"].glob("*.parquet")), run)
    os.kill(run.pid, signal.SIGKILL)
    run.communicate(timeout=60)
    _complete_outputs_only(folders, rows)

    # 3. a clean rerun finishes the job: each batch exactly once, nothing left over
    summary = score(project, folders, chunked)
    assert summary.scored and {b.status for b in summary.batches} <= {"scored", "skipped"}, (
        summary.lines())
    assert scored_files(folders) == [f"{stem}.parquet" for stem in rows]
    _complete_outputs_only(folders, rows)
    state = ledger(folders)
    assert sorted(e["batch"] for e in state["batches"].values()) == [f"{s}.parquet" for s in rows]
    assert state["in_progress"] == {}
    assert not list(folders["incoming"].glob("*.parquet"))
    done = folders["incoming"] / "_done"
    assert sorted(p.name for p in done.iterdir()) == [f"{stem}.parquet" for stem in rows]
    assert {p.stem: pq_rows(p) for p in done.iterdir()} == rows
    no_leftovers(folders)
    assert score(project, folders, chunked).batches == []


def test_a_promotion_takes_effect_at_the_next_run(project, folders):
    from flows import registry
    from flows.config import load_params
    from flows.training import training_flow

    params = load_params(project / "params.yaml")
    v2 = training_flow(
        params=load_params(project / "params.yaml",
                           ["registry.promotion=manual", "train.seed=1", "train.epochs=2"]),
        root=str(project),
    )["register"]
    assert v2.version == 2 and "champion" not in v2.registration.aliases
    try:
        good_rows(project, 120, seed=7).to_csv(folders["incoming"] / "before.csv", index=False)
        assert score(project, folders).model_version == 1

        registry.promote(params.registry, params.retries, project, 2)  # what `anomaly promote 2` does
        good_rows(project, 130, seed=8).to_csv(folders["incoming"] / "after.csv", index=False)
        summary = score(project, folders)
        assert summary.model_version == 2

        before = pd.read_parquet(folders["scored"] / "before.parquet")
        after = pd.read_parquet(folders["scored"] / "after.parquet")
        assert set(before["model_version"]) == {1} and set(after["model_version"]) == {2}
        cached = json.loads((project / "data" / "interim" / "suites" / "2.json").read_text())
        assert cached["name"] == "anomaly-detector_v2" and cached["expectations"]
        assert cached["meta"]["registered_model"]["version"] == 2
        assert cached["meta"]["registered_model"]["name"] == "anomaly-detector"
        entries = {e["batch"]: e for e in ledger(folders)["batches"].values()}
        assert entries["before.csv"]["model_version"] == 1
        assert entries["after.csv"]["model_version"] == 2
    finally:
        registry.promote(params.registry, params.retries, project, 1)


def test_cli_rejects_a_missing_path_before_any_work(project, folders):
    (project / "notes.txt").write_text("not data")
    done = subprocess.run(
        [str(BIN / "anomaly"), "score", "absent.csv", "notes.txt",
         *(a for o in overrides(folders) for a in ("--set", o))],
        cwd=project, env=subprocess_env(project), capture_output=True, text=True, timeout=300,
    )
    (project / "notes.txt").unlink(missing_ok=True)
    assert done.returncode == 1, done.stderr
    assert "absent.csv: no such file" in done.stderr and "Traceback" not in done.stderr
    assert "notes.txt: not a CSV or Parquet file" in done.stderr
    assert not folders["scored"].exists() and not folders["quarantine"].exists()


def test_mlflow_failing_after_the_batches_were_scored_keeps_them_scored(
    project, folders, monkeypatch, caplog
):
    import mlflow

    # A tracking store that goes down between resolving the model and logging the run cannot be
    # staged on demand in one process: the log step's start_run fails as a dead store would.
    def store_down(*args, **kwargs):
        raise ConnectionError("tracking store unreachable (connection refused)")

    batch = good_rows(project, 120, seed=41)
    batch.to_parquet(folders["incoming"] / "late.parquet", index=False)
    real_start_run = mlflow.start_run
    monkeypatch.setattr(mlflow, "start_run", store_down)
    try:
        summary = score(project, folders, "retries.task_retries=1", "retries.task_delay_seconds=0")
    finally:
        monkeypatch.setattr(mlflow, "start_run", real_start_run)

    assert [(b.batch, b.status, b.rows) for b in summary.batches] == [("late.parquet", "scored", 120)]
    assert summary.mlflow_run_id is None  # not logged, and the run did not fail for it
    assert "could not log the scoring run to MLflow" in caplog.text
    out = pd.read_parquet(folders["scored"] / "late.parquet")
    assert len(out) == 120 and {"anomaly_score", "is_anomaly"} <= set(out.columns)
    entry = next(e for e in ledger(folders)["batches"].values() if e["batch"] == "late.parquet")
    assert (entry["rows"], entry["model_version"], entry["flagged"]) == (
        120, 1, summary.batches[0].flagged)
    assert not (folders["incoming"] / "late.parquet").exists()  # archived, not to be rescored
