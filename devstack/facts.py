"""What Airflow reached, as comparable facts, from three places: Airflow's REST API, the topic,
and a Dagster instance. The completeness tests compare these multisets.

A fact is ``(dag_id, run_id, task_id, map_index, try_number, state)``; DAG-run facts have
``None`` for the task fields. Only terminal states are facts here (``running`` is not): those
are what Airflow's REST API keeps, one per try.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from airstream.schemas import DagRunEvent, Event, TaskInstanceEvent

Fact = tuple[str, str, str | None, int | None, int | None, str]

TERMINAL_TASK_STATES = frozenset({"success", "failed", "up_for_retry", "skipped", "upstream_failed", "removed"})
TERMINAL_RUN_STATES = frozenset({"success", "failed"})


class AirflowRestApi(Protocol):
    """The calls the facts need; ``devstack.airflow.AirflowApi`` (v2) and the v1 client both have them."""

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]: ...

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]: ...

    def task_instance_tries(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[dict[str, Any]]: ...


def facts_from_api(api: AirflowRestApi, dag_id: str, run_id: str) -> list[Fact]:
    """Every terminal state the run and its task instances reached, per Airflow's REST API.

    A try followed by another one was a retry: Airflow keeps it as ``failed`` or
    ``up_for_retry``; the listener reports it as ``up_for_retry``.
    """
    facts: list[Fact] = []
    run_state = str(api.dag_run(dag_id, run_id)["state"])
    if run_state in TERMINAL_RUN_STATES:
        facts.append((dag_id, run_id, None, None, None, run_state))
    for task_instance in api.task_instances(dag_id, run_id):
        task_id, map_index = task_instance["task_id"], int(task_instance["map_index"])
        tries = _tries(api, dag_id, run_id, task_instance)
        for position, attempt in enumerate(tries):
            state = str(attempt["state"])
            if position < len(tries) - 1 and state in ("failed", "up_for_retry"):
                state = "up_for_retry"
            if state in TERMINAL_TASK_STATES:
                facts.append((dag_id, run_id, task_id, map_index, int(attempt["try_number"]), state))
    return facts


def _tries(api: AirflowRestApi, dag_id: str, run_id: str, task_instance: dict[str, Any]) -> list[dict[str, Any]]:
    if int(task_instance.get("try_number") or 0) == 0:
        return [task_instance]  # decided by the scheduler without ever running: no tries recorded
    tries = api.task_instance_tries(dag_id, run_id, task_instance["task_id"], int(task_instance["map_index"]))
    by_number = {int(attempt["try_number"]): attempt for attempt in tries}
    by_number[int(task_instance["try_number"])] = task_instance  # the current try, in its latest state
    return [by_number[number] for number in sorted(by_number)]


def facts_from_events(events: Iterable[Event]) -> list[Fact]:
    """The terminal facts among events (from the topic, or recorded in Dagster)."""
    facts: list[Fact] = []
    for event in events:
        if isinstance(event, TaskInstanceEvent) and event.state in TERMINAL_TASK_STATES:
            facts.append((event.dag_id, event.run_id, event.task_id, event.map_index, event.try_number, event.state))
        elif isinstance(event, DagRunEvent) and event.state in TERMINAL_RUN_STATES:
            facts.append((event.dag_id, event.run_id, None, None, None, event.state))
    return facts


def facts_from_metadata(records: Iterable[dict[str, Any]]) -> list[Fact]:
    """The terminal facts among Dagster asset records, read from their ``airflow/*`` metadata."""
    facts: list[Fact] = []
    for metadata in records:
        state, task_id = metadata["airflow/state"], metadata.get("airflow/task_id")
        if task_id and state in TERMINAL_TASK_STATES:
            map_index, try_number = int(metadata["airflow/map_index"]), int(metadata["airflow/try_number"])
            facts.append(
                (metadata["airflow/dag_id"], metadata["airflow/run_id"], task_id, map_index, try_number, state)
            )
        elif not task_id and state in TERMINAL_RUN_STATES:
            facts.append((metadata["airflow/dag_id"], metadata["airflow/run_id"], None, None, None, state))
    return facts
