"""Migration on a real Airflow 2.11 (scheduler, webserver, SequentialExecutor), one stack for the module.

Proxied, a task runs in Dagster and its asset is materialized once, by the Dagster run; the REST
API v1 reports the proxy's marker as the task instance's operator. Rolled back with one line of
YAML, the task runs in Airflow and the sensor records its asset from Airflow's events. A DAG
proxied as a whole runs as one task whose Dagster run materializes the DAG's assets once, and
killing a proxied task (its state set to failed by hand) terminates its Dagster run.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from airstream.dagster_consumer import dag_asset_key
from airstream.schemas.proxying import DAG_PROXY_TASK_ID, PROXIED_DAG_OPERATOR, PROXIED_TASK_OPERATOR, proxy_job_name
from devstack.airflow2 import AirflowApiV1, airflow2_env, ensure_airflow2_venv, start_airflow2
from devstack.broker import Broker, create_topic
from devstack.dagster import start_dagster
from devstack.processes import free_port
from devstack.proxy_records import (
    by_proxy_run,
    dag_run_record,
    kill_proxied_task,
    materializations,
    one_more_sensor_tick,
    proxy_runs,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).parents[2]
PROXY_DAGS = ROOT / "devstack" / "proxy_dags"
DEFINITIONS = ROOT / "devstack" / "proxy_definitions.py"
INSTANCE = "migration2"
DAG_FILES = ("proxy_etl", "proxy_whole", "proxy_kill")
# Only `load` of proxy_etl is proxied: SequentialExecutor runs one task at a time, so keep the run short.
STATE = "tasks:\n  - id: extract\n    proxied: false\n  - id: load\n    proxied: {load}\n" + "".join(
    f"  - id: {task}\n    proxied: false\n" for task in ("daily_report", "flaky")
)


@dataclass
class Migration2:
    api: AirflowApiV1
    dags: Path
    dagster_home: Path
    release_file: Path

    @property
    def instance(self) -> DagsterInstance:
        return DagsterInstance.from_config(str(self.dagster_home))


@pytest.fixture(scope="module")
def migration2(tmp_path_factory: pytest.TempPathFactory, broker: Broker) -> Iterator[Migration2]:
    venv = ensure_airflow2_venv()
    work = tmp_path_factory.mktemp("migration2")
    dags = work / "dags"
    (dags / "proxied_state").mkdir(parents=True)
    for name in DAG_FILES:
        shutil.copy(PROXY_DAGS / f"{name}.py", dags)
        if name != "proxy_etl":
            shutil.copy(PROXY_DAGS / "proxied_state" / f"{name}.yaml", dags / "proxied_state")
    (dags / "proxied_state" / "proxy_etl.yaml").write_text(STATE.format(load="true"))
    topic = f"airstream-migration2-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap_servers, topic, partitions=3)
    release_file = work / "proxy_slow_release"
    dagster_port = free_port()
    logs = work / "logs"

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRSTREAM_DAGSTER_URL", f"http://127.0.0.1:{dagster_port}")  # Airflow's task processes
        airflow_environment = airflow2_env(
            venv,
            work / "airflow2",
            bootstrap_servers=broker.bootstrap_servers,
            topic=topic,
            instance_name=INSTANCE,
            dags_folder=dags,
        )
        dagster, _ = start_dagster(
            work / "dagster",
            env={
                "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                "AIRSTREAM_TOPIC": topic,
                "AIRSTREAM_INSTANCE_NAME": INSTANCE,
                "AIRSTREAM_PROXY_RELEASE_FILE": str(release_file),
            },
            log_dir=logs,
            definitions=DEFINITIONS,
            port=dagster_port,
        )
    with dagster, start_airflow2(venv, airflow_environment, log_dir=logs, expected_dags=len(DAG_FILES)) as airflow:
        try:
            yield Migration2(airflow.api(), dags, work / "dagster", release_file)
        finally:
            release_file.touch()  # a proxy_slow run still going ends now


def test_task_level_round_trip_on_airflow_2(migration2: Migration2) -> None:
    api, instance = migration2.api, migration2.instance
    job = proxy_job_name(INSTANCE, "proxy_etl", "load")

    # Proxied: Dagster runs the task's asset, once; REST v1 shows the marker as the operator.
    run_id = api.trigger("proxy_etl")
    assert api.wait_for_run("proxy_etl", run_id, timeout=300) == "success"
    (dagster_run,) = proxy_runs(instance, job)
    assert dagster_run.status == DagsterRunStatus.SUCCESS and dagster_run.tags["airstream/run_id"] == run_id
    operators = {ti["task_id"]: ti["operator"] for ti in api.task_instances("proxy_etl", run_id)}
    assert operators["load"] == PROXIED_TASK_OPERATOR and operators["extract"] != PROXIED_TASK_OPERATOR
    record = dag_run_record(instance, INSTANCE, "proxy_etl", run_id)
    assert record["airflow/proxied_to_dagster"] == "load"
    one_more_sensor_tick()
    entries = materializations(instance, "proxy_orders")
    assert len(entries) == 1 and by_proxy_run(instance, entries) == entries

    # Rolled back: Airflow runs it again and the sensor records the asset from Airflow's events.
    (migration2.dags / "proxied_state" / "proxy_etl.yaml").write_text(STATE.format(load="false"))
    deadline = time.monotonic() + 120
    while api._get("/dags/proxy_etl/tasks/load")["class_ref"]["class_name"] != "_PythonDecoratedOperator":
        assert time.monotonic() < deadline, "Airflow 2 did not parse the rolled-back DAG"
        time.sleep(2)
    run_id = api.trigger("proxy_etl")
    assert api.wait_for_run("proxy_etl", run_id, timeout=300) == "success"
    record = dag_run_record(instance, INSTANCE, "proxy_etl", run_id)
    assert "airflow/proxied_to_dagster" not in record
    one_more_sensor_tick()
    assert len(proxy_runs(instance, job)) == 1, "load ran in Airflow"
    observed = [entry for entry in materializations(instance, "proxy_orders") if not entry.run_id]
    assert len(observed) == 1
    assert observed[0].asset_materialization.metadata["airflow/run_id"].value == run_id


def test_a_dag_proxied_as_a_whole_runs_its_assets_in_dagster_once_on_airflow_2(migration2: Migration2) -> None:
    api, instance = migration2.api, migration2.instance
    assert api.task_ids("proxy_whole") == [DAG_PROXY_TASK_ID]
    run_id = api.trigger("proxy_whole")
    assert api.wait_for_run("proxy_whole", run_id, timeout=300) == "success"
    (dagster_run,) = proxy_runs(instance, proxy_job_name(INSTANCE, "proxy_whole"))
    assert dagster_run.status == DagsterRunStatus.SUCCESS and dagster_run.tags["airstream/run_id"] == run_id
    (task_instance,) = api.task_instances("proxy_whole", run_id)
    assert task_instance["operator"] == PROXIED_DAG_OPERATOR  # what REST v1 tells the REST path
    record = dag_run_record(instance, INSTANCE, "proxy_whole", run_id)
    assert record["airflow/proxied_to_dagster"] == DAG_PROXY_TASK_ID
    one_more_sensor_tick()
    entries = materializations(instance, "proxy_whole_report")
    assert len(entries) == 1 and by_proxy_run(instance, entries) == entries
    dag_records = materializations(instance, list(dag_asset_key(INSTANCE, "proxy_whole").path))
    assert len(dag_records) == 1, "the DAG asset itself still records the run"


def test_killing_a_proxied_task_terminates_its_dagster_run_on_airflow_2(migration2: Migration2) -> None:
    api, instance = migration2.api, migration2.instance
    run_id = api.trigger("proxy_kill")
    job = proxy_job_name(INSTANCE, "proxy_kill", "slow")
    status = kill_proxied_task(
        instance, api, dag_id="proxy_kill", task_id="slow", run_id=run_id, job_name=job, start_timeout=180
    )
    migration2.release_file.touch()
    assert status == DagsterRunStatus.CANCELED
    assert api.wait_for_run("proxy_kill", run_id, timeout=120) == "failed"
