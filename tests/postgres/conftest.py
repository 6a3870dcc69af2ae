"""One real PostgreSQL server per session; a new database, and a Dagster instance on it, per test."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance

from devstack.postgres import PostgresServer, dagster_instance_on_postgres, start_postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with start_postgres() as server:
        yield server


@pytest.fixture
def postgres_instance(postgres: PostgresServer, tmp_path: Path) -> Iterator[DagsterInstance]:
    """A Dagster instance whose run, event-log and schedule storage is a new PostgreSQL database."""
    database = f"dagster_{uuid.uuid4().hex[:12]}"
    postgres.create_database(database)
    server = PostgresServer(postgres.host, postgres.port, postgres.user, database, postgres.process)
    with tempfile.TemporaryDirectory(dir=tmp_path) as home:
        instance = dagster_instance_on_postgres(server, Path(home))
        try:
            yield instance
        finally:
            instance.dispose()
