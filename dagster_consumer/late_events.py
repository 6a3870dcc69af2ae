"""Recognising a ``running`` event that arrives after its task try or DAG run already ended.

Airflow's processes publish independently, so a task's ``running`` can reach the topic after its
``success`` (the task process's event waited in its spool while the scheduler's went straight
through). Recorded then, it would make a finished task look unfinished. Event ids are
deterministic, so the id of every terminal event of the same task try (or DAG run) can be
derived and looked up in the cursor's window of seen ids; the answer survives restarts because
the window is in the cursor.
"""

from __future__ import annotations

from collections.abc import Container

from airstream.schemas import DagRunEvent, Event, EventType, TaskInstanceEvent, derive_event_id

TERMINAL_TASK_EVENT_TYPES = (
    EventType.TASK_INSTANCE_SUCCESS,
    EventType.TASK_INSTANCE_FAILED,
    EventType.TASK_INSTANCE_UP_FOR_RETRY,
    EventType.TASK_INSTANCE_SKIPPED,
    EventType.TASK_INSTANCE_UPSTREAM_FAILED,
    EventType.TASK_INSTANCE_REMOVED,
)
TERMINAL_DAG_RUN_EVENT_TYPES = (EventType.DAG_RUN_SUCCESS, EventType.DAG_RUN_FAILED)


def terminal_sibling_ids(event: Event) -> list[str]:
    """The ids the terminal events of the same task try (same dag, run, task, map index, try
    number) or the same DAG run (same clear number) have; empty unless ``event`` is ``running``."""
    if isinstance(event, TaskInstanceEvent) and event.event_type == EventType.TASK_INSTANCE_RUNNING:
        terminal_types: tuple[EventType, ...] = TERMINAL_TASK_EVENT_TYPES
    elif isinstance(event, DagRunEvent) and event.event_type == EventType.DAG_RUN_RUNNING:
        terminal_types = TERMINAL_DAG_RUN_EVENT_TYPES
    else:
        return []
    identity = event.identity()
    return [derive_event_id(**{**identity, "event_type": event_type}) for event_type in terminal_types]


def is_late(event: Event, seen: Container[object]) -> bool:
    """Whether ``event`` is a ``running`` whose task try or DAG run already ended, per ``seen``.

    Example::

        seen.add(success.event_id)
        is_late(running_of_the_same_try, seen)   # True
    """
    return any(event_id in seen for event_id in terminal_sibling_ids(event))


def is_superseded(event: Event, seen: Container[object]) -> bool:
    """Whether an ``up_for_retry`` of a task try is contradicted by another terminal event of the
    same try already in ``seen`` (``success``, ``failed``…): used for events a source inferred.

    Example::

        seen.add(failed_try_1.event_id)   # the listener saw try 1 fail, then a person cleared it
        is_superseded(inferred_up_for_retry_of_try_1, seen)   # True
    """
    if not isinstance(event, TaskInstanceEvent) or event.event_type != EventType.TASK_INSTANCE_UP_FOR_RETRY:
        return False
    identity = event.identity()
    return any(
        derive_event_id(**{**identity, "event_type": event_type}) in seen
        for event_type in TERMINAL_TASK_EVENT_TYPES
        if event_type != EventType.TASK_INSTANCE_UP_FOR_RETRY
    )
