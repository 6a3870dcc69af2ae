"""Building contract events from the objects Airflow hands to listener hooks.

Hooks receive a Task SDK ``RuntimeTaskInstance`` in the task process, or an ORM
``TaskInstance``/``DagRun`` in the scheduler and the api-server (and on Airflow 2). Both are
read by attribute, defensively: a missing attribute becomes ``None``, never an error.
Only the fields of the contract are read; DAG-run ``conf``, XCom and connections are not.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from airstream.airflow_listener import __version__
from airstream.schemas import AssetUpdatedEvent, DagRunEvent, EventType, TaskInstanceEvent
from airstream.schemas.proxying import is_proxy_operator

PRODUCER = f"airstream/{__version__}"

_TASK_EVENT_TYPES = {
    "running": EventType.TASK_INSTANCE_RUNNING,
    "success": EventType.TASK_INSTANCE_SUCCESS,
    "failed": EventType.TASK_INSTANCE_FAILED,
    "up_for_retry": EventType.TASK_INSTANCE_UP_FOR_RETRY,
    "skipped": EventType.TASK_INSTANCE_SKIPPED,
    "upstream_failed": EventType.TASK_INSTANCE_UPSTREAM_FAILED,
    "removed": EventType.TASK_INSTANCE_REMOVED,
}


def airflow_version() -> str | None:
    """The running Airflow's version, e.g. ``3.3.2`` (``None`` outside Airflow)."""
    try:
        from airflow import __version__ as version
    except ImportError:
        return None
    return str(version)


def is_runtime_task_instance(task_instance: Any) -> bool:
    """True for the Task SDK object Airflow 3 passes inside the task process itself."""
    return type(task_instance).__module__.startswith("airflow.sdk")


def task_instance_event(instance: str, hook_state: str, task_instance: Any, dag_run: Any = None) -> TaskInstanceEvent:
    """The event for a task-instance hook. ``hook_state`` names the hook (``failed`` also covers
    ``up_for_retry``, told apart by the task instance's own state) or, for a finished run's
    task instances, the state itself. ``dag_run`` saves looking the run up when it is known."""
    state = hook_state
    if hook_state == "failed" and state_name(getattr(task_instance, "state", None)) == "up_for_retry":
        state = "up_for_retry"
    operator = _operator_name(task_instance)
    return TaskInstanceEvent.new(
        event_type=_TASK_EVENT_TYPES[state],
        state=state,
        hostname=getattr(task_instance, "hostname", None) or None,
        operator=operator,
        proxied_to_dagster=is_proxy_operator(operator),  # a proxy operator's task type is its marker
        reported_by=reporting_process(task_instance),
        **_task_instance_fields(instance, task_instance, dag_run),
    )


def asset_updated_events(
    instance: str, task_instance: Any, task: Any = None, dag_run: Any = None
) -> list[AssetUpdatedEvent]:
    """One event per asset (dataset on Airflow 2) that a successful task declares as an outlet.

    ``task`` defaults to the task instance's own ``task``; outlets without a URI (aliases,
    references by name) are left out.
    """
    task = task if task is not None else getattr(task_instance, "task", None)
    outlets = [outlet for outlet in getattr(task, "outlets", None) or [] if _uri_of(outlet)]
    if not outlets:
        return []
    fields = _task_instance_fields(instance, task_instance, dag_run)
    return [
        AssetUpdatedEvent.new(
            event_type=EventType.ASSET_UPDATED,
            state="updated",
            uri=_uri_of(outlet),
            name=_name_of(outlet),
            **fields,
        )
        for outlet in outlets
    ]


def _task_instance_fields(instance: str, task_instance: Any, dag_run: Any) -> dict[str, Any]:
    """What every event about a task instance carries: its identity, dates and run."""
    dag_run = dag_run if dag_run is not None else _dag_run_of(task_instance)
    return {
        "instance": instance,
        "dag_id": task_instance.dag_id,
        "run_id": task_instance.run_id,
        "task_id": task_instance.task_id,
        "map_index": _int(getattr(task_instance, "map_index", None), default=-1),
        "try_number": _int(getattr(task_instance, "try_number", None), default=0),
        "start_date": _datetime(getattr(task_instance, "start_date", None)),
        "end_date": _datetime(getattr(task_instance, "end_date", None)),
        "logical_date": _datetime(getattr(dag_run, "logical_date", None)),
        "run_type": state_name(getattr(dag_run, "run_type", None)),
        "producer": PRODUCER,
        "airflow_version": airflow_version(),
    }


def _uri_of(outlet: Any) -> str:
    uri = getattr(outlet, "uri", None)
    return uri if isinstance(uri, str) else ""


def _name_of(outlet: Any) -> str | None:
    name = getattr(outlet, "name", None)
    return name if isinstance(name, str) and name != _uri_of(outlet) else None


def dag_run_event(instance: str, hook_state: str, dag_run: Any, task_ids: list[str] | None = None) -> DagRunEvent:
    """The event for a DAG-run hook (``running``, ``success`` or ``failed``); a finished run
    also names the task ids its DAG held."""
    return DagRunEvent.new(
        instance=instance,
        event_type=EventType(f"dag_run.{hook_state}"),
        state=hook_state,
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        clear_number=_int(getattr(dag_run, "clear_number", None), default=0),
        start_date=_datetime(getattr(dag_run, "start_date", None)),
        end_date=_datetime(getattr(dag_run, "end_date", None)),
        logical_date=_datetime(getattr(dag_run, "logical_date", None)),
        run_type=state_name(getattr(dag_run, "run_type", None)),
        data_interval_start=_datetime(getattr(dag_run, "data_interval_start", None)),
        data_interval_end=_datetime(getattr(dag_run, "data_interval_end", None)),
        task_ids=task_ids,
        producer=PRODUCER,
        airflow_version=airflow_version(),
    )


def reporting_process(task_instance: Any = None) -> str:
    """Which Airflow process runs the hook: ``task``, ``scheduler``, ``api-server`` or ``cli``.

    A forked task process keeps its parent's ``argv``, so the Task SDK object decides first.
    """
    if task_instance is not None and is_runtime_task_instance(task_instance):
        return "task"
    argv = " ".join(sys.argv[1:3])
    for role in ("scheduler", "api-server", "api_server", "webserver", "triggerer", "dag-processor"):
        if role in argv:
            return role.replace("_", "-")
    return "task" if "tasks run" in argv else "cli"


def runs_in_long_lived_process(task_instance: Any = None) -> bool:
    """True where a hook must never wait for the network (scheduler loop, API requests)."""
    return reporting_process(task_instance) not in {"task", "cli"}


def _dag_run_of(task_instance: Any) -> Any:
    if is_runtime_task_instance(task_instance):
        try:
            return task_instance.get_template_context().get("dag_run")
        except Exception:
            return None
    try:
        return getattr(task_instance, "dag_run", None)
    except Exception:  # a detached ORM object cannot lazy-load its run
        return None


def _operator_name(task_instance: Any) -> str | None:
    task = getattr(task_instance, "task", None)
    if task is not None:
        return getattr(task, "task_type", None) or type(task).__name__
    return getattr(task_instance, "operator", None)


def state_name(value: Any) -> str | None:
    """An Airflow state (an enum or a string) as its plain name, e.g. ``"success"``."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _datetime(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None
