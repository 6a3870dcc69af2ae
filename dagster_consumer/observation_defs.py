"""Assembling the definitions that observe one Airflow instance: DAG assets, peered specs, checks, the sensor.

Both entry points end here: :func:`~airstream.dagster_consumer.build_defs_from_airflow_instance`
(events only, or with a peering snapshot) and the state-backed peering loaders
(:mod:`airstream.dagster_consumer.peering`), so the two build the same definitions.

Everything airstream adds for an instance is in the group named after it (``group_name=name``),
and so are the mapped ``AssetSpec``s that name no group of their own (an ``@asset`` always has
one, ``"default"`` unless given, and keeps it): one Airflow's assets are found together in the
catalog and the lineage graph.
"""

from __future__ import annotations

import warnings

from dagster import AssetCheckSpec, AssetSpec, DefaultSensorStatus, Definitions, PreviewWarning

from airstream.dagster_consumer.airflow_instance import AirflowInstance
from airstream.dagster_consumer.asset_keys import AirflowAssetKeys
from airstream.dagster_consumer.checks import build_state_checks, state_check_specs
from airstream.dagster_consumer.dag_history import DEFAULT_DAG_ASSET_HISTORY, DagAssetHistory
from airstream.dagster_consumer.health import DEFAULT_HEALTH_INTERVAL, health_asset_spec
from airstream.dagster_consumer.mappings import (
    DAG_MAPPING_METADATA_KEY,
    TASK_MAPPING_METADATA_KEY,
    AssetMappings,
    dag_asset_key,
)
from airstream.dagster_consumer.peering.filter import AirflowFilter
from airstream.dagster_consumer.peering.snapshot import PeeringSnapshot
from airstream.dagster_consumer.peering.specs import dag_asset_specs
from airstream.dagster_consumer.recorded_ids import DEFAULT_DEDUPLICATION_HORIZON, Horizon
from airstream.dagster_consumer.rest.records import AirflowRestApi
from airstream.dagster_consumer.sensor import build_airflow_event_sensor


def build_observation_defs(
    *,
    airflow_instance: AirflowInstance,
    defs: Definitions | None = None,
    airflow_asset_keys: AirflowAssetKeys | None = None,
    snapshot: PeeringSnapshot | None = None,
    airflow_filter: AirflowFilter | None = None,
    sensor_minimum_interval_seconds: int = 1,
    default_sensor_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    deduplication_horizon: Horizon = DEFAULT_DEDUPLICATION_HORIZON,
    health_interval: float | None = DEFAULT_HEALTH_INTERVAL,
    rest_api: AirflowRestApi | None = None,
    dag_asset_history: DagAssetHistory = DEFAULT_DAG_ASSET_HISTORY,
    state_checks: bool = True,
) -> Definitions:
    """``defs`` plus the DAG assets (and, with a ``snapshot``, the peered DAGs and Airflow assets),
    the state checks and the sensor, in the instance's group.

    Example::

        build_observation_defs(airflow_instance=instance, defs=Definitions(assets=mapped), snapshot=snapshot)
    """
    defs = _grouped(defs or Definitions(), airflow_instance.name)
    mappings = AssetMappings.from_definitions(
        defs,
        airflow_asset_keys or AirflowAssetKeys(),
        dag_asset_history=dag_asset_history,
        state_checks=state_checks,
    )
    defined_keys = {spec.key for spec in defs.resolve_all_asset_specs()}
    specs = dag_asset_specs(
        instance_name=airflow_instance.name,
        mappings=mappings,
        snapshot=snapshot,
        airflow_filter=airflow_filter,
        webserver_url=airflow_instance.webserver_url,
        defined_keys=defined_keys,
    )
    sensor = build_airflow_event_sensor(
        airflow_instance=airflow_instance,
        mappings=mappings,
        minimum_interval_seconds=sensor_minimum_interval_seconds,
        default_status=default_sensor_status,
        deduplication_horizon=deduplication_horizon,
        health_interval=health_interval,
        rest_api=rest_api,
    )
    health = [health_asset_spec(airflow_instance.name).replace_attributes(group_name=airflow_instance.name)]
    checks = build_state_checks(airflow_instance.name, _check_specs(mappings, specs, airflow_instance.name))
    return Definitions.merge(
        defs,
        Definitions(assets=[*specs, *health], sensors=[sensor], asset_checks=[checks] if checks else None),
    )


def _grouped(defs: Definitions, group_name: str) -> Definitions:
    """``defs`` with the instance's group on the mapped assets that have none of their own."""

    def group(spec: AssetSpec) -> AssetSpec:
        mapped = TASK_MAPPING_METADATA_KEY in spec.metadata or DAG_MAPPING_METADATA_KEY in spec.metadata
        if mapped and spec.group_name is None:
            return spec.replace_attributes(group_name=group_name)
        return spec

    if not defs.assets:
        return defs
    with warnings.catch_warnings():  # public, marked preview in Dagster 1.13
        warnings.simplefilter("ignore", PreviewWarning)
        return defs.map_asset_specs(func=group)


def _check_specs(mappings: AssetMappings, specs: list[AssetSpec], instance_name: str) -> list[AssetCheckSpec]:
    if not mappings.state_checks:
        return []
    return state_check_specs(
        task_mapped=[key for keys in mappings.by_task.values() for key in keys],
        run_mapped=[key for keys in mappings.by_dag.values() for key in keys],
        dag_assets=[spec.key for spec in specs if spec.key == dag_asset_key(instance_name, spec.key.path[-1])],
    )
