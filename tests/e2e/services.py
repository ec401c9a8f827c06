"""Helpers of the tests that start real services: free ports, HTTP, waiting, and the processes
a test started (stopped at the end with every descendant, checked gone)."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

from tests.e2e.project import BIN

T = TypeVar("T")


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - localhost
        return response.read()


def http_post(url: str, body: dict) -> object:
    """POST ``body`` as JSON; the decoded JSON answer."""
    request = urllib.request.Request(  # noqa: S310 - localhost
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


class Processes:
    """Processes started by a test; :meth:`stop_all` ends them and every descendant."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []
        self.seen: dict[int, psutil.Process] = {}

    def start(self, args: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
        proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(proc)
        return proc

    def remember_descendants(self) -> None:
        """Note every live descendant (flow-run subprocesses start sessions of their own)."""
        for proc in self.started:
            try:
                parent = psutil.Process(proc.pid)
                for p in [parent, *parent.children(recursive=True)]:
                    self.seen.setdefault(p.pid, p)
            except psutil.NoSuchProcess:
                continue

    def stop_all(self) -> list[str]:
        """SIGINT (what Ctrl-C sends), then SIGTERM, then SIGKILL; returns any survivor."""
        self.remember_descendants()
        for sig, wait_s in ((signal.SIGINT, 15), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            alive = [p for p in self.seen.values() if p.is_running() and p.status() != "zombie"]
            if not alive:
                break
            for p in alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.send_signal(sig)
            psutil.wait_procs(alive, timeout=wait_s)
        for proc in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        return [
            f"{p.pid} {p.name()}" for p in self.seen.values()
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        ]


def wait_for(what: str, check: Callable[[], T], timeout_s: float, logs: list[Path],
             every_s: float = 1.0) -> T:
    """Poll ``check`` until it returns something truthy (returned); else fail with the logs' tails."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in logs if p.exists())
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}\n{tails}")


def prefect_healthy(api: str) -> bool:
    try:
        return http_get(f"{api}/health") == b"true"
    except (urllib.error.URLError, OSError):
        return False


def start_prefect_server(
    processes: Processes, env: dict[str, str], log: Path, cwd: Path
) -> tuple[str, dict[str, str]]:
    """A real ``prefect server start`` on a free port of 127.0.0.1, its database under
    ``PREFECT_HOME`` of ``env``. Returns its API URL once ``/health`` answers, and ``env``
    pointed at it with the loops shortened so tests wait seconds: the scheduler looks for
    due deployments every 2 s (not 60 s), runners and workers poll every 2 s (not 10 / 15 s)."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = env | {
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
    processes.start(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env, log, cwd,
    )
    wait_for("the Prefect server's /health", lambda: prefect_healthy(api), 180, [log])
    return api, env
