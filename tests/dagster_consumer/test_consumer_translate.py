"""Unit tests of dagster_consumer.translate: Airflow events → Dagster asset events."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from dagster import AssetKey, AssetMaterialization, AssetObservation, MetadataValue, UrlMetadataValue

from dagster_consumer.mappings import AssetMappings
from dagster_consumer.translate import (
    EVENT_ID_METADATA_KEY,
    airflow_ui_url,
    event_metadata,
    order_for_translation,
    translate,
)
from schemas import DagRunEvent, EventType, TaskInstanceEvent

DAG_KEY = AssetKey(["prod", "dag", "etl"])
WAREHOUSE = AssetKey("warehouse")
REPORT = AssetKey("report")
MAPPINGS = AssetMappings(by_task={("etl", "load"): [WAREHOUSE]}, by_dag={"etl": [REPORT]})

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
    [EventType.TASK_INSTANCE_FAILED, EventType.TASK_INSTANCE_UP_FOR_RETRY, EventType.TASK_INSTANCE_SKIPPED],
)
def test_task_failure_like_states_observe_dag_and_mapped_asset(event_type: EventType) -> None:
    result = translate(task_event(event_type), mappings=MAPPINGS)
    assert kinds_and_keys(result) == [(AssetObservation, DAG_KEY), (AssetObservation, WAREHOUSE)]
    assert not any(isinstance(e, AssetMaterialization) for e in result)


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
    result = translate(task_event(EventType.TASK_INSTANCE_RUNNING, instance="staging"), mappings=AssetMappings())
    assert kinds_and_keys(result) == [(AssetObservation, AssetKey(["staging", "dag", "etl"]))]


def test_task_mapped_to_several_assets_materializes_each() -> None:
    other = AssetKey(["lake", "raw"])
    mappings = AssetMappings(by_task={("etl", "load"): [WAREHOUSE, other]})
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
    assert metadata["airflow/logical_date"] == LOGICAL.isoformat()
    assert metadata["airflow/start_date"] == START.isoformat()
    assert metadata["airflow/end_date"] == END.isoformat()
    assert metadata["airflow/duration_seconds"] == pytest.approx((END - START).total_seconds())
    assert metadata["airflow/duration_seconds"] == pytest.approx(90.5)
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


def test_missing_dates_give_empty_strings_and_no_duration() -> None:
    event = task_event(EventType.TASK_INSTANCE_RUNNING, logical_date=None, end_date=None)
    metadata = event_metadata(event, None)
    assert metadata["airflow/logical_date"] == ""
    assert metadata["airflow/end_date"] == ""
    assert metadata["airflow/start_date"] == START.isoformat()
    assert "airflow/duration_seconds" not in metadata


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
