"""Building contract events from stand-ins for the objects Airflow passes to listener hooks."""

from __future__ import annotations

import enum
import sys
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from airstream.airflow_listener import __version__
from airstream.airflow_listener.event_builder import (
    dag_run_event,
    reporting_process,
    runs_in_long_lived_process,
    task_instance_event,
)
from airstream.schemas import DagRunEvent, EventType, TaskInstanceEvent, parse_event, serialize_event

LOGICAL = datetime(2026, 3, 1, tzinfo=timezone.utc)
START = LOGICAL + timedelta(minutes=1)
END = LOGICAL + timedelta(minutes=2)


class State(str, enum.Enum):
    """Like Airflow's TaskInstanceState / DagRunState: a str enum."""

    UP_FOR_RETRY = "up_for_retry"
    FAILED = "failed"


def orm_task_instance(**overrides: Any) -> SimpleNamespace:
    attributes: dict[str, Any] = {
        "dag_id": "etl",
        "task_id": "extract",
        "run_id": "manual__2026-03-01",
        "try_number": 2,
        "map_index": 3,
        "state": "success",
        "start_date": START,
        "end_date": END,
        "hostname": "worker-7",
        "operator": "PythonOperator",
        "dag_run": SimpleNamespace(logical_date=LOGICAL, run_type="manual"),
    }
    attributes.update(overrides)
    return SimpleNamespace(**attributes)


class DetachedTaskInstance(SimpleNamespace):
    """An ORM TaskInstance whose session is gone: lazy-loading ``dag_run`` raises."""

    @property
    def dag_run(self) -> Any:
        raise RuntimeError("Parent instance <TaskInstance> is not bound to a Session; lazy load not possible")


class GuardedDagRun(SimpleNamespace):
    """A DagRun stand-in whose ``conf`` must never be read: it may hold secrets."""

    @property
    def conf(self) -> Any:
        raise AssertionError("the listener read DagRun.conf")


def dag_run(**overrides: Any) -> GuardedDagRun:
    attributes: dict[str, Any] = {
        "dag_id": "etl",
        "run_id": "manual__2026-03-01",
        "clear_number": 2,
        "start_date": START,
        "end_date": END,
        "logical_date": LOGICAL,
        "run_type": "manual",
        "data_interval_start": LOGICAL - timedelta(days=1),
        "data_interval_end": LOGICAL,
        "state": "success",
    }
    attributes.update(overrides)
    return GuardedDagRun(**attributes)


# --- task-instance events ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "ti_state,expected",
    [
        ("up_for_retry", EventType.TASK_INSTANCE_UP_FOR_RETRY),
        (State.UP_FOR_RETRY, EventType.TASK_INSTANCE_UP_FOR_RETRY),
        ("failed", EventType.TASK_INSTANCE_FAILED),
        (State.FAILED, EventType.TASK_INSTANCE_FAILED),
        (None, EventType.TASK_INSTANCE_FAILED),
        ("running", EventType.TASK_INSTANCE_FAILED),  # a stale state still reports the hook's fact
    ],
)
def test_failed_hook_tells_retry_from_failure_by_the_task_state(ti_state: Any, expected: EventType) -> None:
    event = task_instance_event("prod", "failed", orm_task_instance(state=ti_state))
    assert event.event_type == expected
    assert event.state == expected.state


@pytest.mark.parametrize(
    "hook,expected",
    [
        ("success", EventType.TASK_INSTANCE_SUCCESS),
        ("running", EventType.TASK_INSTANCE_RUNNING),
        ("skipped", EventType.TASK_INSTANCE_SKIPPED),
    ],
)
def test_other_hooks_report_their_own_state(hook: str, expected: EventType) -> None:
    # Even a task instance whose state says up_for_retry: only the "failed" hook looks at it.
    event = task_instance_event("prod", hook, orm_task_instance(state="up_for_retry"))
    assert event.event_type == expected
    assert event.state == hook


def test_task_event_copies_the_fields() -> None:
    event = task_instance_event("prod", "success", orm_task_instance())
    assert isinstance(event, TaskInstanceEvent)
    assert event.instance == "prod"
    assert (event.dag_id, event.task_id, event.run_id) == ("etl", "extract", "manual__2026-03-01")
    assert event.map_index == 3
    assert event.try_number == 2
    assert event.logical_date == LOGICAL
    assert event.run_type == "manual"
    assert event.start_date == START
    assert event.end_date == END
    assert event.hostname == "worker-7"
    assert event.operator == "PythonOperator"
    assert event.producer == f"airstream/{__version__}"
    assert event.emitted_at.tzinfo is not None
    assert parse_event(serialize_event(event)) == event


def test_task_event_id_is_stable_for_the_same_attempt() -> None:
    first = task_instance_event("prod", "success", orm_task_instance())
    again = task_instance_event("prod", "success", orm_task_instance(hostname="worker-8"))
    retry = task_instance_event("prod", "success", orm_task_instance(try_number=3))
    assert first.event_id == again.event_id
    assert first.event_id != retry.event_id


def test_operator_comes_from_the_task_when_there_is_one() -> None:
    task = SimpleNamespace(task_type="BashOperator")
    assert task_instance_event("prod", "success", orm_task_instance(task=task)).operator == "BashOperator"


def test_missing_optional_attributes_become_defaults() -> None:
    ti = SimpleNamespace(dag_id="etl", task_id="t", run_id="r")
    event = task_instance_event("prod", "running", ti)
    assert event.map_index == -1
    assert event.try_number == 0
    assert event.logical_date is None
    assert event.run_type is None
    assert event.hostname is None
    assert event.operator is None
    assert event.start_date is None


def test_non_datetime_dates_are_dropped() -> None:
    event = task_instance_event("prod", "success", orm_task_instance(start_date="yesterday", end_date=object()))
    assert event.start_date is None
    assert event.end_date is None


def test_detached_task_instance_still_builds_an_event() -> None:
    attributes = vars(orm_task_instance())
    del attributes["dag_run"]
    ti = DetachedTaskInstance(**attributes)
    with pytest.raises(RuntimeError):
        _ = ti.dag_run  # the stand-in really does raise
    event = task_instance_event("prod", "success", ti)
    assert event.logical_date is None
    assert event.run_type is None
    assert event.task_id == "extract"
    assert event.try_number == 2


# --- DAG-run events ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hook,expected",
    [
        ("running", EventType.DAG_RUN_RUNNING),
        ("success", EventType.DAG_RUN_SUCCESS),
        ("failed", EventType.DAG_RUN_FAILED),
    ],
)
def test_dag_run_event_type_follows_the_hook(hook: str, expected: EventType) -> None:
    event = dag_run_event("prod", hook, dag_run())
    assert event.event_type == expected
    assert event.state == hook


def test_dag_run_event_copies_the_fields_and_never_reads_conf() -> None:
    run = dag_run()
    with pytest.raises(AssertionError):
        _ = run.conf  # the stand-in really does guard conf
    event = dag_run_event("prod", "success", run)
    assert isinstance(event, DagRunEvent)
    assert (event.dag_id, event.run_id) == ("etl", "manual__2026-03-01")
    assert event.clear_number == 2
    assert event.start_date == START
    assert event.end_date == END
    assert event.logical_date == LOGICAL
    assert event.run_type == "manual"
    assert event.data_interval_start == LOGICAL - timedelta(days=1)
    assert event.data_interval_end == LOGICAL
    assert "conf" not in event.model_dump()


def test_cleared_dag_run_is_a_new_fact() -> None:
    first = dag_run_event("prod", "success", dag_run(clear_number=0))
    cleared = dag_run_event("prod", "success", dag_run(clear_number=1))
    assert first.event_id != cleared.event_id


def test_dag_run_without_clear_number_counts_as_zero() -> None:
    run = dag_run()
    del run.clear_number
    assert dag_run_event("prod", "success", run).clear_number == 0


# --- which process reports --------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,role,long_lived",
    [
        (["airflow", "scheduler"], "scheduler", True),
        (["airflow", "api-server", "--port", "8080"], "api-server", True),
        (["airflow", "tasks", "run", "etl", "extract"], "task", False),
        (["airflow", "dags", "test", "etl"], "cli", False),
    ],
)
def test_reporting_process_from_argv(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], role: str, long_lived: bool
) -> None:
    monkeypatch.setattr(sys, "argv", argv)
    assert reporting_process() == role
    assert runs_in_long_lived_process() is long_lived
    assert task_instance_event("prod", "success", orm_task_instance()).reported_by == role
