"""What a listener hook costs the Airflow process that calls it.

    .venv/bin/python -m bench.hook_overhead --events 500

* scheduler / api-server path (``inline=False``): spool write + hand-off to the background
  thread, measured against an unreachable broker so only the caller's share is timed;
* task-process path (``inline=True``): spool write + send + broker acknowledgement + spool
  removal, against the embedded broker;
* task-process path with the broker down: the first event waits for the connect timeout, the
  back-off then makes the rest spool-only;
* a finished DAG run in the scheduler: building the events of its N task instances and handing
  them to the background thread (the one database query is not included: it runs in Airflow's
  own session, like the scheduler's own queries).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from airstream.airflow_listener.config import ListenerConfig
from airstream.airflow_listener.delivery import Publisher
from airstream.airflow_listener.finished_run import read_finished_run
from airstream.schemas import EventType, TaskInstanceEvent
from devstack.broker import start_broker
from devstack.processes import free_port


def _event(number: int) -> TaskInstanceEvent:
    return TaskInstanceEvent.new(
        instance="bench",
        event_type=EventType.TASK_INSTANCE_SUCCESS,
        state="success",
        dag_id=f"dag_{number % 10}",
        run_id=f"run_{number}",
        task_id="task",
        try_number=1,
        producer="bench",
    )


def _time(publisher: Publisher, events: int, *, inline: bool) -> list[float]:
    timings = []
    for number in range(events):
        started = time.perf_counter()
        publisher.publish(_event(number), inline=inline)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


class _FinishedRun(SimpleNamespace):
    def get_task_instances(self, session: Any = None) -> list[Any]:
        return list(self.tis)


def _finished_run(tasks: int) -> _FinishedRun:
    tis = [
        SimpleNamespace(
            dag_id="big", run_id="r", task_id=f"t{n}", map_index=-1, try_number=1, state="success", operator="Empty"
        )
        for n in range(tasks)
    ]
    return _FinishedRun(dag_id="big", run_id="r", logical_date=None, run_type="manual", tis=tis, dag=None)


def _time_finished_runs(publisher: Publisher, tasks: int, runs: int = 20) -> list[float]:
    read_finished_run("bench", _finished_run(1))  # warm-up: first imports, as a running scheduler has them
    timings = []
    for _ in range(runs):
        run = _finished_run(tasks)
        started = time.perf_counter()
        publisher.publish_many(read_finished_run("bench", run).events, inline=False)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _report(name: str, timings: list[float]) -> None:
    timings = sorted(timings)
    p99 = timings[int(len(timings) * 0.99) - 1]
    print(f"{name:48s} p50 {statistics.median(timings):7.2f} ms  p99 {p99:7.2f} ms  max {timings[-1]:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        down = ListenerConfig(spool_dir=root / "down", bootstrap_servers=f"127.0.0.1:{free_port()}", delivery_timeout=1)
        _report("scheduler path (background delivery)", _time(Publisher(down), args.events, inline=False))
        for tasks in (10, 100, 1000):
            _report(f"scheduler, a finished run of {tasks} tasks", _time_finished_runs(Publisher(down), tasks))
        down_inline = ListenerConfig(
            spool_dir=root / "down-inline", bootstrap_servers=f"127.0.0.1:{free_port()}", delivery_timeout=1
        )
        _report(
            "task path, broker down (1 s timeout, back-off)", _time(Publisher(down_inline), args.events, inline=True)
        )
        with start_broker(root / "broker") as broker:
            up = ListenerConfig(spool_dir=root / "up", bootstrap_servers=broker.bootstrap_servers, topic="bench")
            publisher = Publisher(up)
            _report("task path, broker up (inline, acks=all)", _time(publisher, args.events, inline=True))
            publisher.close()


if __name__ == "__main__":
    main()
