"""Reading what a Dagster instance recorded for proxied Airflow tasks, for the migration tests.

A materialization stored by a run of a proxy job (``airstream_proxy__...``) comes from the Dagster
run a proxy operator launched; one without a run is a runless record the airstream sensor stored
from an Airflow event.
"""

from __future__ import annotations

import time
from typing import Any

from dagster import AssetKey, DagsterInstance, RunsFilter

from airstream.dagster_consumer import dag_asset_key

PROXY_JOB_PREFIX = "airstream_proxy__"


def proxy_runs(instance: DagsterInstance, job_name: str) -> list[Any]:
    """The Dagster runs of ``job_name``, oldest first."""
    return list(reversed(instance.get_runs(filters=RunsFilter(job_name=job_name))))


def materializations(instance: DagsterInstance, key: str | list[str]) -> list[Any]:
    """The event-log entries of every materialization of ``key``, oldest first."""
    records = instance.fetch_materializations(AssetKey(key), limit=100, ascending=True).records
    return [record.event_log_entry for record in records]


def by_proxy_run(instance: DagsterInstance, entries: list[Any]) -> list[Any]:
    """The entries stored by a Dagster run of a proxy job."""
    found = []
    for entry in entries:
        run = instance.get_run_by_id(entry.run_id) if entry.run_id else None
        if run is not None and run.job_name.startswith(PROXY_JOB_PREFIX):
            found.append(entry)
    return found


def dag_run_record(
    instance: DagsterInstance, instance_name: str, dag_id: str, run_id: str, timeout: float = 90
) -> dict[str, Any]:
    """The metadata of the record the sensor stored for an Airflow DAG run's outcome on its DAG asset."""
    key = dag_asset_key(instance_name, dag_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for fetch in (instance.fetch_materializations, instance.fetch_observations):
            for record in fetch(key, limit=100).records:
                event = record.event_log_entry.asset_materialization or record.event_log_entry.asset_observation
                if event is None:
                    continue
                metadata = {name: getattr(value, "value", value) for name, value in event.metadata.items()}
                if metadata.get("airflow/run_id") == run_id and "airflow/tasks" in metadata:
                    return metadata
        time.sleep(1)
    raise AssertionError(f"the sensor recorded no outcome of {dag_id}/{run_id} within {timeout:.0f} s")


def one_more_sensor_tick() -> None:
    """Wait past the daemon's next sensor tick (every 5 s): anything recorded twice lands now."""
    time.sleep(7)
