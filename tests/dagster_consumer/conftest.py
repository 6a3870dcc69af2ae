"""Dagster instances on both storages the consumer's key-value and event-log calls must work on:
SQLite (``DagsterInstance.ephemeral()``) and a real PostgreSQL server (what production runs)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance

from devstack.postgres import PostgresServer, dagster_instance_on_postgres, start_postgres


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    with start_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def storage_instance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DagsterInstance]:
    """An empty Dagster instance on SQLite, then on a new PostgreSQL database."""
    if request.param == "sqlite":
        with DagsterInstance.ephemeral() as instance:
            yield instance
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    database = f"dagster_{uuid.uuid4().hex[:12]}"
    server.create_database(database)
    on_database = PostgresServer(server.host, server.port, server.user, database, server.process)
    with tempfile.TemporaryDirectory(dir=tmp_path) as home:
        instance = dagster_instance_on_postgres(on_database, Path(home))
        try:
            yield instance
        finally:
            instance.dispose()
