"""The one translation from airstream events to Dagster asset events.

DAG assets (``[instance, "dag", dag_id]``) keep the history :mod:`airstream.dagster_consumer.dag_history`
describes: by default (``dag_asset_history="runs"``) one record per finished DAG run, a
materialization when it succeeded, an observation when it failed, with its task outcomes summed
up in the metadata; with ``"all"``, every DAG-run and task-instance event. Mapped assets get:

* task-mapped assets: a materialization when the task succeeds (whoever reported it: the task
  process, the scheduler or the api-server); an observation when it fails, is up for retry, is
  skipped, is upstream_failed or removed, so the failure shows on the asset;
* DAG-mapped assets: a materialization when the DAG run succeeds; an observation when it fails.

With ``state_checks`` (the default), every outcome also evaluates the asset's check
(``airflow_task_succeeded`` on task-mapped assets, ``airflow_run_succeeded`` on DAG assets and
DAG-mapped assets; see :mod:`airstream.dagster_consumer.checks`): that is what turns a failure
red in Dagster's UI.

An Airflow asset update (``asset.updated``) materializes the Dagster asset its URI resolves to
(see :mod:`airstream.dagster_consumer.asset_keys`), unless a task mapping already materializes that key
when the same task succeeds: each update is recorded once. It leaves no record on the DAG asset,
whose task success already tells the story.

A task or DAG that runs in Dagster through a proxy operator (migration; the event says
``proxied_to_dagster``) records nothing on its mapped assets, neither materialization, observation
nor check: the Dagster run the proxy launched materialized them, and recording the Airflow side
too would count each run twice. It is still counted in its run's summary on the DAG asset, whose
``airflow/proxied_to_dagster`` names the tasks of the run that ran in Dagster.

A mapped asset with a time-window partitions definition is recorded on the partition of the
run's logical date; a logical date outside the definition turns the materialization into an
observation that says why (see :mod:`airstream.dagster_consumer.partitions`).

Metadata reads top to bottom as a person wants it: state, DAG, run, task, dates (as timestamps,
which the UI shows as local dates), duration rounded to 0.1 s, the link to Airflow, and the event
id last; facts the event does not have (the logical date of a manual run on Airflow 3, the end
date of a running task) are left out rather than shown empty.

The time Airflow reached the state is in the ``airflow/timestamp`` metadata. Dagster 1.13 stamps
every asset event with the time it is stored: ``AssetMaterialization``, ``AssetObservation``,
``SensorResult`` and ``report_runless_asset_event`` take no timestamp, and the daemon stores a
sensor's asset events through the latter. Only ``DagsterInstance.report_dagster_event(timestamp=)``
takes one, outside the public API and fed with a ``DagsterEvent`` from ``dagster._core``;
airstream does not use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from dagster import AssetCheckEvaluation, AssetKey, AssetMaterialization, AssetObservation, MetadataValue

from airstream.dagster_consumer.airflow_links import airflow_ui_url
from airstream.dagster_consumer.checks import check_evaluation
from airstream.dagster_consumer.dag_history import RunSummary
from airstream.dagster_consumer.mappings import AssetMappings, dag_asset_key
from airstream.dagster_consumer.partitions import NoPartition, partition_for_logical_date
from airstream.schemas import AssetUpdatedEvent, DagRunEvent, Event, EventType, TaskInstanceEvent

AssetEvent = AssetMaterialization | AssetObservation | AssetCheckEvaluation

EVENT_ID_METADATA_KEY = "airstream/event_id"
NO_PARTITION_METADATA_KEY = "airstream/no_partition"

_TASK_FAILURES = {
    EventType.TASK_INSTANCE_FAILED,
    EventType.TASK_INSTANCE_UP_FOR_RETRY,
    EventType.TASK_INSTANCE_SKIPPED,
    EventType.TASK_INSTANCE_UPSTREAM_FAILED,
    EventType.TASK_INSTANCE_REMOVED,
}


def translate(event: Event, *, mappings: AssetMappings, webserver_url: str | None = None) -> list[AssetEvent]:
    """The Dagster asset events (and check evaluations) that record one Airflow event.

    Example::

        translate(task_success, mappings=AssetMappings(by_task={("etl", "load"): [AssetKey("orders")]}))
        # [AssetMaterialization(["orders"]), AssetCheckEvaluation(["orders"], "airflow_task_succeeded", passed=True)]
    """
    metadata = event_metadata(event, webserver_url)
    if isinstance(event, AssetUpdatedEvent):
        record = _Recorder(event, mappings, metadata, _describe(event))
        key = mappings.airflow_asset_keys.key_for(event.uri)
        if key in mappings.by_task.get((event.dag_id, event.task_id), []):
            return []  # the task's success materializes it through the task mapping
        return record.on_mapped([key], materialize=True)

    dag_key = dag_asset_key(event.instance, event.dag_id)
    every_event = mappings.dag_asset_history == "all"
    if isinstance(event, DagRunEvent):
        if event.event_type == EventType.DAG_RUN_RUNNING:
            return _Recorder(event, mappings, metadata, _describe(event)).on_dag(dag_key) if every_event else []
        summary = mappings.run_task_states.summary(event)
        metadata = _with_summary(metadata, summary)
        record = _Recorder(event, mappings, metadata, f"{_describe(event)}: {summary.describe()}")
        # A DAG proxied as a whole: its Dagster run materialized the DAG's assets.
        mapped = [] if event.proxied_to_dagster else mappings.by_dag.get(event.dag_id, [])
        success = event.event_type == EventType.DAG_RUN_SUCCESS
        return (
            record.on_dag(dag_key, materialize=success)
            + record.on_mapped(mapped, materialize=success)
            + record.checks([dag_key, *mapped])
        )

    record = _Recorder(event, mappings, metadata, _describe(event))
    if isinstance(event, TaskInstanceEvent):
        mappings.run_task_states.note(event)
    on_dag = record.on_dag(dag_key) if every_event else []
    if isinstance(event, TaskInstanceEvent) and event.proxied_to_dagster:
        return on_dag  # the Dagster run the proxy launched materialized the task's assets
    mapped = mappings.by_task.get((event.dag_id, event.task_id), [])
    if event.event_type == EventType.TASK_INSTANCE_SUCCESS:
        return on_dag + record.on_mapped(mapped, materialize=True) + record.checks(mapped)
    if event.event_type in _TASK_FAILURES:
        return on_dag + record.on_mapped(mapped, materialize=False) + record.checks(mapped)
    return on_dag


def order_for_translation(events: Iterable[Event]) -> list[Event]:
    """Task and asset events before the DAG-run events of the same batch.

    Airflow can publish a DAG run's success before its last task's success; within one batch
    this puts them back in the order they happened. Otherwise the source order is kept.
    """
    events = list(events)
    return [e for e in events if not isinstance(e, DagRunEvent)] + [e for e in events if isinstance(e, DagRunEvent)]


def event_metadata(event: Event, webserver_url: str | None) -> dict[str, Any]:
    """The Airflow facts of an event, as Dagster metadata, in reading order, the event id last.

    Dates are timestamps (the UI shows them as dates in the reader's time zone); facts the event
    does not carry are left out.
    """
    metadata: dict[str, Any] = {
        "airflow/state": event.state,
        "airflow/event_type": event.event_type.value,
        "airflow/instance": event.instance,
        "airflow/dag_id": event.dag_id,
        "airflow/run_id": event.run_id,
    }
    if not isinstance(event, DagRunEvent):
        metadata["airflow/task_id"] = event.task_id
        metadata["airflow/map_index"] = event.map_index
        metadata["airflow/try_number"] = event.try_number
    if event.run_type:
        metadata["airflow/run_type"] = event.run_type
    for name, value in (
        ("logical_date", event.logical_date),
        ("start_date", event.start_date),
        ("end_date", event.end_date),
    ):
        if value is not None:
            metadata[f"airflow/{name}"] = MetadataValue.timestamp(_utc(value))
    if event.start_date and event.end_date:
        seconds = (_utc(event.end_date) - _utc(event.start_date)).total_seconds()
        metadata["airflow/duration_seconds"] = round(seconds, 1)
    metadata["airflow/timestamp"] = MetadataValue.timestamp(
        _utc(event.end_date or event.start_date or event.emitted_at)
    )
    if isinstance(event, TaskInstanceEvent):
        if event.operator:
            metadata["airflow/operator"] = event.operator
        if event.proxied_to_dagster:
            metadata["airflow/proxied_to_dagster"] = True
        if event.hostname:
            metadata["airflow/hostname"] = event.hostname
    if isinstance(event, AssetUpdatedEvent):
        metadata["airflow/asset_uri"] = event.uri
        if event.name:
            metadata["airflow/asset_name"] = event.name
    if event.airflow_version:
        metadata["airflow/version"] = event.airflow_version
    if webserver_url:
        metadata["airflow/url"] = MetadataValue.url(airflow_ui_url(webserver_url, event))
    metadata[EVENT_ID_METADATA_KEY] = event.event_id
    return metadata


def _with_summary(metadata: dict[str, Any], summary: RunSummary) -> dict[str, Any]:
    """``metadata`` with the run's task summary after the Airflow facts, the event id still last."""
    event_id = metadata[EVENT_ID_METADATA_KEY]
    facts = {key: value for key, value in metadata.items() if key != EVENT_ID_METADATA_KEY}
    return {**facts, **summary.metadata(), EVENT_ID_METADATA_KEY: event_id}


class _Recorder:
    """Builds the asset events of one Airflow event, sharing its metadata and description."""

    def __init__(self, event: Event, mappings: AssetMappings, metadata: dict[str, Any], description: str) -> None:
        self.event = event
        self.mappings = mappings
        self.metadata = metadata
        self.description = description

    def on_dag(self, key: AssetKey, *, materialize: bool = False) -> list[AssetEvent]:
        kind = AssetMaterialization if materialize else AssetObservation
        return [kind(asset_key=key, metadata=self.metadata, description=self.description)]

    def on_mapped(self, keys: Sequence[AssetKey], *, materialize: bool) -> list[AssetEvent]:
        return [self._on_mapped_key(key, materialize) for key in keys]

    def checks(self, keys: Sequence[AssetKey]) -> list[AssetEvent]:
        if not self.mappings.state_checks:
            return []
        evaluations = (check_evaluation(key, self.event, self.metadata, self.description) for key in keys)
        return [evaluation for evaluation in evaluations if evaluation is not None]

    def _on_mapped_key(self, key: AssetKey, materialize: bool) -> AssetEvent:
        kind = AssetMaterialization if materialize else AssetObservation
        partitions_def = self.mappings.partitions.get(key)
        if partitions_def is None:
            return kind(asset_key=key, metadata=self.metadata, description=self.description)
        partition = partition_for_logical_date(partitions_def, self.event.logical_date)
        if not isinstance(partition, NoPartition):
            return kind(asset_key=key, metadata=self.metadata, description=self.description, partition=partition)
        # Never dropped, never raised: an observation on the asset says why no partition was recorded.
        consequence = "recorded as an observation instead of a materialization" if materialize else "no partition"
        return AssetObservation(
            asset_key=key,
            metadata={**self.metadata, NO_PARTITION_METADATA_KEY: partition.reason},
            description=f"{self.description}; {consequence}: {partition.reason}",
        )


def _describe(event: Event) -> str:
    if isinstance(event, DagRunEvent):
        return f"Airflow DAG run of {event.dag_id} ({event.run_id}) reached {event.state}"
    subject = f"task {event.task_id}" + (f"[{event.map_index}]" if event.map_index >= 0 else "")
    if isinstance(event, AssetUpdatedEvent):
        return f"Airflow {subject} of {event.dag_id} ({event.run_id}) {event.state} the Airflow asset {event.uri}"
    return f"Airflow {subject} of {event.dag_id} ({event.run_id}) reached {event.state}"


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
