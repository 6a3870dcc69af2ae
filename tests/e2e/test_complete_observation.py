"""Every terminal state Airflow's scheduler reaches shows in Dagster, from the event path alone.

Airflow 3's scheduler runs DAGs whose states are partly decided without a task process
(EmptyOperator joins, branches not taken, short-circuits, trigger rules, upstream failures,
setup/teardown, a mapped task group, an asset-triggered run, a task removed from its DAG while a
run was going). What Airflow reached is read from
its REST API; what Dagster recorded is read from the Dagster instance the daemon writes to.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from airstream.dagster_consumer import airflow_asset_key
from devstack.dagster import RecordedAssetEvent, recorded_asset_events
from devstack.facts import Fact, facts_from_api, facts_from_metadata
from devstack.stack import local_stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

INSTANCE = "complete"
OBSERVATION_DAGS = Path(__file__).parents[2] / "devstack" / "observation_dags"
DEFINITIONS = Path(__file__).parent / "observation_definitions.py"
TRIGGERED = {
    "observe_branching": "success",
    "observe_failures": "failed",
    "observe_asset_producer": "success",
    "observe_shape": "success",
}
LOGICAL_DATES = {"observe_branching": "2026-01-05T06:00:00Z"}  # lands in the daily partition 2026-01-05


# A DAG that loses its task `victim` while a run waits in `slow`: Airflow marks `victim` removed.
SHAPE_DAG = '''"""An Airflow DAG whose shape changes while it runs (written by the completeness test)."""
import time
from pathlib import Path

from _compat import DAG, START, task

RELEASE = Path(__file__).with_suffix(".release")

with DAG(dag_id="observe_shape", schedule=None, catchup=False, start_date=START):

    @task
    def slow() -> None:
        deadline = time.monotonic() + 180
        while not RELEASE.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
'''
SHAPE_DAG_FULL = (
    SHAPE_DAG
    + """
    @task
    def victim() -> None:
        pass

    slow() >> victim()
"""
)
SHAPE_DAG_SHRUNK = (
    SHAPE_DAG
    + """
    slow()
"""
)


def _change_shape_while_running(api: Any, dags: Path, run_id: str, timeout: float = 120) -> None:
    """Once `slow` runs, drop `victim` from the DAG file, wait until Airflow parsed the change,
    then let `slow` finish."""
    deadline = time.monotonic() + timeout
    while api.task_state("observe_shape", run_id, "slow") != "running":
        assert time.monotonic() < deadline, "observe_shape's slow task never started"
        time.sleep(0.5)
    (dags / "observe_shape.py").write_text(SHAPE_DAG_SHRUNK)
    while api.task_ids("observe_shape") != ["slow"]:
        assert time.monotonic() < deadline, "Airflow did not parse the changed observe_shape"
        time.sleep(1)
    (dags / "observe_shape.release").touch()


def _dag_asset_records(instance: DagsterInstance) -> list[RecordedAssetEvent]:
    return [event for event in recorded_asset_events(instance) if event.asset_key.startswith(f"{INSTANCE}/dag/")]


def _wait_for_recorded(instance: DagsterInstance, expected: Counter[Fact], timeout: float = 120) -> Counter[Fact]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        recorded = Counter(facts_from_metadata(event.metadata for event in _dag_asset_records(instance)))
        if not expected - recorded:
            break
        time.sleep(2)
    time.sleep(6)  # one more sensor tick: anything extra (a duplicate) would land now
    return Counter(facts_from_metadata(event.metadata for event in _dag_asset_records(instance)))


def _asset_triggered_run(api: Any, dag_id: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = api.dag_runs(dag_id)
        if runs:
            run_id = str(runs[0]["dag_run_id"])
            api.wait_for_run(dag_id, run_id, timeout=max(deadline - time.monotonic(), 1))
            return run_id
        time.sleep(1)
    raise AssertionError(f"the asset update did not trigger a run of {dag_id} within {timeout:.0f} s")


def test_every_terminal_state_the_scheduler_reaches_is_recorded_in_dagster_once(tmp_path: Path) -> None:
    dags = shutil.copytree(OBSERVATION_DAGS, tmp_path / "dags")
    (dags / "observe_shape.py").write_text(SHAPE_DAG_FULL)
    topic = f"airstream-complete-{uuid.uuid4().hex[:8]}"
    with local_stack(
        tmp_path, topic=topic, instance_name=INSTANCE, dags_folder=dags, expected_dags=5, definitions=DEFINITIONS
    ) as stack:
        api = stack.airflow.api()
        runs = {dag_id: api.trigger(dag_id, logical_date=LOGICAL_DATES.get(dag_id)) for dag_id in TRIGGERED}
        _change_shape_while_running(api, dags, runs["observe_shape"])
        for dag_id, run_id in runs.items():
            assert api.wait_for_run(dag_id, run_id, timeout=240) == TRIGGERED[dag_id], dag_id
        runs["observe_asset_consumer"] = _asset_triggered_run(api, "observe_asset_consumer")

        expected = Counter(fact for dag_id, run_id in runs.items() for fact in facts_from_api(api, dag_id, run_id))
        instance = DagsterInstance.from_config(str(stack.dagster_home))
        recorded = _wait_for_recorded(instance, expected)
        everything = recorded_asset_events(instance)

        # A person marks the failed run success: Airflow sets its unfinished tasks to success
        # in the api-server, where no task process runs.
        api.set_dag_run_state("observe_failures", runs["observe_failures"], "success")
        after_hand = Counter(facts_from_api(api, "observe_failures", runs["observe_failures"]))
        marked = _wait_for_recorded(instance, expected | after_hand)

    print(f"terminal states Airflow reported: {sorted(Counter(f[5] for f in expected).items())}")
    print(f"terminal states Dagster recorded: {sorted(Counter(f[5] for f in recorded.elements()).items())}")
    assert recorded == expected, f"missing: {expected - recorded}; extra: {recorded - expected}"
    states = Counter(fact[5] for fact in expected)
    for state in ("success", "failed", "skipped", "upstream_failed", "removed"):
        assert states[state], f"the DAGs must reach {state} for this test to mean something"

    # Scheduler-decided states reach the mapped assets like task-process ones.
    by_asset = Counter((event.asset_key, event.kind, event.metadata["airflow/state"]) for event in everything)
    assert by_asset[("branch_join", "materialization", "success")] == 1
    assert by_asset[("branch_not_taken", "observation", "skipped")] == 1
    assert by_asset[("branch_not_taken", "materialization", "success")] == 0
    assert by_asset[("region_rollup", "materialization", "success")] == 3
    assert by_asset[("after_failure", "observation", "upstream_failed")] == 1
    assert by_asset[("cleanup_report", "materialization", "success")] == 1

    # A daily partitioned asset gets the partition of the run's logical date.
    daily = [event for event in everything if event.asset_key == "daily_left" and event.kind == "materialization"]
    assert [event.partition for event in daily] == ["2026-01-05"]

    # The Airflow asset the producer's task updated is materialized once, naming its producer.
    orders = airflow_asset_key("s3://warehouse/orders.parquet").to_user_string()
    updates = [event for event in everything if event.asset_key == orders]
    assert [(event.kind, event.metadata["airflow/task_id"]) for event in updates] == [
        ("materialization", "write_orders")
    ]
    assert updates[0].metadata["airflow/run_id"] == runs["observe_asset_producer"]

    # What the person changed by hand arrives too, on top of what was there.
    hand_set = {fact for fact in after_hand if fact not in expected}
    assert hand_set, "marking the run success changed task states"
    assert not (hand_set - set(marked)), f"not recorded: {hand_set - set(marked)}"
    assert all(count == 1 for count in marked.values()), "nothing recorded twice"
