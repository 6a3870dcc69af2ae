"""Faults under Airflow 3.3's scheduler (api-server, scheduler, dag-processor; LocalExecutor): the
broker down while DAGs run, and a task process killed with SIGKILL. One Airflow for both tests,
publishing to the session's durable broker; a real Dagster instance per test."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance

from airstream.airflow_listener.spool import Spool
from airstream.schemas import parse_event
from devstack.airflow import LocalAirflow, airflow_env, start_airflow
from devstack.broker import TansuProcess, create_topic, read_all
from devstack.dagster import recorded_asset_events
from devstack.facts import facts_from_api, facts_from_metadata
from devstack.figures import SensorDriver, count_figures, etl_observation_defs

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

INSTANCE = "faults"
SENSOR = f"{INSTANCE}__airflow_event_sensor"

DAGS = {
    "etl.py": """
from airflow.sdk import DAG, task
from datetime import datetime, timezone

with DAG(dag_id="etl", schedule=None, catchup=False, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)):

    @task
    def extract() -> int:
        return 1

    @task
    def load(value: int) -> None:
        pass

    load(extract())
""",
    "killed.py": """
import os
import time
from pathlib import Path

from airflow.sdk import DAG, task
from datetime import datetime, timezone

PID_FILE = Path(__file__).with_suffix(".pid")

with DAG(dag_id="killed", schedule=None, catchup=False, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)):

    @task(retries=0)
    def victim() -> None:
        PID_FILE.write_text(str(os.getpid()))
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            time.sleep(0.5)

    victim()
""",
}


@pytest.fixture(scope="module")
def airflow_topic(durable_broker: TansuProcess) -> str:
    name = f"faults-airflow-{uuid.uuid4().hex[:8]}"
    create_topic(durable_broker.bootstrap_servers, name, partitions=3)
    return name


@pytest.fixture(scope="module")
def faults_airflow(
    tmp_path_factory: pytest.TempPathFactory, durable_broker: TansuProcess, airflow_topic: str
) -> Iterator[LocalAirflow]:
    root = tmp_path_factory.mktemp("faults-airflow")
    dags = root / "dags"
    dags.mkdir()
    for name, source in DAGS.items():
        (dags / name).write_text(source)
    env = airflow_env(
        root / "airflow",
        bootstrap_servers=durable_broker.bootstrap_servers,
        topic=airflow_topic,
        instance_name=INSTANCE,
        dags_folder=dags,
    )
    env["AIRFLOW__AIRSTREAM__RETRY_BACKOFF"] = "3"  # the scheduler's thread retries the spool this often
    env["AIRFLOW__AIRSTREAM__DELIVERY_TIMEOUT"] = "2"
    with start_airflow(env, log_dir=root / "logs", expected_dags=len(DAGS)) as airflow:
        yield airflow


def spool_of(airflow: LocalAirflow) -> Spool:
    return Spool(Path(airflow.env["AIRFLOW__AIRSTREAM__SPOOL_DIR"]))


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.5)


def test_broker_down_while_the_scheduler_runs_dags_then_dagster_holds_every_event_once(
    faults_airflow: LocalAirflow, durable_broker: TansuProcess, airflow_topic: str, dagster_instance: DagsterInstance
) -> None:
    api = faults_airflow.api()
    spool = spool_of(faults_airflow)
    durable_broker.kill()
    try:
        runs = [api.trigger("etl") for _ in range(3)]
        states = {run: api.wait_for_run("etl", run, timeout=180) for run in runs}
        task_states = Counter(ti["state"] for run in runs for ti in api.task_instances("etl", run))
        spooled_during_outage = spool.count()
    finally:
        durable_broker.start()
    assert set(states.values()) == {"success"}, f"DAG runs with the broker down: {states}"
    assert task_states == Counter({"success": 6}), f"tasks with the broker down: {task_states}"
    assert spooled_during_outage > 0, "nothing was spooled while the broker was down"

    wait_for(lambda: spool.count() == 0, "the spool to drain once the broker is back")
    on_topic = [parse_event(record.value) for record in read_all(durable_broker.bootstrap_servers, airflow_topic)]
    sent = {event.event_id for event in on_topic if event.dag_id == "etl" and event.run_id in runs}

    driver = SensorDriver(
        dagster_instance, etl_observation_defs(INSTANCE, durable_broker.bootstrap_servers, airflow_topic), SENSOR
    )
    driver.tick_until_quiet()
    etl_records = [e.metadata for e in recorded_asset_events(dagster_instance) if e.asset_key == f"{INSTANCE}/dag/etl"]
    figures = count_figures(sent, [str(metadata["airstream/event_id"]) for metadata in etl_records])
    expected = Counter(fact for run in runs for fact in facts_from_api(api, "etl", run))
    facts = Counter(facts_from_metadata(etl_records))
    summary = f"broker down under the scheduler: {spooled_during_outage} events spooled during the outage; {figures}"
    print(summary)
    assert figures.exactly_once, summary
    assert facts == expected, (
        f"terminal states Airflow reports vs Dagster: missing {expected - facts}, extra {facts - expected}; {summary}"
    )


def test_a_task_process_killed_with_sigkill_still_reaches_dagster_as_failed(
    faults_airflow: LocalAirflow, durable_broker: TansuProcess, airflow_topic: str, dagster_instance: DagsterInstance
) -> None:
    api = faults_airflow.api()
    pid_file = Path(faults_airflow.env["AIRFLOW__CORE__DAGS_FOLDER"]) / "killed.pid"
    run = api.trigger("killed")
    wait_for(pid_file.exists, "the task to start and write its pid")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert api.wait_for_run("killed", run, timeout=180) == "failed"
    assert api.task_state("killed", run, "victim") == "failed"

    wait_for(lambda: spool_of(faults_airflow).count() == 0, "the listener to deliver")
    driver = SensorDriver(
        dagster_instance, etl_observation_defs(INSTANCE, durable_broker.bootstrap_servers, airflow_topic), SENSOR
    )
    driver.tick_until_quiet()
    recorded = [e.metadata for e in recorded_asset_events(dagster_instance) if e.asset_key == f"{INSTANCE}/dag/killed"]
    facts = Counter(facts_from_metadata(recorded))
    expected = Counter(facts_from_api(api, "killed", run))
    on_topic = [parse_event(r.value) for r in read_all(durable_broker.bootstrap_servers, airflow_topic)]
    sent = {event.event_id for event in on_topic if event.dag_id == "killed" and event.run_id == run}
    figures = count_figures(sent, [str(metadata["airstream/event_id"]) for metadata in recorded])
    summary = f"task killed with SIGKILL: Airflow reached {sorted(f[5] for f in expected)}; {figures}"
    print(summary)
    assert ("killed", run, "victim", -1, 1, "failed") in expected, summary
    assert facts == expected, f"missing {expected - facts}, extra {facts - expected}; {summary}"
    assert figures.exactly_once, summary
