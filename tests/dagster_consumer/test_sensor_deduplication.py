"""The sensor records each Airflow event once, whatever delivers it again and whenever, with a
small cursor: a real Dagster instance, an in-memory event source, ticks stored as the daemon does
(or cut short, as a dying daemon or code server would)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance, SensorDefinition, SensorResult, build_sensor_context

from airstream.dagster_consumer import AirflowInstance, AssetMappings, build_airflow_event_sensor
from airstream.dagster_consumer import recorded_ids as recorded_ids_module
from airstream.dagster_consumer import sensor as sensor_module
from airstream.dagster_consumer.cursor import SeenEvents
from airstream.dagster_consumer.sources.base import EventBatch, EventSource, Position
from airstream.dagster_consumer.translate import EVENT_ID_METADATA_KEY
from airstream.schemas import DagRunEvent, Event, EventType, TaskInstanceEvent
from devstack.dagster import recorded_asset_events

WAREHOUSE = AssetKey("warehouse")
HEALTH = AssetKey(["prod", "airstream_health"])
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


class ListEventSource(EventSource):
    """Events from a list; the position is the index of the next one; ``per_read`` bounds a read."""

    def __init__(self, events: list[Event] | None = None, per_read: int | None = None) -> None:
        self.events: list[Event] = list(events or [])
        self.per_read = per_read

    def read(self, position: Position | None) -> EventBatch:
        start = (position or {}).get("i", 0)
        end = len(self.events) if self.per_read is None else min(len(self.events), start + self.per_read)
        return EventBatch(events=self.events[start:end], position={"i": end}, caught_up=end == len(self.events))

    def describe(self) -> str:
        return "memory://topic"


class Clock:
    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(sensor_module, "_now", fake)
    return fake


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as dagster_instance:
        yield dagster_instance


def run(number: int, *, ended: datetime = NOW) -> list[Event]:
    """A run of ``etl``: ``load`` running and success, then the DAG run's success."""
    task: dict[str, Any] = {
        "instance": "prod",
        "dag_id": "etl",
        "run_id": f"run_{number}",
        "task_id": "load",
        "try_number": 1,
        "start_date": ended - timedelta(seconds=5),
        "producer": "test",
    }
    return [
        TaskInstanceEvent.new(event_type=EventType.TASK_INSTANCE_RUNNING, state="running", **task),
        TaskInstanceEvent.new(event_type=EventType.TASK_INSTANCE_SUCCESS, state="success", end_date=ended, **task),
        DagRunEvent.new(
            instance="prod",
            event_type=EventType.DAG_RUN_SUCCESS,
            state="success",
            dag_id="etl",
            run_id=f"run_{number}",
            start_date=ended - timedelta(seconds=6),
            end_date=ended,
            producer="test",
        ),
    ]


def make_sensor(source: EventSource, **options: Any) -> SensorDefinition:
    return build_airflow_event_sensor(
        airflow_instance=AirflowInstance(name="prod", event_source=source),
        mappings=AssetMappings(by_task={("etl", "load"): [WAREHOUSE]}, dag_asset_history="all", state_checks=False),
        **options,
    )


def evaluate(sensor_def: SensorDefinition, cursor: str | None, instance: DagsterInstance) -> SensorResult:
    result = sensor_def.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor))
    assert isinstance(result, SensorResult) or hasattr(result, "asset_events")
    return result  # type: ignore[return-value]


def tick(sensor_def: SensorDefinition, cursor: str | None, instance: DagsterInstance) -> tuple[str | None, int]:
    """A whole tick: evaluate, store the asset events, then the cursor (returned with how many
    asset events of Airflow events were stored, health observations aside)."""
    result = evaluate(sensor_def, cursor, instance)
    for asset_event in result.asset_events:
        instance.report_runless_asset_event(asset_event)
    return result.cursor, sum(1 for e in result.asset_events if e.asset_key != HEALTH)


def records(instance: DagsterInstance) -> Counter[tuple[str, str, str]]:
    """(kind, asset key, event id) → how many times Dagster holds it (the health asset aside)."""
    return Counter(
        (event.kind, event.asset_key, str(event.metadata[EVENT_ID_METADATA_KEY]))
        for event in recorded_asset_events(instance)
        if EVENT_ID_METADATA_KEY in event.metadata
    )


def expected(events: list[Event]) -> Counter[tuple[str, str, str]]:
    """One record on the DAG asset per event, and a warehouse materialization per task success."""
    found: Counter[tuple[str, str, str]] = Counter()
    for event in events:
        kind = "materialization" if event.event_type == EventType.DAG_RUN_SUCCESS else "observation"
        found[(kind, "prod/dag/etl", event.event_id)] += 1
        if event.event_type == EventType.TASK_INSTANCE_SUCCESS:
            found[("materialization", "warehouse", event.event_id)] += 1
    return found


def figures(instance: DagsterInstance, events: list[Event]) -> str:
    held, wanted = records(instance), expected(events)
    lost = sum((wanted - held).values())
    duplicated = sum(count - 1 for count in held.values() if count > 1)
    return (
        f"sent {len(events)} events ({sum(wanted.values())} asset events), held {sum(held.values())}, "
        f"lost {lost}, duplicated {duplicated}"
    )


def test_a_redelivery_days_later_records_nothing_again(instance: DagsterInstance, clock: Clock) -> None:
    events = [event for number in range(5) for event in run(number)]
    source = ListEventSource(events)
    sensor_def = make_sensor(source)
    cursor, _ = tick(sensor_def, None, instance)
    assert records(instance) == expected(events), figures(instance, events)

    clock.now += timedelta(days=12).total_seconds()  # a spool flushed twelve days later: the same events
    source.events += events
    cursor, stored = tick(sensor_def, cursor, instance)
    assert stored == 0 and records(instance) == expected(events), figures(instance, events)


@pytest.mark.parametrize("stored_share", [0.0, 0.5, 1.0], ids=["none-stored", "half-stored", "all-stored"])
def test_a_tick_that_dies_before_its_cursor_is_stored_loses_and_duplicates_nothing(
    storage_instance: DagsterInstance, clock: Clock, stored_share: float
) -> None:
    """The daemon stores a tick's asset events, then its cursor: a crash can come between any two."""
    events = [event for number in range(4) for event in run(number)]
    source = ListEventSource(events[:6])
    sensor_def = make_sensor(source)
    cursor, _ = tick(sensor_def, None, storage_instance)

    source.events += events[6:]
    dying = evaluate(sensor_def, cursor, storage_instance)  # recorded ids were written, the cursor never is
    upto = math.floor(len(dying.asset_events) * stored_share)
    for asset_event in dying.asset_events[:upto]:
        storage_instance.report_runless_asset_event(asset_event)

    clock.now += 5
    retried = make_sensor(source)  # a restarted code server: nothing in memory
    recorded_ids_module._DECODED.clear()
    cursor, _ = tick(retried, cursor, storage_instance)  # from the last stored cursor
    assert records(storage_instance) == expected(events), figures(storage_instance, events)

    source.events += events  # and everything delivered once more
    cursor, stored = tick(retried, cursor, storage_instance)
    assert stored == 0 and records(storage_instance) == expected(events), figures(storage_instance, events)


def test_a_retry_that_reads_less_than_the_dead_tick_still_duplicates_nothing(
    instance: DagsterInstance, clock: Clock
) -> None:
    events = [event for number in range(4) for event in run(number)]
    source = ListEventSource(events)
    sensor_def = make_sensor(source)
    for asset_event in evaluate(sensor_def, None, instance).asset_events:  # all stored, the cursor lost
        instance.report_runless_asset_event(asset_event)
    source.per_read = 5  # the retry reads less (its time bound), the rest comes on later ticks
    cursor = None
    for _ in range(4):
        cursor, _ = tick(sensor_def, cursor, instance)
    assert records(instance) == expected(events), figures(instance, events)


@pytest.mark.parametrize("cut", [2, 5, 8])  # each cuts a task success between its two asset events
def test_an_event_half_stored_by_a_dead_tick_gets_the_rest_when_read_later(
    instance: DagsterInstance, clock: Clock, cut: int
) -> None:
    """The daemon died between two asset events of one Airflow event (a task success: the DAG asset
    and the mapped asset), and the retry reads less than the dead tick did."""
    events = [event for number in range(3) for event in run(number)]  # 3 successes, 2 asset events each
    source = ListEventSource(events)
    sensor_def = make_sensor(source)
    dying = evaluate(sensor_def, None, instance)
    for asset_event in dying.asset_events[:cut]:
        instance.report_runless_asset_event(asset_event)
    source.per_read = 1  # one event per tick from now on
    cursor = None
    for _ in range(len(events) + 1):
        clock.now += 5
        recorded_ids_module._DECODED.clear()
        cursor, _ = tick(make_sensor(source), cursor, instance)
    assert records(instance) == expected(events), figures(instance, events)


def test_events_older_than_the_horizon_are_looked_up_in_the_event_log(
    storage_instance: DagsterInstance, clock: Clock
) -> None:
    instance = storage_instance  # SQLite, then PostgreSQL
    old = [event for number in range(3) for event in run(number, ended=NOW - timedelta(days=40))]
    source = ListEventSource(old)
    sensor_def = make_sensor(source, deduplication_horizon=timedelta(days=30))
    cursor, _ = tick(sensor_def, None, instance)
    assert records(instance) == expected(old), figures(instance, old)

    source.events += old  # delivered again: not in the ids (too old), found in the event log
    cursor, stored = tick(sensor_def, cursor, instance)
    assert stored == 0, figures(instance, old)

    _, stored = tick(make_sensor(ListEventSource(old)), None, instance)  # even with a new cursor
    assert stored == 0 and records(instance) == expected(old), figures(instance, old)


def test_replaying_the_whole_topic_twice_leaves_dagster_as_one_replay(instance: DagsterInstance, clock: Clock) -> None:
    events = [event for number in range(6) for event in run(number)]
    once = ListEventSource(events, per_read=4)
    sensor_def = make_sensor(once)
    cursor = None
    for _ in range(6):
        cursor, _ = tick(sensor_def, cursor, instance)
    after_one = records(instance)
    once.events += events  # the topic replayed into itself (a producer re-sending everything)
    for _ in range(6):
        cursor, _ = tick(sensor_def, cursor, instance)
    assert records(instance) == after_one == expected(events), figures(instance, events)


def test_idle_ticks_write_nothing_and_return_the_same_cursor(
    instance: DagsterInstance, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = ListEventSource(run(1))
    sensor_def = make_sensor(source)
    cursor, _ = tick(sensor_def, None, instance)
    writes: list[dict[str, str]] = []
    original = recorded_ids_module.write_values

    def counting(dagster_instance: Any, pairs: dict[str, str]) -> None:
        writes.append(dict(pairs))
        original(dagster_instance, pairs)

    monkeypatch.setattr(recorded_ids_module, "write_values", counting)
    clock.now += 5
    again, stored = tick(sensor_def, cursor, instance)
    assert (again, stored, writes) == (cursor, 0, []), "an idle tick stores nothing new"


def test_the_cursor_stays_small_whatever_the_history(instance: DagsterInstance, clock: Clock) -> None:
    events = [event for number in range(2000) for event in run(number, ended=NOW - timedelta(minutes=number))]
    source = ListEventSource(events, per_read=100)
    sensor_def = make_sensor(source)
    cursor: str | None = None
    sizes = []
    while (json.loads(cursor)["position"]["i"] if cursor else 0) < len(events):
        clock.now += 5
        cursor, _ = tick(sensor_def, cursor, instance)
        sizes.append(len(cursor or ""))
    assert max(sizes) < 2_000, f"cursor sizes over {len(sizes)} ticks of 100 events: max {max(sizes)} bytes"
    assert len(json.loads(cursor or "")["ids"]["segs"]) < 16

    recorded_ids_module._DECODED.clear()  # a new process reads the ids back from the key-value store
    source.events += events[::7]
    cursor, stored = tick(make_sensor(source), cursor, instance)
    assert stored == 0 and "duplicate" not in str(records(instance).most_common(1)[0][1] > 1)


def test_a_cursor_of_the_earlier_form_keeps_its_ids(instance: DagsterInstance, clock: Clock) -> None:
    events = run(1) + run(2)
    seen = SeenEvents()
    for event in events:
        seen.add(event.event_id)
    old_cursor = json.dumps({"position": {"i": 0}, "seen": seen.encode()})  # written by the window-based sensor

    source = ListEventSource(events)
    cursor, stored = tick(make_sensor(source), old_cursor, instance)
    assert stored == 0, "ids from the old cursor's window are still recognised"
    document = json.loads(cursor or "")
    assert "seen" not in document and document["ids"]["segs"], document

    recorded_ids_module._DECODED.clear()
    source.events += events
    _, stored = tick(make_sensor(source), cursor, instance)
    assert stored == 0, "and they were moved to the key-value store"


@pytest.mark.parametrize("horizon", [0, -5, timedelta(0), timedelta(days=-1), math.nan, math.inf, "30d"])
def test_a_horizon_that_is_not_a_positive_duration_is_refused(horizon: Any) -> None:
    with pytest.raises(ValueError, match=r"deduplication_horizon must be a positive duration.*cannot be turned off"):
        make_sensor(ListEventSource(), deduplication_horizon=horizon)
