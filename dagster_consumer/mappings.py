"""Mapping Dagster assets to the Airflow tasks and DAGs that produce them.

The mapping travels as asset metadata, so it survives any later ``Definitions`` transform and
shows in the Dagster UI.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from dagster import AssetKey, AssetsDefinition, AssetSpec, Definitions, TimeWindowPartitionsDefinition

from airstream.dagster_consumer.asset_keys import AirflowAssetKeys
from airstream.dagster_consumer.dag_history import (
    DEFAULT_DAG_ASSET_HISTORY,
    DagAssetHistory,
    RunTaskStates,
    check_dag_asset_history,
)

TASK_MAPPING_METADATA_KEY = "airstream/task_mappings"
DAG_MAPPING_METADATA_KEY = "airstream/dag_mappings"

MappedAsset = AssetSpec | AssetsDefinition


def dag_asset_key(instance_name: str, dag_id: str) -> AssetKey:
    """The key of the asset that stands for a whole Airflow DAG: ``[instance, "dag", dag_id]``."""
    return AssetKey([instance_name, "dag", dag_id])


def assets_with_task_mappings(dag_id: str, task_mappings: Mapping[str, Iterable[MappedAsset]]) -> Sequence[MappedAsset]:
    """Mark assets as produced by Airflow tasks: each is materialized when its task succeeds.

    Example::

        assets_with_task_mappings(
            dag_id="etl",
            task_mappings={"load": [AssetSpec("warehouse_table")]},
        )
    """
    _require_id("dag_id", dag_id)
    mapped: list[MappedAsset] = []
    for task_id, assets in task_mappings.items():
        _require_id("task_id", task_id)
        entry = {"dag_id": dag_id, "task_id": task_id}
        mapped.extend(_add_mapping(asset, TASK_MAPPING_METADATA_KEY, entry) for asset in assets)
    return mapped


def assets_with_dag_mappings(dag_mappings: Mapping[str, Iterable[MappedAsset]]) -> Sequence[MappedAsset]:
    """Mark assets as produced by whole Airflow DAGs: each is materialized when a run succeeds.

    Example::

        assets_with_dag_mappings({"nightly_reports": [AssetSpec("report_pdf")]})
    """
    mapped: list[MappedAsset] = []
    for dag_id, assets in dag_mappings.items():
        _require_id("dag_id", dag_id)
        mapped.extend(_add_mapping(asset, DAG_MAPPING_METADATA_KEY, {"dag_id": dag_id}) for asset in assets)
    return mapped


class TaskHandleDict(TypedDict):
    """One Airflow task, as Airlift names it: ``{"dag_id": "etl", "task_id": "load"}``."""

    dag_id: str
    task_id: str


def assets_with_multiple_task_mappings(
    assets: Sequence[MappedAsset], task_handles: Sequence[TaskHandleDict]
) -> Sequence[MappedAsset]:
    """Mark assets as produced by several Airflow tasks: each is materialized whenever any of them succeeds.

    The same signature as Airlift's: for one physical asset written by, say, a daily and a
    weekly DAG. Mappings the assets already carry are kept.

    Example::

        assets_with_multiple_task_mappings(
            assets=[AssetSpec("orders")],
            task_handles=[
                {"dag_id": "daily_etl", "task_id": "load"},
                {"dag_id": "weekly_backfill", "task_id": "load"},
            ],
        )
    """
    if not task_handles:
        raise ValueError("task_handles is empty: name at least one task, e.g. [{'dag_id': 'etl', 'task_id': 'load'}]")
    entries: list[dict[str, str]] = []
    for handle in task_handles:
        if not isinstance(handle, Mapping) or set(handle) != {"dag_id", "task_id"}:
            raise ValueError(f"task handle {handle!r} must be a dict with exactly the keys 'dag_id' and 'task_id'")
        _require_id("dag_id", handle["dag_id"])
        _require_id("task_id", handle["task_id"])
        entries.append({"dag_id": handle["dag_id"], "task_id": handle["task_id"]})
    mapped: list[MappedAsset] = []
    for asset in assets:
        for entry in entries:
            asset = _add_mapping(asset, TASK_MAPPING_METADATA_KEY, entry)
        mapped.append(asset)
    return mapped


@dataclass(frozen=True)
class AssetMappings:
    """Which asset keys each task and each DAG produces, and what recording them needs.

    ``partitions`` holds the time-window partitions definition of every asset that has one (a
    run then materializes the partition of its logical date); ``airflow_asset_keys`` says under
    which key an Airflow asset URI is recorded.

    How outcomes are recorded: ``dag_asset_history`` (``"runs"``: one record per finished run on
    the DAG asset; ``"all"``: every event, see :mod:`airstream.dagster_consumer.dag_history`) and
    ``state_checks`` (record the ``airflow_task_succeeded`` / ``airflow_run_succeeded`` check
    evaluations, see :mod:`airstream.dagster_consumer.checks`). ``run_task_states`` holds the task
    states of recent runs that the run outcomes summarise; each sensor has its own.
    """

    by_task: Mapping[tuple[str, str], Sequence[AssetKey]] = field(default_factory=dict)
    by_dag: Mapping[str, Sequence[AssetKey]] = field(default_factory=dict)
    partitions: Mapping[AssetKey, TimeWindowPartitionsDefinition] = field(default_factory=dict)
    airflow_asset_keys: AirflowAssetKeys = field(default_factory=AirflowAssetKeys)
    dag_asset_history: DagAssetHistory = DEFAULT_DAG_ASSET_HISTORY
    state_checks: bool = True
    run_task_states: RunTaskStates = field(default_factory=RunTaskStates, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_dag_asset_history(self.dag_asset_history)

    @property
    def dag_ids(self) -> set[str]:
        return {dag_id for dag_id, _ in self.by_task} | set(self.by_dag)

    def mapped_tasks(self, dag_id: str) -> dict[str, Sequence[AssetKey]]:
        """Task id → asset keys, for the tasks of ``dag_id`` that assets are mapped to."""
        return {task_id: keys for (dag, task_id), keys in self.by_task.items() if dag == dag_id}

    @classmethod
    def from_specs(
        cls,
        specs: Iterable[AssetSpec],
        airflow_asset_keys: AirflowAssetKeys | None = None,
        *,
        dag_asset_history: DagAssetHistory = DEFAULT_DAG_ASSET_HISTORY,
        state_checks: bool = True,
    ) -> AssetMappings:
        by_task: dict[tuple[str, str], list[AssetKey]] = defaultdict(list)
        by_dag: dict[str, list[AssetKey]] = defaultdict(list)
        partitions: dict[AssetKey, TimeWindowPartitionsDefinition] = {}
        for spec in specs:
            for entry in _entries(spec.metadata.get(TASK_MAPPING_METADATA_KEY)):
                by_task[(entry["dag_id"], entry["task_id"])].append(spec.key)
            for entry in _entries(spec.metadata.get(DAG_MAPPING_METADATA_KEY)):
                by_dag[entry["dag_id"]].append(spec.key)
            if isinstance(spec.partitions_def, TimeWindowPartitionsDefinition):
                partitions[spec.key] = spec.partitions_def
        return cls(
            by_task=dict(by_task),
            by_dag=dict(by_dag),
            partitions=partitions,
            airflow_asset_keys=airflow_asset_keys or AirflowAssetKeys(),
            dag_asset_history=dag_asset_history,
            state_checks=state_checks,
        )

    @classmethod
    def from_definitions(
        cls,
        defs: Definitions,
        airflow_asset_keys: AirflowAssetKeys | None = None,
        *,
        dag_asset_history: DagAssetHistory = DEFAULT_DAG_ASSET_HISTORY,
        state_checks: bool = True,
    ) -> AssetMappings:
        return cls.from_specs(
            defs.resolve_all_asset_specs(),
            airflow_asset_keys,
            dag_asset_history=dag_asset_history,
            state_checks=state_checks,
        )


def _add_mapping(asset: MappedAsset, metadata_key: str, entry: dict[str, str]) -> MappedAsset:
    def add(spec: AssetSpec) -> AssetSpec:
        existing = _entries(spec.metadata.get(metadata_key))
        if entry in existing:
            return spec
        return spec.merge_attributes(metadata={metadata_key: [*existing, entry]}, kinds={"airflow"})

    if isinstance(asset, AssetSpec):
        return add(asset)
    if isinstance(asset, AssetsDefinition):
        return asset.map_asset_specs(add)
    raise TypeError(f"cannot map {type(asset).__name__} to Airflow: pass AssetSpec or AssetsDefinition objects")


def _entries(value: Any) -> list[dict[str, str]]:
    # Metadata comes back wrapped (JsonMetadataValue) once Dagster has normalised it.
    raw = getattr(value, "value", value)
    return list(raw) if isinstance(raw, list) else []


def _require_id(what: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
