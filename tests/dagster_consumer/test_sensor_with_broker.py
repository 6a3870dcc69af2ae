"""The sensor reading a real broker into a real Dagster instance."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from dagster import AssetKey, AssetSpec, DagsterInstance, Definitions, instance_for_test

from airstream.dagster_consumer import (
    AirflowInstance,
    EventSourceUnavailable,
    KafkaEventSource,
    assets_with_task_mappings,
    build_defs_from_airflow_instance,
)
from airstream.dagster_consumer.sources.kafka import partition_offsets
from airstream.schemas import DagRunEvent, Event, EventType, TaskInstanceEvent, message_key, serialize_event
from devstack.broker import Broker, publish
from devstack.dagster import tick_and_store
from devstack.processes import free_port

pytestmark = pytest.mark.integration

INSTANCE = "prod"
SENSOR = f"{INSTANCE}__airflow_event_sensor"
WAREHOUSE = AssetKey("warehouse_table")
DAG_ASSET = AssetKey([INSTANCE, "dag", "etl"])


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as dagster_instance:
        yield dagster_instance


def offsets(cursor: str | None) -> dict[int, int]:
    """Partition → next offset in a sensor cursor (the position's topic id aside)."""
    return partition_offsets(json.loads(cursor or "")["position"])


def _defs(bootstrap_servers: str, topic: str, **source_options: Any) -> Definitions:
    return build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(
            name=INSTANCE,
            event_source=KafkaEventSource(bootstrap_servers=bootstrap_servers, topic=topic, **source_options),
            webserver_url="http://airflow.example:8080",
        ),
        defs=Definitions(
            assets=[*assets_with_task_mappings(dag_id="etl", task_mappings={"load": [AssetSpec(WAREHOUSE)]})]
        ),
    )


def _tick(instance: DagsterInstance, defs: Definitions, cursor: str | None) -> str | None:
    """One sensor evaluation whose asset events are stored, as the daemon does."""
    cursor, _ = tick_and_store(defs.resolve_sensor_def(SENSOR), instance, cursor, definitions=defs)
    return cursor


def _publish(broker: Broker, topic: str, events: Sequence[Event | bytes | None]) -> None:
    publish(broker.bootstrap_servers, topic, events, raw_key=message_key(INSTANCE, "etl"))


def _task_event(task_id: str, event_type: EventType, run: str = "run_1", try_number: int = 1) -> TaskInstanceEvent:
    start = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
    return TaskInstanceEvent.new(
        instance=INSTANCE,
        event_type=event_type,
        state=event_type.state,
        dag_id="etl",
        run_id=run,
        task_id=task_id,
        try_number=try_number,
        start_date=start,
        end_date=start + timedelta(seconds=3),
        logical_date=start,
        producer="test",
    )


def _dag_event(event_type: EventType, run: str = "run_1") -> DagRunEvent:
    return DagRunEvent.new(
        instance=INSTANCE, event_type=event_type, state=event_type.state, dag_id="etl", run_id=run, producer="test"
    )


def _materialized_runs(instance: DagsterInstance, key: AssetKey) -> list[str]:
    records = instance.fetch_materializations(key, limit=1000, ascending=True).records
    return [str(record.asset_materialization.metadata["airflow/run_id"].value) for record in records]  # type: ignore[union-attr]


def _run(number: int) -> list[Event]:
    run = f"run_{number}"
    return [
        _task_event("load", EventType.TASK_INSTANCE_RUNNING, run),
        _task_event("load", EventType.TASK_INSTANCE_SUCCESS, run),
        _dag_event(EventType.DAG_RUN_SUCCESS, run),
    ]


def test_task_success_materializes_the_mapped_asset_with_airflow_metadata(
    broker: Broker, topic: str, instance: DagsterInstance
) -> None:
    _publish(broker, topic, _run(1))
    _tick(instance, _defs(broker.bootstrap_servers, topic), cursor=None)

    (record,) = instance.fetch_materializations(WAREHOUSE, limit=10).records
    metadata = {key: getattr(value, "value", value) for key, value in record.asset_materialization.metadata.items()}  # type: ignore[union-attr]
    assert metadata["airflow/task_id"] == "load"
    assert metadata["airflow/duration_seconds"] == 3.0
    assert metadata["airflow/url"] == "http://airflow.example:8080/dags/etl/runs/run_1/tasks/load"
    assert _materialized_runs(instance, DAG_ASSET) == ["run_1"]
    # the DAG asset's default history ("runs"): the run's outcome only, the task events are not repeated on it
    assert instance.fetch_observations(DAG_ASSET, limit=10).records == []


def test_a_restart_from_the_stored_cursor_neither_loses_nor_repeats(
    broker: Broker, topic: str, instance: DagsterInstance
) -> None:
    _publish(broker, topic, [event for number in range(1, 4) for event in _run(number)])  # 9 events

    # A small per-tick budget makes the sensor stop mid-topic, as a busy topic would.
    cursor = _tick(instance, _defs(broker.bootstrap_servers, topic, max_events_per_tick=4), cursor=None)
    assert cursor is not None and sum(offsets(cursor).values()) == 4

    # "Restart": brand-new definitions and source, only the stored cursor carried over.
    cursor = _tick(instance, _defs(broker.bootstrap_servers, topic), cursor=cursor)
    assert sorted(_materialized_runs(instance, WAREHOUSE)) == ["run_1", "run_2", "run_3"]

    unchanged = _tick(instance, _defs(broker.bootstrap_servers, topic), cursor=cursor)
    assert json.loads(unchanged or "")["position"] == json.loads(cursor or "")["position"]
    _publish(broker, topic, _run(4))
    _tick(instance, _defs(broker.bootstrap_servers, topic), cursor=unchanged)
    assert sorted(_materialized_runs(instance, WAREHOUSE)) == ["run_1", "run_2", "run_3", "run_4"]
    assert sorted(_materialized_runs(instance, DAG_ASSET)) == ["run_1", "run_2", "run_3", "run_4"]


def test_duplicates_never_materialize_twice_even_across_ticks(
    broker: Broker, topic: str, instance: DagsterInstance
) -> None:
    defs = _defs(broker.bootstrap_servers, topic)
    success = _task_event("load", EventType.TASK_INSTANCE_SUCCESS)
    _publish(broker, topic, [success, success])
    cursor = _tick(instance, defs, cursor=None)
    _publish(broker, topic, [success])  # redelivered later, e.g. from a listener's spool
    _tick(instance, defs, cursor=cursor)
    assert _materialized_runs(instance, WAREHOUSE) == ["run_1"]


def test_a_dag_run_success_that_arrives_before_its_last_task_still_gives_both(
    broker: Broker, topic: str, instance: DagsterInstance
) -> None:
    defs = _defs(broker.bootstrap_servers, topic)
    _publish(broker, topic, [_dag_event(EventType.DAG_RUN_SUCCESS)])
    cursor = _tick(instance, defs, cursor=None)
    _publish(broker, topic, [_task_event("load", EventType.TASK_INSTANCE_SUCCESS)])
    _tick(instance, defs, cursor=cursor)
    assert _materialized_runs(instance, DAG_ASSET) == ["run_1"]
    assert _materialized_runs(instance, WAREHOUSE) == ["run_1"]


def test_failures_show_on_the_mapped_asset_without_materializing_it(
    broker: Broker, topic: str, instance: DagsterInstance
) -> None:
    _publish(
        broker,
        topic,
        [
            _task_event("load", EventType.TASK_INSTANCE_UP_FOR_RETRY, try_number=1),
            _task_event("load", EventType.TASK_INSTANCE_FAILED, try_number=2),
            _dag_event(EventType.DAG_RUN_FAILED),
        ],
    )
    _tick(instance, _defs(broker.bootstrap_servers, topic), cursor=None)
    assert _materialized_runs(instance, WAREHOUSE) == []
    states = [
        record.asset_observation.metadata["airflow/state"].value  # type: ignore[union-attr]
        for record in instance.fetch_observations(WAREHOUSE, limit=10, ascending=True).records
    ]
    assert states == ["up_for_retry", "failed"]


def test_malformed_and_unknown_version_messages_are_skipped_and_the_rest_recorded(
    broker: Broker, topic: str, instance: DagsterInstance
) -> None:
    future = json.loads(serialize_event(_task_event("load", EventType.TASK_INSTANCE_SUCCESS, run="run_future")))
    future["schema_version"] = "2.0"
    _publish(
        broker,
        topic,
        [b"not json at all", json.dumps(future).encode(), _task_event("load", EventType.TASK_INSTANCE_SUCCESS)],
    )
    cursor = _tick(instance, _defs(broker.bootstrap_servers, topic), cursor=None)
    assert _materialized_runs(instance, WAREHOUSE) == ["run_1"]
    assert sum(offsets(cursor).values()) == 3, "the cursor moves past what was skipped"


def test_an_unreachable_broker_fails_the_tick_with_a_clear_error_and_keeps_the_cursor(
    instance: DagsterInstance,
) -> None:
    defs = _defs(f"127.0.0.1:{free_port()}", "airflow.events", connect_timeout_seconds=1)
    with pytest.raises(EventSourceUnavailable, match=r"cannot connect to Kafka at 127\.0\.0\.1:"):
        _tick(instance, defs, cursor='{"position": {"0": 5}, "seen": ""}')


# --- bad input and lost offsets -------------------------------------------------------------------

HEALTH = AssetKey([INSTANCE, "airstream_health"])


def _health(instance: DagsterInstance) -> list[dict[str, Any]]:
    """The stored health observations' metadata, oldest first, values unwrapped."""
    return [
        {key: getattr(value, "value", value) for key, value in record.asset_observation.metadata.items()}  # type: ignore[union-attr]
        for record in instance.fetch_observations(HEALTH, limit=100, ascending=True).records
    ]


def test_a_tombstone_and_a_bad_event_are_skipped_and_counted_and_the_events_around_them_recorded(
    broker: Broker, topic: str, instance: DagsterInstance
) -> None:
    broken = json.loads(serialize_event(_task_event("load", EventType.TASK_INSTANCE_SUCCESS, run="run_broken")))
    del broken["try_number"]  # fails the schema
    _publish(broker, topic, _run(1))
    _publish(broker, topic, [None, json.dumps(broken).encode()])  # offsets 3 and 4 of the etl partition
    _publish(broker, topic, _run(2))

    cursor = _tick(instance, _defs(broker.bootstrap_servers, topic), cursor=None)
    assert sorted(_materialized_runs(instance, WAREHOUSE)) == ["run_1", "run_2"]
    assert sum(offsets(cursor).values()) == 8, "the cursor moves past what was skipped"
    (health,) = _health(instance)
    assert health["airstream/poison_count"] == 2
    assert [entry["where"].rsplit("@", 1)[1] for entry in health["airstream/poison"]] == ["3", "4"]
    assert "tombstone" in health["airstream/poison"][0]["reason"]

    _tick(instance, _defs(broker.bootstrap_servers, topic), cursor=cursor)
    assert len(_health(instance)) == 1, "a quiet tick adds no health observation"


def test_an_event_whose_dates_mix_aware_and_naive_values_is_recorded(
    broker: Broker, topic: str, instance: DagsterInstance
) -> None:
    mixed = json.loads(serialize_event(_task_event("load", EventType.TASK_INSTANCE_SUCCESS, run="run_mixed")))
    mixed["start_date"] = "2026-11-01T12:00:00+01:00"
    mixed["end_date"] = "2026-11-01T11:00:03"  # naive: taken as UTC
    mixed["logical_date"] = "2026-11-01T00:00:00"
    _publish(broker, topic, [json.dumps(mixed).encode()])
    _publish(broker, topic, _run(1))

    _tick(instance, _defs(broker.bootstrap_servers, topic), cursor=None)
    assert sorted(_materialized_runs(instance, WAREHOUSE)) == ["run_1", "run_mixed"]
    record = instance.fetch_materializations(WAREHOUSE, limit=10, ascending=True).records[0]
    assert record.asset_materialization.metadata["airflow/duration_seconds"].value == 3.0  # type: ignore[union-attr]
    assert _health(instance) == []


def test_a_new_event_type_of_the_same_major_version_is_skipped_as_unknown_not_as_an_error(
    broker: Broker, topic: str, instance: DagsterInstance
) -> None:
    deferred = json.loads(serialize_event(_task_event("load", EventType.TASK_INSTANCE_RUNNING, run="run_1")))
    deferred.update(schema_version="1.7", event_type="task_instance.deferred", state="deferred")
    _publish(broker, topic, [json.dumps(deferred).encode()])
    _publish(broker, topic, _run(1))

    _tick(instance, _defs(broker.bootstrap_servers, topic), cursor=None)
    assert _materialized_runs(instance, WAREHOUSE) == ["run_1"]
    (health,) = _health(instance)
    assert (health["airstream/unknown_type_count"], health["airstream/poison_count"]) == (1, 0)
    assert health["airstream/last_error"] == ""


def test_a_recreated_topic_resumes_from_its_earliest_offset_and_records_the_gap(
    broker: Broker, topic: str, instance: DagsterInstance
) -> None:
    from kafka import KafkaAdminClient

    from devstack.broker import create_topic

    _publish(broker, topic, [event for number in range(1, 6) for event in _run(number)])  # 15 on one partition
    cursor = _tick(instance, _defs(broker.bootstrap_servers, topic), cursor=None)
    (partition,) = [str(p) for p, offset in offsets(cursor).items() if offset == 15]

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        admin.delete_topics([topic])
    finally:
        admin.close()
    create_topic(broker.bootstrap_servers, topic, partitions=3)
    _publish(broker, topic, _run(6) + _run(7))  # offsets 0..5 of the new partition, below the stored 15

    cursor = _tick(instance, _defs(broker.bootstrap_servers, topic), cursor=cursor)
    runs = sorted(_materialized_runs(instance, WAREHOUSE))
    assert runs == [f"run_{n}" for n in range(1, 8)], f"recorded {runs}: the new topic's events must not be skipped"
    assert json.loads(cursor or "")["position"][partition] == 6
    (health,) = _health(instance)
    assert health["airstream/gap_count"] == 1
    assert health["airstream/gap_partitions"] == [int(partition)]
    (gap,) = health["airstream/gaps"]
    assert (gap["stored_offset"], gap["resumed_offset"]) == (15, 0)
    assert "recreated" in gap["reason"] or "created again" in gap["reason"]

    _publish(broker, topic, _run(8))
    _tick(instance, _defs(broker.bootstrap_servers, topic), cursor=cursor)
    assert len(_health(instance)) == 1, "the gap is reported once"
    assert "run_8" in _materialized_runs(instance, WAREHOUSE)


def test_poison_messages_are_copied_to_the_dead_letter_topic_with_the_reason(
    broker: Broker, topic: str, instance: DagsterInstance, topic_reader: Any
) -> None:
    dead_letters = f"{topic}-dead-letters"
    _publish(broker, topic, [None, b"not json at all"])
    _publish(broker, topic, _run(1))

    _tick(instance, _defs(broker.bootstrap_servers, topic, dead_letter_topic=dead_letters), cursor=None)
    assert _materialized_runs(instance, WAREHOUSE) == ["run_1"]
    copies = topic_reader(dead_letters, expected=2)
    assert [record.value for record in copies] == [None, b"not json at all"]
    assert all(record.key == message_key(INSTANCE, "etl") for record in copies)
    headers = [dict(record.headers) for record in copies]
    assert b"tombstone" in headers[0]["airstream-error"]
    assert [h["airstream-origin"].decode().rsplit("@", 1)[1] for h in headers] == ["0", "1"]
    assert all(h["airstream-origin"].decode().startswith(f"{topic}[") for h in headers)


def test_a_dead_letter_topic_must_be_another_topic() -> None:
    with pytest.raises(ValueError, match="dead_letter_topic must be a topic other than"):
        KafkaEventSource(bootstrap_servers="localhost:9092", topic="airflow.events", dead_letter_topic="airflow.events")
