"""The ``anomaly`` command: the pipeline from a shell.

    anomaly train [--params FILE] [--set KEY=VALUE ...]   the Prefect training flow
    anomaly stage NAME [--params FILE] [--set ...]        one step (what dvc.yaml calls)
    anomaly score [PATH ...] [--params FILE] [--set ...]  score new batches with the champion
    anomaly promote VERSION [--alias champion]            move an alias to a registered version
    anomaly models                                        registered versions, aliases, metrics
    anomaly report [--date YYYY-MM-DD]                    the data-quality report of one day
    anomaly serve                                         serve the scheduled deployments
    anomaly deploy                                        put them on the work pool instead
    anomaly worker                                        run the work pool's flow runs
    anomaly mlflow-server [--port 5000] [--auth]          the team's MLflow tracking server

Errors in settings or data end with a one-paragraph message naming the problem and exit code 2
(settings) or 1 (data, registry, training), never a bare traceback; Prefect's log lines of the
failed run name the error without repeating its message. ``anomaly score`` exits 3 when
it quarantined a batch (the other batches were scored). ``ANOMALY_DEBUG=1`` shows the traceback too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from flows.config import ConfigError, configure_environment, load_params, project_root
from flows.runtime import local_run_settings, reason_reported_once
from flows.stages import STAGES

EXIT_DATA = 1
EXIT_CONFIG = 2
EXIT_QUARANTINE = 3


def _add_params_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params", metavar="FILE", default=None,
        help="settings file (default: params.yaml in the project root)",
    )
    parser.add_argument(
        "--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
        help="override one setting for this run, e.g. --set train.epochs=5 (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anomaly",
        description="Anomaly-detection pipeline: train, register and promote Keras detectors.",
        epilog="The project root is the current folder, or ANOMALY_PROJECT_ROOT when set.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="run the training flow (ingest -> ... -> register) with Prefect",
        description="Run the Prefect training flow: ingest, validate, preprocess, train, "
        "calibrate, evaluate, register. Registers a new model version with alias "
        "'challenger'; the promotion gate may move 'champion' to it.",
    )
    _add_params_options(train)

    stage = commands.add_parser(
        "stage", help="run one step of the pipeline (what `dvc repro` calls)",
        description="Run one step without Prefect, reading and writing the files DVC tracks.",
    )
    stage.add_argument("name", choices=list(STAGES), metavar="NAME", help=" | ".join(STAGES))
    _add_params_options(stage)

    score = commands.add_parser(
        "score", help="score new batches (or the given files) with the model behind scoring.alias",
        description="Run the Prefect scoring flow: resolve the model behind scoring.alias now, "
        "validate each batch with that version's expectation suite, write "
        "<scoring.scored_dir>/<batch>.parquet, and move bad batches to scoring.quarantine_dir "
        "with a report. Batches already in the ledger are skipped. Exit code 3 when a batch "
        "was quarantined.",
    )
    score.add_argument(
        "paths", nargs="*", metavar="PATH",
        help="CSV / Parquet files or folders to score (default: every new batch in "
        "scoring.incoming_dir)",
    )
    _add_params_options(score)

    promote = commands.add_parser(
        "promote", help="point an alias (default: champion) at a registered version",
        description="Move an alias of the registered model to VERSION (the same as moving it "
        "in the MLflow UI). Scoring picks it up at its next run.",
    )
    promote.add_argument("version", type=int, metavar="VERSION")
    promote.add_argument("--alias", default="champion", help="alias to move (default: champion)")
    _add_params_options(promote)

    models = commands.add_parser(
        "models", help="list registered versions with their aliases and metrics",
        description="List the versions of the registered model: aliases, metrics, creation time.",
    )
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_params_options(models)

    report = commands.add_parser(
        "report", help="write the data-quality report of one day's batches",
        description="Run the data-quality flow for the batches scored or quarantined on DATE "
        "(UTC; default: yesterday): GX Data Docs of their validations and one self-contained "
        "HTML page (rows per batch, pass/fail, drift against the model version's training "
        "data, anomaly-rate trend) in <report.reports_dir>/<DATE>/, logged to MLflow.",
    )
    report.add_argument(
        "--date", metavar="YYYY-MM-DD", default=None,
        help="the day to report (UTC; default: yesterday, what the nightly schedule reports)",
    )
    _add_params_options(report)

    serve = commands.add_parser(
        "serve", help="serve the scheduled deployments (scoring, report, retrain) on a Prefect server",
        description="Create the deployments with the schedules of params.yaml (schedules.*) and "
        "run their scheduled flow runs until interrupted (Ctrl-C). Needs a Prefect server: "
        "PREFECT_API_URL must point at one (`make prefect-server` starts one inside the repo). "
        "Schedules do not fire on Prefect's temporary local API.",
    )
    _add_params_options(serve)
    _add_work_pool_commands(commands)
    _add_mlflow_server(commands)
    return parser


def _add_work_pool_commands(commands: argparse._SubParsersAction) -> None:
    deploy = commands.add_parser(
        "deploy", help="create or update the deployments on the Prefect work pool (schedules.work_pool)",
        description="Create or update the deployments scoring, data-quality-report and retrain "
        "with the schedules of params.yaml on the process work pool schedules.work_pool "
        "(default: anomaly; created when missing), then return. Their runs execute on "
        "whichever `anomaly worker` polls the pool. Needs a Prefect server (PREFECT_API_URL).",
    )
    _add_params_options(deploy)
    worker = commands.add_parser(
        "worker", help="run the flow runs of the work pool (prefect worker start)",
        description="Run `prefect worker start --pool <schedules.work_pool> --type process` "
        "against the Prefect server of PREFECT_API_URL until interrupted: it runs the "
        "deployments' flow runs in the project root. Start one on every machine that has the "
        "checkout at the same path.",
    )
    worker.add_argument("--name", default=None, help="the worker's name (default: Prefect's)")
    worker.add_argument("--limit", type=int, default=None,
                        help="flow runs at once on this worker (default: no limit)")
    _add_params_options(worker)


def _add_mlflow_server(commands: argparse._SubParsersAction) -> None:
    server = commands.add_parser(
        "mlflow-server", help="run the team's MLflow tracking server (registry + proxied artifacts)",
        description="Run `mlflow server` with its state inside the project (.mlflow-server/: "
        "the backend database and the proxied artifacts). Point every command at it with "
        "MLFLOW_TRACKING_URI=http://HOST:PORT. See docs/SERVICES.md.",
    )
    server.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default: 127.0.0.1, this machine only)")
    server.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    server.add_argument("--backend-store-uri", default=None, metavar="URI",
                        help="runs and registry database (default: SQLite in .mlflow-server/; "
                        "e.g. postgresql+psycopg://mlflow@db:5432/mlflow)")
    server.add_argument("--auth", action="store_true",
                        help="MLflow's basic-auth app: clients need MLFLOW_TRACKING_USERNAME / "
                        "MLFLOW_TRACKING_PASSWORD; the admin password comes from "
                        "MLFLOW_AUTH_ADMIN_PASSWORD")
    server.add_argument("--workers", type=int, default=2, help="server processes (default: 2)")


def _print_table(rows: list[dict]) -> None:
    if not rows:
        print("no registered versions yet: run `anomaly train`")
        return
    columns = ["version", "aliases", "created", "roc_auc", "pr_auc", "f1", "threshold"]
    cells = []
    for row in rows:
        line = []
        for col in columns:
            value = row.get(col, row.get("metrics", {}).get(col, ""))
            if isinstance(value, list):
                value = ",".join(value) or "-"
            elif isinstance(value, float):
                value = f"{value:.4f}"
            line.append(str(value))
        cells.append(line)
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))


def _run(args: argparse.Namespace, root: Path) -> int:
    if args.command == "mlflow-server":
        from flows.services import mlflow_server

        server = mlflow_server(root, host=args.host, port=args.port, auth=args.auth,
                               backend_store_uri=args.backend_store_uri, workers=args.workers)
        print(f"MLflow server on http://{args.host}:{args.port} (state in {server.state_dir}); "
              f"clients: MLFLOW_TRACKING_URI=http://{args.host}:{args.port}", flush=True)
        os.execve(server.argv[0], server.argv, server.env)  # signals go to mlflow itself
    params = load_params(args.params, args.overrides)  # fails before any work
    if args.command == "train":
        from flows.training import training_flow

        results = training_flow(params=params, root=str(root))
        registration = results["register"].registration
        print(
            f"registered {registration.model_name} version {registration.version} "
            f"(aliases: {', '.join(registration.aliases) or '-'}): {registration.reason}"
        )
        return 0
    if args.command == "stage":
        from flows.stages import run_stage

        result = run_stage(args.name, params, root)
        metrics = getattr(result, "metrics", None)
        print(f"stage {args.name}: done" + (f" {json.dumps(metrics, default=str)}" if metrics else ""))
        return 0
    if args.command == "score":
        return _score(args, params, root)
    if args.command == "report":
        from flows.data_quality import data_quality_flow
        from flows.steps.report import parse_report_date

        day = parse_report_date(args.date)  # a malformed date fails before Prefect starts
        result = data_quality_flow(date=day.isoformat(), params=params, root=str(root))
        print(result.headline())
        return 0
    if args.command in ("serve", "deploy", "worker"):
        return _prefect_command(args, params, root)
    from flows import registry

    if args.command == "promote":
        info = registry.promote(params.registry, params.retries, root, args.version, alias=args.alias)
        print(f"alias '{args.alias}' of model '{params.registry.model_name}' now points at version {info.version}")
        return 0
    if args.command == "models":
        rows = registry.list_versions(params.registry, params.retries, root)
        if args.json:
            print(json.dumps(rows, indent=2, default=str))
        else:
            _print_table(rows)
        return 0
    raise AssertionError(args.command)  # argparse restricts the choices


def _prefect_command(args: argparse.Namespace, params, root: Path) -> int:
    from flows import deployments

    if args.command == "serve":
        deployments.serve(params, root, params_file=args.params, overrides=args.overrides)
    elif args.command == "deploy":
        for line in deployments.deploy(params, root, params_file=args.params, overrides=args.overrides):
            print(line)
    else:
        from flows.services import prefect_worker

        url = deployments.require_prefect_server()
        argv = prefect_worker(params.schedules.work_pool, name=args.name, limit=args.limit)
        print(f"worker of pool '{params.schedules.work_pool}' on the Prefect server at {url}", flush=True)
        os.execv(argv[0], argv)  # signals go to the worker itself
    return 0


def _score(args: argparse.Namespace, params, root: Path) -> int:
    from flows.steps.score import expand_paths

    paths = [str(Path(p).expanduser().resolve()) for p in args.paths] or None
    if paths:
        expand_paths(paths)  # a missing or non-data file fails now, before Prefect starts
    from flows.scoring import scoring_flow

    summary = scoring_flow(paths=paths, params=params, root=str(root))
    for line in summary.lines():
        print(line)
    print(summary.headline())
    if summary.quarantined:
        print(f"anomaly score: {summary.quarantine_message()}", file=sys.stderr)
        return EXIT_QUARANTINE
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = project_root()
    configure_environment(root)
    try:
        # the commands that run a Prefect flow in this process (serve hands runs to a server)
        runs_flow = args.command in ("train", "score", "report")
        with contextlib.ExitStack() as run:
            if runs_flow:
                run.enter_context(local_run_settings())
                if not os.environ.get("ANOMALY_DEBUG"):  # the message once, below; no traceback
                    run.enter_context(reason_reported_once())
            return _run(args, root)
    except ConfigError as err:
        what = "invalid option" if any(k.startswith("--") for k in err.keys) else "invalid settings"
        print(f"anomaly {args.command}: {what}\n{err}", file=sys.stderr)
        failure, code = err, EXIT_CONFIG
    except (ValueError, RuntimeError, OSError) as err:
        # DataError, ValidationFailed, RegistryError, TrainingDiverged ... all say what is wrong
        print(f"anomaly {args.command}: {type(err).__name__}: {err}", file=sys.stderr)
        failure, code = err, EXIT_DATA
    if os.environ.get("ANOMALY_DEBUG"):  # (an uncaught error shows its traceback anyway)
        traceback.print_exception(failure)
    return code


if __name__ == "__main__":
    sys.exit(main())
