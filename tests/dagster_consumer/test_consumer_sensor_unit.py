"""Unit tests of the airstream sensor, fed by an in-memory EventSource (no broker)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    AssetSpec,
    DagsterInstance,
    Definitions,
    SensorDefinition,
    SensorResult,
    build_sensor_context,
)

from dagster_consumer import (
    AirflowInstance,
    AssetMappings,
    EventSourceUnavailable,
    assets_with_dag_mappings,
    assets_with_task_mappings,
    build_airflow_event_sensor,
    build_defs_from_airflow_instance,
)
from dagster_consumer.cursor import InvalidCursor
from dagster_consumer.sources.base import EventBatch, EventSource, Position, RejectedMessage
from dagster_consumer.translate import EVENT_ID_METADATA_KEY
from schemas import DagRunEvent, Event, EventType, TaskInstanceEvent

DAG_KEY = AssetKey(["prod", "dag", "etl"])
WAREHOUSE = AssetKey("warehouse")
REPORT = AssetKey("report")


class ListEventSource(EventSource):
    """Events from a list: the position is the index of the next event to read."""

    def __init__(self, events: list[Event] | None = None, rejected: list[RejectedMessage] | None = None) -> None:
        self.events: list[Event] = list(events or [])
        self.rejected = list(rejected or [])
        self.reads: list[Position | None] = []

    def read(self, position: Position | None) -> EventBatch:
        self.reads.append(position)
        start = (position or {}).get("i", 0)
        rejected, self.rejected = self.rejected, []
        return EventBatch(events=self.events[start:], position={"i": len(self.events)}, rejected=rejected)

    def describe(self) -> str:
        return "memory://test"


class BrokenEventSource(EventSource):
    def read(self, position: Position | None) -> EventBatch:
        raise EventSourceUnavailable("broker down")

    def describe(self) -> str:
        return "memory://broken"


def task_event(
    event_type: EventType = EventType.TASK_INSTANCE_SUCCESS, *, instance: str = "prod", **overrides: Any
) -> TaskInstanceEvent:
    fields: dict[str, Any] = {
        "instance": instance,
        "event_type": event_type,
        "state": event_type.state,
        "dag_id": "etl",
        "run_id": "r1",
        "task_id": "load",
        "try_number": 1,
        "producer": "airstream/test",
    }
    fields.update(overrides)
    return TaskInstanceEvent.new(**fields)


def dag_run_event(
    event_type: EventType = EventType.DAG_RUN_SUCCESS, *, instance: str = "prod", **overrides: Any
) -> DagRunEvent:
    fields: dict[str, Any] = {
        "instance": instance,
        "event_type": event_type,
        "state": event_type.state,
        "dag_id": "etl",
        "run_id": "r1",
        "producer": "airstream/test",
    }
    fields.update(overrides)
    return DagRunEvent.new(**fields)


def make_sensor(source: EventSource, *, webserver_url: str | None = None) -> SensorDefinition:
    defs = build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(name="prod", event_source=source, webserver_url=webserver_url),
        defs=Definitions(
            assets=[
                *assets_with_task_mappings(dag_id="etl", task_mappings={"load": [AssetSpec("warehouse")]}),
                *assets_with_dag_mappings({"etl": [AssetSpec("report")]}),
            ]
        ),
    )
    return defs.resolve_sensor_def("prod__airflow_event_sensor")


@pytest.fixture(scope="module")
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as dagster_instance:
        yield dagster_instance


def tick(sensor_def: SensorDefinition, cursor: str | None, instance: DagsterInstance) -> SensorResult:
    context = build_sensor_context(cursor=cursor, instance=instance)
    result = sensor_def(context)
    assert isinstance(result, SensorResult)
    return result


def summary(result: SensorResult) -> list[tuple[type, AssetKey, str]]:
    return [
        (type(e), e.asset_key, e.metadata[EVENT_ID_METADATA_KEY].value)  # type: ignore[union-attr]
        for e in result.asset_events
    ]


# --- ticks --------------------------------------------------------------------------------------


def test_first_tick_records_events_and_returns_a_cursor(instance: DagsterInstance) -> None:
    running = task_event(EventType.TASK_INSTANCE_RUNNING)
    success = task_event(EventType.TASK_INSTANCE_SUCCESS)
    source = ListEventSource([running, success])
    result = tick(make_sensor(source), None, instance)

    assert summary(result) == [
        (AssetObservation, DAG_KEY, running.event_id),
        (AssetObservation, DAG_KEY, success.event_id),
        (AssetMaterialization, WAREHOUSE, success.event_id),
    ]
    assert result.cursor
    assert json.loads(result.cursor)["position"] == {"i": 2}
    assert source.reads == [None]
    assert result.run_requests == []


def test_second_tick_without_new_events_records_nothing(instance: DagsterInstance) -> None:
    source = ListEventSource([task_event()])
    sensor_def = make_sensor(source)
    first = tick(sensor_def, None, instance)
    assert len(first.asset_events) == 2

    second = tick(sensor_def, first.cursor, instance)
    assert second.asset_events == []
    assert source.reads == [None, {"i": 1}]
    assert json.loads(second.cursor or "")["position"] == {"i": 1}


def test_next_tick_records_only_new_events(instance: DagsterInstance) -> None:
    source = ListEventSource([task_event(EventType.TASK_INSTANCE_RUNNING)])
    sensor_def = make_sensor(source)
    first = tick(sensor_def, None, instance)
    done = dag_run_event(EventType.DAG_RUN_SUCCESS)
    source.events.append(done)

    second = tick(sensor_def, first.cursor, instance)
    assert summary(second) == [
        (AssetMaterialization, DAG_KEY, done.event_id),
        (AssetMaterialization, REPORT, done.event_id),
    ]


def test_duplicate_events_in_one_batch_are_recorded_once(instance: DagsterInstance) -> None:
    success = task_event()
    again = task_event()  # same fact → same event_id
    assert again.event_id == success.event_id
    result = tick(make_sensor(ListEventSource([success, again, success])), None, instance)
    assert summary(result) == [
        (AssetObservation, DAG_KEY, success.event_id),
        (AssetMaterialization, WAREHOUSE, success.event_id),
    ]


def test_redelivered_event_on_a_later_tick_is_dropped(instance: DagsterInstance) -> None:
    success = task_event()
    source = ListEventSource([success])
    sensor_def = make_sensor(source)
    first = tick(sensor_def, None, instance)
    source.events.append(task_event())  # at-least-once delivery repeats it
    second = tick(sensor_def, first.cursor, instance)
    assert second.asset_events == []


def test_retry_is_a_new_fact(instance: DagsterInstance) -> None:
    first_try = task_event(EventType.TASK_INSTANCE_UP_FOR_RETRY, try_number=1)
    second_try = task_event(EventType.TASK_INSTANCE_SUCCESS, try_number=2)
    result = tick(make_sensor(ListEventSource([first_try, second_try])), None, instance)
    assert summary(result) == [
        (AssetObservation, DAG_KEY, first_try.event_id),
        (AssetObservation, WAREHOUSE, first_try.event_id),
        (AssetObservation, DAG_KEY, second_try.event_id),
        (AssetMaterialization, WAREHOUSE, second_try.event_id),
    ]


def test_events_of_other_instances_are_ignored(instance: DagsterInstance) -> None:
    ours = task_event()
    theirs = [task_event(instance="staging"), dag_run_event(instance="staging")]
    source = ListEventSource([theirs[0], ours, theirs[1]])
    result = tick(make_sensor(source), None, instance)
    assert summary(result) == [
        (AssetObservation, DAG_KEY, ours.event_id),
        (AssetMaterialization, WAREHOUSE, ours.event_id),
    ]
    assert json.loads(result.cursor or "")["position"] == {"i": 3}


def test_dag_run_success_in_the_same_batch_is_recorded_after_the_task(instance: DagsterInstance) -> None:
    dag_done = dag_run_event(EventType.DAG_RUN_SUCCESS)
    task_done = task_event(EventType.TASK_INSTANCE_SUCCESS)
    result = tick(make_sensor(ListEventSource([dag_done, task_done])), None, instance)
    assert [e.metadata[EVENT_ID_METADATA_KEY].value for e in result.asset_events] == [  # type: ignore[union-attr]
        task_done.event_id,
        task_done.event_id,
        dag_done.event_id,
        dag_done.event_id,
    ]


def test_events_of_unmapped_dags_are_recorded_on_their_dag_asset(instance: DagsterInstance) -> None:
    other = task_event(dag_id="adhoc", task_id="t")
    result = tick(make_sensor(ListEventSource([other])), None, instance)
    assert summary(result) == [(AssetObservation, AssetKey(["prod", "dag", "adhoc"]), other.event_id)]


def test_webserver_url_reaches_the_asset_events(instance: DagsterInstance) -> None:
    result = tick(make_sensor(ListEventSource([task_event()]), webserver_url="http://af:8080/"), None, instance)
    for asset_event in result.asset_events:
        assert asset_event.metadata["airflow/url"].url == "http://af:8080/dags/etl/runs/r1/tasks/load"  # type: ignore[union-attr]


def test_evaluate_tick_gives_the_same_result(instance: DagsterInstance) -> None:
    success = task_event()
    sensor_def = make_sensor(ListEventSource([success]))
    data = sensor_def.evaluate_tick(build_sensor_context(cursor=None, instance=instance))
    assert [(type(e), e.asset_key) for e in data.asset_events] == [
        (AssetObservation, DAG_KEY),
        (AssetMaterialization, WAREHOUSE),
    ]
    assert json.loads(data.cursor or "")["position"] == {"i": 1}


def test_sensor_built_directly_from_mappings(instance: DagsterInstance) -> None:
    sensor_def = build_airflow_event_sensor(
        airflow_instance=AirflowInstance(name="prod", event_source=ListEventSource([task_event()])),
        mappings=AssetMappings(by_task={("etl", "load"): [AssetKey("other")]}),
        deduplication_window=5,
    )
    result = tick(sensor_def, None, instance)
    assert [e.asset_key for e in result.asset_events] == [DAG_KEY, AssetKey("other")]


# --- failures -----------------------------------------------------------------------------------


def test_unreadable_cursor_raises_an_error_mentioning_reset(instance: DagsterInstance) -> None:
    source = ListEventSource([task_event()])
    with pytest.raises(InvalidCursor, match="reset"):
        tick(make_sensor(source), "{not json", instance)
    assert source.reads == [], "nothing may be read with an unreadable cursor"


def test_unreachable_source_fails_the_tick(instance: DagsterInstance) -> None:
    with pytest.raises(EventSourceUnavailable, match="broker down"):
        tick(make_sensor(BrokenEventSource()), None, instance)


def test_rejected_messages_are_logged_and_the_tick_goes_on(instance: DagsterInstance) -> None:
    good = task_event()
    source = ListEventSource(
        [good],
        rejected=[
            RejectedMessage(where="airflow.events[0]@3", reason="event is not valid UTF-8 JSON"),
            RejectedMessage(where="airflow.events[1]@9", reason="event schema version 2.0 is not supported"),
        ],
    )
    context = build_sensor_context(cursor=None, instance=instance)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    context.log.addHandler(handler)
    try:
        result = make_sensor(source)(context)
    finally:
        context.log.removeHandler(handler)

    assert isinstance(result, SensorResult)
    assert summary(result) == [
        (AssetObservation, DAG_KEY, good.event_id),
        (AssetMaterialization, WAREHOUSE, good.event_id),
    ]
    errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    assert len(errors) == 2
    assert "airflow.events[0]@3" in errors[0] and "not valid UTF-8 JSON" in errors[0]
    assert "airflow.events[1]@9" in errors[1] and "2.0" in errors[1]
    infos = [r.getMessage() for r in records if r.levelno == logging.INFO]
    assert any("2 rejected" in message for message in infos)
