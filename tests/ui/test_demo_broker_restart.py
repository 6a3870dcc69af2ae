"""What the demo's sensor would do without a clean start: its saved offsets point past the end of a
new, empty topic (the embedded broker keeps topics in memory). The Kafka source must notice,
resume from the earliest offset and record the new events, with the gap on the health asset.
The demo itself starts clean (``tests/ui/test_demo_in_dagster_ui.py``)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetSpec, DagsterInstance, Definitions

from airstream.dagster_consumer import (
    AirflowInstance,
    KafkaEventSource,
    assets_with_task_mappings,
    build_defs_from_airflow_instance,
)
from airstream.schemas import DagRunEvent, EventType, TaskInstanceEvent
from devstack.broker import create_topic, publish, start_broker
from devstack.dagster import recorded_asset_events, tick_and_store

pytestmark = pytest.mark.integration

TOPIC = "airflow.events"  # the demo's topic name, the same after a restart
START = datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc)


def _run(run_id: str) -> list[Any]:
    common: dict[str, Any] = {"instance": "local", "dag_id": "example_etl", "run_id": run_id, "producer": "test"}
    common |= {"start_date": START, "end_date": START}
    task = TaskInstanceEvent.new(
        event_type=EventType.TASK_INSTANCE_SUCCESS, state="success", task_id="load", try_number=1, **common
    )
    run = DagRunEvent.new(event_type=EventType.DAG_RUN_SUCCESS, state="success", task_ids=["load"], **common)
    return [task, run]


def _sensor(bootstrap_servers: str) -> Any:
    defs = build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(
            name="local", event_source=KafkaEventSource(bootstrap_servers=bootstrap_servers, topic=TOPIC)
        ),
        defs=Definitions(assets=assets_with_task_mappings("example_etl", {"load": [AssetSpec("warehouse_orders")]})),
    )
    return defs.resolve_sensor_def("local__airflow_event_sensor")


def test_saved_offsets_past_the_end_of_a_new_topic_resume_from_the_earliest_with_a_gap(tmp_path: Path) -> None:
    instance = DagsterInstance.ephemeral()
    first_runs = [event for index in range(4) for event in _run(f"first_{index}")]
    with start_broker(tmp_path / "first") as broker:
        create_topic(broker.bootstrap_servers, TOPIC, partitions=1)
        publish(broker.bootstrap_servers, TOPIC, first_runs, raw_key=b"x")
        cursor, _ = tick_and_store(_sensor(broker.bootstrap_servers), instance, None)
    with start_broker(tmp_path / "second") as broker:  # a new, empty broker: the saved offset is past its end
        create_topic(broker.bootstrap_servers, TOPIC, partitions=1)
        publish(broker.bootstrap_servers, TOPIC, _run("second"), raw_key=b"x")
        tick_and_store(_sensor(broker.bootstrap_servers), instance, cursor)

    recorded = recorded_asset_events(instance)
    runs_on_dag = [e.metadata["airflow/run_id"] for e in recorded if e.asset_key == "local/dag/example_etl"]
    assert runs_on_dag == [f"first_{index}" for index in range(4)] + ["second"]
    health = [e for e in recorded if e.asset_key == "local/airstream_health"]
    assert health and health[-1].metadata["airstream/gap_count"] == 1, "the gap is on the health asset"
