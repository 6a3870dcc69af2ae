"""The listener inside a real Airflow 3 (``airflow dags test``), publishing to a real broker."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from airstream.schemas import Event, EventType, TaskInstanceEvent, message_key, parse_event
from airstream.schemas.json_schema import JSON_SCHEMA_DIR
from devstack.airflow import airflow_env, migrate_db, run_airflow
from devstack.broker import Broker, create_topic
from devstack.facts import facts_from_events
from devstack.processes import free_port

pytestmark = pytest.mark.integration

INSTANCE = "itest"


@pytest.fixture(scope="module")
def airflow_home(work_dir: Path, broker: Broker) -> dict[str, str]:
    """A migrated Airflow home whose listener publishes to a topic of its own."""
    topic = f"airstream-airflow-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap_servers, topic, partitions=3)
    env = airflow_env(
        work_dir / f"airflow-{uuid.uuid4().hex[:6]}",
        bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        instance_name=INSTANCE,
    )
    migrate_db(env)
    return env


def _dags_test(env: dict[str, str], dag_id: str) -> int:
    result = run_airflow(env, "dags", "test", dag_id)
    output = result.stdout + result.stderr
    assert "airstream: " not in output or "failed;" not in output, output[-3000:]  # no listener errors
    return result.returncode


def _events_of(records: list[Any], dag_id: str) -> list[Any]:
    return [record for record in records if json.loads(record.value)["dag_id"] == dag_id]


def _distinct(events: list[Event]) -> list[Event]:
    """One event per id, as the consumer sees them: a finished run republishes what task
    processes already reported, with the same ids."""
    first: dict[str, Event] = {}
    for event in events:
        first.setdefault(event.event_id, event)
    return list(first.values())


def _validate_against_committed_schema(record: Any) -> None:
    document = json.loads(record.value)
    name = "dag_run_event" if document["event_type"].startswith("dag_run.") else "task_instance_event"
    schema = json.loads((JSON_SCHEMA_DIR / f"{name}.v1.json").read_text())
    jsonschema.validate(document, schema)


def test_the_plugin_is_registered_once_through_its_entry_point(airflow_home: dict[str, str]) -> None:
    result = run_airflow(airflow_home, "plugins", "--output", "json")
    assert result.returncode == 0, result.stderr[-2000:]
    plugins = json.loads(result.stdout)
    names = [plugin["name"] for plugin in plugins]
    assert names.count("airstream") == 1, names
    (airstream,) = [plugin for plugin in plugins if plugin["name"] == "airstream"]
    assert "airstream.airflow_listener.hooks" in str(airstream["listeners"])


def test_a_successful_dag_publishes_every_task_and_dag_run_event(
    airflow_home: dict[str, str], topic_reader: Callable[..., list[Any]]
) -> None:
    assert _dags_test(airflow_home, "example_etl") == 0

    records = _events_of(topic_reader(airflow_home["AIRFLOW__AIRSTREAM__TOPIC"], expected=10), "example_etl")
    events = _distinct([parse_event(record.value) for record in records])
    for record in records:
        _validate_against_committed_schema(record)
        assert record.key == message_key(INSTANCE, "example_etl")
    assert len({record.partition for record in records}) == 1, "one DAG's events must share a partition"

    seen = Counter((e.event_type, getattr(e, "task_id", None), getattr(e, "try_number", None)) for e in events)
    expected = Counter(
        [(EventType.TASK_INSTANCE_RUNNING, task, 1) for task in ("extract", "transform", "load")]
        + [(EventType.TASK_INSTANCE_SUCCESS, task, 1) for task in ("extract", "transform", "load")]
        + [(EventType.DAG_RUN_SUCCESS, None, None)]
    )
    assert seen == expected
    run_ids = {event.run_id for event in events}
    assert len(run_ids) == 1
    load_success = next(e for e in events if e.event_type == EventType.TASK_INSTANCE_SUCCESS and e.task_id == "load")
    assert isinstance(load_success, TaskInstanceEvent)
    assert load_success.instance == INSTANCE
    assert load_success.logical_date is not None
    assert load_success.start_date is not None and load_success.hostname
    assert load_success.operator and load_success.reported_by == "task"
    assert not list(Path(airflow_home["AIRFLOW__AIRSTREAM__SPOOL_DIR"]).glob("*.json")), "spool must be empty"


def test_a_failing_task_publishes_its_retry_and_its_failure(
    airflow_home: dict[str, str], topic_reader: Callable[..., list[Any]]
) -> None:
    assert _dags_test(airflow_home, "example_failing") == 1  # the DAG run fails, as designed

    records = _events_of(topic_reader(airflow_home["AIRFLOW__AIRSTREAM__TOPIC"], expected=17), "example_failing")
    events = _distinct([parse_event(record.value) for record in records])
    flaky = [(e.event_type, e.try_number) for e in events if getattr(e, "task_id", None) == "flaky_call"]
    assert flaky == [
        (EventType.TASK_INSTANCE_RUNNING, 1),
        (EventType.TASK_INSTANCE_UP_FOR_RETRY, 1),
        (EventType.TASK_INSTANCE_RUNNING, 2),
        (EventType.TASK_INSTANCE_FAILED, 2),
    ]
    assert [e.event_type for e in events if e.event_type.value.startswith("dag_run.")] == [EventType.DAG_RUN_FAILED]
    flaky_ids = [e.event_id for e in events if getattr(e, "task_id", None) == "flaky_call"]
    assert len(set(flaky_ids)) == 4, "every fact has its own id"


def test_mapped_task_instances_each_publish_their_own_events(
    airflow_home: dict[str, str], topic_reader: Callable[..., list[Any]]
) -> None:
    assert _dags_test(airflow_home, "example_mapped") == 0

    records = _events_of(topic_reader(airflow_home["AIRFLOW__AIRSTREAM__TOPIC"], expected=25), "example_mapped")
    events = _distinct([parse_event(record.value) for record in records])
    mapped_successes = sorted(
        e.map_index
        for e in events
        if isinstance(e, TaskInstanceEvent)
        and e.task_id == "process_partition"
        and e.event_type == EventType.TASK_INSTANCE_SUCCESS
    )
    assert mapped_successes == [0, 1, 2]


def test_with_the_broker_down_tasks_succeed_and_events_wait_in_the_spool_until_flushed(
    airflow_home: dict[str, str], broker: Broker, topic_reader: Callable[..., list[Any]], tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    topic = f"airstream-outage-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap_servers, topic, partitions=3)
    down = {
        **airflow_home,
        "AIRFLOW__AIRSTREAM__BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "AIRFLOW__AIRSTREAM__TOPIC": topic,
        "AIRFLOW__AIRSTREAM__SPOOL_DIR": str(spool_dir),
        "AIRFLOW__AIRSTREAM__DELIVERY_TIMEOUT": "2",
    }
    assert _dags_test(down, "example_etl") == 0, "an unreachable broker must not fail a task"
    spooled = sorted(spool_dir.glob("*.json"))
    assert len(spooled) == 10, [path.name for path in spooled]  # 7 facts, 3 successes twice
    spooled_ids = {parse_event(path.read_bytes()).event_id for path in spooled}

    up = {**down, "AIRFLOW__AIRSTREAM__BOOTSTRAP_SERVERS": broker.bootstrap_servers}
    flushed = subprocess.run(
        [sys.executable, "-m", "airstream.airflow_listener.spool_cli", "flush"], env=up, capture_output=True, text=True
    )
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert "delivered 10 event(s)" in flushed.stdout
    assert not list(spool_dir.glob("*.json")), "a flush empties the spool"
    delivered = {parse_event(record.value).event_id for record in topic_reader(topic, expected=10)}
    assert delivered == spooled_ids
    assert len(delivered) == 7


OBSERVATION_DAGS = Path(__file__).parents[2] / "devstack" / "observation_dags"


@pytest.mark.parametrize("dag_id,exit_code", [("observe_branching", 0), ("observe_failures", 1)])
def test_every_terminal_state_in_airflows_database_reaches_the_topic(
    airflow_home: dict[str, str], topic_reader: Callable[..., list[Any]], dag_id: str, exit_code: int
) -> None:
    env = {**airflow_home, "AIRFLOW__CORE__DAGS_FOLDER": str(OBSERVATION_DAGS)}
    assert _dags_test(env, dag_id) == exit_code

    records = _events_of(topic_reader(env["AIRFLOW__AIRSTREAM__TOPIC"], expected=1, timeout=5), dag_id)
    events = _distinct([parse_event(record.value) for record in records])
    (run_id,) = {event.run_id for event in events}
    states = run_airflow(env, "tasks", "states-for-dag-run", dag_id, run_id, "--output", "json")
    assert states.returncode == 0, states.stderr[-2000:]
    rows = json.loads(states.stdout.splitlines()[-1])
    in_database = Counter((row["task_id"], _map_index(row.get("map_index")), row["state"]) for row in rows)
    on_topic = Counter((fact[2], fact[3], fact[5]) for fact in facts_from_events(events) if fact[2] is not None)
    assert on_topic == in_database
    scheduler_decided = {e.state for e in events if isinstance(e, TaskInstanceEvent) and e.reported_by == "cli"}
    assert scheduler_decided & {"skipped", "upstream_failed"}, "states no task process reports are there"


def _map_index(value: str | None) -> int:
    # The CLI leaves the column out, or empty, for tasks that are not mapped.
    return -1 if value in (None, "") else int(value)
