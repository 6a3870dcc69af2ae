"""Reading what a Dagster instance recorded for proxied Airflow tasks, for the migration tests.

A materialization stored by a run of a proxy job (``airstream_proxy__...``) comes from the Dagster
run a proxy operator launched; one without a run is a runless record the airstream sensor stored
from an Airflow event.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

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


class SetsTaskState(Protocol):
    """An Airflow REST client that sets a task instance's state by hand (REST v1 or v2)."""

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> None: ...


def kill_proxied_task(
    instance: DagsterInstance,
    api: SetsTaskState,
    *,
    dag_id: str,
    task_id: str,
    run_id: str,
    job_name: str,
    start_timeout: float = 120,
    end_timeout: float = 90,
) -> DagsterRunStatus:
    """Wait until the proxy of ``dag_id.task_id`` has a started Dagster run of ``job_name``, mark
    the Airflow task failed by hand (Airflow then kills it), and return the status the newest run
    of the job ends in: ``CANCELED`` when the kill terminated it."""
    deadline = time.monotonic() + start_timeout
    while not [run for run in proxy_runs(instance, job_name) if run.status == DagsterRunStatus.STARTED]:
        assert time.monotonic() < deadline, f"the proxy's Dagster run of {job_name} never started"
        time.sleep(1)
    api.set_task_state(dag_id, run_id, task_id, "failed")
    deadline = time.monotonic() + end_timeout
    finished = (DagsterRunStatus.CANCELED, DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)
    while (status := proxy_runs(instance, job_name)[-1].status) not in finished:
        assert time.monotonic() < deadline, f"the Dagster run is still {status} after the task was killed"
        time.sleep(1)
    return status
