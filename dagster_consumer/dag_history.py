"""What a DAG asset's history holds, and the summary of a run's tasks its outcome record carries.

A DAG asset (``[instance, "dag", dag_id]``) is read by a person scrolling its events. With the
default history, ``"runs"``, it gets one record per finished DAG run (clears of a run are runs
again): a materialization when the run succeeded, an observation when it failed, with the task
outcomes of the run summed up in its metadata (``airflow/tasks``: "2 success, 1 failed";
``airflow/task_state_counts``; ``airflow/failed_tasks``). ``"all"`` keeps every DAG-run and
task-instance event on the DAG asset, as earlier versions did (8 records for one run of a 3-task
DAG), with the same summary on the run's outcome.

The summary comes from the task events this process translated before the run's outcome:
:class:`RunTaskStates` keeps the latest state of each task instance of the recent runs. Task
events of a run that reach the consumer after the run's outcome, or before a restart of the code
location, are not in it; tasks the run lists (``task_ids`` on the event) that no event reported
are named in ``airflow/tasks_not_reported``. Tasks that ran in Dagster through a proxy operator
(migration) are named in ``airflow/proxied_to_dagster``, so each run's record shows what moved.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from dagster import MetadataValue

from airstream.schemas import DagRunEvent, TaskInstanceEvent

DagAssetHistory = Literal["runs", "all"]
DAG_ASSET_HISTORIES: tuple[str, ...] = get_args(DagAssetHistory)
DEFAULT_DAG_ASSET_HISTORY: DagAssetHistory = "runs"

_FAILED_STATES = ("failed", "upstream_failed")
_TERMINAL_TASK_STATES = frozenset({"success", "failed", "up_for_retry", "skipped", "upstream_failed", "removed"})


def check_dag_asset_history(value: object) -> DagAssetHistory:
    """``value`` if it names a history (``"runs"`` or ``"all"``); ``ValueError`` otherwise."""
    if value not in DAG_ASSET_HISTORIES:
        raise ValueError(
            f"dag_asset_history must be one of {', '.join(map(repr, DAG_ASSET_HISTORIES))}, got {value!r}: "
            "'runs' keeps one record per finished DAG run, 'all' every DAG-run and task event"
        )
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class RunSummary:
    """The task outcomes of one DAG run: how many task instances ended in each state, which failed."""

    counts: Mapping[str, int] = field(default_factory=dict)
    failed: tuple[str, ...] = ()
    not_reported: tuple[str, ...] = ()
    proxied: tuple[str, ...] = ()

    def describe(self) -> str:
        """E.g. ``"1 success, 1 failed (flaky_call)"``, or ``"no task reported"``."""
        if not self.counts:
            return "no task reported"
        parts = [f"{count} {state}" for state, count in sorted(self.counts.items(), key=lambda item: -item[1])]
        text = ", ".join(parts)
        return text + (f" ({', '.join(self.failed)})" if self.failed else "")

    def metadata(self) -> dict[str, Any]:
        """The summary as Dagster metadata; keys without anything to say are left out."""
        metadata: dict[str, Any] = {
            "airflow/tasks": self.describe(),
            "airflow/task_state_counts": MetadataValue.json(dict(sorted(self.counts.items()))),
        }
        if self.failed:
            metadata["airflow/failed_tasks"] = ", ".join(self.failed)
        if self.not_reported:
            metadata["airflow/tasks_not_reported"] = ", ".join(self.not_reported)
        if self.proxied:
            metadata["airflow/proxied_to_dagster"] = ", ".join(self.proxied)
        return metadata


class RunTaskStates:
    """The latest state of each task instance of the ``max_runs`` most recent DAG runs, per the
    task events seen; a later try replaces an earlier one, a terminal state replaces ``running``.

    Example::

        states = RunTaskStates()
        states.note(load_success)
        states.summary(run_success).describe()   # "1 success"
    """

    def __init__(self, max_runs: int = 10_000) -> None:
        if max_runs < 1:
            raise ValueError(f"max_runs must be at least 1, got {max_runs!r}")
        self._max_runs = max_runs
        self._runs: OrderedDict[tuple[str, str, str], dict[tuple[str, int], tuple[int, str]]] = OrderedDict()
        self._proxied: dict[tuple[str, str, str], set[str]] = {}
        self._lock = threading.Lock()

    def note(self, event: TaskInstanceEvent) -> None:
        """Remember ``event``'s state for its task instance, unless an event of a later try, or a
        terminal one of the same try, is already known."""
        run = (event.instance, event.dag_id, event.run_id)
        instance = (event.task_id, event.map_index)
        with self._lock:
            tasks = self._runs.setdefault(run, {})
            self._runs.move_to_end(run)
            known = tasks.get(instance)
            if known is None or _replaces(event.try_number, event.state, known):
                tasks[instance] = (event.try_number, event.state)
            if event.proxied_to_dagster:
                self._proxied.setdefault(run, set()).add(event.task_id)
            while len(self._runs) > self._max_runs:
                dropped, _ = self._runs.popitem(last=False)
                self._proxied.pop(dropped, None)

    def summary(self, event: DagRunEvent) -> RunSummary:
        """The summary of the run ``event`` reports on."""
        with self._lock:
            tasks = dict(self._runs.get((event.instance, event.dag_id, event.run_id), {}))
            proxied = tuple(sorted(self._proxied.get((event.instance, event.dag_id, event.run_id), ())))
        counts = Counter(state for _, state in tasks.values())
        failed = tuple(
            _label(task_id, map_index)
            for (task_id, map_index), (_, state) in sorted(tasks.items())
            if state in _FAILED_STATES
        )
        reported = {task_id for task_id, _ in tasks}
        not_reported = tuple(sorted(set(event.task_ids or ()) - reported))
        return RunSummary(counts=dict(counts), failed=failed, not_reported=not_reported, proxied=proxied)


def _replaces(try_number: int, state: str, known: tuple[int, str]) -> bool:
    known_try, known_state = known
    if try_number != known_try:
        return try_number > known_try
    return state in _TERMINAL_TASK_STATES or known_state not in _TERMINAL_TASK_STATES


def _label(task_id: str, map_index: int) -> str:
    return f"{task_id}[{map_index}]" if map_index >= 0 else task_id
