"""The whole pipeline: Airflow's scheduler runs DAGs, the listener publishes, Dagster's daemon
runs the sensor, and every state Airflow reached shows in Dagster exactly once.

What Airflow reached is taken from Airflow's own REST API, not from the listener.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from airstream.schemas import EventType, TaskInstanceEvent, parse_event
from devstack.broker import read_topic
from devstack.dagster import RecordedAssetEvent, recorded_asset_events
from devstack.stack import local_stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

INSTANCE = "e2e"
EXPECTED_RUN_STATES = {"example_etl": "success", "example_failing": "failed", "example_mapped": "success"}

Fact = tuple[str, str, str | None, int | None, int | None, str]  # dag, run, task, map index, try, state


def _facts_from_airflow(api: Any, dag_id: str, run_id: str) -> list[Fact]:
    """Every DAG-run and task-instance state this run went through, per Airflow's REST API."""
    facts: list[Fact] = [(dag_id, run_id, None, None, None, "running")]
    facts.append((dag_id, run_id, None, None, None, str(api.dag_run(dag_id, run_id)["state"])))
    for task_instance in api.task_instances(dag_id, run_id):
        task_id, map_index = task_instance["task_id"], task_instance["map_index"]
        tries = sorted(api.task_instance_tries(dag_id, run_id, task_id, map_index), key=lambda t: t["try_number"])
        for position, attempt in enumerate(tries):
            state = str(attempt["state"])
            if position < len(tries) - 1 and state in ("failed", "up_for_retry"):
                state = "up_for_retry"  # a try that was followed by another one was a retry
            facts.append((dag_id, run_id, task_id, map_index, attempt["try_number"], "running"))
            facts.append((dag_id, run_id, task_id, map_index, attempt["try_number"], state))
    return facts


def _fact_of(event: RecordedAssetEvent) -> Fact:
    metadata = event.metadata
    task_id = metadata.get("airflow/task_id")
    return (
        metadata["airflow/dag_id"],
        metadata["airflow/run_id"],
        task_id,
        metadata.get("airflow/map_index") if task_id else None,
        metadata.get("airflow/try_number") if task_id else None,
        metadata["airflow/state"],
    )


def _dag_asset_records(instance: DagsterInstance) -> list[RecordedAssetEvent]:
    prefix = f"{INSTANCE}/dag/"
    return [event for event in recorded_asset_events(instance) if event.asset_key.startswith(prefix)]


def test_every_state_airflow_reached_appears_in_dagster_exactly_once(tmp_path: Path) -> None:
    topic = f"airstream-e2e-{uuid.uuid4().hex[:8]}"
    # The DAG assets keep every event here, to be compared with every state Airflow reached.
    every_event = {"AIRSTREAM_DAG_ASSET_HISTORY": "all"}
    with local_stack(tmp_path, topic=topic, instance_name=INSTANCE, dagster_env=every_event) as stack:
        api = stack.airflow.api()
        runs = {dag_id: api.trigger(dag_id) for dag_id in EXPECTED_RUN_STATES}
        for dag_id, run_id in runs.items():
            assert api.wait_for_run(dag_id, run_id, timeout=240) == EXPECTED_RUN_STATES[dag_id], dag_id

        expected = Counter(fact for dag_id, run_id in runs.items() for fact in _facts_from_airflow(api, dag_id, run_id))
        instance = DagsterInstance.from_config(str(stack.dagster_home))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            records = _dag_asset_records(instance)
            if len(records) >= sum(expected.values()):
                break
            time.sleep(2)
        time.sleep(6)  # one more sensor tick: anything extra (a duplicate) would land now
        records = _dag_asset_records(instance)
        everything = recorded_asset_events(instance)

        # A user marks the failed task as success by hand: the api-server's hook reports it.
        api.set_task_state("example_failing", runs["example_failing"], "flaky_call", "success")
        marked = _wait_for(
            lambda: [
                event
                for event in recorded_asset_events(instance)
                if event.asset_key == "partner_feed" and event.kind == "materialization"
            ]
        )
        on_topic = [
            parse_event(record.value) for record in read_topic(stack.broker.bootstrap_servers, topic, expected=1)
        ]

    recorded = Counter(_fact_of(event) for event in records)
    assert recorded == expected, f"missing: {expected - recorded}; extra: {recorded - expected}"

    # Each event is recorded once on its DAG asset; mapped assets follow their tasks and DAGs.
    event_ids = [event.metadata["airstream/event_id"] for event in records]
    assert len(event_ids) == len(set(event_ids))
    by_asset = Counter((event.asset_key, event.kind, event.metadata["airflow/state"]) for event in everything)
    assert by_asset[("warehouse_orders", "materialization", "success")] == 1
    assert by_asset[("monthly_partitions", "materialization", "success")] == 3
    assert by_asset[("monthly_report", "materialization", "success")] == 1
    assert by_asset[("partner_feed", "observation", "up_for_retry")] == 1
    assert by_asset[("partner_feed", "observation", "failed")] == 1
    assert by_asset[(f"{INSTANCE}/dag/example_failing", "materialization", "success")] == 0
    assert by_asset[(f"{INSTANCE}/dag/example_etl", "materialization", "success")] == 1

    assert len(marked) == 1, "the hand-set success materializes the task's asset once"
    by_hand = [
        event
        for event in on_topic
        if isinstance(event, TaskInstanceEvent)
        and event.task_id == "flaky_call"
        and event.event_type == EventType.TASK_INSTANCE_SUCCESS
    ]
    assert [event.reported_by for event in by_hand] == ["api-server"]


def _wait_for(found: Callable[[], list[Any]], timeout: float = 60) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := found():
            return result
        time.sleep(1)
    return []
