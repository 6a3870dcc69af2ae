"""The jobs proxy operators launch: one per Airflow task (and per DAG) with executable mapped assets.

When an Airflow task is proxied (migration), its proxy operator launches the Dagster job named
by :func:`airstream.schemas.proxying.proxy_job_name` for the Airflow instance and the task, and
the job materializes the executable assets mapped to the task (``assets_with_task_mappings``); a
DAG proxied as a whole launches the DAG's job (``assets_with_dag_mappings``). Only materializable
assets (``@asset``, ``@multi_asset``) go into jobs: an ``AssetSpec`` is observed from Airflow,
never run.

:func:`~airstream.dagster_consumer.build_defs_from_airflow_instance` (and the peering loaders)
add these jobs themselves; :func:`build_proxy_job_defs` is the building block, for definitions
assembled some other way.

The proxy finds the job by name and asks Dagster's GraphQL API for that job's assets only, so it
never lists every asset of the deployment.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from dagster import AssetKey, AssetSelection, Definitions, define_asset_job

from airstream.dagster_consumer.mappings import AssetMappings
from airstream.schemas.proxying import proxy_job_name

log = logging.getLogger(__name__)

PROXY_FOR_TAG = "airstream/proxy_for"
PROXY_INSTANCE_TAG = "airstream/airflow_instance"


def build_proxy_job_defs(defs: Definitions, instance_name: str) -> Definitions:
    r"""Definitions holding one asset job per task and per DAG of Airflow instance
    ``instance_name`` that ``defs`` maps executable assets to (the assets themselves stay in
    ``defs``); no jobs when the mapped assets are all ``AssetSpec``\ s.

    A task whose assets have different partitions definitions gets no job (Dagster cannot run
    them in one job); a warning names it, and its proxy fails with a message saying the job is
    missing.

    Example::

        defs = Definitions(assets=assets_with_task_mappings(dag_id="etl", task_mappings={"load": [orders]}))
        [job.name for job in build_proxy_job_defs(defs, "prod").jobs]   # ["airstream_proxy__prod__etl__load"]
    """
    mappings = AssetMappings.from_definitions(defs)
    if not mappings.by_task and not mappings.by_dag:
        return Definitions()
    graph = defs.resolve_asset_graph()
    executable = {node.key: node for node in graph.asset_nodes if node.is_materializable}
    wanted: dict[str, tuple[str, list[AssetKey]]] = {}
    for (dag_id, task_id), keys in sorted(mappings.by_task.items()):
        wanted[proxy_job_name(instance_name, dag_id, task_id)] = (
            f"{dag_id}.{task_id}",
            [key for key in keys if key in executable],
        )
    by_dag: dict[str, list[AssetKey]] = defaultdict(list)
    for dag_id, keys in mappings.by_dag.items():
        by_dag[dag_id].extend(key for key in keys if key in executable)
    for dag_id, keys in sorted(by_dag.items()):
        wanted[proxy_job_name(instance_name, dag_id)] = (dag_id, keys)
    jobs = []
    for name, (what, keys) in wanted.items():
        if not keys:
            continue
        partitions = {executable[key].partitions_def for key in keys}
        if len(partitions) > 1:
            log.warning(
                "airstream: no proxy job for Airflow %s %s: its assets %s have different partitions definitions",
                instance_name,
                what,
                ", ".join(key.to_user_string() for key in keys),
            )
            continue
        jobs.append(
            define_asset_job(
                name,
                selection=AssetSelection.assets(
                    *keys
                ).without_checks(),  # checks of Airflow states stay with the sensor
                description=(
                    f"Runs the assets of Airflow {instance_name} {what} when Airflow proxies it to Dagster (airstream)."
                ),
                tags={PROXY_FOR_TAG: what, PROXY_INSTANCE_TAG: instance_name},
            )
        )
    return Definitions(jobs=jobs)


def with_proxy_jobs_of(built: Definitions, mapped: Definitions | None, instance_name: str) -> Definitions:
    """``built`` plus the proxy jobs of the assets ``mapped`` maps to Airflow ``instance_name``
    (what the definitions builders add; ``built`` unchanged when there are none)."""
    jobs = build_proxy_job_defs(mapped or Definitions(), instance_name)
    return Definitions.merge(built, jobs) if jobs.jobs else built
