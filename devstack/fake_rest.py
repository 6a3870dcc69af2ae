"""An in-memory Airflow REST API for unit tests: the AirflowRestApi calls over lists of records,
counting every call."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from airstream.dagster_consumer.rest.records import (
    AirflowAssetRecord,
    DagRecord,
    DagRunRecord,
    ServerInfo,
    TaskInstanceRecord,
    TaskRecord,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


class FakeRestApi:
    """``runs``, ``task_instances`` and ``assets`` are plain lists a test edits between reads."""

    def __init__(
        self,
        runs: Sequence[DagRunRecord] = (),
        task_instances: Sequence[TaskInstanceRecord] = (),
        assets: Sequence[AirflowAssetRecord] = (),
        airflow_version: str = "3.3.2",
    ) -> None:
        self.runs = list(runs)
        self.task_instances = list(task_instances)
        self.assets = list(assets)
        self.airflow_version = airflow_version
        self.calls: Counter[str] = Counter()
        self.run_queries: list[dict[str, object]] = []
        self.fail_with: Exception | None = None

    def _call(self, name: str) -> None:
        self.calls[name] += 1
        if self.fail_with is not None:
            raise self.fail_with

    def server_info(self) -> ServerInfo:
        self._call("server_info")
        return ServerInfo(airflow_version=self.airflow_version, api_version="v2")

    def list_dags(self) -> list[DagRecord]:
        self._call("list_dags")
        return [DagRecord(dag_id=dag_id) for dag_id in sorted({run.dag_id for run in self.runs})]

    def list_tasks(self, dag_id: str) -> list[TaskRecord]:
        self._call("list_tasks")
        return []

    def list_assets(self) -> list[AirflowAssetRecord]:
        self._call("list_assets")
        return list(self.assets)

    def list_dag_runs(
        self,
        *,
        dag_ids: Sequence[str] | None = None,
        states: Sequence[str] | None = None,
        end_date_gte: datetime | None = None,
        limit: int | None = None,
    ) -> list[DagRunRecord]:
        """In id order (the order runs were added), as the real client asks Airflow (``order_by=id``)."""
        self._call("list_dag_runs")
        self.run_queries.append({"states": list(states or []), "end_date_gte": end_date_gte, "limit": limit})
        runs = [
            run
            for run in self.runs
            if (dag_ids is None or run.dag_id in dag_ids)
            and (states is None or run.state in states)
            and (end_date_gte is None or (run.end_date is not None and run.end_date >= end_date_gte))
        ]
        return runs[:limit] if limit is not None else runs

    def list_task_instances(
        self,
        *,
        dag_ids: Sequence[str] | None = None,
        run_ids: Sequence[str] | None = None,
        states: Sequence[str] | None = None,
        end_date_gte: datetime | None = None,
    ) -> list[TaskInstanceRecord]:
        self._call("list_task_instances")
        return [
            ti
            for ti in self.task_instances
            if (dag_ids is None or ti.dag_id in dag_ids)
            and (run_ids is None or ti.run_id in run_ids)
            and (states is None or ti.state in states)
        ]

    def get_dag_run(self, dag_id: str, run_id: str) -> DagRunRecord:
        self._call("get_dag_run")
        return next(run for run in self.runs if (run.dag_id, run.run_id) == (dag_id, run_id))

    def trigger_dag(
        self, dag_id: str, *, conf: dict[str, object] | None = None, logical_date: datetime | None = None
    ) -> str:
        raise NotImplementedError

    def batch_calls(self) -> int:
        """The list calls one read makes (the per-process ``server_info`` and cached assets aside)."""
        return self.calls["list_dag_runs"] + self.calls["list_task_instances"]


def run_record(
    dag_id: str = "etl", run_id: str = "manual__1", state: str = "success", *, ended: timedelta = timedelta(0)
) -> DagRunRecord:
    return DagRunRecord(
        dag_id=dag_id,
        run_id=run_id,
        state=state,
        run_type="manual",
        logical_date=T0,
        start_date=T0 + ended - timedelta(minutes=1),
        end_date=T0 + ended if state in ("success", "failed") else None,
    )


def ti_record(
    task_id: str,
    state: str | None,
    *,
    dag_id: str = "etl",
    run_id: str = "manual__1",
    map_index: int = -1,
    try_number: int = 1,
) -> TaskInstanceRecord:
    return TaskInstanceRecord(
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        map_index=map_index,
        try_number=try_number,
        state=state,
        start_date=T0,
        end_date=T0,
        operator="PythonOperator",
    )
