"""A throwaway PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` in a temporary folder,
listening on 127.0.0.1 only, trust authentication, ``fsync`` off; stopped at the end.

Debian's ``postgresql`` package provides the binaries (``.ci/run`` installs it when missing).
PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PostgresServer", "postgres_server"]

SUPERUSER = "anomaly"


def _bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed: apt-get install postgresql (the ledger "
            "tests need a real server; .ci/run installs it)"
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    port: int
    folder: Path

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a server (seconds), yield it, stop it and delete its folder."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    as_root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="anomaly-pg-"))
    run_as: list[str] = []
    if as_root:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        run_as = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                  "--init-groups", "--"]
    data, log = folder / "data", folder / "server.log"
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    try:
        subprocess.run([*run_as, initdb, "-D", str(data), "-U", SUPERUSER, "--auth=trust",
                        "-E", "UTF8", "--no-instructions"],
                       check=True, capture_output=True, env=env, timeout=120)
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-o", options, "-l", str(log),
                        "-w", "-t", "60", "start"],
                       check=True, capture_output=True, env=env, timeout=120)
        try:
            yield PostgresServer(port=port, folder=folder)
        finally:
            subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, env=env, timeout=60)
    except subprocess.CalledProcessError as exc:
        logged = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(
            f"could not start the test PostgreSQL server: {exc.stderr.decode(errors='replace')}"
            f"{logged}"
        ) from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)
