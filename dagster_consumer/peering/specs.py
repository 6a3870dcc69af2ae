"""Dagster asset specs from a peering snapshot: DAG assets with their facts, Airflow assets with lineage.

Lineage follows the data, as Dagster's Airlift draws it: a DAG's asset is downstream of the
assets its tasks (and the DAG itself) are mapped to; an Airflow asset (a dataset on Airflow 2)
depends on what produces it, the assets mapped to its producing task when there are any, else
the producing DAG's asset; the DAGs that consume it (asset-triggered DAGs) depend on it. A DAG
that both produces and consumes the same Airflow asset gets no dependency on it, so the graph
stays acyclic. Every spec built here is in the group named after the instance, so one Airflow's
assets are found together in the catalog and the lineage graph.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from dagster import AssetKey, AssetSpec, MetadataValue

from airstream.dagster_consumer.airflow_links import airflow_dag_url
from airstream.dagster_consumer.mappings import AssetMappings, dag_asset_key
from airstream.dagster_consumer.peering.filter import AirflowFilter
from airstream.dagster_consumer.peering.snapshot import PeeringSnapshot
from airstream.dagster_consumer.rest.records import AirflowAssetRecord, DagRecord, TaskRecord

PEERED_AT_METADATA_KEY = "airstream/peered_at"


def dag_asset_specs(
    *,
    instance_name: str,
    mappings: AssetMappings,
    snapshot: PeeringSnapshot | None = None,
    airflow_filter: AirflowFilter | None = None,
    webserver_url: str | None = None,
    defined_keys: Collection[AssetKey] = (),
) -> list[AssetSpec]:
    """The DAG assets (``[instance, "dag", dag_id]``) and, with a snapshot, the Airflow asset specs.

    Without a snapshot (no REST access): one asset per DAG that ``mappings`` names, as before.
    With one: also every DAG the snapshot lists that ``airflow_filter`` keeps, with its
    description, owners, tags, schedule, file, a link to it in the Airflow UI and, for DAGs with
    task mappings, its tasks (ids, operators, downstream tasks); and the Airflow assets, whose
    keys follow ``mappings.airflow_asset_keys``. Keys in ``defined_keys`` (assets the user defines)
    get no spec of their own.

    Example::

        dag_asset_specs(instance_name="prod", mappings=mappings, snapshot=snapshot,
                        airflow_filter=AirflowFilter(tags=["finance"]), webserver_url="http://af:8080")
    """
    airflow_filter = airflow_filter or AirflowFilter()
    listed: Mapping[str, DagRecord] = {dag.dag_id: dag for dag in snapshot.dags} if snapshot else {}
    selected = {dag_id for dag_id, dag in listed.items() if airflow_filter.keeps_dag(dag)} | mappings.dag_ids

    consumed: dict[str, list[AssetKey]] = defaultdict(list)
    asset_specs: list[AssetSpec] = []
    if snapshot is not None and airflow_filter.retrieve_airflow_assets:
        for asset in snapshot.assets:
            if not airflow_filter.keeps_asset(asset):
                continue
            key = mappings.airflow_asset_keys.key_for(asset.uri)
            producing_dags = {dag_id for dag_id, _ in asset.producing_tasks}
            for dag_id in asset.consuming_dag_ids:
                if dag_id in selected and dag_id not in producing_dags and key not in consumed[dag_id]:
                    consumed[dag_id].append(key)
            if key not in defined_keys:
                asset_specs.append(_airflow_asset_spec(asset, key, instance_name, mappings, selected))

    dag_specs = [
        _dag_spec(
            instance_name=instance_name,
            dag_id=dag_id,
            dag=listed.get(dag_id),
            tasks=snapshot.tasks.get(dag_id) if snapshot else None,
            mappings=mappings,
            deps=[*_mapped_to(mappings, dag_id), *consumed.get(dag_id, [])],
            snapshot=snapshot,
            webserver_url=webserver_url,
        )
        for dag_id in sorted(selected)
    ]
    return dag_specs + asset_specs


def _dag_spec(
    *,
    instance_name: str,
    dag_id: str,
    dag: DagRecord | None,
    tasks: Sequence[TaskRecord] | None,
    mappings: AssetMappings,
    deps: Sequence[AssetKey],
    snapshot: PeeringSnapshot | None,
    webserver_url: str | None,
) -> AssetSpec:
    metadata: dict[str, Any] = {"airflow/dag_id": dag_id, "airflow/instance": instance_name}
    description = f"The Airflow DAG {dag_id!r} on instance {instance_name!r}."
    if dag is not None:
        if dag.description:
            description = f"{dag.description}\n\n{description}"
        metadata.update(
            {
                "airflow/description": dag.description or "",
                "airflow/owners": ", ".join(dag.owners),
                "airflow/tags": MetadataValue.json(list(dag.tags)),
                "airflow/schedule": dag.schedule or "",
                "airflow/fileloc": dag.fileloc or "",
            }
        )
        if dag.is_paused is not None:
            metadata["airflow/is_paused"] = dag.is_paused
    if snapshot is not None:
        metadata["airflow/version"] = snapshot.airflow_version
        metadata[PEERED_AT_METADATA_KEY] = MetadataValue.timestamp(snapshot.fetched_at)
        if dag is None:
            metadata["airflow/listed"] = False  # mapped, but Airflow did not list it when peered
    if webserver_url and dag is not None and snapshot is not None:
        metadata["airflow/dag_url"] = MetadataValue.url(
            airflow_dag_url(webserver_url, dag_id, snapshot.airflow_version)
        )
    if tasks is not None and mappings.mapped_tasks(dag_id):
        mapped = mappings.mapped_tasks(dag_id)
        metadata["airflow/tasks"] = MetadataValue.json(
            [
                {
                    **asdict(task),
                    "downstream_task_ids": list(task.downstream_task_ids),
                    "mapped_assets": [key.to_user_string() for key in mapped.get(task.task_id, [])],
                }
                for task in sorted(tasks, key=lambda task: task.task_id)
            ]
        )
        metadata["airflow/task_count"] = len(tasks)
    return AssetSpec(
        key=dag_asset_key(instance_name, dag_id),
        description=description,
        kinds={"airflow"},
        metadata=metadata,
        deps=list(dict.fromkeys(deps)),
        group_name=instance_name,
    )


def _mapped_to(mappings: AssetMappings, dag_id: str) -> list[AssetKey]:
    """The assets ``dag_id``'s tasks and the DAG itself are mapped to, each once, in mapping order."""
    keys = [key for task_keys in mappings.mapped_tasks(dag_id).values() for key in task_keys]
    return list(dict.fromkeys([*keys, *mappings.by_dag.get(dag_id, [])]))


def _airflow_asset_spec(
    asset: AirflowAssetRecord, key: AssetKey, instance_name: str, mappings: AssetMappings, selected: Collection[str]
) -> AssetSpec:
    upstream: list[AssetKey] = []
    for dag_id, task_id in asset.producing_tasks:
        if dag_id not in selected:
            continue
        produced_by = mappings.by_task.get((dag_id, task_id)) or [dag_asset_key(instance_name, dag_id)]
        upstream.extend(k for k in produced_by if k != key and k not in upstream)
    return AssetSpec(
        key=key,
        description=f"The Airflow asset {asset.uri}" + (f" ({asset.name})" if asset.name else "") + ".",
        kinds={"airflow"},
        deps=upstream,
        group_name=instance_name,
        metadata={
            "airflow/asset_uri": asset.uri,
            "airflow/asset_name": asset.name or "",
            "airflow/instance": instance_name,
            "airflow/producing_tasks": MetadataValue.json(
                [{"dag_id": dag_id, "task_id": task_id} for dag_id, task_id in asset.producing_tasks]
            ),
            "airflow/consuming_dags": MetadataValue.json(list(asset.consuming_dag_ids)),
        },
    )
