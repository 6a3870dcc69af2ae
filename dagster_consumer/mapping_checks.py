"""Telling the user when a task mapping names a task the DAG does not have.

A finished DAG run's event lists the DAG's task ids (schema 1.1). A mapped task missing from it
is usually a typo or a renamed task: its assets would silently never be materialized. The
warning goes to the sensor's log once per sensor process for each (dag, task), not on every run;
it is not kept in the cursor, so a restart warns again, once.
"""

from __future__ import annotations

from airstream.dagster_consumer.mappings import AssetMappings
from airstream.schemas import DagRunEvent, EventType

_TERMINAL = (EventType.DAG_RUN_SUCCESS, EventType.DAG_RUN_FAILED)


class MissingMappedTasks:
    """Remembers which missing (dag, task) mappings it has already reported."""

    def __init__(self) -> None:
        self._reported: set[tuple[str, str]] = set()

    def check(self, event: DagRunEvent, mappings: AssetMappings) -> list[str]:
        """Warnings, not yet given, for the tasks mapped in ``event``'s DAG that it does not list.

        Example::

            checks = MissingMappedTasks()
            checks.check(finished_run, mappings)   # ["airstream: the task mapping etl.lod ..."]
            checks.check(finished_run, mappings)   # []
        """
        if event.event_type not in _TERMINAL or event.task_ids is None:
            return []
        present = set(event.task_ids)
        warnings: list[str] = []
        for task_id, keys in sorted(mappings.mapped_tasks(event.dag_id).items()):
            handle = (event.dag_id, task_id)
            if task_id in present or handle in self._reported:
                continue
            self._reported.add(handle)
            names = ", ".join(key.to_user_string() for key in keys)
            warnings.append(
                f"airstream: assets are mapped to task {task_id!r} of DAG {event.dag_id!r}, but the DAG has no "
                f"such task (run {event.run_id!r} ended with {len(present)} task(s) and not this one), so "
                f"these assets are never materialized by it: {names}. Correct the task id in the mapping "
                "(assets_with_task_mappings / assets_with_multiple_task_mappings) or remove it."
            )
        return warnings
