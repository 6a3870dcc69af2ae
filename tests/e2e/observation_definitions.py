"""The Dagster code location of the completeness test: assets mapped to tasks whose states the
scheduler decides (an EmptyOperator join, a branch not taken, an upstream failure), and a daily
partitioned asset. The DAG assets keep every event (``dag_asset_history="all"``): the test
compares them with every terminal state Airflow reached."""

from __future__ import annotations

from dagster import AssetSpec, DailyPartitionsDefinition, Definitions

from airstream.dagster_consumer import assets_with_task_mappings, build_defs_from_airflow_instance
from devstack.example_definitions import airflow_instance_from_env

DAILY = DailyPartitionsDefinition(start_date="2026-01-01")

defs = build_defs_from_airflow_instance(
    airflow_instance=airflow_instance_from_env(),
    dag_asset_history="all",
    defs=Definitions(
        assets=[
            *assets_with_task_mappings(
                dag_id="observe_branching",
                task_mappings={
                    "join": [AssetSpec("branch_join")],
                    "right": [AssetSpec("branch_not_taken")],
                    "regions.process": [AssetSpec("region_rollup")],
                    "left": [
                        AssetSpec("daily_left", partitions_def=DailyPartitionsDefinition(start_date="2026-01-01"))
                    ],
                },
            ),
            *assets_with_task_mappings(
                dag_id="observe_failures",
                task_mappings={"after_boom": [AssetSpec("after_failure")], "cleanup": [AssetSpec("cleanup_report")]},
            ),
        ]
    ),
)
