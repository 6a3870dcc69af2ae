"""Fixtures of the fault-injection tests: one S3 server and one durable broker per session (Tansu
on ``s3://``, so it can be killed with ``kill -9`` and restarted on the same port without losing
what it acknowledged), a real Dagster instance per test, and the sensor reading a topic."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, instance_for_test

from devstack.broker import TansuProcess, create_topic, tansu_binary
from devstack.figures import SensorDriver, etl_observation_defs
from devstack.s3 import S3Server, start_s3_server

INSTANCE = "faults"
SENSOR = f"{INSTANCE}__airflow_event_sensor"


@pytest.fixture(scope="session")
def s3_server(work_dir: Path) -> Iterator[S3Server]:
    with start_s3_server(work_dir / "s3") as server:
        yield server


@pytest.fixture(scope="session")
def durable_broker(work_dir: Path, s3_server: S3Server) -> Iterator[TansuProcess]:
    """Tansu on a bucket of the session's S3 server: ``kill()`` then ``start()`` keeps every
    acknowledged record. Tests that kill it start it again before they end."""
    broker = TansuProcess(
        tansu_binary(),
        work_dir / "durable-broker",
        storage=f"s3://{s3_server.new_bucket()}/",
        env=s3_server.broker_env(),
    )
    (work_dir / "durable-broker").mkdir(parents=True, exist_ok=True)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def durable_topic(durable_broker: TansuProcess) -> str:
    name = f"faults-{uuid.uuid4().hex[:10]}"
    create_topic(durable_broker.bootstrap_servers, name, partitions=3)
    return name


@pytest.fixture
def dagster_instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as instance:
        yield instance


@pytest.fixture
def sensor_driver(dagster_instance: DagsterInstance, durable_broker: TansuProcess, durable_topic: str) -> SensorDriver:
    """The sensor of instance ``faults`` reading ``durable_topic`` into ``dagster_instance``."""
    return SensorDriver(
        dagster_instance, etl_observation_defs(INSTANCE, durable_broker.bootstrap_servers, durable_topic), SENSOR
    )
