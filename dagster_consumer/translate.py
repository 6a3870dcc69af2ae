"""The one translation from airstream events to Dagster asset events.

Every event leaves exactly one record on its DAG's asset (``[instance, "dag", dag_id]``): a
materialization when a DAG run succeeds, an observation for everything else, so the DAG asset's
event log is the full run history. Mapped assets get:

* task-mapped assets: a materialization when the task succeeds; an observation when it fails,
  is up for retry or is skipped, so the failure shows on the asset;
* DAG-mapped assets: a materialization when the DAG run succeeds; an observation when it fails.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from dagster import AssetKey, AssetMaterialization, AssetObservation, MetadataValue

from dagster_consumer.mappings import AssetMappings, dag_asset_key
from schemas import DagRunEvent, Event, EventType, TaskInstanceEvent

AssetEvent = AssetMaterialization | AssetObservation

EVENT_ID_METADATA_KEY = "airstream/event_id"

_TASK_FAILURES = {
    EventType.TASK_INSTANCE_FAILED,
    EventType.TASK_INSTANCE_UP_FOR_RETRY,
    EventType.TASK_INSTANCE_SKIPPED,
}


def translate(event: Event, *, mappings: AssetMappings, webserver_url: str | None = None) -> list[AssetEvent]:
    """The Dagster asset events that record one Airflow event."""
    metadata = event_metadata(event, webserver_url)
    description = _describe(event)
    dag_key = dag_asset_key(event.instance, event.dag_id)
    if isinstance(event, DagRunEvent):
        mapped = mappings.by_dag.get(event.dag_id, [])
        if event.event_type == EventType.DAG_RUN_SUCCESS:
            return _materializations([dag_key, *mapped], metadata, description)
        if event.event_type == EventType.DAG_RUN_FAILED:
            return _observations([dag_key, *mapped], metadata, description)
        return _observations([dag_key], metadata, description)

    mapped = mappings.by_task.get((event.dag_id, event.task_id), [])
    dag_record = _observations([dag_key], metadata, description)
    if event.event_type == EventType.TASK_INSTANCE_SUCCESS:
        return dag_record + _materializations(mapped, metadata, description)
    if event.event_type in _TASK_FAILURES:
        return dag_record + _observations(mapped, metadata, description)
    return dag_record


def order_for_translation(events: Iterable[Event]) -> list[Event]:
    """Task events before the DAG-run events of the same batch.

    Airflow can publish a DAG run's success before its last task's success; within one batch
    this puts them back in the order they happened. Otherwise the source order is kept.
    """
    events = list(events)
    return [e for e in events if isinstance(e, TaskInstanceEvent)] + [e for e in events if isinstance(e, DagRunEvent)]


def event_metadata(event: Event, webserver_url: str | None) -> dict[str, Any]:
    """The Airflow facts of an event, as Dagster metadata."""
    metadata: dict[str, Any] = {
        EVENT_ID_METADATA_KEY: event.event_id,
        "airflow/instance": event.instance,
        "airflow/dag_id": event.dag_id,
        "airflow/run_id": event.run_id,
        "airflow/state": event.state,
        "airflow/event_type": event.event_type.value,
        "airflow/run_type": event.run_type or "",
        "airflow/logical_date": _iso(event.logical_date),
        "airflow/start_date": _iso(event.start_date),
        "airflow/end_date": _iso(event.end_date),
    }
    if event.start_date and event.end_date:
        metadata["airflow/duration_seconds"] = (event.end_date - event.start_date).total_seconds()
    if isinstance(event, TaskInstanceEvent):
        metadata.update(
            {
                "airflow/task_id": event.task_id,
                "airflow/try_number": event.try_number,
                "airflow/map_index": event.map_index,
                "airflow/hostname": event.hostname or "",
                "airflow/operator": event.operator or "",
            }
        )
    if webserver_url:
        metadata["airflow/url"] = MetadataValue.url(airflow_ui_url(webserver_url, event))
    return metadata


def airflow_ui_url(webserver_url: str, event: Event) -> str:
    """Link to the DAG run, or to the task instance, in the Airflow 3 UI."""
    url = f"{webserver_url}/dags/{quote(event.dag_id, safe='')}/runs/{quote(event.run_id, safe='')}"
    if isinstance(event, TaskInstanceEvent):
        url += f"/tasks/{quote(event.task_id, safe='')}"
        if event.map_index >= 0:
            url += f"/mapped/{event.map_index}"
    return url


def _describe(event: Event) -> str:
    subject = f"task {event.task_id}" if isinstance(event, TaskInstanceEvent) else "DAG run"
    if isinstance(event, TaskInstanceEvent) and event.map_index >= 0:
        subject += f"[{event.map_index}]"
    return f"Airflow {subject} of {event.dag_id} ({event.run_id}) reached {event.state}"


def _materializations(keys: Iterable[AssetKey], metadata: dict[str, Any], description: str) -> list[AssetEvent]:
    return [AssetMaterialization(asset_key=key, metadata=metadata, description=description) for key in keys]


def _observations(keys: Iterable[AssetKey], metadata: dict[str, Any], description: str) -> list[AssetEvent]:
    return [AssetObservation(asset_key=key, metadata=metadata, description=description) for key in keys]


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""
