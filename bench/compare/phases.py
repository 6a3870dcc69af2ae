"""One observation phase: a fresh Dagster instance watching an Airflow, idle and then under runs.

:func:`observe` starts ``dagster dev`` with the given observers on a fresh storage, waits for the
Airlift sensors' first ticks (and the gap-repair sensors' first sweeps), counts each observer's REST
requests (through its own counting proxy) while Airflow is idle and while
:func:`bench.compare.runs.drive_runs` drives runs, then (when asked) waits for every observer to
record what it will record and measures latency and completeness. A gap-repair observer is there
for its REST load only (see :func:`bench.compare.__main__.side_by_side`): its latency is not measured.
A stream observer (``airstream stream``, :mod:`bench.compare.stream_process`) runs beside ``dagster dev``
in the latency phases, recording the same topic into a Dagster instance of its own on the same storage;
its records are read from there.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import DagsterInstance

from bench.compare.dagster_dev import fresh_storage, prepare_home, start_bench_dagster
from bench.compare.observed import Observer, measure, stored_times
from bench.compare.runs import DrivenRuns, RestApi, Terminal, drive_runs
from bench.compare.stream_process import start_stream, stop_stream
from devstack.counting_proxy import CountingProxy, CountWindow
from devstack.dagster import recorded_asset_events
from devstack.postgres import PostgresServer
from devstack.processes import ManagedProcess

_FIRST_TICK = ("POST", "/api/v1/dags/~/dagRuns/list")
_SWEEP = _FIRST_TICK  # every gap-repair sweep starts with this call (the runs that ended since its mark)


@dataclass
class Setup:
    """What a phase observes: the observers, their Dagster config, and one counting proxy per observer."""

    observers: list[Observer]
    config: dict[str, Any]
    proxies: dict[str, CountingProxy] = field(default_factory=dict)
    airlift_intervals: dict[str, int] = field(default_factory=dict)

    @property
    def gap_repair(self) -> dict[str, float]:
        """Observer name → gap-repair interval, for the airstream observers that sweep REST."""
        return {o.name: o.gap_repair_interval for o in self.observers if o.gap_repair_interval is not None}

    @property
    def streams(self) -> list[Observer]:
        """The ``airstream stream`` observers (each a process with a Dagster instance of its own)."""
        return [o for o in self.observers if o.stream_of is not None]

    def stream_config(self, observer: Observer) -> dict[str, Any]:
        """``$BENCH_OBSERVERS`` for a stream observer: the streamed Airflow instance's entry of
        :attr:`config` alone (its topic, its DAG-asset history) and the same mapped tasks."""
        entries = [entry for entry in self.config.get("airstream", []) if entry["name"] == observer.stream_of]
        if not entries:
            raise ValueError(f"the stream observer {observer.name} streams {observer.stream_of!r}, not in the config")
        return {"airstream": entries[:1], "mapped_tasks": self.config.get("mapped_tasks", {})}

    @property
    def measured(self) -> list[Observer]:
        """The observers whose latency and completeness are measured (not the gap-repair ones)."""
        return [o for o in self.observers if o.gap_repair_interval is None]


@dataclass
class PhaseResult:
    load: dict[str, Any]
    driven: DrivenRuns | None = None
    observed: list[dict[str, Any]] = field(default_factory=list)


def expected_for(observer: Observer, terminals: list[Terminal]) -> list[Terminal]:
    """What an observer can record: everything for airstream; for Airlift, successes in successful runs."""
    if observer.kind == "airstream":
        return terminals
    succeeded = {(t.dag_id, t.run_id) for t in terminals if t.kind == "run" and t.state == "success"}
    return [t for t in terminals if t.state == "success" and (t.dag_id, t.run_id) in succeeded]


def observe(
    work: Path,
    setup: Setup,
    *,
    api: RestApi,
    storage: str,
    postgres: PostgresServer | None,
    dag_count: int,
    runs: int,
    idle_seconds: float,
    measure_latency: bool,
) -> PhaseResult:
    """Run one phase (see the module docstring); stops its ``dagster dev`` and streams before returning.

    The stream observers run only when latency is measured: each starts first (its start-up
    outside the REST windows), on a fresh Dagster instance of its own on ``storage``.
    """
    label = f"{storage}_{dag_count}_{uuid.uuid4().hex[:6]}"
    home = prepare_home(work / f"dagster-{label}", fresh_storage(storage, f"bench_{label}", postgres))
    streams = setup.streams if measure_latency else []
    left_out = {o.name for o in setup.streams if o not in streams}
    proxies = {name: proxy for name, proxy in setup.proxies.items() if name not in left_out}
    homes = {o.name: home for o in setup.measured}
    with contextlib.ExitStack() as stack:
        processes: dict[str, ManagedProcess] = {}
        for observer in streams:
            name = f"bench_{label}_{observer.name}"
            homes[observer.name] = prepare_home(
                work / f"stream-{label}-{observer.name}", fresh_storage(storage, name, postgres)
            )
            process, _started, _reading = start_stream(
                homes[observer.name],
                str(observer.stream_of),
                setup.stream_config(observer),
                log_path=work / "logs" / f"stream-{label}-{observer.name}.log",
            )
            processes[observer.name] = stack.enter_context(process)
        before = {name: proxy.counts for name, proxy in proxies.items()}
        began = time.monotonic()
        dagster, _url = start_bench_dagster(home, setup.config, log_dir=work / "logs")
        stack.enter_context(dagster)
        _wait_for_first_ticks(setup, before, dagster.is_alive, timeout=300)
        load: dict[str, Any] = {
            name: {"startup_requests": (proxy.counts - before[name]).total()} for name, proxy in proxies.items()
        }
        startup_seconds = time.monotonic() - began
        with _windows(proxies) as idle:
            time.sleep(idle_seconds)
        with _windows(proxies) as busy:
            driven = drive_runs(api, runs, dag_count=dag_count) if runs else None
        busy_seconds = (driven.finished - driven.started) if driven else 0.0
        for name in proxies:
            load[name].update(
                startup_seconds=round(startup_seconds, 1),
                idle_seconds=idle_seconds,
                idle_requests=idle[name].total,
                idle_per_hour=round(idle[name].total * 3600 / idle_seconds, 1),
                runs_seconds=round(busy_seconds, 1),
                runs_requests=busy[name].total,
                runs_per_hour=round(busy[name].total * 3600 / busy_seconds, 1) if busy_seconds else None,
                endpoints={f"{m} {p}": n for (m, p), n in sorted((idle[name].counts + busy[name].counts).items())},
            )
        for name, interval in setup.gap_repair.items():
            load[name].update(gap_repair_sweeps(interval, idle[name], busy[name]))
        result = PhaseResult(load=load, driven=driven)
        if measure_latency and driven is not None:
            result.observed = _wait_and_measure(homes, setup, driven.terminals)
        for observed in result.observed:
            if observed["observer"] in processes:
                process = processes[observed["observer"]]
                observed["stream_exit_code"] = stop_stream(process)
                if observed["stream_exit_code"] != 0:
                    print(f"  {process.name} exited {observed['stream_exit_code']}; log {process.log_path}", flush=True)
    return result


def _wait_for_first_ticks(setup: Setup, before: dict[str, Any], alive: Any, timeout: float) -> None:
    """Wait for each polling sensor's first ``_FIRST_TICK`` of this phase (the proxies outlive a phase:
    ``before`` holds their counts when it began)."""
    deadline = time.monotonic() + timeout
    waiting = [*setup.airlift_intervals, *setup.gap_repair]
    while any(setup.proxies[name].count(*_FIRST_TICK) <= before[name][_FIRST_TICK] for name in waiting):
        if time.monotonic() > deadline or not alive():
            raise RuntimeError(
                f"a polling sensor (Airlift's, or airstream's gap repair) made no {_FIRST_TICK} within "
                f"{timeout:.0f} s of starting Dagster"
            )
        time.sleep(0.5)
    time.sleep(2)  # airstream's sensor: its first tick reads the topic from the start


@contextlib.contextmanager
def _windows(proxies: dict[str, CountingProxy]) -> Any:
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(proxy.counting()) for name, proxy in proxies.items()}


def _wait_and_measure(homes: dict[str, Path], setup: Setup, terminals: list[Terminal]) -> list[dict[str, Any]]:
    """Poll the instances (``homes``: observer name → its Dagster home) until each observer holds
    what it can record (or its deadline), then measure."""
    slowest = max(setup.airlift_intervals.values(), default=5)  # the gap-repair observers are not waited for
    deadline = time.monotonic() + 2 * slowest + 60
    with contextlib.ExitStack() as stack:
        instances = {
            where: stack.enter_context(DagsterInstance.from_config(str(where))) for where in set(homes.values())
        }
        while True:
            records = {where: recorded_asset_events(instance) for where, instance in instances.items()}
            stored = {o.name: stored_times(o, records[homes[o.name]]) for o in setup.measured}
            done = all(all(t.key() in stored[o.name] for t in expected_for(o, terminals)) for o in setup.measured)
            if done or time.monotonic() > deadline:
                break
            time.sleep(3)
    return [measure(observer, terminals, stored[observer.name]) for observer in setup.measured]


def gap_repair_sweeps(interval: float, idle: CountWindow, busy: CountWindow) -> dict[str, Any]:
    """A gap-repair observer's sweeps in the idle and busy windows and its requests per sweep."""
    figures: dict[str, Any] = {"gap_repair_interval": interval}
    for window, counted in (("idle", idle), ("runs", busy)):
        sweeps = counted.count(*_SWEEP)
        figures[f"{window}_sweeps"] = sweeps
        figures[f"{window}_requests_per_sweep"] = round(counted.total / sweeps, 2) if sweeps else None
    return figures


__all__ = ["CountWindow", "PhaseResult", "Setup", "expected_for", "observe"]
