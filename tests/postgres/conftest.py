"""One real PostgreSQL server per session; a new database, and a Dagster instance on it, per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance

from devstack.postgres import PostgresServer, dagster_instance_on_new_database, start_postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with start_postgres() as server:
        yield server


@pytest.fixture
def postgres_instance(postgres: PostgresServer, tmp_path: Path) -> Iterator[DagsterInstance]:
    """A Dagster instance whose run, event-log and schedule storage is a new PostgreSQL database."""
    with dagster_instance_on_new_database(postgres, tmp_path) as instance:
        yield instance
