"""The consumer's health (lag, totals, last error, heartbeats and incidents on the health asset,
a line in each tick's log) and the time range of an offset gap handed to REST gap repair."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance, SensorDefinition, SensorResult

from airstream.dagster_consumer import AirflowInstance, AssetMappings, build_airflow_event_sensor
from airstream.dagster_consumer import sensor as sensor_module
from airstream.dagster_consumer.sources.base import EventBatch, EventSource, OffsetGap, Position, RejectedMessage
from airstream.dagster_consumer.sources.rest import RestEventSource
from airstream.schemas import EventType, TaskInstanceEvent
from devstack.dagster import tick_with_log
from devstack.fake_rest import T0, FakeRestApi, run_record, ti_record

HEALTH = AssetKey(["prod", "airstream_health"])
MAPPINGS = AssetMappings(by_task={("etl", "load"): [AssetKey("warehouse")]})


class ScriptedSource(EventSource):
    """Hands out the batches it was given, one per read; then empty reads at the last position."""

    def __init__(self, batches: list[EventBatch]) -> None:
        self.batches = list(batches)
        self.last: EventBatch = EventBatch(events=[], position={})

    def read(self, position: Position | None) -> EventBatch:
        if self.batches:
            self.last = self.batches.pop(0)
            return self.last
        return EventBatch(events=[], position=self.last.position, ends=self.last.ends)

    def describe(self) -> str:
        return "kafka://stand-in/airflow.events"


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as dagster_instance:
        yield dagster_instance


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(T0 + timedelta(days=3))
    monkeypatch.setattr(sensor_module, "_now", fake)
    return fake


def success(run_id: str, ended: datetime) -> TaskInstanceEvent:
    return TaskInstanceEvent.new(
        instance="prod",
        event_type=EventType.TASK_INSTANCE_SUCCESS,
        state="success",
        dag_id="etl",
        run_id=run_id,
        task_id="load",
        try_number=1,
        start_date=ended - timedelta(seconds=5),
        end_date=ended,
        producer="test",
    )


def tick(sensor_def: SensorDefinition, cursor: str | None, instance: DagsterInstance) -> tuple[SensorResult, str]:
    result, records = tick_with_log(sensor_def, cursor, instance)
    return result, "\n".join(record.getMessage() for record in records)


def health(result: SensorResult) -> dict[str, Any] | None:
    found = [e for e in result.asset_events if e.asset_key == HEALTH]
    assert len(found) <= 1
    return {k: getattr(v, "value", v) for k, v in found[0].metadata.items()} if found else None  # type: ignore[union-attr]


def test_lag_and_totals_are_logged_every_tick_and_a_heartbeat_carries_them(
    instance: DagsterInstance, clock: Clock
) -> None:
    batches = [
        EventBatch(
            events=[success("r1", T0), success("r2", T0)],
            position={"0": 7, "1": 5},
            ends={"0": 10, "1": 5},
        ),
        EventBatch(events=[success("r1", T0)], position={"0": 8, "1": 5}, ends={"0": 12, "1": 5}),
    ]
    sensor_def = build_airflow_event_sensor(
        airflow_instance=AirflowInstance(name="prod", event_source=ScriptedSource(batches)),
        mappings=MAPPINGS,
        health_interval=300,
    )
    first, log = tick(sensor_def, None, instance)
    assert "lag 3 (0: 3, 1: 0)" in log and "2 recorded, 0 duplicates" in log, log
    assert health(first) is None, "the first tick starts the heartbeat's clock"

    clock.now += 100
    second, log = tick(sensor_def, first.cursor, instance)
    assert "lag 4 (0: 4, 1: 0)" in log and "2 recorded, 1 duplicates" in log, log
    assert health(second) is None, "no heartbeat before health_interval"

    clock.now += 201
    third, _ = tick(sensor_def, second.cursor, instance)
    heartbeat = health(third)
    assert heartbeat is not None, "a heartbeat after health_interval, though the tick was quiet"
    assert heartbeat["airstream/kind"] == "heartbeat"
    assert heartbeat["airstream/lag_total"] == 4 and heartbeat["airstream/lag"] == {"0": 4, "1": 0}
    assert (heartbeat["airstream/total_recorded"], heartbeat["airstream/total_duplicates"]) == (2, 1)

    clock.now += 5
    fourth, _ = tick(sensor_def, third.cursor, instance)
    assert health(fourth) is None, "the next heartbeat waits another interval"
    assert len(fourth.cursor or "") < 400, fourth.cursor


def test_an_incident_is_recorded_at_once_with_the_last_error(instance: DagsterInstance, clock: Clock) -> None:
    poison = RejectedMessage(where="airflow.events[0]@3", reason="not JSON")
    batches = [
        EventBatch(events=[], position={"0": 3}, ends={"0": 3}),
        EventBatch(events=[], position={"0": 4}, ends={"0": 4}, rejected=[poison], dead_lettered=1),
    ]
    sensor_def = build_airflow_event_sensor(
        airflow_instance=AirflowInstance(name="prod", event_source=ScriptedSource(batches)), mappings=MAPPINGS
    )
    first, _ = tick(sensor_def, None, instance)
    clock.now += 1
    second, _ = tick(sensor_def, first.cursor, instance)
    incident = health(second)
    assert incident is not None and incident["airstream/kind"] == "incident"
    assert incident["airstream/poison_count"] == 1 and incident["airstream/total_dead_lettered"] == 1
    assert incident["airstream/last_error"].endswith("airflow.events[0]@3: not JSON")

    clock.now += 1
    third, _ = tick(sensor_def, second.cursor, instance)
    assert health(third) is None, "a quiet tick after it records nothing"
    assert json.loads(third.cursor or "")["error"].endswith("not JSON"), "the last error stays for the heartbeats"


def test_health_interval_none_records_incidents_only(instance: DagsterInstance, clock: Clock) -> None:
    sensor_def = build_airflow_event_sensor(
        airflow_instance=AirflowInstance(name="prod", event_source=ScriptedSource([])),
        mappings=MAPPINGS,
        health_interval=None,
    )
    cursor = None
    for _ in range(3):
        clock.now += 3600
        result, _ = tick(sensor_def, cursor, instance)
        assert health(result) is None
        cursor = result.cursor
    with pytest.raises(ValueError, match="health_interval"):
        build_airflow_event_sensor(
            airflow_instance=AirflowInstance(name="prod", event_source=ScriptedSource([])),
            mappings=MAPPINGS,
            health_interval=-1,
        )


def test_a_gap_hands_its_time_range_to_the_rest_gap_repair(instance: DagsterInstance, clock: Clock) -> None:
    before, after = T0, T0 + timedelta(hours=2)
    lost_end = T0 + timedelta(hours=1)  # a run that ended inside the gap, whose events retention took
    api = FakeRestApi(
        runs=[run_record("etl", "lost", ended=timedelta(hours=1))],
        task_instances=[ti_record("load", "success", run_id="lost")],
    )
    assert api.runs[0].end_date == lost_end
    gap = OffsetGap(partition=0, stored_offset=1, resumed_offset=40, reason="below the log start", first_event_at=after)
    batches = [
        EventBatch(events=[success("r1", before)], position={"0": 1}, ends={"0": 1}, newest_at={"0": before}),
        EventBatch(events=[success("r2", after)], position={"0": 41}, ends={"0": 41}, gaps=[gap]),
    ]
    rest = RestEventSource(
        api, "prod", clock=lambda: T0 + timedelta(days=3), initial_lookback=timedelta(hours=1),
        overlap=timedelta(minutes=5),
    )  # fmt: skip
    sensor_def = build_airflow_event_sensor(
        airflow_instance=AirflowInstance(name="prod", event_source=ScriptedSource(batches)),
        mappings=MAPPINGS,
        rest_source=rest,
        gap_repair_interval=300,
    )
    first, _ = tick(sensor_def, None, instance)
    assert api.run_queries[-1]["end_date_gte"] == T0 + timedelta(days=3, hours=-1), "its own first sweep: an hour"
    assert not [e for e in first.asset_events if "lost" in str(e.metadata.get("airflow/run_id"))]  # type: ignore[union-attr]

    clock.now += 60  # before the next sweep would be due
    second, log = tick(sensor_def, first.cursor, instance)
    assert api.run_queries[-1]["end_date_gte"] == before - timedelta(minutes=5), (
        "the sweep starts at the newest event recorded before the gap, less the REST overlap"
    )
    assert "2026-03-01T12:00:00Z to 2026-03-01T14:00:00Z" in log, log
    repaired = {getattr(e.metadata.get("airflow/run_id"), "value", None) for e in second.asset_events}  # type: ignore[union-attr]
    assert "lost" in repaired, "the run that ended in the gap is gap-repaired"
    incident = health(second)
    assert incident is not None and incident["airstream/gap_count"] == 1
    assert incident["airstream/gap_time_range"] == {"since": "2026-03-01T12:00:00Z", "until": "2026-03-01T14:00:00Z"}
