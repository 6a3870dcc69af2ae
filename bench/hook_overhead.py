"""What a listener hook costs the Airflow process that calls it.

    .venv/bin/python bench/hook_overhead.py --events 500

* scheduler / api-server path (``inline=False``): spool write + hand-off to the background
  thread, measured against an unreachable broker so only the caller's share is timed;
* task-process path (``inline=True``): spool write + send + broker acknowledgement + spool
  removal, against the embedded broker;
* task-process path with the broker down: the first event waits for the connect timeout, the
  back-off then makes the rest spool-only.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from airflow_listener.config import ListenerConfig
from airflow_listener.delivery import Publisher
from devstack.broker import start_broker
from devstack.processes import free_port
from schemas import EventType, TaskInstanceEvent


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
