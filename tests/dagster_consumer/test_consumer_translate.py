"""Unit tests of dagster_consumer.translate: Airflow events → Dagster asset events."""

from __future__ import annotations

import importlib.util
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    DailyPartitionsDefinition,
    MetadataValue,
    MonthlyPartitionsDefinition,
    TimestampMetadataValue,
    UrlMetadataValue,
)

from airstream.dagster_consumer.asset_keys import AirflowAssetKeys
from airstream.dagster_consumer.checks import RUN_CHECK_NAME, TASK_CHECK_NAME
from airstream.dagster_consumer.dag_history import RunTaskStates
from airstream.dagster_consumer.mappings import AssetMappings
from airstream.dagster_consumer.translate import (
    EVENT_ID_METADATA_KEY,
    NO_PARTITION_METADATA_KEY,
    airflow_ui_url,
    event_metadata,
    order_for_translation,
    translate,
)
from airstream.schemas import AssetUpdatedEvent, DagRunEvent, EventType, TaskInstanceEvent

DAG_KEY = AssetKey(["prod", "dag", "etl"])
WAREHOUSE = AssetKey("warehouse")
REPORT = AssetKey("report")
# The per-event translation: every event on the DAG asset, no check evaluations (both tested below).
MAPPINGS = AssetMappings(
    by_task={("etl", "load"): [WAREHOUSE]}, by_dag={"etl": [REPORT]}, dag_asset_history="all", state_checks=False
)

START = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
END = START + timedelta(seconds=90, milliseconds=500)
LOGICAL = datetime(2025, 1, 2, tzinfo=timezone.utc)


def task_event(event_type: EventType = EventType.TASK_INSTANCE_SUCCESS, **overrides: Any) -> TaskInstanceEvent:
    fields: dict[str, Any] = {
        "instance": "prod",
        "event_type": event_type,
        "state": event_type.state,
        "dag_id": "etl",
        "run_id": "manual__2025-01-02T00:00:00+00:00",
        "task_id": "load",
        "try_number": 1,
        "producer": "airstream/test",
        "logical_date": LOGICAL,
        "start_date": START,
        "end_date": END,
    }
    fields.update(overrides)
    return TaskInstanceEvent.new(**fields)


def dag_run_event(event_type: EventType = EventType.DAG_RUN_SUCCESS, **overrides: Any) -> DagRunEvent:
    fields: dict[str, Any] = {
        "instance": "prod",
        "event_type": event_type,
        "state": event_type.state,
        "dag_id": "etl",
        "run_id": "manual__2025-01-02T00:00:00+00:00",
        "producer": "airstream/test",
        "logical_date": LOGICAL,
        "start_date": START,
        "end_date": END,
    }
    fields.update(overrides)
    return DagRunEvent.new(**fields)


def asset_event(uri: str = "s3://warehouse/orders.parquet", **overrides: Any) -> AssetUpdatedEvent:
    fields: dict[str, Any] = {
        "instance": "prod",
        "event_type": EventType.ASSET_UPDATED,
        "state": "updated",
        "dag_id": "etl",
        "run_id": "manual__2025-01-02T00:00:00+00:00",
        "task_id": "load",
        "try_number": 1,
        "uri": uri,
        "producer": "airstream/test",
        "logical_date": LOGICAL,
        "start_date": START,
        "end_date": END,
    }
    fields.update(overrides)
    return AssetUpdatedEvent.new(**fields)


def kinds_and_keys(asset_events: list[Any]) -> list[tuple[type, AssetKey]]:
    return [(type(e), e.asset_key) for e in asset_events]


def raw(value: Any) -> Any:
    """The plain value behind a (possibly normalised) metadata entry."""
    for attribute in ("value", "text", "url"):
        if hasattr(value, attribute):
            return getattr(value, attribute)
    return value


# --- which asset events each Airflow event becomes -------------------------------------------


def test_task_success_observes_dag_and_materializes_mapped_asset() -> None:
    result = translate(task_event(EventType.TASK_INSTANCE_SUCCESS), mappings=MAPPINGS)
    assert kinds_and_keys(result) == [(AssetObservation, DAG_KEY), (AssetMaterialization, WAREHOUSE)]


@pytest.mark.parametrize(
    "event_type",
    [
        EventType.TASK_INSTANCE_FAILED,
        EventType.TASK_INSTANCE_UP_FOR_RETRY,
        EventType.TASK_INSTANCE_SKIPPED,
        EventType.TASK_INSTANCE_UPSTREAM_FAILED,
        EventType.TASK_INSTANCE_REMOVED,
    ],
)
def test_task_failure_like_states_observe_dag_and_mapped_asset(event_type: EventType) -> None:
    result = translate(task_event(event_type, reported_by="scheduler"), mappings=MAPPINGS)
    assert kinds_and_keys(result) == [(AssetObservation, DAG_KEY), (AssetObservation, WAREHOUSE)]
    assert not any(isinstance(e, AssetMaterialization) for e in result)
    for recorded in result:
        assert raw(recorded.metadata["airflow/state"]) == event_type.state
        assert event_type.state in (recorded.description or "")


@pytest.mark.parametrize("reported_by", ["task", "scheduler", "api-server", None])
def test_task_success_materializes_mapped_asset_whoever_reported_it(reported_by: str | None) -> None:
    event = task_event(EventType.TASK_INSTANCE_SUCCESS, reported_by=reported_by)
    result = translate(event, mappings=MAPPINGS)
    assert kinds_and_keys(result) == [(AssetObservation, DAG_KEY), (AssetMaterialization, WAREHOUSE)]


def test_scheduler_decided_success_has_the_task_process_event_id() -> None:
    # Deduplication absorbs the overlap when both the task process and the scheduler report it.
    by_task = task_event(EventType.TASK_INSTANCE_SUCCESS, reported_by="task")
    by_scheduler = task_event(EventType.TASK_INSTANCE_SUCCESS, reported_by="scheduler", hostname=None)
    assert by_task.event_id == by_scheduler.event_id


def test_task_running_only_observes_dag() -> None:
    result = translate(task_event(EventType.TASK_INSTANCE_RUNNING, end_date=None), mappings=MAPPINGS)
    assert kinds_and_keys(result) == [(AssetObservation, DAG_KEY)]


def test_dag_run_success_materializes_dag_and_dag_mapped_asset() -> None:
    result = translate(dag_run_event(EventType.DAG_RUN_SUCCESS), mappings=MAPPINGS)
    assert kinds_and_keys(result) == [(AssetMaterialization, DAG_KEY), (AssetMaterialization, REPORT)]


def test_dag_run_failed_observes_dag_and_dag_mapped_asset() -> None:
    result = translate(dag_run_event(EventType.DAG_RUN_FAILED), mappings=MAPPINGS)
    assert kinds_and_keys(result) == [(AssetObservation, DAG_KEY), (AssetObservation, REPORT)]


def test_dag_run_running_only_observes_dag() -> None:
    result = translate(dag_run_event(EventType.DAG_RUN_RUNNING, end_date=None), mappings=MAPPINGS)
    assert kinds_and_keys(result) == [(AssetObservation, DAG_KEY)]


def test_unmapped_task_success_only_observes_dag() -> None:
    result = translate(task_event(EventType.TASK_INSTANCE_SUCCESS, task_id="extract"), mappings=MAPPINGS)
    assert kinds_and_keys(result) == [(AssetObservation, DAG_KEY)]


def test_task_mapping_of_another_dag_is_not_used() -> None:
    result = translate(task_event(EventType.TASK_INSTANCE_SUCCESS, dag_id="other"), mappings=MAPPINGS)
    assert kinds_and_keys(result) == [(AssetObservation, AssetKey(["prod", "dag", "other"]))]


def test_dag_asset_key_uses_event_instance_name() -> None:
    result = translate(
        task_event(EventType.TASK_INSTANCE_RUNNING, instance="staging"), mappings=AssetMappings(dag_asset_history="all")
    )
    assert kinds_and_keys(result) == [(AssetObservation, AssetKey(["staging", "dag", "etl"]))]


def test_task_mapped_to_several_assets_materializes_each() -> None:
    other = AssetKey(["lake", "raw"])
    mappings = AssetMappings(by_task={("etl", "load"): [WAREHOUSE, other]}, dag_asset_history="all", state_checks=False)
    result = translate(task_event(), mappings=mappings)
    assert kinds_and_keys(result) == [
        (AssetObservation, DAG_KEY),
        (AssetMaterialization, WAREHOUSE),
        (AssetMaterialization, other),
    ]


def test_every_asset_event_has_a_description_naming_the_state() -> None:
    for event in (task_event(EventType.TASK_INSTANCE_FAILED), dag_run_event(EventType.DAG_RUN_SUCCESS)):
        for asset_event in translate(event, mappings=MAPPINGS):
            assert asset_event.description
            assert event.state in asset_event.description
            assert "etl" in asset_event.description


# --- metadata ---------------------------------------------------------------------------------


def test_task_event_metadata_carries_airflow_facts() -> None:
    event = task_event(map_index=3, try_number=2, hostname="worker-1", operator="PythonOperator")
    metadata = {k: raw(v) for k, v in translate(event, mappings=MAPPINGS)[1].metadata.items()}
    assert metadata[EVENT_ID_METADATA_KEY] == event.event_id
    assert metadata["airflow/instance"] == "prod"
    assert metadata["airflow/dag_id"] == "etl"
    assert metadata["airflow/task_id"] == "load"
    assert metadata["airflow/run_id"] == event.run_id
    assert metadata["airflow/try_number"] == 2
    assert metadata["airflow/map_index"] == 3
    assert metadata["airflow/logical_date"] == LOGICAL.timestamp()
    assert metadata["airflow/start_date"] == START.timestamp()
    assert metadata["airflow/end_date"] == END.timestamp()
    assert metadata["airflow/duration_seconds"] == 90.5
    assert metadata["airflow/state"] == "success"
    assert metadata["airflow/event_type"] == "task_instance.success"
    assert metadata["airflow/hostname"] == "worker-1"
    assert metadata["airflow/operator"] == "PythonOperator"


def test_every_asset_event_of_one_airflow_event_shares_the_event_id() -> None:
    event = task_event()
    ids = {raw(e.metadata[EVENT_ID_METADATA_KEY]) for e in translate(event, mappings=MAPPINGS)}
    assert ids == {event.event_id}


def test_dag_run_metadata_has_no_task_fields() -> None:
    event = dag_run_event()
    metadata = event_metadata(event, None)
    assert metadata[EVENT_ID_METADATA_KEY] == event.event_id
    assert metadata["airflow/dag_id"] == "etl"
    assert metadata["airflow/run_id"] == event.run_id
    assert metadata["airflow/duration_seconds"] == pytest.approx(90.5)
    assert "airflow/task_id" not in metadata
    assert "airflow/try_number" not in metadata


def test_missing_facts_leave_no_empty_rows() -> None:
    event = task_event(EventType.TASK_INSTANCE_RUNNING, logical_date=None, end_date=None, run_type=None)
    metadata = event_metadata(event, None)
    for absent in ("logical_date", "end_date", "duration_seconds", "run_type", "hostname", "operator", "version"):
        assert f"airflow/{absent}" not in metadata
    assert metadata["airflow/start_date"] == MetadataValue.timestamp(START)
    assert all(value != "" for value in metadata.values())


def test_dates_are_timestamps_the_ui_shows_as_dates() -> None:
    metadata = event_metadata(task_event(), None)
    for name in ("logical_date", "start_date", "end_date", "timestamp"):
        assert isinstance(metadata[f"airflow/{name}"], TimestampMetadataValue), name


def test_duration_is_rounded_to_a_tenth_of_a_second() -> None:
    event = task_event(end_date=START + timedelta(seconds=4, microseconds=123456))
    assert event_metadata(event, None)["airflow/duration_seconds"] == 4.1


def test_metadata_reads_state_first_and_event_id_last() -> None:
    keys = list(event_metadata(task_event(hostname="w", operator="PythonOperator"), "http://af:8080"))
    assert keys[0] == "airflow/state"
    assert keys[-1] == EVENT_ID_METADATA_KEY
    assert keys.index("airflow/dag_id") < keys.index("airflow/task_id") < keys.index("airflow/start_date")


def test_without_webserver_url_there_is_no_airflow_url() -> None:
    for asset_event in translate(task_event(), mappings=MAPPINGS):
        assert "airflow/url" not in asset_event.metadata
    assert "airflow/url" not in event_metadata(dag_run_event(), None)


def test_webserver_url_links_the_task_instance() -> None:
    event = task_event(run_id="scheduled__2025-01-02")
    for asset_event in translate(event, mappings=MAPPINGS, webserver_url="http://af:8080"):
        url = asset_event.metadata["airflow/url"]
        assert isinstance(url, UrlMetadataValue)
        assert url.url.startswith("http://af:8080/")
        assert url.url.endswith("/dags/etl/runs/scheduled__2025-01-02/tasks/load")


def test_webserver_url_metadata_is_a_url_value() -> None:
    metadata = event_metadata(task_event(), "http://af:8080")
    assert metadata["airflow/url"] == MetadataValue.url(airflow_ui_url("http://af:8080", task_event()))


def test_webserver_url_of_mapped_task_instance_names_the_map_index() -> None:
    event = task_event(map_index=2, run_id="r1")
    url = event_metadata(event, "http://af:8080")["airflow/url"].url
    assert url == "http://af:8080/dags/etl/runs/r1/tasks/load/mapped/2"


def test_webserver_url_quotes_the_run_id() -> None:
    run_id = "manual__2025-01-02T00:00:00+00:00"
    event = task_event(run_id=run_id)
    url = event_metadata(event, "http://af:8080")["airflow/url"].url
    quoted = quote(run_id, safe="")
    assert "+" not in quoted and ":" not in quoted
    assert url.endswith(f"/dags/etl/runs/{quoted}/tasks/load")
    assert "%2B" in url and "%3A" in url
    assert "+00:00" not in url


def test_webserver_url_of_dag_run_links_the_run() -> None:
    event = dag_run_event(run_id="r1")
    url = event_metadata(event, "http://af:8080")["airflow/url"].url
    assert url == "http://af:8080/dags/etl/runs/r1"


def test_webserver_url_quotes_slashes_in_ids() -> None:
    event = task_event(dag_id="a/b", run_id="r/1", task_id="group.load")
    url = airflow_ui_url("http://af:8080", event)
    assert url == "http://af:8080/dags/a%2Fb/runs/r%2F1/tasks/group.load"


# --- ordering within one batch ------------------------------------------------------------------


def test_order_puts_task_events_before_dag_run_events() -> None:
    dag_done = dag_run_event(EventType.DAG_RUN_SUCCESS)
    task_done = task_event(EventType.TASK_INSTANCE_SUCCESS)
    assert order_for_translation([dag_done, task_done]) == [task_done, dag_done]


def test_order_keeps_relative_order_of_task_events_and_of_dag_run_events() -> None:
    t1 = task_event(EventType.TASK_INSTANCE_RUNNING, task_id="extract")
    d1 = dag_run_event(EventType.DAG_RUN_RUNNING)
    t2 = task_event(EventType.TASK_INSTANCE_SUCCESS, task_id="extract")
    t3 = task_event(EventType.TASK_INSTANCE_RUNNING, task_id="load")
    d2 = dag_run_event(EventType.DAG_RUN_SUCCESS)
    t4 = task_event(EventType.TASK_INSTANCE_SUCCESS, task_id="load")
    assert order_for_translation([t1, d1, t2, t3, d2, t4]) == [t1, t2, t3, t4, d1, d2]


def test_order_accepts_any_iterable_and_empty_input() -> None:
    t1 = task_event()
    assert order_for_translation(iter([t1])) == [t1]
    assert order_for_translation([]) == []


def test_order_keeps_asset_events_with_the_task_events() -> None:
    t1 = task_event(EventType.TASK_INSTANCE_SUCCESS)
    d1 = dag_run_event(EventType.DAG_RUN_SUCCESS)
    a1 = asset_event()
    assert order_for_translation([d1, t1, a1]) == [t1, a1, d1]
    assert order_for_translation([a1, d1]) == [a1, d1]


# --- Airflow asset updates ----------------------------------------------------------------------


def test_asset_update_materializes_the_default_key() -> None:
    result = translate(asset_event("s3://warehouse/orders.parquet"), mappings=MAPPINGS)
    assert kinds_and_keys(result) == [(AssetMaterialization, AssetKey(["s3", "warehouse", "orders_parquet"]))]


def test_asset_update_uses_the_users_key() -> None:
    mappings = AssetMappings(
        airflow_asset_keys=AirflowAssetKeys(keys={"s3://warehouse/orders.parquet": AssetKey(["warehouse", "orders"])})
    )
    result = translate(asset_event("s3://warehouse/orders.parquet"), mappings=mappings)
    assert kinds_and_keys(result) == [(AssetMaterialization, AssetKey(["warehouse", "orders"]))]


def test_asset_update_already_materialized_by_the_task_mapping_is_not_recorded_twice() -> None:
    mappings = AssetMappings(
        by_task={("etl", "load"): [WAREHOUSE]},
        airflow_asset_keys=AirflowAssetKeys(keys={"s3://warehouse/orders.parquet": WAREHOUSE}),
    )
    assert translate(asset_event("s3://warehouse/orders.parquet"), mappings=mappings) == []
    success = translate(task_event(EventType.TASK_INSTANCE_SUCCESS), mappings=mappings)
    assert [key for kind, key in kinds_and_keys(success) if kind is AssetMaterialization] == [WAREHOUSE]


def test_asset_update_by_another_task_than_the_mapped_one_is_recorded() -> None:
    mappings = AssetMappings(
        by_task={("etl", "load"): [WAREHOUSE]},
        airflow_asset_keys=AirflowAssetKeys(keys={"s3://warehouse/orders.parquet": WAREHOUSE}),
    )
    result = translate(asset_event("s3://warehouse/orders.parquet", task_id="backfill"), mappings=mappings)
    assert kinds_and_keys(result) == [(AssetMaterialization, WAREHOUSE)]


def test_asset_update_metadata_names_the_producer_and_the_uri() -> None:
    event = asset_event("s3://warehouse/orders.parquet", name="orders", map_index=4, try_number=2)
    (recorded,) = translate(event, mappings=MAPPINGS, webserver_url="http://af:8080")
    metadata = {k: raw(v) for k, v in recorded.metadata.items()}
    assert metadata[EVENT_ID_METADATA_KEY] == event.event_id
    assert metadata["airflow/dag_id"] == "etl"
    assert metadata["airflow/task_id"] == "load"
    assert metadata["airflow/run_id"] == event.run_id
    assert metadata["airflow/map_index"] == 4
    assert metadata["airflow/try_number"] == 2
    assert metadata["airflow/asset_uri"] == "s3://warehouse/orders.parquet"
    assert metadata["airflow/asset_name"] == "orders"
    assert metadata["airflow/state"] == "updated"
    assert metadata["airflow/event_type"] == "asset.updated"
    assert metadata["airflow/url"].endswith(
        "/dags/etl/runs/manual__2025-01-02T00%3A00%3A00%2B00%3A00/tasks/load/mapped/4"
    )
    assert "airflow/hostname" not in metadata
    assert recorded.description == (
        "Airflow task load[4] of etl (manual__2025-01-02T00:00:00+00:00) updated the Airflow asset "
        "s3://warehouse/orders.parquet"
    )


def test_asset_update_without_optional_fields_translates() -> None:
    event = asset_event("orders", name=None, logical_date=None, start_date=None, end_date=None)
    (recorded,) = translate(event, mappings=MAPPINGS, webserver_url="http://af:8080")
    assert recorded.asset_key == AssetKey("orders")
    assert "airflow/asset_name" not in recorded.metadata
    assert raw(recorded.metadata["airflow/timestamp"]) == event.emitted_at.timestamp()


# --- partitions ---------------------------------------------------------------------------------

DAILY = DailyPartitionsDefinition(start_date="2025-01-01", end_date="2026-01-01")
PARTITIONED = AssetMappings(
    by_task={("etl", "load"): [WAREHOUSE]},
    by_dag={"etl": [REPORT]},
    partitions={WAREHOUSE: DAILY, REPORT: MonthlyPartitionsDefinition(start_date="2025-01-01")},
    dag_asset_history="all",
    state_checks=False,
)


def partitions_of(asset_events: list[Any]) -> list[tuple[type, AssetKey, str | None]]:
    return [(type(e), e.asset_key, e.partition) for e in asset_events]


def test_task_success_materializes_the_partition_of_the_logical_date() -> None:
    result = translate(task_event(logical_date=datetime(2025, 3, 4, tzinfo=timezone.utc)), mappings=PARTITIONED)
    assert partitions_of(result) == [(AssetObservation, DAG_KEY, None), (AssetMaterialization, WAREHOUSE, "2025-03-04")]


def test_dag_run_success_materializes_the_partition_of_the_logical_date() -> None:
    event = dag_run_event(logical_date=datetime(2025, 3, 4, 6, tzinfo=timezone.utc))
    assert partitions_of(translate(event, mappings=PARTITIONED)) == [
        (AssetMaterialization, DAG_KEY, None),
        (AssetMaterialization, REPORT, "2025-03-01"),
    ]


def test_failure_is_observed_on_the_partition() -> None:
    event = task_event(EventType.TASK_INSTANCE_FAILED, logical_date=datetime(2025, 3, 4, tzinfo=timezone.utc))
    assert partitions_of(translate(event, mappings=PARTITIONED))[1] == (AssetObservation, WAREHOUSE, "2025-03-04")


def test_asset_update_of_a_partitioned_asset_materializes_its_partition() -> None:
    mappings = AssetMappings(
        partitions={WAREHOUSE: DAILY},
        airflow_asset_keys=AirflowAssetKeys(keys={"s3://warehouse/orders.parquet": WAREHOUSE}),
    )
    event = asset_event(logical_date=datetime(2025, 3, 4, tzinfo=timezone.utc))
    assert partitions_of(translate(event, mappings=mappings)) == [(AssetMaterialization, WAREHOUSE, "2025-03-04")]


@pytest.mark.parametrize(
    ("logical_date", "why"),
    [
        (datetime(2024, 12, 31, tzinfo=timezone.utc), "before the first partition"),
        (datetime(2026, 1, 1, tzinfo=timezone.utc), "after the last partition"),
        (None, "no logical date"),
    ],
    ids=["before-start", "after-end", "manual-run-without-logical-date"],
)
def test_success_outside_the_partitions_is_an_observation_that_says_why(
    logical_date: datetime | None, why: str
) -> None:
    event = task_event(EventType.TASK_INSTANCE_SUCCESS, logical_date=logical_date)
    dag_record, mapped = translate(event, mappings=PARTITIONED)
    assert isinstance(dag_record, AssetObservation) and dag_record.asset_key == DAG_KEY
    assert isinstance(mapped, AssetObservation)
    assert mapped.asset_key == WAREHOUSE and mapped.partition is None
    assert why in raw(mapped.metadata[NO_PARTITION_METADATA_KEY])
    assert "instead of a materialization" in (mapped.description or "") and why in (mapped.description or "")
    assert raw(mapped.metadata[EVENT_ID_METADATA_KEY]) == event.event_id


def test_failure_outside_the_partitions_is_observed_without_partition() -> None:
    event = task_event(EventType.TASK_INSTANCE_FAILED, logical_date=None)
    _, mapped = translate(event, mappings=PARTITIONED)
    assert isinstance(mapped, AssetObservation) and mapped.partition is None
    assert "no logical date" in raw(mapped.metadata[NO_PARTITION_METADATA_KEY])


def test_unpartitioned_assets_and_dag_assets_never_get_a_partition() -> None:
    result = translate(task_event(logical_date=None), mappings=MAPPINGS)
    assert partitions_of(result) == [(AssetObservation, DAG_KEY, None), (AssetMaterialization, WAREHOUSE, None)]


# --- the time Airflow reached the state ------------------------------------------------------


def test_timestamp_is_the_end_date() -> None:
    value = event_metadata(task_event(), None)["airflow/timestamp"]
    assert isinstance(value, TimestampMetadataValue)
    assert value.value == END.timestamp()


def test_timestamp_falls_back_to_start_then_emission() -> None:
    running = task_event(EventType.TASK_INSTANCE_RUNNING, end_date=None)
    assert event_metadata(running, None)["airflow/timestamp"].value == START.timestamp()
    bare = task_event(EventType.TASK_INSTANCE_RUNNING, start_date=None, end_date=None)
    assert event_metadata(bare, None)["airflow/timestamp"].value == bare.emitted_at.timestamp()


def test_naive_dates_are_taken_as_utc() -> None:
    naive_end = END.replace(tzinfo=None)
    metadata = event_metadata(task_event(end_date=naive_end), None)
    assert metadata["airflow/timestamp"].value == END.timestamp()
    assert metadata["airflow/duration_seconds"] == pytest.approx(90.5)


def test_every_asset_event_carries_the_timestamp() -> None:
    for event in (task_event(), dag_run_event(), asset_event()):
        for recorded in translate(event, mappings=MAPPINGS):
            assert isinstance(recorded.metadata["airflow/timestamp"], TimestampMetadataValue)


def test_airflow_version_is_in_the_metadata() -> None:
    assert event_metadata(task_event(airflow_version="3.3.2"), None)["airflow/version"] == "3.3.2"
    assert "airflow/version" not in event_metadata(task_event(), None)


# --- links per Airflow version -------------------------------------------------------------------


def test_airflow_2_task_link_opens_the_grid() -> None:
    event = task_event(run_id="scheduled__2025-01-02T00:00:00+00:00", airflow_version="2.11.2", map_index=2)
    assert airflow_ui_url("http://af:8080", event) == (
        "http://af:8080/dags/etl/grid?dag_run_id=scheduled__2025-01-02T00%3A00%3A00%2B00%3A00"
        "&task_id=load&map_index=2&base_date=2025-01-02T00%3A00%3A00%2B0000"
    )


def test_airflow_2_unmapped_task_link_has_no_map_index() -> None:
    url = airflow_ui_url("http://af:8080", task_event(run_id="r1", airflow_version="2.10.5"))
    assert url == "http://af:8080/dags/etl/grid?dag_run_id=r1&task_id=load&base_date=2025-01-02T00%3A00%3A00%2B0000"


def test_airflow_2_dag_run_link_and_run_without_logical_date() -> None:
    event = dag_run_event(run_id="manual/1", dag_id="a/b", airflow_version="2.11.2", logical_date=None)
    assert airflow_ui_url("http://af:8080", event) == "http://af:8080/dags/a%2Fb/grid?dag_run_id=manual%2F1"


def test_airflow_2_asset_update_links_the_producing_task() -> None:
    event = asset_event(run_id="r1", airflow_version="2.11.2", map_index=0)
    assert airflow_ui_url("http://af:8080", event).startswith(
        "http://af:8080/dags/etl/grid?dag_run_id=r1&task_id=load&map_index=0"
    )


@pytest.mark.parametrize("version", ["3.3.2", "3.0.0", None, "", "12.0"])
def test_other_versions_link_the_airflow_3_ui(version: str | None) -> None:
    event = task_event(run_id="r1", airflow_version=version)
    assert airflow_ui_url("http://af:8080", event) == "http://af:8080/dags/etl/runs/r1/tasks/load"


# --- the DAG asset's history (dag_asset_history) and the state checks ------------------------------

DEFAULTS = AssetMappings(by_task={("etl", "load"): [WAREHOUSE]}, by_dag={"etl": [REPORT]})


def one_run_of_a_three_task_dag(mappings: AssetMappings, *, failing: str | None = None) -> list[Any]:
    """Everything one run of extract → transform → load records, the events in arrival order."""
    events: list[Any] = [dag_run_event(EventType.DAG_RUN_RUNNING, end_date=None)]
    for task_id in ("extract", "transform", "load"):
        events.append(task_event(EventType.TASK_INSTANCE_RUNNING, task_id=task_id, end_date=None))
        failed = task_id == failing
        events.append(
            task_event(EventType.TASK_INSTANCE_FAILED if failed else EventType.TASK_INSTANCE_SUCCESS, task_id=task_id)
        )
    run_outcome = EventType.DAG_RUN_FAILED if failing else EventType.DAG_RUN_SUCCESS
    events.append(dag_run_event(run_outcome, task_ids=["extract", "transform", "load"]))
    return [asset_event for event in events for asset_event in translate(event, mappings=mappings)]


def on(key: AssetKey, recorded: list[Any], kind: type | tuple[type, ...] = object) -> list[Any]:
    return [e for e in recorded if e.asset_key == key and isinstance(e, kind)]


def test_by_default_a_run_leaves_one_record_on_the_dag_asset_with_its_tasks_summed_up() -> None:
    recorded = one_run_of_a_three_task_dag(AssetMappings(by_task={("etl", "load"): [WAREHOUSE]}))
    (outcome,) = on(DAG_KEY, recorded, (AssetMaterialization, AssetObservation))
    assert isinstance(outcome, AssetMaterialization)
    assert raw(outcome.metadata["airflow/tasks"]) == "3 success"
    assert raw(outcome.metadata["airflow/task_state_counts"]) == {"success": 3}
    assert "airflow/failed_tasks" not in outcome.metadata
    assert "3 success" in (outcome.description or "")
    assert list(outcome.metadata)[-1] == EVENT_ID_METADATA_KEY
    # The task-mapped asset still gets its task's record.
    assert [type(e) for e in on(WAREHOUSE, recorded, (AssetMaterialization, AssetObservation))] == [
        AssetMaterialization
    ]


def test_a_failed_run_is_one_observation_naming_the_failed_task() -> None:
    recorded = one_run_of_a_three_task_dag(AssetMappings(), failing="transform")
    (outcome,) = on(DAG_KEY, recorded, (AssetMaterialization, AssetObservation))
    assert isinstance(outcome, AssetObservation)
    assert raw(outcome.metadata["airflow/failed_tasks"]) == "transform"
    assert raw(outcome.metadata["airflow/task_state_counts"]) == {"success": 2, "failed": 1}
    assert raw(outcome.metadata["airflow/tasks"]) == "2 success, 1 failed (transform)"


def test_history_all_keeps_every_event_on_the_dag_asset() -> None:
    recorded = one_run_of_a_three_task_dag(AssetMappings(dag_asset_history="all", state_checks=False))
    dag_records = on(DAG_KEY, recorded)
    assert len(dag_records) == 8
    assert raw(dag_records[-1].metadata["airflow/tasks"]) == "3 success"


def test_tasks_the_run_lists_that_no_event_reported_are_named() -> None:
    mappings = AssetMappings()
    translate(task_event(task_id="extract"), mappings=mappings)
    (outcome, _) = translate(dag_run_event(task_ids=["extract", "load"]), mappings=mappings)
    assert raw(outcome.metadata["airflow/tasks_not_reported"]) == "load"


def test_a_later_try_replaces_the_earlier_in_the_summary() -> None:
    mappings = AssetMappings()
    translate(task_event(EventType.TASK_INSTANCE_UP_FOR_RETRY, try_number=1), mappings=mappings)
    translate(task_event(EventType.TASK_INSTANCE_SUCCESS, try_number=2), mappings=mappings)
    translate(task_event(EventType.TASK_INSTANCE_RUNNING, try_number=2, end_date=None), mappings=mappings)
    (outcome, _) = translate(dag_run_event(), mappings=mappings)
    assert raw(outcome.metadata["airflow/task_state_counts"]) == {"success": 1}


def test_each_mappings_object_sums_up_its_own_runs() -> None:
    first, second = AssetMappings(), AssetMappings()
    translate(task_event(), mappings=first)
    (outcome, _) = translate(dag_run_event(), mappings=second)
    assert raw(outcome.metadata["airflow/tasks"]) == "no task reported"


def test_an_unknown_history_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="'runs', 'all'"):
        AssetMappings(dag_asset_history="everything")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event_type", "passed", "severity"),
    [
        (EventType.TASK_INSTANCE_SUCCESS, True, AssetCheckSeverity.ERROR),
        (EventType.TASK_INSTANCE_FAILED, False, AssetCheckSeverity.ERROR),
        (EventType.TASK_INSTANCE_UPSTREAM_FAILED, False, AssetCheckSeverity.ERROR),
        (EventType.TASK_INSTANCE_UP_FOR_RETRY, False, AssetCheckSeverity.WARN),
    ],
)
def test_task_outcomes_evaluate_the_mapped_assets_check(event_type: EventType, passed: bool, severity: Any) -> None:
    (check,) = [e for e in translate(task_event(event_type), mappings=DEFAULTS) if isinstance(e, AssetCheckEvaluation)]
    assert (check.asset_key, check.check_name, check.passed, check.severity) == (
        WAREHOUSE,
        TASK_CHECK_NAME,
        passed,
        severity,
    )
    assert raw(check.metadata["airflow/state"]) == event_type.state


@pytest.mark.parametrize(
    "event_type",
    [EventType.TASK_INSTANCE_RUNNING, EventType.TASK_INSTANCE_SKIPPED, EventType.TASK_INSTANCE_REMOVED],
)
def test_running_skipped_and_removed_leave_the_check_as_it_was(event_type: EventType) -> None:
    assert not [e for e in translate(task_event(event_type), mappings=DEFAULTS) if isinstance(e, AssetCheckEvaluation)]


@pytest.mark.parametrize(
    ("event_type", "passed"), [(EventType.DAG_RUN_SUCCESS, True), (EventType.DAG_RUN_FAILED, False)]
)
def test_run_outcomes_evaluate_the_dag_asset_and_dag_mapped_asset_checks(event_type: EventType, passed: bool) -> None:
    checks = [e for e in translate(dag_run_event(event_type), mappings=DEFAULTS) if isinstance(e, AssetCheckEvaluation)]
    assert [(c.asset_key, c.check_name, c.passed) for c in checks] == [
        (DAG_KEY, RUN_CHECK_NAME, passed),
        (REPORT, RUN_CHECK_NAME, passed),
    ]


def test_no_check_evaluations_without_state_checks() -> None:
    recorded = one_run_of_a_three_task_dag(AssetMappings(by_task={("etl", "load"): [WAREHOUSE]}, state_checks=False))
    assert not [e for e in recorded if isinstance(e, AssetCheckEvaluation)]


def test_mapped_task_instances_are_counted_each_and_named_with_their_index() -> None:
    mappings = AssetMappings()
    for index in range(3):
        event_type = EventType.TASK_INSTANCE_FAILED if index == 1 else EventType.TASK_INSTANCE_SUCCESS
        translate(task_event(event_type, task_id="part", map_index=index), mappings=mappings)
    (outcome, _) = translate(dag_run_event(EventType.DAG_RUN_FAILED, task_ids=["part"]), mappings=mappings)
    assert raw(outcome.metadata["airflow/tasks"]) == "2 success, 1 failed (part[1])"
    assert "airflow/tasks_not_reported" not in outcome.metadata


def test_the_oldest_runs_are_forgotten_past_max_runs() -> None:
    states = RunTaskStates(max_runs=2)
    for run_id in ("r1", "r2", "r3"):
        states.note(task_event(run_id=run_id))
    assert states.summary(dag_run_event(run_id="r1")).counts == {}
    assert states.summary(dag_run_event(run_id="r3")).counts == {"success": 1}
    with pytest.raises(ValueError, match="max_runs must be at least 1"):
        RunTaskStates(max_runs=0)


# --- links against the routes of the Airflow 3 UI installed beside the tests ---------------------


def airflow_3_ui_routes() -> set[str]:
    """The ``dags/...`` routes of the installed Airflow's React UI, read from its bundle."""
    spec = importlib.util.find_spec("airflow")
    assert spec is not None and spec.origin, "the dev environment holds Airflow 3 (airstream[dev])"
    bundle = Path(spec.origin).parent / "ui" / "dist" / "assets"
    routes = {
        route
        for js in bundle.glob("*.js")
        for route in re.findall(r"path:`(dags/[^`]*)`", js.read_text("utf-8", "replace"))
    }
    assert routes, f"no routes found in {bundle}"
    return routes


def opens_a_page(url: str, routes: set[str]) -> bool:
    path = urlsplit(url).path.lstrip("/")
    return any(re.fullmatch(re.sub(r":\w+", "[^/]+", route), path) for route in routes)


def test_links_open_pages_the_airflow_3_ui_has() -> None:
    routes = airflow_3_ui_routes()
    for event in (
        task_event(run_id="manual__2025-01-02T00:00:00+00:00"),
        task_event(map_index=4, task_id="group.load"),
        dag_run_event(run_id="scheduled__2025-01-02T00:00:00+00:00"),
        asset_event(),
    ):
        url = airflow_ui_url("http://af:8080", event)
        assert opens_a_page(url, routes), f"{url} matches no route of the Airflow 3 UI"
