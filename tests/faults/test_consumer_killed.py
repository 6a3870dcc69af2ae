"""The consumer killed with SIGKILL inside a tick (before reading, while storing, after storing but
before its cursor is stored), then ticking again: no event lost, none twice.

Each tick runs in a process of its own (``tick_runner.py``) against a persistent Dagster instance,
in the daemon's order: evaluate, store the asset events, store the cursor.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance

from airstream.schemas import DagRunEvent, Event, EventType, TaskInstanceEvent, message_key
from devstack import REPO_ROOT
from devstack.broker import TansuProcess, publish
from devstack.figures import SensorDriver, count_figures, etl_observation_defs, recorded_event_ids

pytestmark = pytest.mark.integration

INSTANCE = "faults"
RUNNER = Path(__file__).with_name("tick_runner.py")


def run_events(run: str) -> list[Event]:
    tasks = [
        TaskInstanceEvent.new(
            instance=INSTANCE,
            event_type=event_type,
            state=event_type.state,
            dag_id="etl",
            run_id=run,
            task_id=task_id,
            try_number=1,
            producer="faults",
        )
        for task_id in ("extract", "load")
        for event_type in (EventType.TASK_INSTANCE_RUNNING, EventType.TASK_INSTANCE_SUCCESS)
    ]
    end = DagRunEvent.new(
        instance=INSTANCE,
        event_type=EventType.DAG_RUN_SUCCESS,
        state="success",
        dag_id="etl",
        run_id=run,
        producer="faults",
    )
    return [*tasks, end]


def killed_tick(home: Path, broker: TansuProcess, topic: str, kill_at: str) -> int:
    """One tick in a process of its own, killed at ``kill_at``; returns its exit status."""
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}
    argv = [sys.executable, str(RUNNER), broker.bootstrap_servers, topic, str(home / "cursor"), "--kill-at", kill_at]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == -signal.SIGKILL, f"the tick was not killed at {kill_at}:\n{result.stderr[-3000:]}"
    return result.returncode


def tick(instance: DagsterInstance, driver: SensorDriver, home: Path) -> None:
    """One tick in this process, on the cursor the file holds, stored as the runner stores it."""
    cursor_file = home / "cursor"
    driver.cursor = cursor_file.read_text() if cursor_file.exists() else None
    driver.tick()
    if driver.cursor is not None:
        cursor_file.write_text(driver.cursor)


# How many of the second run's 5 events each kill point leaves stored before the next tick.
STORED_AT_KILL = {"before-read": range(0, 1), "during-store": range(1, 5), "after-store": range(5, 6)}


@pytest.mark.parametrize("kill_at", list(STORED_AT_KILL))
def test_a_consumer_killed_inside_a_tick_loses_nothing_and_records_nothing_twice(
    tmp_path: Path, durable_broker: TansuProcess, durable_topic: str, kill_at: str
) -> None:
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    first, second = run_events("manual__1"), run_events("manual__2")
    key = message_key(INSTANCE, "etl")
    defs = etl_observation_defs(INSTANCE, durable_broker.bootstrap_servers, durable_topic)
    with DagsterInstance.from_config(str(home)) as instance:
        driver = SensorDriver(instance, defs, f"{INSTANCE}__airflow_event_sensor")
        publish(durable_broker.bootstrap_servers, durable_topic, first, raw_key=key)
        tick(instance, driver, home)  # a cursor exists before the fault
        publish(durable_broker.bootstrap_servers, durable_topic, second, raw_key=key)

        killed_tick(home, durable_broker, durable_topic, kill_at)
        at_kill = len(recorded_event_ids(instance, INSTANCE)) - len(first)
        assert at_kill in STORED_AT_KILL[kill_at], f"killed {kill_at} with {at_kill} of the tick's events stored"
        for _ in range(2):  # the daemon's next ticks
            tick(instance, driver, home)
        recorded = recorded_event_ids(instance, INSTANCE)
    figures = count_figures([event.event_id for event in first + second], recorded)
    print(f"consumer killed {kill_at}: {figures}")
    assert figures.exactly_once, f"consumer killed {kill_at}: {figures}"
