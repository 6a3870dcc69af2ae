"""Migration end to end on a real Airflow 3.3, a real Dagster webserver and daemon, and a real broker.

One stack for the module: Airflow parses ``devstack/proxy_dags`` (copied, so tests can change the
proxied state), Dagster loads ``devstack/proxy_definitions.py`` (executable assets mapped to the
DAGs' tasks, the airstream sensor reading the topic the listener writes to, the proxy jobs
``build_defs_from_airflow_instance`` adds, and a second view of the same Airflow over REST only,
as ``migration_rest``). The Dagster instance has run retries enabled for runs tagged
``dagster/max_retries`` only. What Dagster recorded is read from its instance: materializations by
asset, with the run that stored them (a Dagster run launched by a proxy) or none (a runless record
from a sensor).
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from dagster import DagsterInstance, DagsterRunStatus

from airstream.dagster_consumer import dag_asset_key
from airstream.schemas.proxying import DAG_PROXY_TASK_ID, PROXIED_TASK_OPERATOR, proxy_job_name
from devstack.airflow import AirflowApi
from devstack.processes import free_port
from devstack.proxy_gateway import ApiKeyGateway
from devstack.proxy_records import (
    by_proxy_run,
    dag_run_record,
    kill_proxied_task,
    materializations,
    one_more_sensor_tick,
    proxy_runs,
)
from devstack.stack import LocalStack, local_stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).parents[2]
PROXY_DAGS = ROOT / "devstack" / "proxy_dags"
DEFINITIONS = ROOT / "devstack" / "proxy_definitions.py"
INSTANCE = "migration"
REST_INSTANCE = "migration_rest"  # the REST-only view of the same Airflow (devstack/proxy_dags/proxy_rest.py)
API_KEY = "migration-test-key"
# Dagster's run retries, for runs tagged dagster/max_retries only (the default is no retry), so
# proxy_flaky's failed run is left to Airflow's retries while proxy_retry's is retried by Dagster.
RUN_RETRIES = "run_retries:\n  enabled: true\n  max_retries: 0\n"


@dataclass
class Migration:
    stack: LocalStack
    api: AirflowApi
    dags: Path
    dagster_url: str
    gateway: ApiKeyGateway
    failures_file: Path
    release_file: Path

    @property
    def instance(self) -> DagsterInstance:
        return DagsterInstance.from_config(str(self.stack.dagster_home))

    def run_dag(self, dag_id: str, logical_date: str | None = None, timeout: float = 240) -> tuple[str, str]:
        run_id = self.api.trigger(dag_id, logical_date=logical_date)
        return run_id, self.api.wait_for_run(dag_id, run_id, timeout=timeout)


@pytest.fixture(scope="module")
def migration(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migration]:
    work = tmp_path_factory.mktemp("migration")
    dags = Path(shutil.copytree(PROXY_DAGS, work / "dags"))
    failures_file, release_file = work / "proxy_flaky_failures", work / "proxy_slow_release"
    failures_file.write_text("0")
    dagster_port = free_port()
    dagster_url = f"http://127.0.0.1:{dagster_port}"
    gateway = ApiKeyGateway(dagster_url, api_key=API_KEY)
    with gateway, pytest.MonkeyPatch.context() as env:
        # Both Airflow's task processes and Dagster's runs inherit these.
        env.setenv("AIRSTREAM_DAGSTER_URL", dagster_url)
        env.setenv("AIRFLOW_VAR_DAGSTER_GATEWAY_URL", gateway.url)
        env.setenv("AIRFLOW_VAR_DAGSTER_API_KEY", API_KEY)
        env.setenv("AIRSTREAM_PROXY_FAILURES_FILE", str(failures_file))
        env.setenv("AIRSTREAM_PROXY_RELEASE_FILE", str(release_file))
        with local_stack(
            work,
            topic=f"airstream-migration-{uuid.uuid4().hex[:8]}",
            instance_name=INSTANCE,
            dags_folder=dags,
            expected_dags=6,
            definitions=DEFINITIONS,
            dagster_port=dagster_port,
            dagster_env={"AIRSTREAM_REST_INSTANCE_NAME": REST_INSTANCE},
            dagster_instance_config=RUN_RETRIES,
        ) as stack:
            print(f"\nmigration stack up in {stack.started_in_seconds:.1f} s")
            yield Migration(stack, stack.airflow.api(), dags, dagster_url, gateway, failures_file, release_file)


def test_proxied_tasks_run_in_dagster_and_their_assets_are_materialized_once(migration: Migration) -> None:
    migration.failures_file.write_text("1")  # the first Dagster run of proxy_flaky fails
    run_id, state = migration.run_dag("proxy_etl", logical_date="2026-01-05T00:00:00Z")
    assert state == "success"
    instance = migration.instance

    # Each proxied task launched its job; the partitioned asset got the run's logical date.
    (load_run,) = proxy_runs(instance, proxy_job_name(INSTANCE, "proxy_etl", "load"))
    assert load_run.status == DagsterRunStatus.SUCCESS
    assert load_run.tags["airstream/run_id"] == run_id and load_run.tags["airstream/task_id"] == "load"
    (daily_run,) = proxy_runs(instance, proxy_job_name(INSTANCE, "proxy_etl", "daily_report"))
    assert daily_run.tags["dagster/partition"] == "2026-01-05"
    assert not proxy_runs(instance, proxy_job_name(INSTANCE, "proxy_etl", "extract")), "extract is not proxied"
    operators = {ti["task_id"]: ti["operator_name"] for ti in migration.api.task_instances("proxy_etl", run_id)}
    assert operators["load"] == PROXIED_TASK_OPERATOR != operators["extract"]  # what REST v2 tells the REST path

    # A failing Dagster run failed the Airflow task; Airflow's retry launched a new Dagster run.
    flaky_runs = proxy_runs(instance, proxy_job_name(INSTANCE, "proxy_etl", "flaky"))
    assert [run.status for run in flaky_runs] == [DagsterRunStatus.FAILURE, DagsterRunStatus.SUCCESS]
    assert [run.tags["airstream/try_number"] for run in flaky_runs] == ["1", "2"]
    tries = migration.api.task_instance_tries("proxy_etl", run_id, "flaky", -1)
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]

    # The sensor saw the run (its record names the proxied tasks) and materialized nothing again.
    record = dag_run_record(instance, INSTANCE, "proxy_etl", run_id)
    assert record["airflow/proxied_to_dagster"] == "daily_report, flaky, load"
    one_more_sensor_tick()
    for asset in ("proxy_orders", "proxy_daily_orders", "proxy_flaky"):
        entries = materializations(instance, asset)
        assert len(entries) == 1, f"{asset} materialized {len(entries)} times"
        assert by_proxy_run(instance, entries) == entries, f"{asset} was materialized by the sensor"
    (daily,) = materializations(instance, "proxy_daily_orders")
    assert daily.asset_materialization.partition == "2026-01-05"

    # The task log links to the Dagster run.
    logs = migration.stack.airflow.env["AIRFLOW_HOME"]
    log_text = "".join(path.read_text() for path in Path(logs, "logs").rglob("*.log") if "task_id=load" in str(path))
    assert f"{migration.dagster_url}/runs/{load_run.run_id}" in log_text


def test_a_proxied_task_follows_dagsters_own_run_retry(migration: Migration) -> None:
    """The first Dagster run fails, Dagster's daemon retries it, and the Airflow task waits for the retry."""
    run_id, state = migration.run_dag("proxy_retry")
    assert state == "success"
    tries = migration.api.task_instance_tries("proxy_retry", run_id, "retried", -1)
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "success")], "one Airflow try"

    instance = migration.instance
    first, retry = proxy_runs(instance, proxy_job_name(INSTANCE, "proxy_retry", "retried"))
    assert (first.status, retry.status) == (DagsterRunStatus.FAILURE, DagsterRunStatus.SUCCESS)
    assert first.tags["dagster/will_retry"] == "true" and first.tags["dagster/max_retries"] == "1"
    assert retry.tags["dagster/parent_run_id"] == retry.tags["dagster/root_run_id"] == first.run_id
    assert retry.tags["airstream/run_id"] == run_id  # launched by Dagster's daemon with the parent's tags

    one_more_sensor_tick()
    entries = materializations(instance, "proxy_retried")
    assert [entry.run_id for entry in entries] == [retry.run_id], "materialized once, by the retry"
    logs = migration.stack.airflow.env["AIRFLOW_HOME"]
    log_text = "".join(
        path.read_text() for path in Path(logs, "logs").rglob("*.log") if "dag_id=proxy_retry" in str(path)
    )
    assert f"following its retry {retry.run_id}" in log_text


def test_a_dag_proxied_as_a_whole_runs_its_assets_in_dagster_once(migration: Migration) -> None:
    assert migration.api.task_ids("proxy_whole") == [DAG_PROXY_TASK_ID]
    run_id, state = migration.run_dag("proxy_whole")
    assert state == "success"
    instance = migration.instance
    (dagster_run,) = proxy_runs(instance, proxy_job_name(INSTANCE, "proxy_whole"))
    assert dagster_run.status == DagsterRunStatus.SUCCESS
    record = dag_run_record(instance, INSTANCE, "proxy_whole", run_id)
    assert record["airflow/proxied_to_dagster"] == DAG_PROXY_TASK_ID
    one_more_sensor_tick()
    entries = materializations(instance, "proxy_whole_report")
    assert len(entries) == 1 and by_proxy_run(instance, entries) == entries
    dag_records = materializations(instance, list(dag_asset_key(INSTANCE, "proxy_whole").path))
    assert len(dag_records) == 1, "the DAG asset itself still records the run"


def test_a_custom_operators_session_header_reaches_dagster(migration: Migration) -> None:
    refused = requests.post(f"{migration.gateway.url}/graphql", json={"query": "{ version }"}, timeout=10)
    assert refused.status_code == 401  # the gateway really checks
    refused_before, accepted_before = migration.gateway.refused, migration.gateway.accepted
    run_id, state = migration.run_dag("proxy_custom")
    assert state == "success"
    assert migration.gateway.refused == refused_before, "every request of the custom proxy carried the key"
    assert migration.gateway.accepted - accepted_before >= 3  # find the job, its assets, launch, poll…
    (dagster_run,) = proxy_runs(migration.instance, proxy_job_name(INSTANCE, "proxy_custom", "secured"))
    assert dagster_run.tags["airstream/run_id"] == run_id


def test_killing_a_proxied_task_terminates_its_dagster_run(migration: Migration) -> None:
    run_id = migration.api.trigger("proxy_kill")
    job = proxy_job_name(INSTANCE, "proxy_kill", "slow")
    status = kill_proxied_task(
        migration.instance, migration.api, dag_id="proxy_kill", task_id="slow", run_id=run_id, job_name=job
    )
    migration.release_file.touch()
    assert status == DagsterRunStatus.CANCELED


def test_rolling_back_one_line_runs_the_task_in_airflow_and_observes_its_assets(migration: Migration) -> None:
    state_file = migration.dags / "proxied_state" / "proxy_etl.yaml"
    rolled_back = state_file.read_text().replace("- id: load\n    proxied: true", "- id: load\n    proxied: false")
    state_file.write_text(rolled_back)  # the one-line rollback
    deadline = time.monotonic() + 90
    while _operator(migration.api, "proxy_etl", "load") == PROXIED_TASK_OPERATOR:
        assert time.monotonic() < deadline, "Airflow did not parse the rolled-back DAG"
        time.sleep(2)
    instance = migration.instance
    launched_before = len(proxy_runs(instance, proxy_job_name(INSTANCE, "proxy_etl", "load")))

    run_id, state = migration.run_dag("proxy_etl", logical_date="2026-01-06T00:00:00Z")
    assert state == "success"
    record = dag_run_record(instance, INSTANCE, "proxy_etl", run_id)
    assert record["airflow/proxied_to_dagster"] == "daily_report, flaky"
    one_more_sensor_tick()
    assert len(proxy_runs(instance, proxy_job_name(INSTANCE, "proxy_etl", "load"))) == launched_before, (
        "load ran in Airflow"
    )
    observed = [entry for entry in materializations(instance, "proxy_orders") if not entry.run_id]
    assert len(observed) == 1, "the Airflow task's success is recorded on its asset, once"
    metadata = observed[0].asset_materialization.metadata
    assert metadata["airflow/run_id"].value == run_id and metadata["airflow/task_id"].value == "load"


def _operator(api: AirflowApi, dag_id: str, task_id: str) -> str | None:
    task = api._get(f"/dags/{dag_id}/tasks/{task_id}")
    return task.get("operator_name") or task.get("class_ref", {}).get("class_name")


def test_the_rest_path_reads_the_same_proxied_tasks_from_airflow(migration: Migration) -> None:
    """The fallback path (REST v2, no events) marks the same tasks and DAG runs as proxied."""
    from airstream.dagster_consumer import AirflowRestClient, RestEventSource, TokenAuthBackend
    from airstream.schemas import DagRunEvent, TaskInstanceEvent

    url = migration.stack.airflow.url
    client = AirflowRestClient(auth_backend=TokenAuthBackend(url, "admin", "admin"))
    events = RestEventSource(client, INSTANCE).read(None).events
    first_etl = min(run["dag_run_id"] for run in migration.api.dag_runs("proxy_etl"))
    etl = {
        event.task_id: event.proxied_to_dagster
        for event in events
        if isinstance(event, TaskInstanceEvent) and event.run_id == first_etl and event.state == "success"
    }
    assert etl == {"extract": False, "load": True, "daily_report": True, "flaky": True}
    whole = [event for event in events if isinstance(event, DagRunEvent) and event.dag_id == "proxy_whole"]
    assert whole and all(event.proxied_to_dagster for event in whole)


def test_a_rest_only_sensor_records_a_proxied_task_without_materializing_its_assets_again(
    migration: Migration,
) -> None:
    """The REST path inside Dagster: a sensor polling REST v2 (no event source) sees the proxied task."""
    run_id, state = migration.run_dag("proxy_rest")
    assert state == "success"
    instance = migration.instance
    (dagster_run,) = proxy_runs(instance, proxy_job_name(REST_INSTANCE, "proxy_rest", "load"))
    assert dagster_run.status == DagsterRunStatus.SUCCESS and dagster_run.tags["airstream/run_id"] == run_id

    # The REST sensor recorded the run and its tasks on the DAG asset, naming the proxied one…
    record = dag_run_record(instance, REST_INSTANCE, "proxy_rest", run_id)
    assert record["airflow/proxied_to_dagster"] == "load"
    assert record["airflow/task_state_counts"] == {"success": 2}
    # …and did not materialize the task's asset a second time.
    one_more_sensor_tick()
    entries = materializations(instance, "proxy_rest_orders")
    assert len(entries) == 1, f"proxy_rest_orders materialized {len(entries)} times"
    assert entries[0].run_id == dagster_run.run_id


def test_malformed_proxied_state_is_an_import_error_naming_file_and_line(migration: Migration) -> None:
    """Last in the module: it leaves proxy_custom's file broken. The other DAGs of the folder still import."""
    bad = migration.dags / "proxied_state" / "proxy_custom.yaml"
    written = datetime.now(timezone.utc)
    bad.write_text("tasks:\n  - id: secured\n    proxied: sometimes\n")
    deadline = time.monotonic() + 90
    while True:
        errors = migration.api._get("/importErrors")["import_errors"]
        texts = [error["stack_trace"] for error in errors if error["filename"].endswith("proxy_custom.py")]
        if texts:
            break
        assert time.monotonic() < deadline, "Airflow reported no import error for proxy_custom.py"
        time.sleep(2)
    assert f"{bad}:3: `proxied` must be true or false, got 'sometimes'" in texts[0]

    # proxy_etl.py reads the same folder: parsed again since, it imports and keeps its proxies.
    deadline = time.monotonic() + 90
    while datetime.fromisoformat(migration.api._get("/dags/proxy_etl")["last_parsed_time"]) <= written:
        assert time.monotonic() < deadline, "Airflow did not parse proxy_etl.py again"
        time.sleep(2)
    errors = migration.api._get("/importErrors")["import_errors"]
    assert not [error for error in errors if error["filename"].endswith("proxy_etl.py")]
    assert _operator(migration.api, "proxy_etl", "daily_report") == PROXIED_TASK_OPERATOR
