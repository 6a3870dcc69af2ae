"""Reading the same events from Airflow's REST API: the fallback and gap-repair source.

The REST API keeps states, not transitions. Each read asks for what ended since a high-water
mark and rebuilds, from the rows, the terminal events the listener publishes for the same facts,
with the same deterministic ids (:func:`airstream.schemas.derive_event_id`): the consumer's
deduplication then makes the REST path and the event path agree record for record.

What one read costs, whatever the number of DAGs (each list call pages by 100 rows):

1. ``list_dag_runs(states=["success", "failed"], end_date_gte=since)``: the runs that ended since
   the mark (one request per 100 runs; in steady state, one);
2. ``list_task_instances(dag_ids=..., run_ids=...)`` for those runs, earliest-ending first, one
   call per 100 runs (skipped when none ended; one request per 100 task instances): in steady
   state one call. A read stops after ``max_runs_per_read`` runs, or after the call during which
   ``max_seconds_per_read`` passed; the runs not read come next time;
3. with ``report_running_runs=True``, one more ``list_dag_runs(states=["running"])`` whose runs'
   finished task instances join call 2;
4. ``server_info()`` once per process (the Airflow version, for links), and ``list_assets()``
   once per ``asset_refresh_interval`` (the outlets, for ``asset.updated`` events).

What it produces, per run that ended since the mark:

* ``dag_run.success`` / ``dag_run.failed`` with ``clear_number=0`` (see below);
* per task instance in ``success``, ``failed``, ``skipped``, ``upstream_failed``, ``removed`` or
  ``up_for_retry``: that state for its current try, and ``up_for_retry`` for every earlier try
  (``1 .. try_number-1``), the rule the listener follows for retries;
* per successful task instance, one ``asset.updated`` for each Airflow asset (dataset on
  Airflow 2) that lists the task among its producing tasks.

What it does not see, compared with the listener:

* ``running`` events (task or DAG run): a transition, not a state the API keeps;
* a DAG run's clear number: the API does not expose it, so every DAG-run event has
  ``clear_number=0``. A run cleared and re-run ends with the same id as its first end and is
  deduplicated while that id is in the cursor's window (its new task tries are new facts and are
  recorded); the listener's event for the re-run (``clear_number=1``) is a different fact;
* an earlier try's own end state: a try followed by another is reported ``up_for_retry``
  (without that try's dates or hostname), also when a person cleared a finished try. Such
  inferred events are marked (``EventBatch.inferred``), and the consumer drops one when the same
  try's own terminal event (the listener's ``success`` or ``failed``) is already recorded; with
  REST alone, or when REST reads the try first, the cleared try shows as ``up_for_retry``;
* states changed in a finished run without the run's end date moving (e.g. a task's state set
  by hand while the run stays finished);
* asset updates made outside a task, outlets resolved through aliases, and outlets a task had
  when it ran but no longer declares (the API lists the current DAG's producing tasks).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airstream import __version__
from airstream.dagster_consumer.rest.records import (
    AirflowRestApi,
    DagRunRecord,
    TaskInstanceRecord,
)
from airstream.dagster_consumer.sources.base import EventBatch, EventSource, EventSourceUnavailable, Position
from airstream.schemas import (
    AssetUpdatedEvent,
    DagRunEvent,
    Event,
    EventType,
    TaskInstanceEvent,
    validate_instance_name,
)

PRODUCER = f"airstream/{__version__} (rest)"

TERMINAL_RUN_STATES = ("success", "failed")
TERMINAL_TASK_STATES = frozenset({"success", "failed", "up_for_retry", "skipped", "upstream_failed", "removed"})

RunKey = tuple[str, str]  # (dag_id, run_id): run ids are unique per DAG only

_RUNS_PER_CALL = 100  # runs whose task instances one batch call asks for: a page of Airflow's


class RestEventSource(EventSource):
    """Airflow events rebuilt from the REST API (v2 on Airflow 3, v1 on Airflow 2.10+).

    Its position is a high-water mark on DAG-run end dates: ``{"mark": ..., "next": ...}``.
    ``mark`` is the latest end date read; ``next`` is where the next read starts, ``overlap``
    before the mark once a pass has caught up (rows committed late, or by a worker whose clock
    lags, are still read; the consumer's deduplication absorbs the overlap), or right after the
    last run read while a pass is still catching up.

    Args:
        api: the REST client (``AirflowInstance.rest``), or anything with the
            :class:`~airstream.dagster_consumer.rest.records.AirflowRestApi` calls.
        instance_name: the listener's ``instance_name``; it goes into the event ids.
        overlap: how far before the mark each caught-up read starts again.
        initial_lookback: with no position yet, how far back the first read goes (``None``:
            everything the API keeps).
        max_runs_per_read: at most this many ended runs are read further per read (their task
            instances, call 2), the earliest-ending first; the others are read next time.
        max_seconds_per_read: no further call for task instances starts after this long; the
            runs not read yet are read next time (a sensor tick stays bounded in time).
        report_running_runs: also report the finished task instances of running DAG runs (one
            more call per read), so task-mapped assets do not wait for the whole run.
        asset_updates: build ``asset.updated`` events for successful tasks' outlets.
        asset_refresh_interval: how long the asset list (producing tasks) is reused.

    Example::

        RestEventSource(airflow_instance.rest, "prod", overlap=timedelta(minutes=5))
    """

    def __init__(
        self,
        api: AirflowRestApi,
        instance_name: str,
        *,
        overlap: timedelta = timedelta(minutes=5),
        initial_lookback: timedelta | None = timedelta(days=1),
        max_runs_per_read: int = 1000,
        max_seconds_per_read: float = 10.0,
        report_running_runs: bool = False,
        asset_updates: bool = True,
        asset_refresh_interval: timedelta = timedelta(minutes=10),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        validate_instance_name(instance_name)
        if overlap < timedelta(0):
            raise ValueError("RestEventSource: overlap must not be negative")
        if max_runs_per_read < 1:
            raise ValueError("RestEventSource: max_runs_per_read must be positive")
        if not max_seconds_per_read > 0:
            raise ValueError("RestEventSource: max_seconds_per_read must be a positive number of seconds")
        self.api = api
        self.instance_name = instance_name
        self.overlap = overlap
        self.initial_lookback = initial_lookback
        self.max_runs_per_read = max_runs_per_read
        self.max_seconds_per_read = max_seconds_per_read
        self.report_running_runs = report_running_runs
        self.asset_updates = asset_updates
        self.asset_refresh_interval = asset_refresh_interval
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._airflow_version: str | None = None
        self._outlets: dict[tuple[str, str], list[tuple[str, str | None]]] | None = None
        self._outlets_read_at = 0.0

    def describe(self) -> str:
        url = getattr(self.api, "webserver_url", None) or getattr(self.api, "url", None)
        return f"rest://{url}" if url else f"rest ({type(self.api).__name__})"

    def read(self, position: Position | None) -> EventBatch:
        since, mark = self._start(position)
        try:
            return self._read(since, mark)
        except EventSourceUnavailable:
            raise
        except Exception as error:  # the client's errors say what to do; name the source too
            raise EventSourceUnavailable(f"reading {self.describe()} failed: {error}") from error

    def position_covering(self, position: Position | None, since: datetime) -> Position:
        """``position`` moved back so the next read covers runs that ended from ``since`` (less
        ``overlap``) on: how a gap found on the topic is handed to a gap-repair sweep. A position
        that already starts earlier is kept as it is.

        Example::

            position = rest.position_covering(position, last_event_before_the_gap)
        """
        start = _aware(since) - self.overlap
        current = dict(position or {})
        if not current.get("next") and self.initial_lookback is None:
            return current  # the first read goes through everything the API keeps
        if current.get("next") and _parse_time(current["next"]) <= start:
            return current
        mark = current.get("mark")
        return {"mark": mark if mark else _format_time(start), "next": _format_time(start)}

    # --- one read -------------------------------------------------------------------------------

    def _start(self, position: Position | None) -> tuple[datetime | None, datetime | None]:
        if position and position.get("next"):
            mark = position.get("mark")
            return _parse_time(position["next"]), _parse_time(mark) if mark else None
        if self.initial_lookback is None:
            return None, None
        start = self._clock() - self.initial_lookback
        return start, start

    def _read(self, since: datetime | None, mark: datetime | None) -> EventBatch:
        # No ``limit`` here: the client lists runs in id order, and a run created earlier can end
        # later, so a limited page could skip runs that ended before the last one it holds. Run rows
        # are small (100 a page); the bound applies to what is read further, in end-date order.
        ended = sorted(self.api.list_dag_runs(states=TERMINAL_RUN_STATES, end_date_gte=since), key=_end_key)
        truncated = len(ended) > self.max_runs_per_read
        ended = ended[: self.max_runs_per_read]
        running = self.api.list_dag_runs(states=["running"]) if self.report_running_runs else []
        task_instances, read = self._task_instances_in_time(running, ended)
        if read < len(ended):
            truncated, ended = True, ended[:read]
        runs: dict[RunKey, DagRunRecord] = {(run.dag_id, run.run_id): run for run in [*running, *ended]}

        if self._airflow_version is None:
            self._airflow_version = self.api.server_info().airflow_version
        outlets = self._outlets_by_task() if self.asset_updates else {}

        by_run: dict[RunKey, list[TaskInstanceRecord]] = {key: [] for key in runs}
        for task_instance in task_instances:
            key = (task_instance.dag_id, task_instance.run_id)
            if key in by_run:  # the batch call matches dag ids and run ids apart: keep the pairs asked for
                by_run[key].append(task_instance)

        events: list[Event] = []
        inferred: set[str] = set()
        for run in [*running, *ended]:
            events.extend(self._run_events(run, by_run[(run.dag_id, run.run_id)], outlets, inferred))

        return EventBatch(
            events=events,
            position=self._next_position(since, mark, ended, truncated),
            caught_up=not truncated,
            inferred=frozenset(inferred),
        )

    def _task_instances_in_time(
        self, running: Sequence[DagRunRecord], ended: Sequence[DagRunRecord]
    ) -> tuple[list[TaskInstanceRecord], int]:
        """The task instances of the running runs and of the ended ones, earliest-ending first, one
        call per ``_RUNS_PER_CALL`` runs until time is up; returns them and how many ended runs they cover."""
        deadline = time.monotonic() + self.max_seconds_per_read
        task_instances = self._task_instances([*running, *ended[:_RUNS_PER_CALL]])
        read = min(len(ended), _RUNS_PER_CALL)
        while read < len(ended) and time.monotonic() < deadline:
            task_instances += self._task_instances(ended[read : read + _RUNS_PER_CALL])
            read = min(len(ended), read + _RUNS_PER_CALL)
        return task_instances, read

    def _task_instances(self, runs: Sequence[DagRunRecord]) -> list[TaskInstanceRecord]:
        if not runs:
            return []
        return self.api.list_task_instances(
            dag_ids=sorted({run.dag_id for run in runs}), run_ids=sorted({run.run_id for run in runs})
        )

    def _next_position(
        self, since: datetime | None, mark: datetime | None, ended: Sequence[DagRunRecord], truncated: bool
    ) -> Position:
        end_dates = [_aware(run.end_date) for run in ended if run.end_date is not None]
        latest = max([*end_dates, *([mark] if mark else [])], default=None)
        if latest is None:  # nothing ever read and no lookback: start from the beginning again
            return {}
        if truncated and end_dates:
            # Catching up: continue right at the last run read (>=, so runs sharing its end date
            # are read again, not skipped); move on by a microsecond if a whole page shares it.
            following = end_dates[-1]
            if since is not None and following <= since:
                following = since + timedelta(microseconds=1)
            return {"mark": _format_time(latest), "next": _format_time(following)}
        return {"mark": _format_time(latest), "next": _format_time(latest - self.overlap)}

    # --- events ---------------------------------------------------------------------------------

    def _run_events(
        self,
        run: DagRunRecord,
        task_instances: Iterable[TaskInstanceRecord],
        outlets: dict[tuple[str, str], list[tuple[str, str | None]]],
        inferred: set[str],
    ) -> list[Event]:
        """The run's events; the ids of the earlier tries' inferred ``up_for_retry`` go into ``inferred``."""
        task_instances = sorted(task_instances, key=lambda ti: (ti.task_id, ti.map_index))
        events: list[Event] = []
        for task_instance in task_instances:
            earlier = [
                self._task_event(run, task_instance, "up_for_retry", attempt, dated=False)
                for attempt in range(1, task_instance.try_number)
            ]
            inferred.update(event.event_id for event in earlier)
            events.extend(earlier)
            if task_instance.state in TERMINAL_TASK_STATES:
                events.append(self._task_event(run, task_instance, task_instance.state, task_instance.try_number))
            if task_instance.state == "success":
                for uri, name in outlets.get((run.dag_id, task_instance.task_id), []):
                    events.append(self._asset_event(run, task_instance, uri, name))
        if run.state in TERMINAL_RUN_STATES:
            task_ids = sorted({ti.task_id for ti in task_instances if ti.state != "removed"})
            events.append(self._dag_run_event(run, task_ids))
        return events

    def _task_event(
        self, run: DagRunRecord, task_instance: TaskInstanceRecord, state: str, attempt: int, *, dated: bool = True
    ) -> TaskInstanceEvent:
        return TaskInstanceEvent.new(
            event_type=EventType(f"task_instance.{state}"),
            state=state,
            hostname=(task_instance.hostname or None) if dated else None,
            operator=task_instance.operator,
            **self._task_instance_fields(run, task_instance, attempt, dated=dated),
        )

    def _asset_event(
        self, run: DagRunRecord, task_instance: TaskInstanceRecord, uri: str, name: str | None
    ) -> AssetUpdatedEvent:
        return AssetUpdatedEvent.new(
            event_type=EventType.ASSET_UPDATED,
            state="updated",
            uri=uri,
            name=name if name and name != uri else None,
            **self._task_instance_fields(run, task_instance, task_instance.try_number),
        )

    def _task_instance_fields(
        self, run: DagRunRecord, task_instance: TaskInstanceRecord, attempt: int, *, dated: bool = True
    ) -> dict[str, Any]:
        """What every event about one try of a task instance carries: identity, dates, run."""
        return {
            "instance": self.instance_name,
            "dag_id": task_instance.dag_id,
            "run_id": task_instance.run_id,
            "task_id": task_instance.task_id,
            "map_index": task_instance.map_index,
            "try_number": attempt,
            "start_date": task_instance.start_date if dated else None,
            "end_date": task_instance.end_date if dated else None,
            "logical_date": run.logical_date,
            "run_type": run.run_type,
            "producer": PRODUCER,
            "airflow_version": self._airflow_version,
        }

    def _dag_run_event(self, run: DagRunRecord, task_ids: list[str]) -> DagRunEvent:
        return DagRunEvent.new(
            instance=self.instance_name,
            event_type=EventType(f"dag_run.{run.state}"),
            state=run.state,
            dag_id=run.dag_id,
            run_id=run.run_id,
            clear_number=0,  # not in the REST API; see the module's docstring
            start_date=run.start_date,
            end_date=run.end_date,
            logical_date=run.logical_date,
            run_type=run.run_type,
            data_interval_start=run.data_interval_start,
            data_interval_end=run.data_interval_end,
            task_ids=task_ids,
            producer=PRODUCER,
            airflow_version=self._airflow_version,
        )

    def _outlets_by_task(self) -> dict[tuple[str, str], list[tuple[str, str | None]]]:
        """(dag_id, task_id) → the (uri, name) of the assets it produces, refreshed now and then."""
        now = time.monotonic()
        if self._outlets is None or now - self._outlets_read_at >= self.asset_refresh_interval.total_seconds():
            outlets: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
            for asset in self.api.list_assets():
                for handle in asset.producing_tasks:
                    outlets.setdefault((handle[0], handle[1]), []).append((asset.uri, asset.name))
            self._outlets, self._outlets_read_at = outlets, now
        return self._outlets


def _end_key(run: DagRunRecord) -> tuple[datetime, str, str]:
    end = run.end_date or datetime.min.replace(tzinfo=timezone.utc)
    return (_aware(end), run.dag_id, run.run_id)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _format_time(value: datetime) -> str:
    return _aware(value).isoformat()


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise EventSourceUnavailable(f"the REST position holds {value!r}, not an ISO date; reset the sensor's cursor")
    try:
        return _aware(datetime.fromisoformat(value))
    except ValueError as error:
        raise EventSourceUnavailable(
            f"the REST position holds {value!r}, not an ISO date; reset the sensor's cursor"
        ) from error
