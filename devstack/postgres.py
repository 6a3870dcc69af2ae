"""A throwaway PostgreSQL server, for Dagster's production storage in tests and benchmarks.

Debian's PostgreSQL server (``/usr/lib/postgresql/<major>/bin``) runs in a new data folder on a
free loopback port, in the foreground under :class:`~devstack.processes.ManagedProcess`, so it
is stopped by its pid like every other process the stack starts. PostgreSQL refuses to run as
root: as root it runs as the ``postgres`` user, with the data folder handed to that user.

    with start_postgres() as server:
        instance = dagster_instance_on_postgres(server, home)
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.processes import ManagedProcess, StackError, free_port

USER = "airstream"
_SERVER_GLOB = "/usr/lib/postgresql/*/bin/postgres"


@dataclass(frozen=True)
class PostgresServer:
    """A running server: connect as ``user`` (trust auth, loopback only) to ``database``."""

    host: str
    port: int
    user: str
    database: str
    process: ManagedProcess

    def url(self, database: str | None = None) -> str:
        """``postgresql+psycopg2://user@host:port/database``: the driver dagster-postgres installs,
        named because SQLAlchemy 2.1 otherwise picks psycopg 3."""
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{database or self.database}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its URL."""
        _run([str(_bin_dir() / "createdb"), "-h", self.host, "-p", str(self.port), "-U", self.user, name])
        return self.url(name)


def postgres_bin_dir() -> Path:
    """Where Debian's PostgreSQL server binaries are, installing the server if it is missing."""
    with contextlib.suppress(StackError):
        return _bin_dir()
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise StackError(
            "PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/postgres): "
            "install Debian's `postgresql` package (apt-get install postgresql)"
        )
    _run(["apt-get", "install", "-y", "-q", "postgresql"], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return _bin_dir()


@contextlib.contextmanager
def start_postgres(*, database: str = "airstream", timeout: float = 30.0) -> Iterator[PostgresServer]:
    """Start a new server with database ``database``; stop it and delete its data on exit."""
    bin_dir = postgres_bin_dir()
    data = Path(tempfile.mkdtemp(prefix="airstream-postgres-"))
    run_as = _run_as_postgres(data)
    try:
        _run([*run_as, str(bin_dir / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", USER, "-E", "UTF8"])
        port = free_port()
        process = ManagedProcess.start(
            "postgres",
            [
                *run_as,
                str(bin_dir / "postgres"),
                "-D",
                str(data / "db"),
                "-p",
                str(port),
                "-k",
                str(data),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=on",
            ],
            log_path=data / "postgres.log",
        )
        server = PostgresServer(host="127.0.0.1", port=port, user=USER, database=database, process=process)
        try:
            process.wait_until(
                lambda: _accepts(bin_dir, port), timeout=timeout, what="PostgreSQL to accept connections"
            )
            server.create_database(database)
            yield server
        finally:
            _stop(server)
    finally:
        shutil.rmtree(data, ignore_errors=True)


@contextlib.contextmanager
def dagster_instance_on_new_database(server: PostgresServer, parent: Path) -> Iterator[Any]:
    """A Dagster instance (home in a new folder under ``parent``) on a new database of ``server``;
    disposed of on exit."""
    database = f"dagster_{uuid.uuid4().hex[:12]}"
    server.create_database(database)
    on_database = PostgresServer(server.host, server.port, server.user, database, server.process)
    with tempfile.TemporaryDirectory(dir=parent) as home:
        instance = dagster_instance_on_postgres(on_database, Path(home))
        try:
            yield instance
        finally:
            instance.dispose()


def dagster_instance_on_postgres(server: PostgresServer, home: Path) -> Any:
    """A Dagster instance in ``home`` whose run, event-log and schedule storage is ``server``."""
    from dagster import DagsterInstance

    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(dagster_yaml_for(server))
    return DagsterInstance.from_config(str(home))


def dagster_yaml_for(server: PostgresServer) -> str:
    """The ``dagster.yaml`` that puts every Dagster storage on ``server`` (needs dagster-postgres)."""
    return f"telemetry:\n  enabled: false\nstorage:\n  postgres:\n    postgres_url: {server.url()}\n"


def _bin_dir() -> Path:
    found = sorted(glob.glob(_SERVER_GLOB), key=lambda path: int(Path(path).parts[-3]))
    if not found:
        raise StackError("PostgreSQL's server is not installed")
    return Path(found[-1]).parent


def _run_as_postgres(data: Path) -> list[str]:
    """The prefix that runs a server command as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return []
    shutil.chown(data, user="postgres", group="postgres")
    return ["runuser", "-u", "postgres", "--"]


def _accepts(bin_dir: Path, port: int) -> bool:
    ready = subprocess.run(
        [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", USER],
        capture_output=True,
        timeout=5,
        check=False,
    )
    return ready.returncode == 0


def _stop(server: PostgresServer) -> None:
    # A fast shutdown (SIGINT) disconnects clients; SIGTERM would wait for them to leave.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.process.pid, signal.SIGINT)
    deadline = time.monotonic() + 10
    while server.process.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    server.process.stop()


def _run(argv: Sequence[str], env: dict[str, str] | None = None) -> None:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=600, check=False, env=env)
    if done.returncode != 0:
        raise StackError(f"{' '.join(argv)} failed with code {done.returncode}:\n{done.stdout}{done.stderr}")
