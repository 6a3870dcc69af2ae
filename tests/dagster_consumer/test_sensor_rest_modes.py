"""The sensor's REST modes: fallback polling (no Kafka) and gap repair (Kafka and REST), both
through the one consume step; an in-memory event source and REST API, no Airflow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    SensorDefinition,
    SensorResult,
)

from airstream.dagster_consumer import AirflowInstance, AssetMappings, build_airflow_event_sensor
from airstream.dagster_consumer import sensor as sensor_module
from airstream.dagster_consumer.consume import Recorder, consume
from airstream.dagster_consumer.cursor import SeenEvents
from airstream.dagster_consumer.rest.auth import BearerTokenAuthBackend
from airstream.dagster_consumer.sources.base import EventBatch, EventSource, OffsetGap, Position
from airstream.dagster_consumer.sources.rest import RestEventSource
from airstream.dagster_consumer.translate import EVENT_ID_METADATA_KEY
from airstream.schemas import Event
from devstack.dagster import tick_with_log
from devstack.fake_rest import T0, FakeRestApi, run_record, ti_record

WAREHOUSE = AssetKey("warehouse")
# Every event on the DAG asset, no state checks: one record per event, what these tests count.
MAPPINGS = AssetMappings(by_task={("etl", "load"): [WAREHOUSE]}, dag_asset_history="all", state_checks=False)


class ListEventSource(EventSource):
    """Events from a list: the position is the index of the next event to read; ``per_read``
    limits a read, as a busy topic does."""

    def __init__(self, events: list[Event] | None = None, per_read: int | None = None) -> None:
        self.events: list[Event] = list(events or [])
        self.per_read = per_read

    def read(self, position: Position | None) -> EventBatch:
        start = (position or {}).get("i", 0)
        end = len(self.events) if self.per_read is None else min(len(self.events), start + self.per_read)
        return EventBatch(events=self.events[start:end], position={"i": end}, caught_up=end == len(self.events))

    def describe(self) -> str:
        return "memory://kafka-stand-in"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(sensor_module, "_now", fake)
    return fake


@pytest.fixture(scope="module")
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as dagster_instance:
        yield dagster_instance


def rest_source(api: FakeRestApi) -> RestEventSource:
    return RestEventSource(api, "prod", clock=lambda: T0 + timedelta(hours=1))


def without_event_source() -> AirflowInstance:
    """An instance with REST access only (its client is never built: the tests pass ``rest_source``)."""
    return AirflowInstance(name="prod", auth_backend=BearerTokenAuthBackend("http://airflow.invalid", "token"))


def tick(sensor_def: SensorDefinition, cursor: str | None, instance: DagsterInstance) -> tuple[SensorResult, list[str]]:
    result, records = tick_with_log(sensor_def, cursor, instance)
    return result, [record.getMessage() for record in records]


def recorded_ids(result: SensorResult) -> list[str]:
    return [e.metadata[EVENT_ID_METADATA_KEY].value for e in result.asset_events]  # type: ignore[union-attr,misc]


def one_run_api(run_id: str = "manual__1", *, ended: timedelta = timedelta(0)) -> FakeRestApi:
    return FakeRestApi(
        runs=[run_record("etl", run_id, ended=ended)],
        task_instances=[ti_record("load", "success", run_id=run_id), ti_record("extract", "success", run_id=run_id)],
    )


def add_run(api: FakeRestApi, run_id: str, *, ended: timedelta) -> None:
    api.runs.append(run_record("etl", run_id, ended=ended))
    api.task_instances.append(ti_record("load", "success", run_id=run_id))


# --- the consume step itself ---------------------------------------------------------------------


def test_the_consume_step_reads_drops_translates_and_advances() -> None:
    api = one_run_api()
    seen = SeenEvents()
    recorder = Recorder(instance_name="prod", mappings=MAPPINGS)
    first = consume(rest_source(api), None, seen=seen, recorder=recorder)
    assert (first.read, first.recorded, first.duplicates) == (3, 3, 0)
    assert [type(e) for e in first.asset_events].count(AssetMaterialization) == 2  # load's asset, the DAG asset
    again = consume(rest_source(api), first.position, seen=seen, recorder=recorder)
    assert (again.read, again.recorded, again.duplicates, again.asset_events) == (3, 0, 3, [])


# --- fallback: no Kafka, REST every tick -----------------------------------------------------------


def test_fallback_polls_rest_every_tick_and_records_each_fact_once(instance: DagsterInstance, clock: Clock) -> None:
    api = one_run_api()
    sensor_def = build_airflow_event_sensor(
        airflow_instance=without_event_source(), mappings=MAPPINGS, rest_source=rest_source(api)
    )
    first, log = tick(sensor_def, None, instance)
    assert len(set(recorded_ids(first))) == 3  # two tasks and the DAG run
    assert any("3 read from REST" in line and "3 event(s) recorded" in line for line in log)
    cursor = json.loads(first.cursor or "")
    assert cursor["position"] is None and set(cursor["rest"]) == {"position", "swept_at"}

    second, log = tick(sensor_def, first.cursor, instance)  # the overlap reads the run again
    assert second.asset_events == []
    assert any("3 duplicate(s)" in line for line in log)

    add_run(api, "manual__2", ended=timedelta(minutes=1))
    third, _ = tick(sensor_def, second.cursor, instance)
    assert {e.metadata["airflow/run_id"].value for e in third.asset_events} == {"manual__2"}  # type: ignore[union-attr]
    assert api.calls["list_dag_runs"] == 3, "one poll per tick"


def test_fallback_with_the_rest_api_object(instance: DagsterInstance, clock: Clock) -> None:
    api = one_run_api()
    sensor_def = build_airflow_event_sensor(airflow_instance=without_event_source(), mappings=MAPPINGS, rest_api=api)
    assert "fallback polling" in (sensor_def.description or "")
    result, _ = tick(sensor_def, None, instance)
    assert api.calls["list_dag_runs"] == 1
    assert json.loads(result.cursor or "")["rest"]["position"]["mark"], "the default lookback starts the mark"


def test_fallback_failure_fails_the_tick_and_keeps_the_cursor(instance: DagsterInstance, clock: Clock) -> None:
    api = one_run_api()
    api.fail_with = ConnectionError("connection refused")
    sensor_def = build_airflow_event_sensor(
        airflow_instance=without_event_source(), mappings=MAPPINGS, rest_source=rest_source(api)
    )
    with pytest.raises(Exception, match="connection refused"):
        tick(sensor_def, None, instance)


def test_the_instances_rest_client_is_used_by_default(instance: DagsterInstance) -> None:
    sensor_def = build_airflow_event_sensor(airflow_instance=without_event_source(), mappings=MAPPINGS)
    assert "rest://http://airflow.invalid (fallback polling)" in (sensor_def.description or "")
    both = AirflowInstance(
        name="prod",
        event_source=ListEventSource(),
        auth_backend=BearerTokenAuthBackend("http://airflow.invalid", "token"),
    )
    described = build_airflow_event_sensor(airflow_instance=both, mappings=MAPPINGS).description or ""
    assert "gap repair from rest://http://airflow.invalid every 300 s" in described
    kafka_only = AirflowInstance(name="prod", event_source=ListEventSource())
    assert "gap repair" not in (
        build_airflow_event_sensor(airflow_instance=kafka_only, mappings=MAPPINGS).description or ""
    )


# --- gap repair: Kafka every tick, a REST sweep every interval ---------------------------------------


def listener_like_events(api: FakeRestApi) -> list[Event]:
    """What the topic holds for the API's runs: the same facts, hence the same ids."""
    return list(rest_source(api).read(None).events)


def gap_repair_sensor(kafka: EventSource, api: FakeRestApi, **options: Any) -> SensorDefinition:
    options.setdefault("health_interval", None)  # no heartbeats among the asset events these tests count
    return build_airflow_event_sensor(
        airflow_instance=AirflowInstance(name="prod", event_source=kafka),
        mappings=MAPPINGS,
        rest_source=rest_source(api),
        **options,
    )


def test_a_fact_kafka_and_rest_both_deliver_is_recorded_once(instance: DagsterInstance, clock: Clock) -> None:
    api = one_run_api("delivered")
    kafka = ListEventSource(listener_like_events(api))
    add_run(api, "lost", ended=timedelta(minutes=1))  # ended in Airflow, never reached the topic
    sensor_def = gap_repair_sensor(kafka, api)

    result, log = tick(sensor_def, None, instance)
    by_run: dict[str, list[str]] = {}
    for asset_event in result.asset_events:
        by_run.setdefault(asset_event.metadata["airflow/run_id"].value, []).append(  # type: ignore[union-attr,arg-type]
            asset_event.metadata[EVENT_ID_METADATA_KEY].value  # type: ignore[union-attr,arg-type]
        )
    assert len(by_run["delivered"]) == len(recorded_ids(result)) - len(by_run["lost"])
    assert len(set(by_run["delivered"])) == 3, "Kafka's three facts, each once"
    assert len(set(by_run["lost"])) == 2, "the lost run's task and DAG run, repaired"
    assert any("gap repair: 5 read from REST, 2 gap-repaired" in line and "3 duplicate(s)" in line for line in log)


def test_sweeps_run_every_interval_and_not_in_between(instance: DagsterInstance, clock: Clock) -> None:
    api = FakeRestApi()
    kafka = ListEventSource()
    sensor_def = gap_repair_sensor(kafka, api, gap_repair_interval=300)
    cursor = None
    sweeps = []
    for elapsed in (0, 100, 299, 300, 301, 650):
        clock.now = 1_000_000.0 + elapsed
        result, _ = tick(sensor_def, cursor, instance)
        cursor = result.cursor
        sweeps.append(api.calls["list_dag_runs"])
    assert sweeps == [1, 1, 1, 2, 2, 3]
    assert json.loads(cursor or "")["rest"]["swept_at"] == 1_000_650


def test_a_repair_between_sweeps_waits_for_the_next_one(instance: DagsterInstance, clock: Clock) -> None:
    api = FakeRestApi()
    sensor_def = gap_repair_sensor(ListEventSource(), api, gap_repair_interval=300)
    first, _ = tick(sensor_def, None, instance)
    add_run(api, "lost", ended=timedelta(minutes=1))
    clock.now += 60
    between, _ = tick(sensor_def, first.cursor, instance)
    assert between.asset_events == []
    clock.now += 300
    swept, log = tick(sensor_def, between.cursor, instance)
    assert len(set(recorded_ids(swept))) == 2
    assert any("2 gap-repaired" in line for line in log)
    clock.now += 300
    again, _ = tick(sensor_def, swept.cursor, instance)
    assert again.asset_events == [], "repaired exactly once"


def test_a_gap_in_the_topic_makes_a_sweep_due_now(instance: DagsterInstance, clock: Clock) -> None:
    class GapOnce(ListEventSource):
        def __init__(self) -> None:
            super().__init__()
            self.gaps = [OffsetGap(partition=1, stored_offset=40, resumed_offset=25, reason="below the log start")]

        def read(self, position: Position | None) -> EventBatch:
            batch = super().read(position)
            batch.gaps, self.gaps = self.gaps, []
            return batch

    api = FakeRestApi()
    sensor_def = gap_repair_sensor(GapOnce(), api, gap_repair_interval=300)
    first, _ = tick(gap_repair_sensor(ListEventSource(), api, gap_repair_interval=300), None, instance)  # no gap
    assert api.calls["list_dag_runs"] == 1
    clock.now += 60  # well before the next sweep would be due
    result, log = tick(sensor_def, first.cursor, instance)
    assert api.calls["list_dag_runs"] == 2, "the gap made the sweep due now"
    assert any("events lost to the topic: partition 1: stored offset 40" in line for line in log)
    assert json.loads(result.cursor or "")["rest"]["swept_at"] == round(clock.now)


@pytest.mark.parametrize("interval", [None, 0])
def test_gap_repair_can_be_disabled(instance: DagsterInstance, clock: Clock, interval: float | None) -> None:
    api = one_run_api()
    result, _ = tick(gap_repair_sensor(ListEventSource(), api, gap_repair_interval=interval), None, instance)
    assert api.calls == {}
    assert "rest" not in json.loads(result.cursor or ""), "the cursor keeps its Kafka-only form"


def test_a_truncated_sweep_continues_on_the_next_tick(instance: DagsterInstance, clock: Clock) -> None:
    api = FakeRestApi()
    for number in range(5):
        add_run(api, f"r{number}", ended=timedelta(seconds=number))
    sensor_def = build_airflow_event_sensor(
        airflow_instance=AirflowInstance(name="prod", event_source=ListEventSource()),
        mappings=MAPPINGS,
        rest_source=RestEventSource(api, "prod", clock=lambda: T0 + timedelta(hours=1), max_runs_per_read=2),
        gap_repair_interval=300,
    )
    cursor, runs = None, set()
    for _ in range(4):  # no time passes: a sweep that hit its bound is due again at once
        result, _ = tick(sensor_def, cursor, instance)
        cursor = result.cursor
        runs |= {e.metadata["airflow/run_id"].value for e in result.asset_events}  # type: ignore[union-attr]
    assert runs == {f"r{n}" for n in range(5)}


def test_a_failed_sweep_is_logged_the_kafka_part_stands_and_it_is_retried(
    instance: DagsterInstance, clock: Clock
) -> None:
    api = one_run_api("lost")
    api.fail_with = ConnectionError("connection refused")
    kafka = ListEventSource(listener_like_events(one_run_api("delivered")))
    sensor_def = gap_repair_sensor(kafka, api)
    first, log = tick(sensor_def, None, instance)
    assert len(set(recorded_ids(first))) == 3, "Kafka's events are recorded"
    assert any("gap repair" in line and "connection refused" in line and "retried" in line for line in log)
    assert "rest" not in json.loads(first.cursor or "")

    api.fail_with = None
    clock.now += 1
    second, _ = tick(sensor_def, first.cursor, instance)
    assert len(set(recorded_ids(second))) == 3, "the lost run, on the very next tick"


def test_the_cursor_stays_compact_with_both_positions(instance: DagsterInstance, clock: Clock) -> None:
    api = FakeRestApi()
    for number in range(50):
        add_run(api, f"r{number}", ended=timedelta(seconds=number))
    result, _ = tick(gap_repair_sensor(ListEventSource(), api), None, instance)
    cursor = json.loads(result.cursor or "")
    assert set(cursor) == {"position", "rest", "ids", "totals", "health_at"}
    assert set(cursor["rest"]["position"]) == {"mark", "next"}
    assert len(result.cursor or "") < 500, f"positions, a pointer to the ids and totals: {result.cursor}"


def test_an_inferred_retry_of_a_cleared_try_is_dropped_when_the_try_ended_otherwise(
    instance: DagsterInstance, clock: Clock
) -> None:
    # Try 1 of `load` succeeded (on the topic), a person cleared it, try 2 succeeded (lost).
    api = FakeRestApi(runs=[run_record("etl", "r1")], task_instances=[ti_record("load", "success", run_id="r1")])
    try_1 = listener_like_events(api)[0]
    api.task_instances = [ti_record("load", "success", run_id="r1", try_number=2)]
    sensor_def = gap_repair_sensor(ListEventSource([try_1]), api)
    result, log = tick(sensor_def, None, instance)
    states = sorted(
        (e.metadata["airflow/state"].value, e.metadata["airflow/try_number"].value)
        for e in result.asset_events
        if "airflow/try_number" in e.metadata
    )  # type: ignore[union-attr,misc]
    assert ("up_for_retry", 1) not in states
    assert ("success", 1) in states and ("success", 2) in states
    assert any("1 inferred retries superseded" in line for line in log)


def test_an_inferred_retry_the_topic_delivered_is_a_plain_duplicate(instance: DagsterInstance, clock: Clock) -> None:
    api = FakeRestApi(
        runs=[run_record("etl", "r1")], task_instances=[ti_record("load", "success", run_id="r1", try_number=2)]
    )
    on_topic = [e for e in listener_like_events(api) if e.event_type.value == "task_instance.up_for_retry"]
    result, log = tick(gap_repair_sensor(ListEventSource(on_topic), api), None, instance)
    assert sum(1 for e in result.asset_events if e.metadata["airflow/state"].value == "up_for_retry") == 2  # type: ignore[union-attr]
    assert any("gap repair" in line and "1 duplicate(s)" in line for line in log)


def test_a_due_sweep_waits_until_the_topic_is_read_to_its_end(instance: DagsterInstance, clock: Clock) -> None:
    api = one_run_api()
    kafka = ListEventSource(listener_like_events(api), per_read=2)  # 3 events: two ticks to read
    api.calls.clear()
    sensor_def = gap_repair_sensor(kafka, api)
    first, _ = tick(sensor_def, None, instance)
    assert api.calls == {}, "the topic still had events: no sweep"
    _, log = tick(sensor_def, first.cursor, instance)
    assert api.calls["list_dag_runs"] == 1
    assert any("0 gap-repaired" in line and "3 duplicate(s)" in line for line in log), "what the topic held was lag"
