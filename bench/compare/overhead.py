"""The listener's cost to an Airflow task: time per event with the broker up and down, extra memory.

Timing reuses :mod:`bench.hook_overhead` (the task-process path: spool write, send, acknowledgement,
spool removal; broker down: the connect timeout once, then spool-only under back-off). Memory is
measured in Airflow 2.11's own environment: the resident size of a process that has imported
Airflow's models (what a task process holds) before and after importing the listener and
publishing through it with the broker up.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from airstream.airflow_listener.config import ListenerConfig
from airstream.airflow_listener.delivery import Publisher
from bench.compare.observed import summarize
from bench.hook_overhead import _time
from devstack.airflow2 import Airflow2Venv
from devstack.processes import free_port

_MEMORY_SCRIPT = """
import json, sys
from pathlib import Path

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024

import airflow.models  # what every task process has loaded
before = rss_mb()
from airstream.airflow_listener.config import ListenerConfig
from airstream.airflow_listener.delivery import Publisher
from airstream.schemas import EventType, TaskInstanceEvent
publisher = Publisher(ListenerConfig(spool_dir=Path(sys.argv[1]), bootstrap_servers=sys.argv[2], topic="bench-memory"))
for number in range(20):
    publisher.publish(TaskInstanceEvent.new(instance="bench", event_type=EventType.TASK_INSTANCE_SUCCESS,
        state="success", dag_id="d", run_id=f"r{number}", task_id="t", try_number=1, producer="bench"), inline=True)
print(json.dumps({"before_mb": before, "after_mb": rss_mb()}))
"""


def listener_memory(venv: Airflow2Venv, env: dict[str, str], bootstrap_servers: str) -> dict[str, Any]:
    """Resident memory (MB) of an Airflow 2.11 process before and after the listener is loaded and has published."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as spool:
        done = subprocess.run(
            [str(venv.python), "-c", _MEMORY_SCRIPT, spool, bootstrap_servers],
            env=env,
            cwd=spool,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the memory probe failed:\n{done.stdout[-1000:]}\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "before_mb": round(figures["before_mb"], 1),
        "after_mb": round(figures["after_mb"], 1),
        "extra_mb": round(figures["after_mb"] - figures["before_mb"], 1),
    }


def listener_timing(work: Path, bootstrap_servers: str, events: int) -> dict[str, Any]:
    """Milliseconds a task-process hook spends per event, broker up and broker down (p50, p95, max)."""
    up = ListenerConfig(spool_dir=work / "up", bootstrap_servers=bootstrap_servers, topic="bench-overhead")
    publisher = Publisher(up)
    try:
        up_ms = _time(publisher, events, inline=True)
    finally:
        publisher.close()
    down = ListenerConfig(
        spool_dir=work / "down", bootstrap_servers=f"127.0.0.1:{free_port()}", topic="bench", delivery_timeout=1
    )
    down_ms = _time(Publisher(down), events, inline=True)
    return {
        "events": events,
        "unit": "ms",
        "broker_up": summarize(up_ms),
        "broker_down": summarize(down_ms),
    }
