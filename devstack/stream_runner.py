"""``airstream stream`` as a real process for tests: a definitions file, the process in its own
process group (so ``kill -9`` and SIGTERM reach it as they would in production), events spread
over a topic's partitions, and the figures of what a Dagster instance holds."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from devstack import REPO_ROOT
from devstack.processes import ManagedProcess

__all__ = [
    "StreamProcess",
    "dags_by_partition",
    "success_events",
    "wait_for",
    "write_definitions",
]

DEFINITIONS = """
from devstack.figures import etl_observation_defs

defs = etl_observation_defs({instance!r}, {servers!r}, {topic!r})
"""


def write_definitions(path: Path, instance: str, bootstrap_servers: str, topic: str) -> Path:
    """A definitions file observing ``instance`` on ``topic`` with every event kept on its DAG's asset
    (:func:`devstack.figures.etl_observation_defs`)."""
    path.write_text(DEFINITIONS.format(instance=instance, servers=bootstrap_servers, topic=topic))
    return path


def airstream_command() -> list[str]:
    executable = Path(sys.executable).parent / "airstream"
    return [str(executable)] if executable.exists() else [sys.executable, "-m", "airstream.cli"]


class StreamProcess:
    """One ``airstream stream`` process logging to ``log_path``."""

    def __init__(
        self,
        name: str,
        *,
        instance: str,
        definitions: Path,
        dagster_home: Path,
        log_path: Path,
        partitions: str | None = None,
        poll_interval: float = 0.2,
        lease_seconds: float = 5.0,
    ) -> None:
        argv = [
            *airstream_command(),
            "stream",
            "--instance",
            instance,
            "-f",
            str(definitions),
            "--dagster-home",
            str(dagster_home),
            "--poll-interval",
            str(poll_interval),
            "--lease-seconds",
            str(lease_seconds),
            "--status-interval",
            "2",
            *(["--partitions", partitions] if partitions else []),
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1", "DAGSTER_HOME": str(dagster_home)}
        self.process = ManagedProcess.start(name, argv, log_path=log_path, env=env, cwd=REPO_ROOT)

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace")

    def wait_for_line(self, text: str, timeout: float = 60.0) -> None:
        """Wait until the log holds ``text`` (raises with the log tail if the process exits first)."""
        self.process.wait_until(lambda: text in self.log(), timeout=timeout, what=repr(text))

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit status (SIGKILL after ``timeout``: status -9)."""
        os.kill(self.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.process.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        status = self.process.returncode
        self.process.stop()
        return status if status is not None else -9

    def kill(self) -> None:
        """``kill -9`` of the process group."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.stop()

    def stop(self) -> None:
        self.process.stop()


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll ``predicate`` until it holds; ``AssertionError`` naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def dags_by_partition(instance: str, partitions: int = 3, per_partition: int = 2) -> dict[int, list[str]]:
    """DAG ids whose events the producer's default partitioner puts on each partition."""
    from kafka.partitioner.default import murmur2

    found: dict[int, list[str]] = {p: [] for p in range(partitions)}
    number = 0
    while any(len(dags) < per_partition for dags in found.values()):
        dag_id = f"dag_{number}"
        partition = (murmur2(f"{instance}/{dag_id}".encode()) & 0x7FFFFFFF) % partitions
        if len(found[partition]) < per_partition:
            found[partition].append(dag_id)
        number += 1
    return found


def success_events(instance: str, dag_ids: Sequence[str], count: int, first: int = 0) -> list[Any]:
    """``count`` distinct task-success events, round-robin over ``dag_ids`` (runs ``run_<n>``)."""
    from airstream.schemas import EventType, TaskInstanceEvent

    return [
        TaskInstanceEvent.new(
            instance=instance,
            event_type=EventType.TASK_INSTANCE_SUCCESS,
            state="success",
            dag_id=dag_ids[number % len(dag_ids)],
            run_id=f"run_{number}",
            task_id="load",
            try_number=1,
            producer="airstream/stream-tests",
        )
        for number in range(first, first + count)
    ]
