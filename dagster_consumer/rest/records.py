"""What airstream reads from Airflow's REST API, in one shape for both dialects.

Airflow 3 (REST API v2) and Airflow 2.10+ (REST API v1) name the same facts differently
(``dag_run_id``/``run_id``, ``execution_date``/``logical_date``, ``/assets``/``/datasets``…).
The client (:class:`airstream.dagster_consumer.rest.client.AirflowRestClient`) turns both into
these records, so nothing else in the consumer branches on the Airflow version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from airstream.schemas.proxying import is_proxy_operator


@dataclass(frozen=True)
class DagRecord:
    """One DAG as the REST API lists it."""

    dag_id: str
    description: str | None = None
    owners: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    schedule: str | None = None  # a cron expression, a preset, "asset"/"dataset" triggered, or None
    fileloc: str | None = None
    is_paused: bool | None = None
    is_active: bool | None = None


@dataclass(frozen=True)
class TaskRecord:
    """One task of a DAG."""

    dag_id: str
    task_id: str
    operator: str | None = None
    downstream_task_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class DagRunRecord:
    """One DAG run."""

    dag_id: str
    run_id: str
    state: str  # queued, running, success, failed
    run_type: str | None = None
    logical_date: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None


@dataclass(frozen=True)
class TaskInstanceRecord:
    """One task instance (its current try)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    state: str | None
    start_date: datetime | None = None
    end_date: datetime | None = None
    hostname: str | None = None
    operator: str | None = None  # REST v2's operator_name (custom_operator_name), else the task type

    @property
    def proxied_to_dagster(self) -> bool:
        """The task ran a proxy operator (migration): its operator name is a proxy marker on both
        REST dialects, so events built from this record say ``proxied_to_dagster``."""
        return is_proxy_operator(self.operator)


@dataclass(frozen=True)
class AirflowAssetRecord:
    """One Airflow asset (a dataset on Airflow 2) and the DAGs around it."""

    uri: str
    name: str | None = None
    producing_tasks: tuple[tuple[str, str], ...] = ()  # (dag_id, task_id)
    consuming_dag_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServerInfo:
    """What the server said about itself."""

    airflow_version: str
    api_version: str  # "v1" or "v2"


class AirflowRestApi(Protocol):
    """The calls airstream makes to an Airflow instance. Every list call pages through all
    results (Airflow caps a page at 100); batch calls take the whole selection in one request
    per page, whatever the number of DAGs."""

    def server_info(self) -> ServerInfo: ...

    def list_dags(self) -> list[DagRecord]: ...

    def list_tasks(self, dag_id: str) -> list[TaskRecord]: ...

    def list_assets(self) -> list[AirflowAssetRecord]: ...

    def list_dag_runs(
        self,
        *,
        dag_ids: Sequence[str] | None = None,
        states: Sequence[str] | None = None,
        end_date_gte: datetime | None = None,
        limit: int | None = None,
    ) -> list[DagRunRecord]: ...

    def list_task_instances(
        self,
        *,
        dag_ids: Sequence[str] | None = None,
        run_ids: Sequence[str] | None = None,
        states: Sequence[str] | None = None,
        end_date_gte: datetime | None = None,
    ) -> list[TaskInstanceRecord]: ...

    def get_dag_run(self, dag_id: str, run_id: str) -> DagRunRecord: ...

    def trigger_dag(
        self, dag_id: str, *, conf: dict[str, object] | None = None, logical_date: datetime | None = None
    ) -> str: ...


__all__ = [
    "AirflowAssetRecord",
    "AirflowRestApi",
    "DagRecord",
    "DagRunRecord",
    "ServerInfo",
    "TaskInstanceRecord",
    "TaskRecord",
]
