"""The scheduled deployments, served in-process (``anomaly serve``) or on a work pool (``anomaly deploy``).

    scoring               every ``schedules.scoring_interval_minutes``: flows/scoring.py on every
                          new batch of ``scoring.incoming_dir``
    data-quality-report   ``schedules.report_cron`` (default ``0 2 * * *``): flows/data_quality.py
                          for the previous day
    retrain               ``schedules.retrain_cron`` when set: flows/training.py (the promotion
                          gate of ``registry.promotion`` decides whether it becomes champion)

Crons are read in ``schedules.timezone`` (default UTC). The report's dates are UTC days whatever
the timezone: the nightly run reports the previous UTC day.

Each deployment's parameters carry the project root, the params file and the ``--set`` overrides
given to ``anomaly serve``, not the loaded settings: every scheduled run reads ``params.yaml``
afresh, so an edited setting takes effect at the next run, as a promotion does (the scoring flow
resolves the alias at the start of each run).

Two ways to run them, both on a real Prefect server:

* ``anomaly serve`` (one machine): this process registers the deployments and runs their
  flow runs as its own subprocesses until interrupted.
* ``anomaly deploy`` (a team): registers them on the ``process`` work pool
  ``schedules.work_pool`` (created when missing) and returns; ``anomaly worker`` /
  ``make worker`` on any machine with the same checkout at the same path (and its venv) polls
  the pool and runs them. The flows are imported by module path (``flows.scoring``) from the
  worker's installed package; each run starts in the project root.

Schedules fire only with a real Prefect server (the temporary local API that a plain flow call
starts has no scheduler): ``PREFECT_API_URL`` must point at one. ``make prefect-server`` starts
one on 127.0.0.1 with its database inside the repo (``PREFECT_HOME=.prefect``), ``make serve``
runs this module against it. A scoring run that is still going when the next one is due makes
the new one cancel itself (concurrency limit 1, ``CANCEL_NEW``): the ledger would skip its
batches anyway, but piled-up runs would only cost time.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.config import PARAMS_FILE, ConfigError, Params

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

__all__ = [
    "PrefectServerUnavailable",
    "build_deployments",
    "deploy",
    "ensure_work_pool",
    "require_prefect_server",
    "serve",
]

_log = logging.getLogger(__name__)

SCORING = "scoring"
REPORT = "data-quality-report"
RETRAIN = "retrain"
#: the flow behind each deployment name (a deployment's full name is ``<flow>/<deployment>``)
FLOW_OF = {SCORING: "scoring", REPORT: "data-quality", RETRAIN: "training"}
TAGS = ["anomaly-pipeline"]


class PrefectServerUnavailable(RuntimeError):
    """No Prefect server to serve the deployments on (with how to start one)."""


def require_prefect_server(timeout_s: float = 5.0) -> str:
    """The API URL of a reachable Prefect server, read from ``PREFECT_API_URL``.

    Raises:
        PrefectServerUnavailable: the variable is unset (schedules would not fire on the
            temporary API) or nothing answers at ``<url>/health``; the message says how to
            start a server.
    """
    from prefect.settings import PREFECT_API_URL

    url = (PREFECT_API_URL.value() or "").rstrip("/")
    how = (
        "start one with `make prefect-server` (in another terminal), then run "
        "`make serve`, or set PREFECT_API_URL=http://127.0.0.1:4200/api before `anomaly serve`"
    )
    if not url:
        raise PrefectServerUnavailable(
            "PREFECT_API_URL is not set: scheduled deployments need a running Prefect server "
            f"(Prefect's temporary local API has no scheduler); {how}"
        )
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout_s) as response:  # noqa: S310
            if response.status != 200:
                raise PrefectServerUnavailable(
                    f"the Prefect server at {url} answered /health with HTTP {response.status}; {how}"
                )
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PrefectServerUnavailable(
            f"no Prefect server answers at PREFECT_API_URL={url} ({reason}); {how}"
        ) from exc
    return url


def _flow_parameters(root: Path, params_file: str | None, overrides: Sequence[str]) -> dict[str, Any]:
    file = Path(params_file).expanduser().resolve() if params_file else root / PARAMS_FILE
    return {"root": str(root), "params_file": str(file), "overrides": list(overrides)}


def build_deployments(
    params: Params,
    root: str | Path,
    params_file: str | None = None,
    overrides: Sequence[str] = (),
    work_pool: str | None = None,
) -> list[RunnerDeployment]:
    """The deployments with the schedules of ``params.schedules`` (scoring, report, retrain).

    Args:
        params: loaded settings (only ``schedules`` is read here; runs re-read the file).
        root: project root; passed to every run.
        params_file / overrides: what each scheduled run loads its settings from.
        work_pool: ``None`` for :func:`prefect.serve`; else the process work pool the
            deployments are applied to (each run then starts in ``root``).

    Returns:
        Runner deployments for :func:`prefect.serve`: ``scoring`` (interval), and
        ``data-quality-report`` / ``retrain`` when their crons are set.
    """
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
    from prefect.deployments.runner import EntrypointType

    from flows.scoring import scoring_flow

    project = Path(root).resolve()
    shared = _flow_parameters(project, params_file, overrides)
    schedules = params.schedules
    one_at_a_time = ConcurrencyLimitConfig(
        limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
    )
    on_pool: dict[str, Any] = {}
    if work_pool:
        on_pool = {
            "work_pool_name": work_pool,
            # the process worker starts each run in this folder, with the project root set
            "job_variables": {"working_dir": str(project),
                              "env": {"ANOMALY_PROJECT_ROOT": str(project)}},
        }

    def deployment(flow: Any, name: str, schedule: Any, description: str) -> RunnerDeployment:
        return flow.to_deployment(
            name=name,
            schedules=[schedule],
            parameters=dict(shared),
            concurrency_limit=one_at_a_time,
            description=description,
            tags=TAGS,
            # the parameters are plain JSON; the flows' `params` argument is for in-process calls
            enforce_parameter_schema=False,
            # runs import `flows.scoring` etc. from the installed package, whatever the folder
            entrypoint_type=EntrypointType.MODULE_PATH,
            **on_pool,
        )

    interval = timedelta(minutes=schedules.scoring_interval_minutes)
    deployments = [
        deployment(
            scoring_flow,
            SCORING,
            IntervalSchedule(interval=interval),
            f"Score every new batch in {params.scoring.incoming_dir} with the model behind "
            f"alias '{params.scoring.alias}', every {schedules.scoring_interval_minutes:g} min.",
        )
    ]
    if schedules.report_cron:
        from flows.data_quality import data_quality_flow

        deployments.append(
            deployment(
                data_quality_flow,
                REPORT,
                CronSchedule(cron=schedules.report_cron, timezone=schedules.timezone),
                "The previous day's data-quality report (batches, validation, drift, trend) in "
                f"{params.report.reports_dir}/<date>/.",
            )
        )
    if schedules.retrain_cron:
        from flows.training import training_flow

        deployments.append(
            deployment(
                training_flow,
                RETRAIN,
                CronSchedule(cron=schedules.retrain_cron, timezone=schedules.timezone),
                "Retrain on data.source and register a new version (promotion: "
                f"{params.registry.promotion}).",
            )
        )
    return deployments


def _checked_deployments(
    params: Params, root: str | Path, params_file: str | None, overrides: Sequence[str],
    work_pool: str | None = None,
) -> list[RunnerDeployment]:
    try:
        return build_deployments(params, root, params_file, overrides, work_pool=work_pool)
    except ValueError as exc:  # pydantic's error of a schedule object
        raise ConfigError(f"schedules: {exc}", keys=["schedules"]) from exc


def describe(deployments: Sequence[RunnerDeployment]) -> list[str]:
    """One line per deployment: name and schedule, for the start-up message."""
    lines = []
    for d in deployments:
        when = []
        for s in d.schedules or []:
            schedule = getattr(s, "schedule", s)
            if getattr(schedule, "interval", None) is not None:
                when.append(f"every {schedule.interval}")
            elif getattr(schedule, "cron", None):
                when.append(f"cron '{schedule.cron}' ({schedule.timezone or 'UTC'})")
        lines.append(f"  {d.flow_name}/{d.name}: {', '.join(when) or 'no schedule'}")
    return lines


def serve(
    params: Params,
    root: str | Path,
    params_file: str | None = None,
    overrides: Sequence[str] = (),
) -> None:
    """Serve the deployments until interrupted (SIGINT / SIGTERM); blocks.

    Raises:
        PrefectServerUnavailable: no server at ``PREFECT_API_URL`` (checked first, so the user
            gets one sentence instead of Prefect's connection traceback).
        ConfigError: a schedule that Prefect refuses (names the ``schedules.*`` key).
    """
    import prefect

    url = require_prefect_server()
    deployments = _checked_deployments(params, root, params_file, overrides)
    print(f"serving {len(deployments)} deployment(s) on the Prefect server at {url}:", flush=True)
    for line in describe(deployments):
        print(line, flush=True)
    print("stop with Ctrl-C; the runs are in the Prefect UI of that server", flush=True)
    os.environ.setdefault("ANOMALY_PROJECT_ROOT", str(Path(root).resolve()))
    prefect.serve(*deployments, print_starting_message=False)


def ensure_work_pool(name: str) -> bool:
    """Create the ``process`` work pool ``name`` on the server when it is missing.

    Returns:
        True when it was created, False when it was there already.

    Raises:
        ConfigError: a pool of that name exists with another type (names
            ``schedules.work_pool``): its workers would not run these deployments.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type=ProcessWorker.type,
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                    description="The anomaly pipeline's flow runs (anomaly deploy); "
                    "`anomaly worker` runs them.",
                )
            )
            return True
    if pool.type != ProcessWorker.type:
        raise ConfigError(
            f"schedules.work_pool: the work pool {name!r} on the Prefect server is of type "
            f"{pool.type!r}, not 'process'; name another pool (it is created when missing)",
            keys=["schedules.work_pool"],
        )
    return False


def _delete_unconfigured(configured: Sequence[str]) -> list[str]:
    """Delete the pipeline's deployments whose schedule was switched off (a cron set to null):
    left on the server they would keep firing. Returns their full names."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    removed = []
    with get_client(sync_client=True) as client:
        for name, flow_name in FLOW_OF.items():
            if name in configured:
                continue
            try:
                existing = client.read_deployment_by_name(f"{flow_name}/{name}")
            except ObjectNotFound:
                continue
            client.delete_deployment(existing.id)
            removed.append(f"{flow_name}/{name}")
    return removed


def deploy(
    params: Params,
    root: str | Path,
    params_file: str | None = None,
    overrides: Sequence[str] = (),
) -> list[str]:
    """Create or update the deployments on the work pool ``schedules.work_pool``; returns.

    The pool (type ``process``) is created when missing; a deployment whose cron is now null
    is deleted. Runs execute on whichever ``anomaly worker`` polls the pool.

    Returns:
        The lines printed: server, pool, one line per deployment and any deleted one.

    Raises:
        PrefectServerUnavailable: no server at ``PREFECT_API_URL``.
        ConfigError: a schedule that Prefect refuses, or a pool of another type.
    """
    url = require_prefect_server()
    pool = params.schedules.work_pool
    deployments = _checked_deployments(params, root, params_file, overrides, work_pool=pool)
    created = ensure_work_pool(pool)
    for deployment in deployments:
        deployment.apply(work_pool_name=pool)
    removed = _delete_unconfigured([d.name for d in deployments])
    lines = [
        f"{len(deployments)} deployment(s) on work pool '{pool}' "
        f"({'created' if created else 'existing'}) of the Prefect server at {url}:",
        *describe(deployments),
        *(f"  deleted {name}: its schedule is off in params" for name in removed),
        f"runs execute on a worker of the pool: `anomaly worker` (or `make worker`); "
        f"run one now with `prefect deployment run {FLOW_OF[SCORING]}/{SCORING}`",
    ]
    return lines
