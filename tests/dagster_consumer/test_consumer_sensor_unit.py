"""Unit tests of the airstream sensor, fed by an in-memory EventSource (no broker)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    AssetRecordsFilter,
    AssetSpec,
    DagsterInstance,
    DailyPartitionsDefinition,
    Definitions,
    MetadataValue,
    SensorDefinition,
    SensorResult,
    build_sensor_context,
)

from airstream.dagster_consumer import (
    AirflowInstance,
    AssetMappings,
    EventSourceUnavailable,
    assets_with_dag_mappings,
    assets_with_multiple_task_mappings,
    assets_with_task_mappings,
    build_airflow_event_sensor,
    build_defs_from_airflow_instance,
)
from airstream.dagster_consumer.cursor import InvalidCursor
from airstream.dagster_consumer.sources.base import EventBatch, EventSource, Position, RejectedMessage
from airstream.dagster_consumer.translate import EVENT_ID_METADATA_KEY, NO_PARTITION_METADATA_KEY
from airstream.schemas import AssetUpdatedEvent, DagRunEvent, Event, EventType, TaskInstanceEvent
from devstack.dagster import tick_with_log

DAG_KEY = AssetKey(["prod", "dag", "etl"])
WAREHOUSE = AssetKey("warehouse")
REPORT = AssetKey("report")
HEALTH = AssetKey(["prod", "airstream_health"])


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


def asset_event(uri: str = "s3://warehouse/orders.parquet", **overrides: Any) -> AssetUpdatedEvent:
    fields: dict[str, Any] = {
        "instance": "prod",
        "event_type": EventType.ASSET_UPDATED,
        "state": "updated",
        "dag_id": "etl",
        "run_id": "r1",
        "task_id": "load",
        "try_number": 1,
        "uri": uri,
        "producer": "airstream/test",
    }
    fields.update(overrides)
    return AssetUpdatedEvent.new(**fields)


def make_sensor(source: EventSource, *, webserver_url: str | None = None) -> SensorDefinition:
    """The sensor with every event on the DAG asset and no state checks: these tests are about the
    consume step (ordering, duplicates, late events), one record per event makes them visible."""
    defs = build_defs_from_airflow_instance(
        dag_asset_history="all",
        airflow_state_checks=False,
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


@pytest.fixture
def fresh_instance() -> Iterator[DagsterInstance]:
    """An empty instance, for tests that store asset events and read them back."""
    with DagsterInstance.ephemeral() as dagster_instance:
        yield dagster_instance


def tick(sensor_def: SensorDefinition, cursor: str | None, instance: DagsterInstance) -> SensorResult:
    context = build_sensor_context(cursor=cursor, instance=instance)
    result = sensor_def(context)
    assert isinstance(result, SensorResult)
    return result


def store(instance: DagsterInstance, result: SensorResult) -> None:
    """Store a tick's asset events, as the daemon does."""
    for asset_event in result.asset_events:
        instance.report_runless_asset_event(asset_event)


def summary(result: SensorResult) -> list[tuple[type, AssetKey, str]]:
    """The recorded Airflow events (the health record aside: see ``health``)."""
    return [
        (type(e), e.asset_key, e.metadata[EVENT_ID_METADATA_KEY].value)  # type: ignore[union-attr]
        for e in result.asset_events
        if e.asset_key != HEALTH
    ]


def health(result: SensorResult) -> dict[str, Any] | None:
    """The metadata of the tick's health observation, values unwrapped; None if the tick was quiet."""
    (observation, *more) = [e for e in result.asset_events if e.asset_key == HEALTH] or [None]
    assert not more
    if observation is None:
        return None
    return {key: getattr(value, "value", value) for key, value in observation.metadata.items()}


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
        mappings=AssetMappings(
            by_task={("etl", "load"): [AssetKey("other")]}, dag_asset_history="all", state_checks=False
        ),
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
    recorded_health = health(result)
    assert recorded_health is not None
    assert recorded_health["airstream/poison_count"] == 2
    assert recorded_health["airstream/gap_count"] == 0
    assert "airflow.events[1]@9" in recorded_health["airstream/last_error"]


def test_a_quiet_tick_records_no_health_observation(instance: DagsterInstance) -> None:
    result = make_sensor(ListEventSource([task_event()]))(build_sensor_context(cursor=None, instance=instance))
    assert isinstance(result, SensorResult)
    assert health(result) is None


@pytest.mark.parametrize("horizon", [0, -1, True, "30d"])
def test_a_deduplication_horizon_that_is_no_duration_is_refused_at_definition_time(horizon: Any) -> None:
    with pytest.raises(ValueError, match=r"deduplication_horizon must be a positive duration"):
        build_defs_from_airflow_instance(
            airflow_instance=AirflowInstance(name="prod", event_source=ListEventSource()),
            deduplication_horizon=horizon,
        )


@pytest.mark.parametrize("interval", [-1, "5m"])
def test_a_health_interval_that_is_not_seconds_is_refused_at_definition_time(interval: Any) -> None:
    with pytest.raises(ValueError, match=r"health_interval must be seconds"):
        build_defs_from_airflow_instance(
            airflow_instance=AirflowInstance(name="prod", event_source=ListEventSource()),
            health_interval=interval,
        )


# --- late running events ------------------------------------------------------------------------


def test_running_after_success_in_one_batch_is_late_and_not_recorded(instance: DagsterInstance) -> None:
    success = task_event(EventType.TASK_INSTANCE_SUCCESS)
    running = task_event(EventType.TASK_INSTANCE_RUNNING)
    result, records = tick_with_log(make_sensor(ListEventSource([success, running])), None, instance)
    assert summary(result) == [
        (AssetObservation, DAG_KEY, success.event_id),
        (AssetMaterialization, WAREHOUSE, success.event_id),
    ]
    assert any("1 late" in r.getMessage() for r in records if r.levelno == logging.INFO)


def test_running_before_success_in_one_batch_is_recorded(instance: DagsterInstance) -> None:
    running = task_event(EventType.TASK_INSTANCE_RUNNING)
    success = task_event(EventType.TASK_INSTANCE_SUCCESS)
    result, records = tick_with_log(make_sensor(ListEventSource([running, success])), None, instance)
    assert summary(result) == [
        (AssetObservation, DAG_KEY, running.event_id),
        (AssetObservation, DAG_KEY, success.event_id),
        (AssetMaterialization, WAREHOUSE, success.event_id),
    ]
    assert any("0 late" in r.getMessage() for r in records if r.levelno == logging.INFO)


@pytest.mark.parametrize(
    "terminal",
    [
        EventType.TASK_INSTANCE_FAILED,
        EventType.TASK_INSTANCE_UP_FOR_RETRY,
        EventType.TASK_INSTANCE_SKIPPED,
        EventType.TASK_INSTANCE_UPSTREAM_FAILED,
        EventType.TASK_INSTANCE_REMOVED,
    ],
)
def test_running_after_any_terminal_state_of_the_try_is_late_on_a_later_tick(
    instance: DagsterInstance, terminal: EventType
) -> None:
    source = ListEventSource([task_event(terminal, map_index=3)])
    first = tick(make_sensor(source), None, instance)
    source.events.append(task_event(EventType.TASK_INSTANCE_RUNNING, map_index=3))
    # A new sensor definition: a restarted process, with only the stored cursor to go on.
    second, records = tick_with_log(make_sensor(source), first.cursor, instance)
    assert second.asset_events == []
    assert any("0 event(s) recorded" in r.getMessage() and "1 late" in r.getMessage() for r in records)


def test_running_of_another_try_or_map_index_is_not_late(instance: DagsterInstance) -> None:
    source = ListEventSource([task_event(EventType.TASK_INSTANCE_UP_FOR_RETRY, try_number=1, map_index=0)])
    first = tick(make_sensor(source), None, instance)
    next_try = task_event(EventType.TASK_INSTANCE_RUNNING, try_number=2, map_index=0)
    other_index = task_event(EventType.TASK_INSTANCE_RUNNING, try_number=1, map_index=1)
    other_run = task_event(EventType.TASK_INSTANCE_RUNNING, try_number=1, map_index=0, run_id="r2")
    source.events.extend([next_try, other_index, other_run])
    second = tick(make_sensor(source), first.cursor, instance)
    assert [event_id for _, _, event_id in summary(second)] == [
        next_try.event_id,
        other_index.event_id,
        other_run.event_id,
    ]


def test_running_before_success_across_ticks_is_recorded(instance: DagsterInstance) -> None:
    running = task_event(EventType.TASK_INSTANCE_RUNNING)
    source = ListEventSource([running])
    first = tick(make_sensor(source), None, instance)
    assert summary(first) == [(AssetObservation, DAG_KEY, running.event_id)]
    success = task_event(EventType.TASK_INSTANCE_SUCCESS)
    source.events.append(success)
    second = tick(make_sensor(source), first.cursor, instance)
    assert [event_id for _, _, event_id in summary(second)] == [success.event_id, success.event_id]


def test_dag_run_running_after_its_end_is_late_in_one_batch_and_across_ticks(instance: DagsterInstance) -> None:
    failed = dag_run_event(EventType.DAG_RUN_FAILED, clear_number=1)
    running = dag_run_event(EventType.DAG_RUN_RUNNING, clear_number=1)
    same_batch = tick(make_sensor(ListEventSource([failed, running])), None, instance)
    assert [event_id for _, _, event_id in summary(same_batch)] == [failed.event_id, failed.event_id]

    source = ListEventSource([failed])
    first = tick(make_sensor(source), None, instance)
    source.events.append(running)
    assert tick(make_sensor(source), first.cursor, instance).asset_events == []


def test_dag_run_running_after_clear_is_a_new_run_not_late(instance: DagsterInstance) -> None:
    done = dag_run_event(EventType.DAG_RUN_SUCCESS, clear_number=0)
    rerun = dag_run_event(EventType.DAG_RUN_RUNNING, clear_number=1)
    result = tick(make_sensor(ListEventSource([done, rerun])), None, instance)
    assert summary(result)[-1] == (AssetObservation, DAG_KEY, rerun.event_id)


def test_dag_run_running_before_its_end_in_one_batch_is_recorded(instance: DagsterInstance) -> None:
    running = dag_run_event(EventType.DAG_RUN_RUNNING)
    done = dag_run_event(EventType.DAG_RUN_SUCCESS)
    result = tick(make_sensor(ListEventSource([running, done])), None, instance)
    assert [event_id for _, _, event_id in summary(result)] == [running.event_id, done.event_id, done.event_id]


# --- mapped tasks the DAG does not have ---------------------------------------------------------


def warnings_of(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if r.levelno == logging.WARNING]


def test_mapped_task_missing_from_a_finished_run_is_warned_once_per_process(instance: DagsterInstance) -> None:
    first_run = dag_run_event(EventType.DAG_RUN_SUCCESS, task_ids=["extract", "transform"])
    source = ListEventSource([first_run])
    sensor_def = make_sensor(source)
    result, records = tick_with_log(sensor_def, None, instance)
    (warning,) = warnings_of(records)
    assert "'load'" in warning and "'etl'" in warning and "warehouse" in warning
    assert "assets_with_task_mappings" in warning

    source.events.append(dag_run_event(EventType.DAG_RUN_FAILED, run_id="r2", task_ids=["extract"]))
    second, records = tick_with_log(sensor_def, result.cursor, instance)
    assert len(second.asset_events) == 2, "the run is still recorded"
    assert warnings_of(records) == [], "the same (dag, task) is reported once per process"
    assert "missing" not in (second.cursor or ""), "nothing of it in the cursor"

    # A new process (new sensor definition) warns again, once.
    source.events.append(dag_run_event(EventType.DAG_RUN_SUCCESS, run_id="r3", task_ids=["extract"]))
    _, records = tick_with_log(make_sensor(source), second.cursor, instance)
    assert len(warnings_of(records)) == 1


def test_no_warning_when_the_task_exists_or_task_ids_are_unknown(instance: DagsterInstance) -> None:
    events: list[Event] = [
        dag_run_event(EventType.DAG_RUN_SUCCESS, task_ids=["extract", "load"]),
        dag_run_event(EventType.DAG_RUN_SUCCESS, run_id="old", task_ids=None),  # written before schema 1.1
        dag_run_event(EventType.DAG_RUN_SUCCESS, dag_id="unmapped", task_ids=["x"]),
    ]
    _, records = tick_with_log(make_sensor(ListEventSource(events)), None, instance)
    assert warnings_of(records) == []


def test_each_missing_task_is_named(instance: DagsterInstance) -> None:
    defs = build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(
            name="prod",
            event_source=ListEventSource([dag_run_event(EventType.DAG_RUN_SUCCESS, task_ids=["extract"])]),
        ),
        defs=Definitions(
            assets=assets_with_task_mappings(
                dag_id="etl", task_mappings={"load": [AssetSpec("a")], "lod": [AssetSpec("b")]}
            )
        ),
    )
    _, records = tick_with_log(defs.resolve_sensor_def("prod__airflow_event_sensor"), None, instance)
    warnings = warnings_of(records)
    assert len(warnings) == 2
    assert "'load'" in warnings[0] and "'lod'" in warnings[1]


# --- asset updates, multiple task mappings and partitions, stored in a Dagster instance ----------

DAILY = DailyPartitionsDefinition(start_date="2025-01-01")
LOGICAL = datetime(2025, 3, 4, tzinfo=timezone.utc)


def partitioned_sensor(source: EventSource) -> SensorDefinition:
    defs = build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(name="prod", event_source=source),
        defs=Definitions(
            assets=[
                *assets_with_multiple_task_mappings(
                    assets=[AssetSpec("orders", partitions_def=DAILY)],
                    task_handles=[{"dag_id": "etl", "task_id": "load"}, {"dag_id": "backfill", "task_id": "load"}],
                ),
                *assets_with_dag_mappings({"etl": [AssetSpec("daily_report", partitions_def=DAILY)]}),
            ]
        ),
        airflow_asset_keys={"s3://warehouse/orders.parquet": AssetKey("orders")},
    )
    return defs.resolve_sensor_def("prod__airflow_event_sensor")


def test_partitioned_materializations_are_stored_per_partition(fresh_instance: DagsterInstance) -> None:
    events: list[Event] = [
        task_event(EventType.TASK_INSTANCE_SUCCESS, logical_date=LOGICAL),
        asset_event("s3://warehouse/orders.parquet", logical_date=LOGICAL),  # already recorded by the mapping
        task_event(
            EventType.TASK_INSTANCE_SUCCESS,
            dag_id="backfill",
            run_id="b1",
            logical_date=datetime(2025, 2, 1, tzinfo=timezone.utc),
        ),
        dag_run_event(EventType.DAG_RUN_SUCCESS, logical_date=LOGICAL),
    ]
    store(fresh_instance, tick(partitioned_sensor(ListEventSource(events)), None, fresh_instance))

    def partitions(key: AssetKey) -> list[str]:
        records = fresh_instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=10).records
        return sorted(record.partition_key or "" for record in records)

    assert partitions(AssetKey("orders")) == ["2025-02-01", "2025-03-04"], "once per task success, not per update"
    assert partitions(AssetKey("daily_report")) == ["2025-03-04"]
    assert partitions(DAG_KEY) == [""], "the DAG asset is not partitioned"


def test_run_without_logical_date_is_stored_as_an_observation_with_the_reason(
    fresh_instance: DagsterInstance,
) -> None:
    manual = task_event(EventType.TASK_INSTANCE_SUCCESS, dag_id="backfill", run_id="manual_1", logical_date=None)
    store(fresh_instance, tick(partitioned_sensor(ListEventSource([manual])), None, fresh_instance))

    assert fresh_instance.fetch_materializations(AssetKey("orders"), limit=10).records == []
    (record,) = fresh_instance.fetch_observations(AssetKey("orders"), limit=10).records
    observation = record.asset_observation
    assert observation is not None and record.partition_key is None
    assert observation.metadata[EVENT_ID_METADATA_KEY] == MetadataValue.text(manual.event_id)
    assert "no logical date" in str(observation.metadata[NO_PARTITION_METADATA_KEY].value)


def test_asset_update_of_an_unmapped_uri_is_stored_under_the_default_key(fresh_instance: DagsterInstance) -> None:
    update = asset_event("s3://lake/events.json")
    result = tick(make_sensor(ListEventSource([update])), None, fresh_instance)
    key = AssetKey(["s3", "lake", "events_json"])
    assert summary(result) == [(AssetMaterialization, key, update.event_id)]
    store(fresh_instance, result)
    (record,) = fresh_instance.fetch_materializations(key, limit=10).records
    assert record.asset_materialization is not None
    assert record.asset_materialization.metadata["airflow/asset_uri"] == MetadataValue.text("s3://lake/events.json")


def test_asset_update_redelivered_is_recorded_once(instance: DagsterInstance) -> None:
    update = asset_event("s3://lake/once.json")
    source = ListEventSource([update, asset_event("s3://lake/once.json")])
    first = tick(make_sensor(source), None, instance)
    assert len(first.asset_events) == 1
    source.events.append(asset_event("s3://lake/once.json"))
    assert tick(make_sensor(source), first.cursor, instance).asset_events == []
