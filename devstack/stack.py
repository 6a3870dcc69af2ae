"""The whole local pipeline: broker, Airflow with the listener, Dagster with the consumer.

The demo and the end-to-end tests both start it through :func:`local_stack`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack.airflow import EXAMPLE_DAGS, LocalAirflow, airflow_env, start_airflow
from devstack.broker import Broker, create_topic, start_broker
from devstack.dagster import EXAMPLE_DEFINITIONS, start_dagster
from devstack.processes import ManagedProcess

EXAMPLE_DAG_IDS = ("example_etl", "example_failing", "example_mapped")


@dataclass
class LocalStack:
    broker: Broker
    airflow: LocalAirflow
    dagster: ManagedProcess
    dagster_url: str
    dagster_home: Path
    topic: str
    instance_name: str
    started_in_seconds: float


@contextlib.contextmanager
def local_stack(
    work_dir: Path,
    *,
    topic: str = "airflow.events",
    instance_name: str = "local",
    definitions: Path = EXAMPLE_DEFINITIONS,
    dagster_port: int | None = None,
    dags_folder: Path = EXAMPLE_DAGS,
    expected_dags: int = len(EXAMPLE_DAG_IDS),
    dagster_env: Mapping[str, str] | None = None,
    dagster_instance_config: str = "",
) -> Iterator[LocalStack]:
    """Start everything under ``work_dir``; stop every process on exit, in reverse order.

    Airflow parses ``dags_folder`` and the stack is ready once ``expected_dags`` DAGs are parsed.
    ``dagster_env`` adds environment variables for the Dagster code location, e.g.
    ``{"AIRSTREAM_DAG_ASSET_HISTORY": "all"}`` for :mod:`devstack.example_definitions`.
    ``dagster_instance_config`` is YAML appended to the Dagster instance's ``dagster.yaml``
    (see :func:`devstack.dagster.start_dagster`).
    """
    started = time.monotonic()
    logs = work_dir / "logs"
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(start_broker(work_dir))
        create_topic(broker.bootstrap_servers, topic, partitions=3)
        env = airflow_env(
            work_dir / "airflow",
            bootstrap_servers=broker.bootstrap_servers,
            topic=topic,
            instance_name=instance_name,
            dags_folder=dags_folder,
        )
        airflow = stack.enter_context(start_airflow(env, log_dir=logs, expected_dags=expected_dags))
        dagster_home = work_dir / "dagster"
        dagster, dagster_url = start_dagster(
            dagster_home,
            env={
                "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                "AIRSTREAM_TOPIC": topic,
                "AIRSTREAM_INSTANCE_NAME": instance_name,
                "AIRFLOW_WEBSERVER_URL": airflow.url,
                **(dagster_env or {}),
            },
            log_dir=logs,
            definitions=definitions,
            port=dagster_port,
            instance_config=dagster_instance_config,
        )
        stack.enter_context(dagster)
        yield LocalStack(
            broker=broker,
            airflow=airflow,
            dagster=dagster,
            dagster_url=dagster_url,
            dagster_home=dagster_home,
            topic=topic,
            instance_name=instance_name,
            started_in_seconds=time.monotonic() - started,
        )
