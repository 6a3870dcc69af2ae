"""Dagster instances on both storages the consumer's key-value and event-log calls must work on:
SQLite (``DagsterInstance.ephemeral()``) and a real PostgreSQL server (what production runs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance

from devstack.postgres import PostgresServer, dagster_instance_on_new_database, start_postgres


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
    with dagster_instance_on_new_database(server, tmp_path) as instance:
        yield instance
