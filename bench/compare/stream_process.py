"""``airstream stream`` as the benchmark runs it: a subprocess recording into a Dagster instance of its own.

The stream and the sensor of the same Airflow instance must not share a Dagster instance here: while
the stream holds its lease the sensor records nothing from the topic (README, "Streaming mode"),
and each is measured as the only consumer of its instance. So the stream gets its own Dagster home
(:func:`bench.compare.dagster_dev.prepare_home`, on the phase's storage) and loads
:mod:`bench.compare.definitions` (``-f``) with ``$BENCH_OBSERVERS`` naming that one Airflow
instance: the same mapped tasks and DAG assets as the sensor's code location.

It has no REST client (it is given no Airflow URL), so it makes no request to Airflow.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from airstream.dagster_consumer.cursor import SensorCursor
from airstream.dagster_consumer.dagster_kvs import read_values
from airstream.dagster_consumer.stream_lease import cursor_key, split_name
from bench.compare.dagster_dev import DEFINITIONS
from devstack.processes import ManagedProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
# What the stream prints once it has loaded the definitions, opened the instance and taken its
# lease: the next thing it does is connect to the broker and read.
READING = ": reading "
STOP_TIMEOUT = 30.0


def airstream_executable() -> str:
    """The ``airstream`` console script of this interpreter's environment."""
    return str(Path(sys.executable).with_name("airstream"))


def start_stream(
    home: Path, instance: str, observers: dict[str, Any], *, log_path: Path, timeout: float = 300
) -> tuple[ManagedProcess, float, float]:
    """Start ``airstream stream --instance INSTANCE -f DEFINITIONS --dagster-home HOME`` with
    ``observers`` as ``$BENCH_OBSERVERS`` and wait until it reads the topic.

    Returns the process, the wall-clock time it was started and the time its "reading ... from"
    line was seen (polled every 50 ms, so at most that late).
    """
    env = {**os.environ, "DAGSTER_HOME": str(home), "BENCH_OBSERVERS": json.dumps(observers)}
    argv = [airstream_executable(), "stream", "--instance", instance, "-f", str(DEFINITIONS)]
    argv += ["--dagster-home", str(home)]
    started = time.time()
    process = ManagedProcess.start(f"airstream stream {instance}", argv, env=env, cwd=REPO_ROOT, log_path=log_path)
    try:
        process.wait_until(
            lambda: READING in process.log_tail(200), timeout=timeout, what="its 'reading' line", interval=0.05
        )
    except BaseException:
        process.stop()
        raise
    return process, started, time.time()


def stop_stream(process: ManagedProcess, timeout: float = STOP_TIMEOUT) -> int | None:
    """SIGTERM (the stream finishes its batch and releases its lease), SIGKILL after ``timeout`` s;
    returns the exit code (0: it stopped as asked; negative: killed by that signal)."""
    process.stop(timeout=timeout)
    return process.returncode


def recorded_count(instance: Any, name: str) -> int:
    """The events a stream of every partition of ``name``'s topic recorded so far (its stored state's totals)."""
    key = cursor_key(name, split_name(None))
    return int(SensorCursor.parse(read_values(instance, [key]).get(key)).totals.get("recorded", 0))


__all__ = ["READING", "airstream_executable", "recorded_count", "start_stream", "stop_stream"]
