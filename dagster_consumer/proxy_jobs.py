"""The jobs proxy operators launch: one per Airflow task (and per DAG) with executable mapped assets.

When an Airflow task is proxied (migration), its proxy operator launches the Dagster job named
by :func:`airstream.schemas.proxying.proxy_job_name` for the task, and the job materializes the
executable assets mapped to the task (``assets_with_task_mappings``); a DAG proxied as a whole
launches the DAG's job (``assets_with_dag_mappings``). Only materializable assets (``@asset``,
``@multi_asset``) go into jobs: an ``AssetSpec`` is observed from Airflow, never run.

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


def build_proxy_job_defs(defs: Definitions) -> Definitions:
    """Definitions holding one asset job per mapped Airflow task and per mapped DAG whose assets
    Dagster can materialize (the assets themselves stay in ``defs``).

    A task whose assets have different partitions definitions gets no job (Dagster cannot run
    them in one job); a warning names it, and its proxy fails with a message saying the job is
    missing.

    Example::

        defs = Definitions(assets=assets_with_task_mappings(dag_id="etl", task_mappings={"load": [orders]}))
        [job.name for job in build_proxy_job_defs(defs).jobs]   # ["airstream_proxy__etl__load"]
    """
    graph = defs.resolve_asset_graph()
    executable = {node.key: node for node in graph.asset_nodes if node.is_materializable}
    mappings = AssetMappings.from_definitions(defs)
    wanted: dict[str, tuple[str, list[AssetKey]]] = {}
    for (dag_id, task_id), keys in sorted(mappings.by_task.items()):
        wanted[proxy_job_name(dag_id, task_id)] = (f"{dag_id}.{task_id}", [key for key in keys if key in executable])
    by_dag: dict[str, list[AssetKey]] = defaultdict(list)
    for dag_id, keys in mappings.by_dag.items():
        by_dag[dag_id].extend(key for key in keys if key in executable)
    for dag_id, keys in sorted(by_dag.items()):
        wanted[proxy_job_name(dag_id)] = (dag_id, keys)
    jobs = []
    for name, (what, keys) in wanted.items():
        if not keys:
            continue
        partitions = {executable[key].partitions_def for key in keys}
        if len(partitions) > 1:
            log.warning(
                "airstream: no proxy job for Airflow %s: its assets %s have different partitions definitions",
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
                description=f"Runs the assets of Airflow {what} when Airflow proxies it to Dagster (airstream).",
                tags={PROXY_FOR_TAG: what},
            )
        )
    return Definitions(jobs=jobs)


def with_proxy_jobs(defs: Definitions, mapped: Definitions | None = None) -> Definitions:
    """``defs`` plus the proxy jobs of the mapped assets in ``mapped`` (default: ``defs`` itself).

    Example::

        defs = with_proxy_jobs(build_defs_from_airflow_instance(airflow_instance=..., defs=mapped), mapped)
    """
    return Definitions.merge(defs, build_proxy_job_defs(mapped if mapped is not None else defs))
