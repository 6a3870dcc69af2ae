"""Driving DAG runs through Airflow's REST API and reading back what Airflow says happened.

The driver talks to Airflow directly (never through an observer's counting proxy), keeps a few
runs in flight, and returns, per run, Airflow's terminal states and end times: the truth every
observer is measured against.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

from devstack.processes import StackError

TERMINAL_RUN_STATES = ("success", "failed")
TERMINAL_TASK_STATES = ("success", "failed", "upstream_failed", "skipped")
FAILING_DAG = "bench_failing"


class RestApi(Protocol):
    """What the driver needs of devstack's ``AirflowApi`` (v2) or ``AirflowApiV1``."""

    def trigger(self, dag_id: str) -> str: ...
    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]: ...
    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Terminal:
    """One terminal state Airflow reports: a DAG run's (``task_id`` None) or a task instance's."""

    dag_id: str
    run_id: str
    task_id: str | None
    state: str
    end: float  # Airflow's end_date, seconds since the epoch

    @property
    def kind(self) -> str:
        return "run" if self.task_id is None else "task"

    def key(self) -> tuple[str, str, str, str | None]:
        return (self.kind, self.dag_id, self.run_id, self.task_id)


@dataclass
class DrivenRuns:
    """The runs one phase triggered, Airflow's terminal states for them, and when the phase ran."""

    started: float
    finished: float
    runs: list[tuple[str, str]] = field(default_factory=list)
    terminals: list[Terminal] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "runs": len(self.runs),
            "seconds": round(self.finished - self.started, 1),
            "terminal_states": len(self.terminals),
            "failed_runs": sum(1 for t in self.terminals if t.kind == "run" and t.state == "failed"),
        }


def dag_for(number: int, dag_count: int) -> str:
    """Every fifth run is of the failing DAG; the others rotate over the first ten bench DAGs."""
    if number % 5 == 4:
        return FAILING_DAG
    return f"bench_{number % min(10, dag_count):04d}"


def drive_runs(api: RestApi, count: int, *, dag_count: int, in_flight: int = 3, timeout: float = 1800) -> DrivenRuns:
    """Trigger ``count`` runs, at most ``in_flight`` at once, wait for all to end, and read their truth."""
    driven = DrivenRuns(started=time.time(), finished=0.0)
    pending: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    next_number = 0
    while next_number < count or pending:
        while next_number < count and len(pending) < in_flight:
            dag_id = dag_for(next_number, dag_count)
            run = (dag_id, _trigger(api, dag_id))
            pending.append(run)
            driven.runs.append(run)
            next_number += 1
        time.sleep(1)
        pending = [run for run in pending if str(api.dag_run(*run)["state"]) not in TERMINAL_RUN_STATES]
        if time.monotonic() > deadline:
            raise StackError(f"{len(pending)} DAG runs did not finish within {timeout:.0f} s: {pending[:3]}")
    driven.finished = time.time()
    driven.terminals = [terminal for run in driven.runs for terminal in read_terminals(api, *run)]
    return driven


def _trigger(api: RestApi, dag_id: str, attempts: int = 5) -> str:
    """Trigger a run, retrying a server error (Airflow 3.3 on SQLite answered 500 once under load)."""
    for attempt in range(1, attempts + 1):
        try:
            return api.trigger(dag_id)
        except httpx.HTTPStatusError as error:
            if error.response.status_code < 500 or attempt == attempts:
                raise
            time.sleep(2 * attempt)
    raise AssertionError("unreachable")


def read_terminals(api: RestApi, dag_id: str, run_id: str) -> list[Terminal]:
    """The run's terminal state and its task instances' (with end times), as Airflow's REST API reports them."""
    run = api.dag_run(dag_id, run_id)
    found = []
    if run["state"] in TERMINAL_RUN_STATES and run.get("end_date"):
        found.append(Terminal(dag_id, run_id, None, str(run["state"]), _epoch(run["end_date"])))
    for ti in api.task_instances(dag_id, run_id):
        if ti["state"] in TERMINAL_TASK_STATES:
            end = _epoch(ti["end_date"]) if ti.get("end_date") else _epoch(run["end_date"])
            found.append(Terminal(dag_id, run_id, str(ti["task_id"]), str(ti["state"]), end))
    return found


def terminals_json(terminals: list[Terminal]) -> list[dict[str, Any]]:
    return [asdict(terminal) for terminal in terminals]


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
