"""The Dagster code location of the demo, the end-to-end tests and the compose stack.

Configured by environment variables, so one file serves all three:
``KAFKA_BOOTSTRAP_SERVERS`` (required), ``AIRSTREAM_TOPIC`` (default ``airflow.events``),
``AIRSTREAM_INSTANCE_NAME`` (default ``local``), ``AIRFLOW_WEBSERVER_URL`` (optional),
``AIRSTREAM_DAG_ASSET_HISTORY`` (``runs``, the default, or ``all``: what the DAG assets keep).
"""

from __future__ import annotations

import os

from dagster import AssetSpec, Definitions

from airstream.dagster_consumer import (
    AirflowInstance,
    KafkaEventSource,
    assets_with_dag_mappings,
    assets_with_task_mappings,
    build_defs_from_airflow_instance,
)
from airstream.dagster_consumer.dag_history import check_dag_asset_history


def airflow_instance_from_env() -> AirflowInstance:
    """The observed Airflow, as the environment variables above describe it."""
    bootstrap_servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap_servers:
        raise RuntimeError("set KAFKA_BOOTSTRAP_SERVERS to the broker the Airflow listener publishes to")
    return AirflowInstance(
        name=os.environ.get("AIRSTREAM_INSTANCE_NAME", "local"),
        event_source=KafkaEventSource(
            bootstrap_servers=bootstrap_servers,
            topic=os.environ.get("AIRSTREAM_TOPIC", "airflow.events"),
        ),
        webserver_url=os.environ.get("AIRFLOW_WEBSERVER_URL"),
    )


defs = build_defs_from_airflow_instance(
    airflow_instance=airflow_instance_from_env(),
    dag_asset_history=check_dag_asset_history(os.environ.get("AIRSTREAM_DAG_ASSET_HISTORY", "runs")),
    defs=Definitions(
        assets=[
            *assets_with_task_mappings(dag_id="example_etl", task_mappings={"load": [AssetSpec("warehouse_orders")]}),
            *assets_with_task_mappings(
                dag_id="example_failing", task_mappings={"flaky_call": [AssetSpec("partner_feed")]}
            ),
            *assets_with_task_mappings(
                dag_id="example_mapped", task_mappings={"process_partition": [AssetSpec("monthly_partitions")]}
            ),
            *assets_with_dag_mappings({"example_mapped": [AssetSpec("monthly_report")]}),
        ]
    ),
)
