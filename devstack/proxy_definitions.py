"""The Dagster code location of the migration tests: executable assets mapped to the tasks of
``devstack/proxy_dags`` (which proxy them to Dagster) and the sensor observing the same Airflow;
``build_defs_from_airflow_instance`` adds the proxy jobs.

Configured like :mod:`devstack.example_definitions`, plus ``AIRSTREAM_PROXY_FAILURES_FILE``: while
the number in that file is above zero, ``proxy_flaky`` fails and counts it down (a Dagster run
that fails on demand), and ``AIRSTREAM_PROXY_RELEASE_FILE``: ``proxy_slow`` runs until it
exists. ``proxy_retried`` fails in a run that is not a retry (no ``dagster/parent_run_id``).

With ``AIRSTREAM_REST_INSTANCE_NAME`` set, the same Airflow (``AIRFLOW_WEBSERVER_URL``, Airflow 3,
the devstack's admin user) is observed a second time under that name over REST only (no event
source: the sensor polls REST v2), with the DAG ``proxy_rest`` mapped to executable assets.

No ``from __future__ import annotations``: Dagster reads the ``context`` annotation.
"""

import os
import time
from pathlib import Path

from dagster import AssetExecutionContext, DailyPartitionsDefinition, Definitions, MaterializeResult, asset

from airstream.dagster_consumer import (
    AirflowFilter,
    AirflowInstance,
    TokenAuthBackend,
    assets_with_dag_mappings,
    assets_with_task_mappings,
    build_defs_from_airflow_instance,
)
from devstack.airflow import PASSWORD, USERNAME
from devstack.example_definitions import airflow_instance_from_env

DAILY = DailyPartitionsDefinition(start_date="2026-01-01")


@asset
def proxy_orders() -> MaterializeResult:
    return MaterializeResult(metadata={"ran_in": "dagster"})


@asset(partitions_def=DAILY)
def proxy_daily_orders(context: AssetExecutionContext) -> MaterializeResult:
    return MaterializeResult(metadata={"ran_in": "dagster", "partition": context.partition_key})


@asset
def proxy_flaky() -> MaterializeResult:
    failures = Path(os.environ.get("AIRSTREAM_PROXY_FAILURES_FILE", "/nonexistent"))
    remaining = int(failures.read_text().strip() or 0) if failures.exists() else 0
    if remaining > 0:
        failures.write_text(str(remaining - 1))
        raise RuntimeError(f"proxy_flaky fails on demand ({remaining} failure(s) asked)")
    return MaterializeResult(metadata={"ran_in": "dagster"})


@asset
def proxy_slow() -> MaterializeResult:
    """Runs until ``AIRSTREAM_PROXY_RELEASE_FILE`` exists, at most 120 s (a run to terminate)."""
    release = Path(os.environ.get("AIRSTREAM_PROXY_RELEASE_FILE", "/nonexistent"))
    deadline = time.monotonic() + 120
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    return MaterializeResult(metadata={"ran_in": "dagster"})


@asset
def proxy_secured() -> MaterializeResult:
    return MaterializeResult(metadata={"ran_in": "dagster"})


@asset
def proxy_retried(context: AssetExecutionContext) -> MaterializeResult:
    """Fails in a first run; succeeds in the retry Dagster's run retries launch."""
    parent = context.run.tags.get("dagster/parent_run_id")
    if parent is None:
        raise RuntimeError("proxy_retried fails in a run that is not a retry (Dagster's run retries retry it)")
    return MaterializeResult(metadata={"ran_in": "dagster", "retry_of": parent})


@asset
def proxy_rest_orders() -> MaterializeResult:
    return MaterializeResult(metadata={"ran_in": "dagster"})


@asset
def proxy_whole_report() -> MaterializeResult:
    return MaterializeResult(metadata={"ran_in": "dagster"})


def _mapped() -> Definitions:
    return Definitions(
        assets=[
            *assets_with_task_mappings(
                dag_id="proxy_etl",
                task_mappings={"load": [proxy_orders], "daily_report": [proxy_daily_orders], "flaky": [proxy_flaky]},
            ),
            *assets_with_task_mappings(dag_id="proxy_custom", task_mappings={"secured": [proxy_secured]}),
            *assets_with_task_mappings(dag_id="proxy_kill", task_mappings={"slow": [proxy_slow]}),
            *assets_with_task_mappings(dag_id="proxy_retry", task_mappings={"retried": [proxy_retried]}),
            *assets_with_dag_mappings({"proxy_whole": [proxy_whole_report]}),
        ]
    )


def _observed_over_rest(instance_name: str) -> Definitions:
    """The same Airflow observed over REST only, as ``instance_name``, with ``proxy_rest`` mapped."""
    url = os.environ.get("AIRFLOW_WEBSERVER_URL")
    if not url:
        raise RuntimeError("AIRSTREAM_REST_INSTANCE_NAME needs AIRFLOW_WEBSERVER_URL (the Airflow 3 to poll)")
    return build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(name=instance_name, auth_backend=TokenAuthBackend(url, USERNAME, PASSWORD)),
        defs=Definitions(
            assets=assets_with_task_mappings(dag_id="proxy_rest", task_mappings={"load": [proxy_rest_orders]})
        ),
        airflow_filter=AirflowFilter(dag_id_pattern="proxy_rest", retrieve_airflow_assets=False),
    )


defs = build_defs_from_airflow_instance(airflow_instance=airflow_instance_from_env(), defs=_mapped())
if os.environ.get("AIRSTREAM_REST_INSTANCE_NAME"):
    defs = Definitions.merge(defs, _observed_over_rest(os.environ["AIRSTREAM_REST_INSTANCE_NAME"]))
