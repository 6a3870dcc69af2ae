"""The task-level round trip on a real Airflow 2.11 (scheduler, webserver, SequentialExecutor).

Proxied, the task runs in Dagster and its asset is materialized once, by the Dagster run; the
REST API v1 reports the proxy's marker as the task instance's operator. Rolled back with one line
of YAML, the task runs in Airflow and the sensor records its asset from Airflow's events.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from airstream.schemas.proxying import PROXIED_TASK_OPERATOR, proxy_job_name
from devstack.airflow2 import airflow2_env, ensure_airflow2_venv, start_airflow2
from devstack.broker import Broker
from devstack.dagster import start_dagster
from devstack.processes import free_port
from devstack.proxy_records import (
    by_proxy_run,
    dag_run_record,
    materializations,
    one_more_sensor_tick,
    proxy_runs,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).parents[2]
PROXY_DAGS = ROOT / "devstack" / "proxy_dags"
DEFINITIONS = ROOT / "devstack" / "proxy_definitions.py"
INSTANCE = "migration2"
# Only `load` is proxied: SequentialExecutor runs one task at a time, so keep the run short.
STATE = "tasks:\n  - id: extract\n    proxied: false\n  - id: load\n    proxied: {load}\n" + "".join(
    f"  - id: {task}\n    proxied: false\n" for task in ("daily_report", "flaky")
)


def test_task_level_round_trip_on_airflow_2(tmp_path: Path, broker: Broker, topic: str) -> None:
    venv = ensure_airflow2_venv()
    dags = tmp_path / "dags"
    (dags / "proxied_state").mkdir(parents=True)
    shutil.copy(PROXY_DAGS / "proxy_etl.py", dags)
    state_file = dags / "proxied_state" / "proxy_etl.yaml"
    state_file.write_text(STATE.format(load="true"))
    dagster_port = free_port()
    dagster_url = f"http://127.0.0.1:{dagster_port}"
    logs = tmp_path / "logs"

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRSTREAM_DAGSTER_URL", dagster_url)
        airflow_environment = airflow2_env(
            venv,
            tmp_path / "airflow2",
            bootstrap_servers=broker.bootstrap_servers,
            topic=topic,
            instance_name=INSTANCE,
            dags_folder=dags,
        )
        dagster, _ = start_dagster(
            tmp_path / "dagster",
            env={
                "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                "AIRSTREAM_TOPIC": topic,
                "AIRSTREAM_INSTANCE_NAME": INSTANCE,
            },
            log_dir=logs,
            definitions=DEFINITIONS,
            port=dagster_port,
        )
    with dagster, start_airflow2(venv, airflow_environment, log_dir=logs, expected_dags=1) as airflow:
        api = airflow.api()
        instance = DagsterInstance.from_config(str(tmp_path / "dagster"))
        job = proxy_job_name("proxy_etl", "load")

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
        state_file.write_text(STATE.format(load="false"))
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
