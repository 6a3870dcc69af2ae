"""The Dagster code location of the migration tests: executable assets mapped to the tasks of
``devstack/proxy_dags`` (which proxy them to Dagster), the sensor observing the same Airflow,
and the proxy jobs.

Configured like :mod:`devstack.example_definitions`, plus ``AIRSTREAM_PROXY_FAILURES_FILE``: while
the number in that file is above zero, ``proxy_flaky`` fails and counts it down (a Dagster run
that fails on demand), and ``AIRSTREAM_PROXY_RELEASE_FILE``: ``proxy_slow`` runs until it
exists. No ``from __future__ import annotations``: Dagster reads the ``context`` annotation.
"""

import os
import time
from pathlib import Path

from dagster import AssetExecutionContext, DailyPartitionsDefinition, Definitions, MaterializeResult, asset

from airstream.dagster_consumer import (
    assets_with_dag_mappings,
    assets_with_task_mappings,
    build_defs_from_airflow_instance,
    with_proxy_jobs,
)
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
            *assets_with_dag_mappings({"proxy_whole": [proxy_whole_report]}),
        ]
    )


defs = with_proxy_jobs(build_defs_from_airflow_instance(airflow_instance=airflow_instance_from_env(), defs=_mapped()))
