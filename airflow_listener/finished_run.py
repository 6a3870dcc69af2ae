"""What a finished DAG run's task instances reached, read once when the run ends.

The scheduler decides some task states without a task process, and no hook reports them:
EmptyOperator successes, skips from branching, short-circuits and trigger rules,
``upstream_failed``, ``removed``, a self-skip on Airflow 2, and the tasks of a run a person
marked failed or success. When a DAG run reaches success or failed, the listener reads the run's
task instances once and publishes the terminal state of each, with the deterministic event id a
task process would have used; the consumer's deduplication absorbs the overlap.

The read happens in the hook, as one query in the database session Airflow is already using for
the run (so it sees the run's final states, committed or not), and building the events is CPU
work of microseconds each; writing them to the spool and sending them happen off the scheduler
loop (see :meth:`airstream.airflow_listener.delivery.Publisher.publish_many`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from airstream.airflow_listener.event_builder import asset_updated_events, state_name, task_instance_event
from airstream.schemas import AssetUpdatedEvent, TaskInstanceEvent

log = logging.getLogger(__name__)

TERMINAL_TASK_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


@dataclass
class FinishedRun:
    """The events for a finished run's task instances, and the task ids its DAG held."""

    events: list[TaskInstanceEvent | AssetUpdatedEvent] = field(default_factory=list)
    task_ids: list[str] | None = None


def read_finished_run(instance: str, dag_run: Any) -> FinishedRun:
    """The terminal task-instance events of ``dag_run`` (and the asset updates of its successful
    tasks). Never raises: a run that cannot be read yields no task events, and the error is logged."""
    try:
        task_instances = _task_instances(dag_run)
    except Exception:
        log.exception(
            "airstream: could not read the task instances of %s/%s; states the scheduler set without "
            "a task process are not published for this run",
            getattr(dag_run, "dag_id", "?"),
            getattr(dag_run, "run_id", "?"),
        )
        return FinishedRun()
    dag = _dag_of(dag_run)
    finished = FinishedRun(task_ids=_task_ids(dag, task_instances))
    for task_instance in task_instances:
        state = state_name(getattr(task_instance, "state", None))
        if state not in TERMINAL_TASK_STATES:
            continue
        finished.events.append(task_instance_event(instance, state, task_instance, dag_run=dag_run))
        if state == "success":
            task = _task_of(dag, task_instance.task_id)
            finished.events.extend(asset_updated_events(instance, task_instance, task=task, dag_run=dag_run))
    return finished


def _task_instances(dag_run: Any) -> list[Any]:
    from sqlalchemy.orm import object_session

    try:
        session = object_session(dag_run)
    except Exception:  # not an ORM object: let the run open its own session
        session = None
    if session is not None:
        return list(dag_run.get_task_instances(session=session))
    return list(dag_run.get_task_instances())


def _dag_of(dag_run: Any) -> Any:
    try:
        return getattr(dag_run, "dag", None)
    except Exception:  # a detached run cannot load its DAG
        return None


def _task_of(dag: Any, task_id: str) -> Any:
    if dag is None:
        return None
    try:
        return dag.get_task(task_id)
    except Exception:  # the task left the DAG since the run (a removed task instance)
        return None


def _task_ids(dag: Any, task_instances: list[Any]) -> list[str]:
    task_ids = getattr(dag, "task_ids", None)
    if task_ids:
        return sorted(str(task_id) for task_id in task_ids)
    return sorted({ti.task_id for ti in task_instances if state_name(getattr(ti, "state", None)) != "removed"})
