"""The sensor recording into Dagster on a real PostgreSQL server, as production runs it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dagster import AssetKey, AssetSpec, DagsterInstance, Definitions

from airstream.dagster_consumer import (
    AirflowInstance,
    KafkaEventSource,
    assets_with_task_mappings,
    build_defs_from_airflow_instance,
)
from airstream.schemas import DagRunEvent, Event, EventType, TaskInstanceEvent, message_key
from devstack.broker import Broker, publish
from devstack.dagster import recorded_asset_events, tick_and_store

pytestmark = pytest.mark.integration

INSTANCE = "prod"
SENSOR = f"{INSTANCE}__airflow_event_sensor"
WAREHOUSE = AssetKey("warehouse_table")


def _defs(broker: Broker, topic: str) -> Definitions:
    return build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(
            name=INSTANCE, event_source=KafkaEventSource(bootstrap_servers=broker.bootstrap_servers, topic=topic)
        ),
        defs=Definitions(
            assets=[*assets_with_task_mappings(dag_id="etl", task_mappings={"load": [AssetSpec(WAREHOUSE)]})]
        ),
    )


def _run_events(run: int) -> list[Event]:
    start = datetime(2026, 11, 1, 12, tzinfo=timezone.utc) + timedelta(hours=run)
    common = {"instance": INSTANCE, "dag_id": "etl", "run_id": f"run_{run}", "logical_date": start, "producer": "test"}
    return [
        TaskInstanceEvent.new(
            event_type=EventType.TASK_INSTANCE_SUCCESS,
            state="success",
            task_id="load",
            try_number=1,
            start_date=start,
            end_date=start + timedelta(seconds=2),
            **common,
        ),
        DagRunEvent.new(
            event_type=EventType.DAG_RUN_SUCCESS,
            state="success",
            start_date=start,
            end_date=start + timedelta(seconds=3),
            **common,
        ),
    ]


def _tick_until_caught_up(defs: Definitions, instance: DagsterInstance, cursor: str | None) -> tuple[str | None, int]:
    stored_in_all = 0
    for _ in range(10):
        cursor, stored = tick_and_store(defs.resolve_sensor_def(SENSOR), instance, cursor, definitions=defs)
        stored_in_all += stored
        if stored == 0:
            return cursor, stored_in_all
    raise AssertionError(f"the sensor was still recording after 10 ticks ({stored_in_all} asset events)")


def test_sensor_records_each_run_once_on_postgres(
    broker: Broker, topic: str, postgres_instance: DagsterInstance
) -> None:
    defs = _defs(broker, topic)
    runs = range(20)
    events = [event for run in runs for event in _run_events(run)]
    publish(broker.bootstrap_servers, topic, events, raw_key=message_key(INSTANCE, "etl"))

    cursor, _ = _tick_until_caught_up(defs, postgres_instance, None)
    # Every event again, as a spool flushed late or a redelivery would send it.
    publish(broker.bootstrap_servers, topic, events, raw_key=message_key(INSTANCE, "etl"))
    cursor, stored_again = _tick_until_caught_up(defs, postgres_instance, cursor)

    recorded = recorded_asset_events(postgres_instance)
    materialized = [e for e in recorded if e.asset_key == WAREHOUSE.to_user_string() and e.kind == "materialization"]
    runs_materialized = sorted(e.metadata["airflow/run_id"] for e in materialized)
    assert runs_materialized == sorted(f"run_{run}" for run in runs), (
        f"sent {len(runs)} runs twice; recorded {len(materialized)} materializations of {WAREHOUSE.to_user_string()}"
    )
    assert stored_again == 0, f"the redelivered events were recorded again: {stored_again} asset events"
    assert "postgres" in type(postgres_instance.event_log_storage).__name__.lower()
