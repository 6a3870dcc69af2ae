"""A fake Airflow REST API for peering tests: fixed DAGs, tasks and assets, and a count of every call."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from airstream.dagster_consumer.airflow_instance import AirflowInstance
from airstream.dagster_consumer.peering.component import AirflowInstanceComponent
from airstream.dagster_consumer.rest.records import (
    AirflowAssetRecord,
    AirflowRestApi,
    DagRecord,
    DagRunRecord,
    ServerInfo,
    TaskInstanceRecord,
    TaskRecord,
)

DAGS = (
    DagRecord(
        dag_id="etl",
        description="Loads orders into the warehouse",
        owners=("data-eng",),
        tags=("warehouse", "daily"),
        schedule="@daily",
        fileloc="/dags/etl.py",
        is_paused=False,
        is_active=True,
    ),
    DagRecord(dag_id="reports", owners=("bi",), tags=("bi",), schedule="asset", fileloc="/dags/reports.py"),
    DagRecord(dag_id="scratch_tmp", tags=("scratch",), schedule=None, fileloc="/dags/scratch.py"),
    DagRecord(dag_id="gone", fileloc="/dags/gone.py", is_active=False),
)
TASKS = {
    "etl": (
        TaskRecord("etl", "extract", "PythonOperator", ("load",)),
        TaskRecord("etl", "load", "PythonOperator", ()),
    ),
    "reports": (TaskRecord("reports", "render", "BashOperator", ()),),
}
ASSETS = (
    AirflowAssetRecord(
        uri="s3://warehouse/orders.parquet",
        name="orders",
        producing_tasks=(("etl", "load"),),
        consuming_dag_ids=("reports",),
    ),
    AirflowAssetRecord(uri="s3://scratch/tmp.csv", producing_tasks=(("scratch_tmp", "write"),)),
)


class FakeAirflowApi:
    """Answers the peering calls from fixed records and counts every call."""

    def __init__(self, *, airflow_version: str = "3.3.2", dags: Sequence[DagRecord] = DAGS) -> None:
        self.calls: Counter[str] = Counter()
        self.airflow_version = airflow_version
        self.dags = list(dags)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def server_info(self) -> ServerInfo:
        self.calls["server_info"] += 1
        return ServerInfo(self.airflow_version, "v2" if self.airflow_version.startswith("3") else "v1")

    def list_dags(self) -> list[DagRecord]:
        self.calls["list_dags"] += 1
        return list(self.dags)

    def list_tasks(self, dag_id: str) -> list[TaskRecord]:
        self.calls[f"list_tasks:{dag_id}"] += 1
        return list(TASKS.get(dag_id, ()))

    def list_assets(self) -> list[AirflowAssetRecord]:
        self.calls["list_assets"] += 1
        return list(ASSETS)

    def list_dag_runs(self, **_: object) -> list[DagRunRecord]:
        raise AssertionError("peering does not read DAG runs")

    def list_task_instances(self, **_: object) -> list[TaskInstanceRecord]:
        raise AssertionError("peering does not read task instances")

    def get_dag_run(self, dag_id: str, run_id: str) -> DagRunRecord:
        raise AssertionError("peering does not read DAG runs")

    def trigger_dag(
        self, dag_id: str, *, conf: dict[str, object] | None = None, logical_date: datetime | None = None
    ) -> str:
        raise AssertionError("peering never triggers")


SHARED_FAKE_API = FakeAirflowApi()
"""The API every :class:`FakeApiAirflowInstanceComponent` answers from (tests reset its counts)."""


@dataclass
class FakeApiAirflowInstanceComponent(AirflowInstanceComponent):
    """The YAML component with its REST calls answered by :data:`SHARED_FAKE_API`."""

    def build_rest_api(self, airflow_instance: AirflowInstance) -> AirflowRestApi:
        return SHARED_FAKE_API
