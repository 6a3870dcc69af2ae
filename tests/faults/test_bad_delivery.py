"""Bad delivery on a real broker into a real Dagster instance: poison between valid events, events
out of order and duplicated hours apart, a topic deleted and created again under the cursor.

Each assertion states the figures: sent, recorded, lost, duplicated. (An offset below the log
start, as retention leaves it, needs a log start the embedded broker cannot move: that case is
``tests/dagster_consumer/test_kafka_source_offsets.py``.)
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from dagster import AssetCheckKey, AssetKey

from airstream.schemas import DagRunEvent, Event, EventType, TaskInstanceEvent, message_key
from devstack.broker import TansuProcess, create_topic, publish
from devstack.figures import SensorDriver, count_figures

pytestmark = pytest.mark.integration

INSTANCE = "faults"
DAY = datetime(2026, 11, 2, 0, 0, tzinfo=timezone.utc)


def task_event(dag_id: str, run: int, task_id: str, event_type: EventType, try_number: int = 1) -> TaskInstanceEvent:
    start = DAY + timedelta(hours=3 * run)
    terminal = event_type != EventType.TASK_INSTANCE_RUNNING
    return TaskInstanceEvent.new(
        instance=INSTANCE,
        event_type=event_type,
        state=event_type.state,
        dag_id=dag_id,
        run_id=f"scheduled__{start.isoformat()}",
        task_id=task_id,
        try_number=try_number,
        start_date=start + timedelta(minutes=try_number),
        end_date=start + timedelta(minutes=try_number, seconds=30) if terminal else None,
        logical_date=start,
        producer="faults",
    )


def run_event(dag_id: str, run: int, event_type: EventType) -> DagRunEvent:
    start = DAY + timedelta(hours=3 * run)
    return DagRunEvent.new(
        instance=INSTANCE,
        event_type=event_type,
        state=event_type.state,
        dag_id=dag_id,
        run_id=f"scheduled__{start.isoformat()}",
        start_date=start,
        end_date=start + timedelta(minutes=5) if event_type != EventType.DAG_RUN_RUNNING else None,
        logical_date=start,
        producer="faults",
    )


def history(dag_id: str, runs: int) -> list[Event]:
    """``runs`` runs three hours apart; in each, ``extract`` fails once then succeeds, ``load`` succeeds."""
    events: list[Event] = []
    for run in range(runs):
        events += [
            run_event(dag_id, run, EventType.DAG_RUN_RUNNING),
            task_event(dag_id, run, "extract", EventType.TASK_INSTANCE_RUNNING),
            task_event(dag_id, run, "extract", EventType.TASK_INSTANCE_UP_FOR_RETRY),
            task_event(dag_id, run, "extract", EventType.TASK_INSTANCE_RUNNING, try_number=2),
            task_event(dag_id, run, "extract", EventType.TASK_INSTANCE_SUCCESS, try_number=2),
            task_event(dag_id, run, "load", EventType.TASK_INSTANCE_RUNNING),
            task_event(dag_id, run, "load", EventType.TASK_INSTANCE_SUCCESS),
            run_event(dag_id, run, EventType.DAG_RUN_SUCCESS),
        ]
    return events


def send(broker: TansuProcess, topic: str, messages: list[Event | bytes | None]) -> None:
    publish(broker.bootstrap_servers, topic, messages, raw_key=message_key(INSTANCE, "etl"))


def recreate(broker: TansuProcess, topic: str) -> None:
    """Delete ``topic`` and create it again, empty."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        admin.delete_topics([topic])
    finally:
        admin.close()
    create_topic(broker.bootstrap_servers, topic, partitions=3)


def test_poison_between_valid_events_never_costs_a_valid_one(
    durable_broker: TansuProcess, durable_topic: str, sensor_driver: SensorDriver
) -> None:
    valid = history("etl", runs=4)
    poison: list[bytes | None] = [
        b"not json at all",
        None,  # a tombstone
        b'{"schema_version": "1.1", "event_type": "task_instance.success"}',  # fails the schema
        b'{"schema_version": "9.0", "event_type": "task_instance.success", "instance": "faults"}',  # unknown major
        b"\xff\xfe\x00 binary",
    ]
    messages: list[Event | bytes | None] = []
    for index, event in enumerate(valid):
        messages.append(event)
        messages.append(poison[index % len(poison)])
    send(durable_broker, durable_topic, messages)

    sensor_driver.tick_until_quiet()

    figures = count_figures([e.event_id for e in valid], sensor_driver.recorded_ids())
    print(f"poison interleaved: {len(messages) - len(valid)} poison messages; {figures}")
    assert figures.exactly_once, str(figures)
    health = sensor_driver.instance.fetch_observations(AssetKey([INSTANCE, "airstream_health"]), limit=10).records
    poison_counted = sum(
        int(record.event_log_entry.asset_observation.metadata["airstream/poison_count"].value) for record in health
    )
    assert poison_counted == len(messages) - len(valid), (
        f"{figures}; poison counted on the health record: {poison_counted}"
    )


def test_events_out_of_order_and_duplicated_hours_apart_end_in_the_right_state(
    durable_broker: TansuProcess, durable_topic: str, sensor_driver: SensorDriver
) -> None:
    events = history("etl", runs=6)  # runs 3 hours apart: 15 hours of history
    terminal = [event for event in events if event.state != "running"]
    # The first run's failed try arrives last: its listener's spool was flushed hours later.
    straggler = events[2]
    assert straggler.state == "up_for_retry"
    shuffled = [event for event in events if event is not straggler]
    random.Random(8).shuffle(shuffled)
    repeats = random.Random(9).sample(events, len(events) // 2)
    # Three bursts with ticks between them; the later two repeat half of everything in other orders.
    for burst in (shuffled[:20], shuffled[20:] + repeats, [straggler, *reversed(repeats)]):
        send(durable_broker, durable_topic, list(burst))
        sensor_driver.tick_until_quiet()

    recorded = sensor_driver.recorded_ids()
    figures = count_figures(
        [e.event_id for e in terminal], [i for i in recorded if i in {e.event_id for e in terminal}]
    )
    print(f"out of order, {len(repeats)} duplicated hours apart: terminal events {figures}")
    assert figures.exactly_once, str(figures)
    assert len(recorded) == len(set(recorded)), f"an event was recorded twice; {figures}"

    # The final state a user sees: each run's DAG asset materialized once, and each task-mapped
    # asset's `airflow_task_succeeded` check passed (`extract` failed once, then succeeded).
    instance = sensor_driver.instance
    materialized = instance.fetch_materializations(AssetKey([INSTANCE, "dag", "etl"]), limit=100).records
    assert len(materialized) == 6, f"DAG-run successes materialized: {len(materialized)} of 6; {figures}"
    newest_run = events[-1].run_id
    for asset in ("extracted", "loaded"):
        check = AssetCheckKey(AssetKey(asset), "airflow_task_succeeded")
        latest = instance.get_latest_asset_check_evaluation_record(check)
        evaluation = latest.event.dagster_event.event_specific_data if latest and latest.event else None
        metadata = {k: getattr(v, "value", v) for k, v in (evaluation.metadata if evaluation else {}).items()}
        assert evaluation is not None and evaluation.passed and metadata.get("airflow/run_id") == newest_run, (
            f"{asset}'s check ends {'passed' if evaluation and evaluation.passed else 'failed'} after every task "
            f"succeeded, from {metadata.get('airflow/run_id')} try {metadata.get('airflow/try_number')} "
            f"{metadata.get('airflow/state')}; {figures}"
        )


def test_a_topic_deleted_and_created_again_under_the_cursor_loses_nothing_new(
    durable_broker: TansuProcess, durable_topic: str, sensor_driver: SensorDriver
) -> None:
    before = history("etl", runs=3)
    send(durable_broker, durable_topic, list(before))
    sensor_driver.tick_until_quiet()

    recreate(durable_broker, durable_topic)
    after = history("other", runs=1)[:3]  # fewer records than the cursor's offsets
    send(durable_broker, durable_topic, list(after))
    sensor_driver.tick_until_quiet()

    figures = count_figures([e.event_id for e in before + after], sensor_driver.recorded_ids())
    print(f"topic recreated under the cursor: {figures}")
    assert figures.exactly_once, str(figures)
    health = sensor_driver.instance.fetch_observations(AssetKey([INSTANCE, "airstream_health"]), limit=10).records
    gaps = sum(int(r.event_log_entry.asset_observation.metadata["airstream/gap_count"].value) for r in health)
    assert gaps >= 1, f"the recreated topic was not reported as a gap; {figures}"


def test_a_topic_recreated_and_refilled_past_the_cursor_loses_nothing(
    durable_broker: TansuProcess, durable_topic: str, sensor_driver: SensorDriver
) -> None:
    """Retention past the cursor, as this broker allows it: the topic is deleted while the sensor
    is paused and created again, and more events than the cursor's offsets arrive before the next
    tick, so the stored offsets point inside the new log, at records the sensor never read."""
    before = history("etl", runs=1)
    send(durable_broker, durable_topic, list(before))
    sensor_driver.tick_until_quiet()

    recreate(durable_broker, durable_topic)
    after = history("etl", runs=4)[8:]  # three new runs: more records than the cursor's offsets
    send(durable_broker, durable_topic, list(after))
    sensor_driver.tick_until_quiet()

    figures = count_figures([e.event_id for e in before + after], sensor_driver.recorded_ids())
    print(f"topic recreated and refilled past the cursor: {figures}")
    assert figures.exactly_once, str(figures)
