"""The nightly data-quality report end to end: a model trained and registered by the real training
flow, one day of batches scored by the real scoring flow (one good, one drifted, one quarantined),
then `anomaly report --date DAY` as a user runs it; the page is opened in headless Chromium.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it). Without it the page test
fails, saying how to install it: a report nobody checked renders is not tested.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from flows.steps.score import Ledger
from tests.e2e.project import BIN, cli_env, make_project

# e2e: real services and trainings; the global limit of pyproject.toml is too short for them
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

FEATURES = ["temp", "pressure", "flow", "vibration"]
CHROMIUM = Path("/usr/bin/chromium")
INSTALL_CHROMIUM = (
    "sudo apt-get update && sudo apt-get install -y chromium  (Debian's `chromium` package; "
    ".ci/run installs it before `make test`)"
)


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def day_of_batches(tmp_path_factory, prefect_api):
    """(project root, UTC day, ledger): version 1 trained, then three batches scored on one day:
    ``good.csv`` (400 rows resampled from the training split), ``drifted.parquet`` (400 rows
    resampled from the training rows with the top 30 % of ``vibration``: inside the suite's
    ranges, but a different distribution) and ``bad.csv`` (50 rows without ``temp``:
    quarantined)."""
    from flows.config import load_params
    from flows.scoring import scoring_flow
    from flows.steps.report import entry_day
    from flows.training import training_flow

    root = make_project(tmp_path_factory.mktemp("report"))
    params = load_params(root / "params.yaml")
    assert training_flow(params=params, root=str(root))["register"].version == 1

    train = pd.read_parquet(root / "data" / "processed" / "train.parquet")
    high = train[train["vibration"] > train["vibration"].quantile(0.7)]
    incoming = root / "data" / "incoming"
    incoming.mkdir(parents=True)
    train[FEATURES].sample(400, replace=True, random_state=1).to_csv(
        incoming / "good.csv", index=False)
    high[FEATURES].sample(400, replace=True, random_state=2).to_parquet(
        incoming / "drifted.parquet", index=False)
    train[FEATURES].drop(columns="temp").sample(50, random_state=3).to_csv(
        incoming / "bad.csv", index=False)

    summary = scoring_flow(params=params, root=str(root))
    assert sorted((b.batch, b.status) for b in summary.batches) == [
        ("bad.csv", "quarantined"), ("drifted.parquet", "scored"), ("good.csv", "scored")]

    ledger = Ledger(root / "data" / "scored").read()
    days = {entry_day(e["scored_at"]) for e in ledger["batches"].values()}
    days |= {entry_day(e["at"]) for e in ledger["quarantined"]}
    if len(days) != 1:  # the run straddled midnight UTC
        pytest.skip(f"the batches were scored on two UTC days {sorted(days)}; rerun the test")
    return root, days.pop(), ledger


def subprocess_env(root: Path) -> dict[str, str]:
    """The CLI's environment, talking to this session's Prefect API (no second temporary API)."""
    from prefect.settings import PREFECT_API_URL

    env = cli_env(root)
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    return env


def chromium_dom(page: Path, profile: Path) -> str:
    """The DOM of ``page`` after it loaded (scripts run) in headless Chromium."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the report page cannot be checked. Install it: "
                    f"{INSTALL_CHROMIUM}")
    done = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


# ------------------------------------------------------------------------------ tests
def test_report_cli_writes_the_day_logs_it_to_mlflow_and_the_page_renders(
    day_of_batches, tmp_path
):
    root, day, ledger = day_of_batches
    scored = {e["batch"]: e for e in ledger["batches"].values()}
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("anomaly-pipeline")
    day_runs = f"tags.`pipeline.step` = 'report' and tags.`report.date` = '{day}'"
    # the module's project is shared: another test may have reported this day already
    earlier = {r.info.run_id for r in client.search_runs([experiment.experiment_id], day_runs)}

    done = subprocess.run(
        [str(BIN / "anomaly"), "report", "--date", day.isoformat()],
        cwd=root, env=subprocess_env(root), capture_output=True, text=True, timeout=300,
    )

    assert done.returncode == 0, done.stderr[-5000:]
    folder = root / "data" / "reports" / day.isoformat()
    headline = done.stdout.strip().splitlines()[-1]
    assert headline.startswith(f"data-quality report {day}: 3 batches (2 passed, "
                               "1 failed/quarantined), 800 rows scored"), headline
    assert f"-> data/reports/{day}/report.html" in headline and "(vibration" in headline
    for name in ("report.html", "report.json", "plots/trend.png", "plots/rows.png",
                 "plots/psi.png", "plots/bins.png", "data_docs/index.html"):
        assert (folder / name).is_file(), name
    assert not [p.name for p in folder.parent.iterdir() if p.name.startswith(".")
                and p.name != ".lock"]  # no staging folder left

    # the numbers: rows per batch as scored, the quarantined batch counted in its file
    report = json.loads((folder / "report.json").read_text())
    batches = {b["batch"]: b for b in report["batches"]}
    assert sorted(batches) == ["bad.csv", "drifted.parquet", "good.csv"]
    for name in ("good.csv", "drifted.parquet"):
        b = batches[name]
        assert (b["status"], b["passed"], b["rows"]) == ("scored", True, 400)
        assert b["flagged"] == scored[name]["flagged"] and b["model_version"] == 1
    bad = batches["bad.csv"]
    assert (bad["status"], bad["passed"], bad["rows"]) == ("quarantined", False, 50)
    assert "missing column(s) ['temp']" in bad["reason"]
    totals = report["totals"]
    assert (totals["batches"], totals["passed"], totals["quarantined"]) == (3, 2, 1)
    assert (totals["rows_scored"], totals["rows_quarantined"]) == (800, 50)
    flagged = sum(scored[n]["flagged"] for n in ("good.csv", "drifted.parquet"))
    assert totals["flagged"] == flagged and totals["rate"] == pytest.approx(flagged / 800)

    # drift: vibration (the only feature selected on) is flagged; temp, independent of it, not
    drift = report["drift"]
    assert drift["available"] and drift["reference_version"] == 1
    assert drift["reference"] == "data/interim/references/1.parquet"
    assert drift["training_split"] == "data/processed/train.parquet"
    assert [f["feature"] for f in drift["features"]] == FEATURES
    by_feature = {f["feature"]: f for f in drift["features"]}
    assert by_feature["vibration"]["drifted"] and by_feature["vibration"]["psi"] > 0.2
    assert not by_feature["temp"]["drifted"] and by_feature["temp"]["psi"] < 0.1
    assert "vibration" in totals["drifted_features"] and drift["day_sample"] == 800
    assert batches["drifted.parquet"]["drifted_features"] == ["vibration"]
    assert batches["good.csv"]["drifted_features"] == []

    # the trend ends at the day with its numbers; the days before are empty
    trend = report["trend"]
    assert len(trend) == 14 and trend[-1]["date"] == day.isoformat()
    assert (trend[-1]["rows"], trend[-1]["flagged"], trend[-1]["quarantined"]) == (800, flagged, 1)
    assert all(p["rows"] == 0 for p in trend[:-1])

    # Data Docs of the day's three validations, each batch linking its own page
    assert report["data_docs"]["index"] == "data_docs/index.html"
    assert report["data_docs"]["validations"] == 3
    for b in batches.values():
        assert b["validations"] == 1 and (folder / b["data_docs_page"]).is_file(), b
    assert (bad["validations_failed"], batches["good.csv"]["validations_failed"]) == (1, 0)

    # one new MLflow run with the metrics and the folder as artifacts
    runs = [r for r in client.search_runs([experiment.experiment_id], day_runs)
            if r.info.run_id not in earlier]
    assert len(runs) == 1
    metrics = runs[0].data.metrics
    assert (metrics["batches"], metrics["quarantined"], metrics["rows"]) == (3, 1, 800)
    assert metrics["rate"] == pytest.approx(flagged / 800)
    assert metrics["max_psi"] == pytest.approx(by_feature["vibration"]["psi"])
    logged = {a.path for a in client.list_artifacts(runs[0].info.run_id, "report")}
    assert {"report/report.html", "report/report.json", "report/plots",
            "report/data_docs"} <= logged

    # the page in a real browser: its tables are there and every plot decoded
    page = (folder / "report.html").read_text()
    assert "http://" not in page and "https://" not in page  # self-contained
    dom = chromium_dom(folder / "report.html", tmp_path / "chromium")
    body = re.search(r"<body[^>]*>", dom)
    assert body, dom[:2000]
    assert 'data-images-ok="true"' in body.group(0), body.group(0)
    assert f'data-images="{page.count("<img ")}"' in body.group(0) and page.count("<img ") == 4
    for name in ("good.csv", "drifted.parquet", "bad.csv"):
        assert f'<tr data-batch="{name}">' in dom
    assert re.search(r'<tr data-batch="good.csv">.*?<td class="num">400</td>', dom)
    assert re.search(r'<tr data-batch="bad.csv">.*?<td class="num">50</td>', dom)
    assert '<tr data-feature="vibration">' in dom and 'id="trend"' in dom
    assert 'href="data_docs/index.html"' in dom


def test_a_rerun_replaces_the_day_and_a_day_without_batches_says_so(day_of_batches):
    from flows.config import load_params
    from flows.data_quality import data_quality_flow
    from flows.steps.report import parse_report_date

    root, day, _ = day_of_batches
    params = load_params(root / "params.yaml")
    folder = root / "data" / "reports" / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stale.txt").write_text("from an earlier run")

    again = data_quality_flow(date=day.isoformat(), params=params, root=str(root))

    assert not (folder / "stale.txt").exists()  # replaced whole, not merged
    assert again.html == folder / "report.html" and again.mlflow_run_id
    rerun = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}").get_run(again.mlflow_run_id)
    assert (rerun.data.tags["report.date"], rerun.data.metrics["rows"]) == (day.isoformat(), 800)
    assert sorted(b.batch for b in again.batches) == ["bad.csv", "drifted.parquet", "good.csv"]
    assert json.loads((folder / "report.json").read_text())["totals"]["rows_scored"] == 800

    # as the nightly deployment calls it: no date (= yesterday, UTC), settings from the file
    before = parse_report_date(None)
    if before != day - timedelta(days=1):
        pytest.skip("midnight UTC passed since the batches were scored")
    empty = data_quality_flow(root=str(root), params_file=str(root / "params.yaml"))

    assert empty.batches == [] and not empty.drift.available
    assert empty.headline() == (f"data-quality report {before}: no batches scored or "
                                f"quarantined on this day -> data/reports/{before}/report.html")
    page = (root / "data" / "reports" / before.isoformat() / "report.html").read_text()
    assert "No batches were scored or quarantined" in page
    numbers = json.loads((empty.json_path).read_text())
    assert numbers["batches"] == [] and numbers["data_docs"]["index"] is None
    assert numbers["trend"][-2]["date"] == (before - timedelta(days=1)).isoformat()
    assert sum(p["rows"] for p in numbers["trend"]) == 0  # the scored day is after it


def test_mlflow_failing_is_retried_as_params_say_and_the_report_stays(
    prefect_api, tmp_path, monkeypatch
):
    import flows.registry
    from flows.config import Params
    from flows.data_quality import data_quality_flow

    calls: list[str] = []

    def failing(error: BaseException):
        def log_report_run(registry, retries, root, report):
            calls.append(report.date)
            raise error

        return log_report_run

    params = Params.model_validate({"retries": {"task_retries": 3, "task_delay_seconds": 0}})
    monkeypatch.setattr(flows.registry, "log_report_run",
                        failing(ConnectionError("connection refused")))

    report = data_quality_flow(date="2024-01-01", params=params, root=str(tmp_path))

    assert calls == ["2024-01-01"] * 4  # the first try and params.retries.task_retries more
    assert report.mlflow_run_id is None and report.html.is_file() and report.batches == []
    assert report.html == tmp_path / "data" / "reports" / "2024-01-01" / "report.html"

    # a bug is not retried: the report is written all the same
    calls.clear()
    monkeypatch.setattr(flows.registry, "log_report_run", failing(KeyError("bug")))
    again = data_quality_flow(date="2024-01-01", params=params, root=str(tmp_path))
    assert calls == ["2024-01-01"] and again.mlflow_run_id is None and again.html.is_file()
