"""``dagster dev`` for the benchmark: a chosen storage (SQLite or PostgreSQL) and threaded sensors.

devstack's :func:`devstack.dagster.start_dagster` writes a fixed ``dagster.yaml``; the benchmark needs
its own (PostgreSQL storage, sensors evaluated in threads so a slow Airlift tick never delays
airstream's), so it starts ``dagster dev`` here with :class:`~devstack.processes.ManagedProcess`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from devstack.dagster import dagster_executable
from devstack.postgres import PostgresServer
from devstack.processes import ManagedProcess, free_port

DEFINITIONS = Path(__file__).with_name("definitions.py")
_SENSORS = "sensors:\n  use_threads: true\n  num_workers: 4\n"


def dagster_yaml(storage_url: str | None) -> str:
    """``dagster.yaml``: telemetry off, threaded sensors, and PostgreSQL storage when ``storage_url`` is given."""
    text = "telemetry:\n  enabled: false\n" + _SENSORS
    if storage_url:
        text += f"storage:\n  postgres:\n    postgres_url: {storage_url}\n"
    return text


def fresh_storage(kind: str, name: str, postgres: PostgresServer | None) -> str | None:
    """A new, empty PostgreSQL database named ``name`` (its URL), or ``None`` for SQLite."""
    if kind == "sqlite":
        return None
    if postgres is None:
        raise ValueError("PostgreSQL storage asked for without a server")
    return postgres.create_database(name)


def prepare_home(home: Path, storage_url: str | None) -> Path:
    """A Dagster home with the benchmark's ``dagster.yaml``; returns it."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(dagster_yaml(storage_url))
    return home


def workspace_yaml(observers: dict[str, Any]) -> str:
    """One code location per observer: attribute ``observer_<n>`` of :data:`DEFINITIONS`, named after it."""
    names = [observer["name"] for observer in [*observers.get("airstream", []), *observers.get("airlift", [])]]
    entries = "".join(
        f"  - python_file:\n      relative_path: {DEFINITIONS}\n      attribute: observer_{index}\n"
        f"      location_name: {name}\n"
        for index, name in enumerate(names)
    )
    return f"load_from:\n{entries}"


def start_bench_dagster(
    home: Path, observers: dict[str, Any], *, log_dir: Path, timeout: float = 180
) -> tuple[ManagedProcess, str]:
    """Start ``dagster dev`` with a code location per observer of ``observers`` (see :mod:`bench.compare.definitions`)
    and its instance in ``home`` (prepared by :func:`prepare_home`); returns the process and its URL."""
    tmp = home / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "TMPDIR": str(tmp),
        "BENCH_OBSERVERS": json.dumps(observers),
    }
    workspace = home / "workspace.yaml"
    workspace.write_text(workspace_yaml(observers))
    process = ManagedProcess.start(
        "dagster dev",
        [dagster_executable(), "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        cwd=home,
        log_path=log_dir / f"dagster-dev-{port}.log",
    )
    try:
        process.wait_until(lambda: _answers(url), timeout=timeout, what="the Dagster webserver to answer")
    except BaseException:
        process.stop()
        raise
    return process, url


def _answers(url: str) -> bool:
    return httpx.get(f"{url}/server_info", timeout=2).status_code == 200
