"""Airflow 2.11.2's scheduler runs the observation DAGs: every terminal state its REST API v1 reports
is on the topic and is recorded once by a real Dagster instance running the consumer's sensor."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance, Definitions, build_sensor_context, instance_for_test

from airstream.dagster_consumer import (
    AirflowInstance,
    KafkaEventSource,
    airflow_asset_key,
    build_defs_from_airflow_instance,
)
from airstream.dagster_consumer.sources.kafka import partition_offsets
from airstream.schemas import Event, parse_event
from devstack.airflow2 import Airflow2Venv, AirflowApiV1, LocalAirflow2, airflow2_env, start_airflow2
from devstack.broker import Broker, create_topic
from devstack.dagster import recorded_asset_events
from devstack.facts import Fact, facts_from_api, facts_from_events, facts_from_metadata

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

INSTANCE = "airflow2"
SENSOR = f"{INSTANCE}__airflow_event_sensor"
TRIGGERED = {"observe_branching": "success", "observe_failures": "failed", "observe_asset_producer": "success"}
CONSUMER = "observe_asset_consumer"  # scheduled by the dataset the producer updates
EXPECTED_STATES = {**TRIGGERED, CONSUMER: "success"}


@pytest.fixture(scope="module")
def airflow2(airflow2_venv: Airflow2Venv, broker: Broker, work_dir: Path) -> Iterator[LocalAirflow2]:
    """One Airflow 2.11.2 (scheduler and webserver) for this module, publishing to a topic of its own."""
    topic = f"airstream-af2-scheduler-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap_servers, topic)
    home = work_dir / f"airflow2-scheduler-{uuid.uuid4().hex[:6]}"
    env = airflow2_env(
        airflow2_venv, home, bootstrap_servers=broker.bootstrap_servers, topic=topic, instance_name=INSTANCE
    )
    started = time.monotonic()
    with start_airflow2(airflow2_venv, env, log_dir=home / "logs", expected_dags=len(EXPECTED_STATES)) as airflow:
        print(f"\nAirflow 2.11.2 scheduler and webserver ready in {time.monotonic() - started:.1f} s at {airflow.url}")
        yield airflow


def _run_everything(api: AirflowApiV1) -> dict[str, str]:
    """Trigger the DAGs, find the dataset-triggered run, wait for all; returns each DAG's run id."""
    runs = {dag_id: api.trigger(dag_id) for dag_id in TRIGGERED}
    for dag_id, run_id in runs.items():
        assert api.wait_for_run(dag_id, run_id, timeout=300) == TRIGGERED[dag_id], dag_id
    deadline = time.monotonic() + 120
    while not (consumer_runs := api.dag_runs(CONSUMER)) and time.monotonic() < deadline:
        time.sleep(1)
    assert len(consumer_runs) == 1, f"the dataset update must trigger exactly one {CONSUMER} run: {consumer_runs}"
    runs[CONSUMER] = str(consumer_runs[0]["dag_run_id"])
    assert api.wait_for_run(CONSUMER, runs[CONSUMER], timeout=180) == EXPECTED_STATES[CONSUMER]
    return runs


def _unique(events: list[Event]) -> list[Event]:
    """One event per id: the topic may carry the same fact twice (task and scheduler), with the same id."""
    by_id: dict[str, Event] = {}
    for event in events:
        by_id.setdefault(event.event_id, event)
    return list(by_id.values())


def _topic_facts(
    drain_topic: Callable[..., list[Any]], topic: str, expected: Counter[Fact], timeout: float = 60
) -> tuple[list[Event], Counter[Fact]]:
    """The topic's events and their facts, once they cover ``expected`` (or ``timeout`` passed).

    The scheduler publishes from a background thread, so its last events may trail the run's end.
    """
    deadline = time.monotonic() + timeout
    while True:
        events = [parse_event(record.value) for record in drain_topic(topic)]
        facts = Counter(facts_from_events(_unique(events)))
        if not expected - facts or time.monotonic() > deadline:
            return events, facts
        time.sleep(2)


def _record_in_dagster(instance: DagsterInstance, bootstrap_servers: str, topic: str, on_topic: int) -> int:
    """Evaluate the consumer's sensor tick after tick, storing its asset events as Dagster's daemon
    does, until its cursor has passed every record on the topic and a tick finds nothing new.
    Returns the number of ticks."""
    defs = build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(
            name=INSTANCE, event_source=KafkaEventSource(bootstrap_servers=bootstrap_servers, topic=topic)
        ),
        defs=Definitions(),
        dag_asset_history="all",  # every task outcome on the DAG asset, to compare with REST's
    )
    sensor = defs.resolve_sensor_def(SENSOR)
    cursor: str | None = None
    for tick in range(1, 21):
        result = sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor, definitions=defs))
        for asset_event in result.asset_events:
            instance.report_runless_asset_event(asset_event)
        cursor = result.cursor
        consumed = sum(partition_offsets(json.loads(cursor or "{}").get("position")).values())
        if consumed >= on_topic and not result.asset_events:
            return tick
    raise AssertionError(f"the sensor did not catch up with the {on_topic} records on the topic in 20 ticks")


@pytest.mark.timeout(900)
def test_every_terminal_state_the_rest_api_reports_is_on_the_topic_and_in_dagster_once(
    airflow2: LocalAirflow2, broker: Broker, drain_topic: Callable[..., list[Any]]
) -> None:
    api = airflow2.api()
    started = time.monotonic()
    runs = _run_everything(api)
    print(f"\nfour DAG runs finished in {time.monotonic() - started:.1f} s")

    from_rest = Counter(fact for dag_id, run_id in runs.items() for fact in facts_from_api(api, dag_id, run_id))
    assert from_rest, "Airflow's REST API reports no terminal state"

    topic = airflow2.env["AIRFLOW__AIRSTREAM__TOPIC"]
    events, from_topic = _topic_facts(drain_topic, topic, from_rest)
    assert {(event.dag_id, event.run_id) for event in events} == set(runs.items()), "events of other runs"
    assert all(event.airflow_version == "2.11.2" for event in events)

    with instance_for_test() as instance:
        ticks = _record_in_dagster(instance, broker.bootstrap_servers, topic, on_topic=len(events))
        dag_assets = {AssetKey([INSTANCE, "dag", dag_id]).to_user_string() for dag_id in runs}
        everything = recorded_asset_events(instance)
        records = [event for event in everything if event.asset_key in dag_assets]
        orders = airflow_asset_key("s3://warehouse/orders.parquet").to_user_string()
        dataset_updates = [
            (event.kind, event.metadata["airflow/task_id"]) for event in everything if event.asset_key == orders
        ]
    print(f"Dagster caught up with {len(events)} records in {ticks} tick(s)")
    in_dagster = Counter(facts_from_metadata(record.metadata for record in records))
    event_ids = [record.metadata["airstream/event_id"] for record in records]

    assert from_topic == from_rest, (
        f"missing on the topic: {sorted((from_rest - from_topic).elements(), key=str)}; "
        f"extra on the topic: {sorted((from_topic - from_rest).elements(), key=str)}"
    )
    assert in_dagster == from_rest, (
        f"missing in Dagster: {sorted((from_rest - in_dagster).elements(), key=str)}; "
        f"extra in Dagster: {sorted((in_dagster - from_rest).elements(), key=str)}"
    )
    assert len(event_ids) == len(set(event_ids)), "an event was recorded twice on its DAG asset"
    assert dataset_updates == [("materialization", "write_orders")], "the dataset update is recorded once"
    print(f"terminal states Airflow 2.11.2 reported: {sorted(Counter(f[5] for f in from_rest.elements()).items())}")
    print(f"terminal states Dagster recorded: {sorted(Counter(f[5] for f in in_dagster.elements()).items())}")
