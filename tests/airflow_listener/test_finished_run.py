"""What a finished DAG run publishes for its task instances, from stand-ins for Airflow's objects.

The real thing (Airflow's scheduler and ``airflow dags test``) is exercised in
``test_listener_in_airflow.py`` and the end-to-end tests; these pin the rules.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

from airstream.airflow_listener.event_builder import task_instance_event
from airstream.airflow_listener.finished_run import read_finished_run
from airstream.schemas import AssetUpdatedEvent, EventType, TaskInstanceEvent

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def ti(task_id: str, state: str | None, *, map_index: int = -1, try_number: int = 1) -> SimpleNamespace:
    return SimpleNamespace(
        dag_id="etl",
        run_id="manual__1",
        task_id=task_id,
        map_index=map_index,
        try_number=try_number,
        state=state,
        start_date=T0,
        end_date=T0,
        hostname="",
        operator="EmptyOperator",
    )


class FakeDag:
    def __init__(self, tasks: dict[str, Any]) -> None:
        self._tasks = tasks
        self.task_ids = list(tasks)

    def get_task(self, task_id: str) -> Any:
        return self._tasks[task_id]


class FakeDagRun(SimpleNamespace):
    def get_task_instances(self, session: Any = None) -> list[Any]:
        return list(self.tis)


def run_of(tis: list[Any], dag: Any = None) -> FakeDagRun:
    return FakeDagRun(dag_id="etl", run_id="manual__1", logical_date=T0, run_type="manual", tis=tis, dag=dag)


def test_every_terminal_state_is_published_and_unfinished_ones_are_not() -> None:
    tis = [
        ti("start", "success"),
        ti("right", "skipped", try_number=0),
        ti("after_boom", "upstream_failed", try_number=0),
        ti("boom", "failed"),
        ti("gone", "removed"),
        ti("still", "running"),
        ti("never", None, try_number=0),
    ]
    finished = read_finished_run("prod", run_of(tis))
    states = Counter((e.task_id, e.state) for e in finished.events if isinstance(e, TaskInstanceEvent))
    assert states == Counter(
        {
            ("start", "success"): 1,
            ("right", "skipped"): 1,
            ("after_boom", "upstream_failed"): 1,
            ("boom", "failed"): 1,
            ("gone", "removed"): 1,
        }
    )
    types = {e.task_id: e.event_type for e in finished.events}
    assert types["after_boom"] == EventType.TASK_INSTANCE_UPSTREAM_FAILED
    assert types["gone"] == EventType.TASK_INSTANCE_REMOVED
    assert all(e.reported_by for e in finished.events if isinstance(e, TaskInstanceEvent))


def test_a_finished_run_uses_the_ids_a_task_process_would_have_used() -> None:
    task_instance = ti("load", "success", map_index=2, try_number=3)
    (event,) = read_finished_run("prod", run_of([task_instance])).events
    assert event.event_id == task_instance_event("prod", "success", task_instance).event_id


def test_mapped_task_instances_are_published_one_by_one() -> None:
    tis = [ti("process", "success", map_index=index) for index in range(3)]
    events = read_finished_run("prod", run_of(tis)).events
    assert sorted(e.map_index for e in events if isinstance(e, TaskInstanceEvent)) == [0, 1, 2]


def test_successful_tasks_publish_their_outlet_assets_and_aliases_are_left_out() -> None:
    outlets = [SimpleNamespace(uri="s3://warehouse/orders.parquet", name="orders"), SimpleNamespace(name="alias")]
    dag = FakeDag({"write": SimpleNamespace(outlets=outlets), "other": SimpleNamespace(outlets=[])})
    finished = read_finished_run("prod", run_of([ti("write", "success"), ti("other", "failed")], dag=dag))
    assets = [e for e in finished.events if isinstance(e, AssetUpdatedEvent)]
    assert [(a.uri, a.name, a.task_id, a.try_number) for a in assets] == [
        ("s3://warehouse/orders.parquet", "orders", "write", 1)
    ]
    assert finished.task_ids == ["other", "write"]


def test_task_ids_come_from_the_task_instances_without_a_dag_and_leave_removed_tasks_out() -> None:
    finished = read_finished_run("prod", run_of([ti("b", "success"), ti("a", "skipped"), ti("gone", "removed")]))
    assert finished.task_ids == ["a", "b"]


def test_a_run_whose_task_instances_cannot_be_read_yields_no_task_events() -> None:
    class Broken(FakeDagRun):
        def get_task_instances(self, session: Any = None) -> list[Any]:
            raise RuntimeError("database is locked")

    finished = read_finished_run("prod", Broken(dag_id="etl", run_id="r"))
    assert finished.events == []
    assert finished.task_ids is None
